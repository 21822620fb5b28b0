package dashboard

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"strada/internal/accesslog"
	"strada/internal/dashboard/rollup"
	"strada/internal/domain"
)

// Blocks of the drill-down: each names the records behind some numbers of
// the summary (docs/dashboard.md maps every number to its block).
const (
	BlockCampVisits       = "camp_visits"
	BlockContacts         = "contacts"
	BlockPersons          = "persons"
	BlockPersonsNew       = "persons_new"
	BlockPersonsNotSeen   = "persons_not_seen"
	BlockReferrals        = "referrals"
	BlockReferralsStuck   = "referrals_stuck"
	BlockReferralOutcomes = "referral_outcomes"
	BlockOverdue          = "overdue"
	BlockOfflineLag       = "offline_lag"
	BlockConflicts        = "conflicts"
	BlockDevices          = "devices"
	BlockFeed             = "feed"
)

// Paging of the drill-down.
const (
	DefaultPerPage = 50
	MaxPerPage     = 200
	// MaxPage bounds how deep a drill-down pages.
	MaxPage = 1000
)

// Records is the answer of GET /api/dashboard/records.
type Records struct {
	Block   string `json:"block"`
	Page    int    `json:"page"`
	PerPage int    `json:"perPage"`
	Total   int    `json:"total"`
	Items   []Item `json:"items"`
}

// HandleRecords answers GET /api/dashboard/records: the records behind a
// block of the summary, with the summary's filters.
func (d *Dashboard) HandleRecords(e *core.RequestEvent) error {
	q := e.Request.URL.Query()
	f, er := d.readFilters(e.App, e.Auth, q)
	if er != nil {
		return answer(e, er)
	}
	page, er := intParam(q, "page", 1, 1, MaxPage)
	if er != nil {
		return answer(e, er)
	}
	perPage, er := intParam(q, "perPage", DefaultPerPage, 1, MaxPerPage)
	if er != nil {
		return answer(e, er)
	}
	r := Records{Block: q.Get("block"), Page: page, PerPage: perPage}
	offset := (page - 1) * perPage
	var err error
	r.Items, r.Total, er, err = d.block(e.App, f, q, perPage, offset)
	if er != nil {
		return answer(e, er)
	}
	if err != nil {
		d.logger.Error("dashboard records failed", "user", e.Auth.Id, "block", r.Block, "error", err)
		return answer(e, internal(err))
	}
	// Person codes leave the server only with a row in the access log.
	if err := logReads(e.App, e.Auth, r.Items); err != nil {
		d.logger.Error("dashboard records: access log failed", "user", e.Auth.Id, "block", r.Block, "error", err)
		return answer(e, internal(err))
	}
	e.Response.Header().Set("Cache-Control", "no-store")
	return e.JSON(http.StatusOK, r)
}

func intParam(q url.Values, name string, def, lo, hi int) (int, *Error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, invalid(name, name+" is a whole number from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi)+".")
	}
	return n, nil
}

// enumParam reads an optional parameter that must be one of values.
func enumParam(q url.Values, name string, values []string) (string, *Error) {
	s := q.Get(name)
	if s != "" && !slices.Contains(values, s) {
		return "", invalid(name, name+" is not one of its values.")
	}
	return s, nil
}

// windowParam reads window=current|previous.
func windowParam(q url.Values, f filters) (window, *Error) {
	switch q.Get("window") {
	case "", "current":
		return f.period.Current, nil
	case "previous":
		return f.period.Previous, nil
	}
	return window{}, invalid("window", "window is current or previous.")
}

