package dashboard

import (
	"time"

	"github.com/pocketbase/dbx"
)

// PlannedQuery is a statement of the summary, for its query plan.
type PlannedQuery struct {
	Name   string
	SQL    string
	Params dbx.Params
}

// SummaryQueries returns the statements a summary runs over field work
// for teams at now, with the site and worker filters, over a month.
func SummaryQueries(now time.Time, teams []string, site, worker string) []PlannedQuery {
	now = now.In(rome)
	p, _ := readPeriod(map[string][]string{"period": {PeriodMonth}}, now)
	f := filters{supervised: teams, teams: teams, site: site, worker: worker, period: p, now: now, today: dayStart(now)}
	var qs []query
	v, t, c, r := activityQueries(f, f.period.Current)
	qs = append(qs, v, t, c, r)
	total, seen := caseloadQueries(f)
	qs = append(qs, total, seen)
	svc, stuck, outcomes := referralQueries(f)
	qs = append(qs, svc, stuck, outcomes[0], overdueCountQuery(f))
	lag, _ := lagQuery(f)
	qs = append(qs, lag)
	qs = append(qs, countedQueries(f)...)
	for _, team := range teams {
		b := newBuilder()
		qs = append(qs, b.query("feed of "+team, b.feedSQL(f, team, FeedSize)))
	}
	out := make([]PlannedQuery, 0, len(qs))
	for _, q := range qs {
		out = append(out, PlannedQuery{Name: q.name, SQL: q.sql, Params: q.params})
	}
	return out
}
