package dashboard

import (
	"fmt"
	"slices"

	"github.com/pocketbase/pocketbase/core"

	"strada/internal/dashboard/rollup"
)

// The blocks read from the rollups (internal/dashboard/rollup): the same
// numbers as the statements over the records, from a few hundred rows.

// countScope keeps the rollup rows of a kind, f's teams, site and worker.
func (b *sqlBuilder) countScope(f filters, kind string) string {
	w := `k.kind = ` + b.arg(kind) + ` AND k.team IN (` + b.in(f.teams) + `)`
	if f.site != "" {
		w += ` AND k.site = ` + b.arg(f.site)
	}
	if f.worker != "" {
		w += ` AND k.worker = ` + b.arg(f.worker)
	}
	return w
}

// inWindow keeps rollup rows whose day is in w.
func (b *sqlBuilder) inWindow(w window) string {
	return ` AND k.day >= ` + b.arg(dateOf(w.From)) + ` AND k.day < ` + b.arg(dateOf(w.To))
}

func countsQueries(f filters, w window) (visits, topics, contacts, requests query) {
	b := newBuilder()
	visits = b.query("counted visits by camp", `SELECT k.site AS site, sum(k.n) AS visits, sum(k.amount) AS households
		FROM `+rollup.Counts+` k WHERE `+b.countScope(f, rollup.KindVisit)+b.inWindow(w)+` GROUP BY k.site HAVING sum(k.n) > 0`)
	b = newBuilder()
	topics = b.query("counted visit topics", `SELECT k.category AS category, sum(k.n) AS n
		FROM `+rollup.Counts+` k WHERE `+b.countScope(f, rollup.KindTopic)+b.inWindow(w)+` GROUP BY k.category HAVING sum(k.n) > 0`)
	b = newBuilder()
	contacts = b.query("counted contacts by institute", `SELECT k.site AS site,
			sum(CASE WHEN k.category = 'intra' THEN k.n ELSE 0 END) AS intra,
			sum(CASE WHEN k.category = 'extra' THEN k.n ELSE 0 END) AS extra, sum(k.n) AS total
		FROM `+rollup.Counts+` k WHERE `+b.countScope(f, rollup.KindContact)+b.inWindow(w)+` GROUP BY k.site HAVING sum(k.n) > 0`)
	b = newBuilder()
	requests = b.query("counted contact requests", `SELECT k.category AS category, sum(k.n) AS n
		FROM `+rollup.Counts+` k WHERE `+b.countScope(f, rollup.KindRequest)+b.inWindow(w)+` GROUP BY k.category HAVING sum(k.n) > 0`)
	return
}

func countedActivity(app core.App, f filters, w window) (Activity, error) {
	qv, qt, qc, qr := countsQueries(f, w)
	return runActivity(app, qv, qt, qc, qr)
}

func countedCaseloadQueries(f filters) (total, seen query) {
	b := newBuilder()
	total = b.query("counted persons", `SELECT coalesce(sum(k.n), 0), coalesce(sum(CASE WHEN k.day >= `+b.arg(dateOf(weekStart(f.now)))+` THEN k.n END), 0)
		FROM `+rollup.Counts+` k WHERE `+b.countScope(f, rollup.KindPerson))
	b = newBuilder()
	cols := ""
	for _, n := range notSeenDays {
		cols += fmt.Sprintf(", coalesce(sum(s.seen >= %s), 0)", b.arg(recordTime(f.now.AddDate(0, 0, -n))))
	}
	w := `s.team IN (` + b.in(f.teams) + `) AND s.seen >= ` + b.arg(recordTime(f.now.AddDate(0, 0, -slices.Max(notSeenDays))))
	if f.site != "" {
		w += ` AND s.site = ` + b.arg(f.site)
	}
	if f.worker != "" {
		w += ` AND s.worker = ` + b.arg(f.worker)
	}
	seen = b.query("persons last seen", `SELECT count(*)`+cols+` FROM `+rollup.Seen+` s WHERE `+w)
	return
}

func countedCaseload(app core.App, f filters) (Caseload, error) {
	qt, qs := countedCaseloadQueries(f)
	return runCaseload(app, qt, qs)
}

func countedReferralQueries(f filters) (byService query, outcomes [2]query) {
	b := newBuilder()
	byService = b.query("counted referrals by service and status", `SELECT k.category AS service, k.status AS status, sum(k.n) AS n
		FROM `+rollup.Counts+` k WHERE `+b.countScope(f, rollup.KindReferral)+` AND k.day = '' GROUP BY k.category, k.status HAVING sum(k.n) > 0`)
	for i, w := range []window{f.period.Current, f.period.Previous} {
		b = newBuilder()
		outcomes[i] = b.query("counted referral outcomes", `SELECT k.category AS category, sum(k.n) AS n
			FROM `+rollup.Counts+` k WHERE `+b.countScope(f, rollup.KindOutcome)+b.inWindow(w)+` GROUP BY k.category HAVING sum(k.n) > 0`)
	}
	return
}

func countedReferrals(app core.App, f filters) (Referrals, error) {
	qs, qo := countedReferralQueries(f)
	_, stuck, _ := referralQueries(f)
	return runReferrals(app, qs, stuck, qo)
}

func countedLagQuery(f filters) (query, []string) {
	b := newBuilder()
	var days []string
	for d := f.period.Current.From; d.Before(f.period.Current.To); d = addDays(d, 1) {
		days = append(days, dateOf(d))
	}
	w := `k.team IN (` + b.in(f.teams) + `) AND k.day >= ` + b.arg(dateOf(f.period.Current.From)) + ` AND k.day < ` + b.arg(dateOf(f.period.Current.To))
	if f.site != "" {
		w += ` AND k.site = ` + b.arg(f.site)
	}
	if f.worker != "" {
		w += ` AND k.worker = ` + b.arg(f.worker)
	}
	q := b.query("counted offline lag", `SELECT k.day AS day, sum(k.records) AS records,
			sum(k.sum_ms) / 1000.0 / sum(k.records) AS avg_seconds, max(k.max_ms) / 1000.0 AS max_seconds,
			sum(k.over1h) AS over1h, sum(k.over24h) AS over24h, sum(k.ahead) AS ahead
		FROM `+rollup.Lag+` k WHERE `+w+` GROUP BY k.day HAVING sum(k.records) > 0`)
	return q, days
}

func countedOfflineLag(app core.App, f filters) ([]LagDay, error) {
	q, days := countedLagQuery(f)
	return runLag(app, q, days)
}

// countedQueries are the statements of the blocks read from the rollups,
// for the plan test.
func countedQueries(f filters) []query {
	qv, qt, qc, qr := countsQueries(f, f.period.Current)
	total, seen := countedCaseloadQueries(f)
	byService, outcomes := countedReferralQueries(f)
	lag, _ := countedLagQuery(f)
	return []query{qv, qt, qc, qr, total, seen, byService, outcomes[0], lag}
}