// block lists one page of a block's records and their total.
func (d *Dashboard) block(app core.App, f filters, q url.Values, limit, offset int) ([]Item, int, *Error, error) {
	b := newBuilder()
	var sel, order string
	switch q.Get("block") {
	case BlockCampVisits:
		w, er := windowParam(q, f)
		if er != nil {
			return nil, 0, er, nil
		}
		topic, er := enumParam(q, "category", domain.VisitTopics)
		if er != nil {
			return nil, 0, er, nil
		}
		sel = `SELECT '' AS kind, '` + domain.CampVisits + `' AS collection, v.id, v.visited_at AS date, coalesce(v.created_by, '') AS worker,
			v.site, v.team, '' AS status, ` + personCodes("v.persons_met") + ` AS codes, '' AS field
			FROM ` + domain.CampVisits + ` v WHERE ` + b.workScope(f, "v", true) +
			` AND v.visited_at >= ` + b.arg(recordTime(w.From)) + ` AND v.visited_at < ` + b.arg(recordTime(w.To))
		if topic != "" {
			sel += ` AND EXISTS (SELECT 1 FROM json_each(v.topics) t WHERE t.value = ` + b.arg(topic) + `)`
		}
		order = "date DESC, id"
	case BlockContacts:
		w, er := windowParam(q, f)
		if er != nil {
			return nil, 0, er, nil
		}
		request, er := enumParam(q, "category", domain.ContactRequests)
		if er != nil {
			return nil, 0, er, nil
		}
		setting, er := enumParam(q, "setting", domain.Settings)
		if er != nil {
			return nil, 0, er, nil
		}
		sel = `SELECT '' AS kind, '` + domain.SecretariatContacts + `' AS collection, c.id, c.contacted_at AS date, coalesce(c.created_by, '') AS worker,
			c.site, c.team, c.setting AS status, ` + personCodes("json_array(c.person)") + ` AS codes, '' AS field
			FROM ` + domain.SecretariatContacts + ` c WHERE ` + b.workScope(f, "c", true) +
			` AND c.contacted_at >= ` + b.arg(recordTime(w.From)) + ` AND c.contacted_at < ` + b.arg(recordTime(w.To))
		if request != "" {
			sel += ` AND EXISTS (SELECT 1 FROM json_each(c.requests) r WHERE r.value = ` + b.arg(request) + `)`
		}
		if setting != "" {
			sel += ` AND c.setting = ` + b.arg(setting)
		}
		order = "date DESC, id"
	case BlockPersons, BlockPersonsNew, BlockPersonsNotSeen:
		sel = `SELECT '' AS kind, '` + domain.Persons + `' AS collection, p.id, p.created AS date, coalesce(p.created_by, '') AS worker,
			p.site, p.team, '' AS status, json_array(p.code) AS codes, '' AS field
			FROM ` + domain.Persons + ` p WHERE ` + b.personScope(f, "p")
		switch q.Get("block") {
		case BlockPersonsNew:
			sel += ` AND p.created >= ` + b.arg(recordTime(weekStart(f.now)))
		case BlockPersonsNotSeen:
			days, er := intParam(q, "days", 0, 1, 3650)
			if er != nil || !slices.Contains(notSeenDays, days) {
				return nil, 0, invalid("days", "days is 30, 60 or 90."), nil
			}
			sel += ` AND p.id NOT IN (SELECT person FROM (` + b.seenSince(f, f.now.AddDate(0, 0, -days)) + `))`
		}
		order = "date DESC, id"
	case BlockReferrals, BlockReferralsStuck:
		status, er := enumParam(q, "status", domain.ReferralStatuses)
		if er != nil {
			return nil, 0, er, nil
		}
		date := "r.created"
		if q.Get("block") == BlockReferralsStuck {
			date = sentAt
		}
		sel = `SELECT '' AS kind, '` + domain.Referrals + `' AS collection, r.id, ` + date + ` AS date, coalesce(r.created_by, '') AS worker,
			'' AS site, r.team, r.status, ` + personCodes("json_array(r.person)") + ` AS codes, '' AS field
			FROM ` + domain.Referrals + ` r WHERE ` + b.workScope(f, "r", false) + b.personSite(f, "r.person")
		if q.Get("block") == BlockReferralsStuck {
			sel += ` AND r.status = 'sent' AND ` + sentAt + ` < ` + b.arg(recordTime(f.now.Add(-StuckAfter)))
		} else {
			if status != "" {
				sel += ` AND r.status = ` + b.arg(status)
			}
			if s := q.Get("service"); s != "" {
				sel += ` AND r.service = ` + b.arg(s)
			}
		}
		order = "date DESC, id"
	case BlockReferralOutcomes:
		w, er := windowParam(q, f)
		if er != nil {
			return nil, 0, er, nil
		}
		status, er := enumParam(q, "status", finalStatuses)
		if er != nil {
			return nil, 0, er, nil
		}
		sel = `SELECT '' AS kind, '` + domain.Referrals + `' AS collection, r.id, ev.created AS date, coalesce(r.created_by, '') AS worker,
			'' AS site, r.team, ev.to_status AS status, ` + personCodes("json_array(r.person)") + ` AS codes, '' AS field
			FROM ` + domain.ReferralEvents + ` ev JOIN ` + domain.Referrals + ` r ON r.id = ev.referral
			WHERE ev.team IN (` + b.in(f.teams) + `) AND ev.to_status IN (` + b.in(finalStatuses) + `)
			AND ev.created >= ` + b.arg(recordTime(w.From)) + ` AND ev.created < ` + b.arg(recordTime(w.To)) +
			workerOf(b, f, "r") + b.personSite(f, "r.person")
		if status != "" {
			sel += ` AND ev.to_status = ` + b.arg(status)
		}
		order = "date DESC, id"
	case BlockOverdue:
		kind, er := enumParam(q, "kind", []string{OverdueVisit, OverdueContact, OverdueReferral})
		if er != nil {
			return nil, 0, er, nil
		}
		items, total, err := overdueItems(app, f, kind, limit, offset, true)
		return items, total, nil, err
	case BlockConflicts:
		kind, er := enumParam(q, "kind", conflictKinds)
		if er != nil {
			return nil, 0, er, nil
		}
		items, total, err := conflictItems(app, f, kind, limit, offset, true)
		return items, total, nil, err
	case BlockOfflineLag:
		from, to := f.period.Current.From, f.period.Current.To
		if s := q.Get("day"); s != "" {
			day, err := time.ParseInLocation(time.DateOnly, s, rome)
			if err != nil || day.Before(from) || !day.Before(to) {
				return nil, 0, invalid("day", "day is a date of the period, YYYY-MM-DD."), nil
			}
			from, to = day, addDays(day, 1)
		}
		lag := `(` + logMillis + ` - ` + rollup.UUIDMillis("c.record_id") + `)`
		sel = `SELECT '' AS kind, c.collection, c.record_id AS id, c.at AS date, c.actor_user AS worker,
			c.site, c.team, '' AS status, '[]' AS codes, '' AS field, ` + lag + ` AS lag_ms
			FROM ` + changesTable + ` c WHERE c.team IN (` + b.in(f.teams) + `)
			AND c.at >= ` + b.arg(logTime(from)) + ` AND c.at < ` + b.arg(logTime(to)) + `
			AND c.op = 'create' AND c.collection IN (` + b.in(domain.FieldWork) + `)` + logFilters(b, f)
		order = "date DESC, id"
	case BlockDevices:
		silentAfter, er := d.silentAfter(q.Get("silentHours"))
		if er != nil {
			return nil, 0, er, nil
		}
		onlySilent := q.Get("silent") == "true"
		devs, err := devices(app, f, silentAfter)
		if err != nil {
			return nil, 0, nil, err
		}
		var items []Item
		for _, dv := range devs.Items {
			if onlySilent && !dv.Silent {
				continue
			}
			kind := ""
			if dv.Silent {
				kind = "silent"
			}
			items = append(items, Item{Collection: domain.Devices, ID: dv.ID, Date: dv.LastSeen, Kind: kind, Worker: dv.Worker, PersonCodes: []string{}})
		}
		return page(items, limit, offset), len(items), nil, nil
	case BlockFeed:
		rows, err := feed(app, f, limit, offset)
		if err != nil {
			return nil, 0, nil, err
		}
		items := make([]Item, 0, len(rows))
		for _, r := range rows {
			pc := []string{}
			if r.PersonCode != "" {
				pc = []string{r.PersonCode}
			}
			items = append(items, Item{Collection: r.Collection, ID: r.RecordID, Date: r.At, Kind: r.Op, Site: r.Site, Worker: r.Worker, Team: r.Team, PersonCodes: pc})
		}
		total, err := feedTotal(app, f)
		return items, total, nil, err
	default:
		return nil, 0, &Error{Status: http.StatusBadRequest, Code: CodeInvalidBlock, Field: "block", Message: "block names no block of the summary."}, nil
	}
	items, total, err := listItems(app, b, q.Get("block"), sel, order, limit, offset, true)
	return items, total, nil, err
}

func page(items []Item, limit, offset int) []Item {
	if offset >= len(items) {
		return []Item{}
	}
	return items[offset:min(len(items), offset+limit)]
}

func feedTotal(app core.App, f filters) (int, error) {
	b := newBuilder()
	var n int
	err := b.query("feed total", `SELECT count(*) FROM `+changesTable+` c WHERE c.team IN (`+b.in(f.teams)+`)
		AND c.at >= `+b.arg(logTime(f.period.Current.From))+` AND c.at < `+b.arg(logTime(f.period.Current.To))+logFilters(b, f)).row(app, &n)
	return n, err
}

// logReads writes to the access log (internal/accesslog) the persons whose
// codes a drill-down page shows, as a list read: the record itself when
// its collection is about one person (persons, contacts, referrals), the
// person's own record otherwise (the persons met of a visit, the person of
// a conflict).
func logReads(app core.App, auth *core.Record, items []Item) error {
	var all []string
	for _, it := range items {
		all = append(all, it.PersonCodes...)
	}
	if len(all) == 0 {
		return nil
	}
	slices.Sort(all)
	all = slices.Compact(all)
	var persons []struct {
		ID   string `db:"id"`
		Team string `db:"team"`
		Code string `db:"code"`
	}
	b := newBuilder()
	if err := b.query("persons of codes", `SELECT id, team, code FROM `+domain.Persons+` WHERE code IN (`+b.in(all)+`)`).all(app, &persons); err != nil {
		return err
	}
	byCode := map[string]int{}
	for i, p := range persons {
		byCode[p.Code] = i
	}
	var entries []accesslog.Entry
	seen := map[accesslog.Entry]bool{}
	for _, it := range items {
		for _, code := range it.PersonCodes {
			i, ok := byCode[code]
			if !ok {
				continue
			}
			p := persons[i]
			en := accesslog.Entry{Person: p.ID, Team: p.Team, Collection: domain.Persons, Record: p.ID}
			if accesslog.IsSubject(it.Collection) {
				en.Collection, en.Record = it.Collection, it.ID
				if it.Team != "" {
					en.Team = it.Team
				}
			}
			if !seen[en] {
				seen[en] = true
				entries = append(entries, en)
			}
		}
	}
	if err := accesslog.Write(app, accesslog.ReaderOf(auth), accesslog.ActionList, entries); err != nil {
		return fmt.Errorf("log dashboard reads: %w", err)
	}
	return nil
}
