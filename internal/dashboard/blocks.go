package dashboard

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"strada/internal/dashboard/rollup"
	"strada/internal/domain"
)

// Kinds of overdue items.
const (
	OverdueVisit    = "visit"
	OverdueContact  = "contact"
	OverdueReferral = "referral"
)

// OverdueLookbackDays bounds the follow-ups of visits and contacts that
// count as overdue to those due in this many days before today: an older
// one shows as a person not seen for 90 days in the caseload.
const OverdueLookbackDays = 90

// overdueSQL is the SQL of every overdue item in f's scope, with columns
// kind, collection, id, due, worker, site, team, status and persons (a
// JSON array of person ids):
//   - a camp visit whose follow_up_on is before today (and at most
//     OverdueLookbackDays before) and after which the team has not visited
//     that camp again;
//   - a secretariat contact whose follow_up_on is before today (and at
//     most OverdueLookbackDays before) and after which the person has had
//     no other contact;
//   - an open referral whose due_on is before today.
func (b *sqlBuilder) overdueSQL(f filters) string {
	today := b.arg(dateField(f.today))
	since := b.arg(dateField(addDays(f.today, -OverdueLookbackDays)))
	return `SELECT '` + OverdueVisit + `' AS kind, '` + domain.CampVisits + `' AS collection, v.id, v.follow_up_on AS due,
			v.created_by AS worker, v.site, v.team, '' AS status, v.persons_met AS persons
		FROM json_each(` + b.arg(jsonList(f.teams)) + `) t
		JOIN ` + domain.Sites + ` s
		JOIN ` + domain.CampVisits + ` v ON v.team = t.value AND v.site = s.id
			AND v.visited_at = (SELECT max(x.visited_at) FROM ` + domain.CampVisits + ` x WHERE x.team = t.value AND x.site = s.id)
		WHERE v.follow_up_on >= ` + since + ` AND v.follow_up_on < ` + today + siteIs(b, f, "v") + workerOf(b, f, "v") + `
	UNION ALL
	SELECT '` + OverdueContact + `', '` + domain.SecretariatContacts + `', c.id, c.follow_up_on,
			c.created_by, c.site, c.team, '', json_array(c.person)
		FROM ` + domain.SecretariatContacts + ` c
		WHERE ` + b.workScope(f, "c", true) + ` AND c.follow_up_on >= ` + since + ` AND c.follow_up_on < ` + today + `
			AND NOT EXISTS (SELECT 1 FROM ` + domain.SecretariatContacts + ` n WHERE n.person = c.person AND n.contacted_at > c.contacted_at)
	UNION ALL
	SELECT '` + OverdueReferral + `', '` + domain.Referrals + `', r.id, r.due_on,
			r.created_by, '', r.team, r.status, json_array(r.person)
		FROM ` + domain.Referrals + ` r
		WHERE ` + b.workScope(f, "r", false) + ` AND r.status IN (` + b.in(openStatuses) + `)
			AND r.due_on != '' AND r.due_on < ` + today + b.personSite(f, "r.person")
}

func siteIs(b *sqlBuilder, f filters, alias string) string {
	if f.site == "" {
		return ""
	}
	return " AND " + alias + ".site = " + b.arg(f.site)
}

// personCodes is the SQL of the codes of the persons of a JSON array of
// ids (column expr), as a JSON array.
func personCodes(expr string) string {
	return `(SELECT json_group_array(pc.code) FROM json_each(` + expr + `) pj JOIN ` + domain.Persons + ` pc ON pc.id = pj.value)`
}

func overdueCountQuery(f filters) query {
	b := newBuilder()
	return b.query("overdue by worker", `SELECT o.kind AS kind, coalesce(o.worker, '') AS worker, count(*) AS n FROM (`+b.overdueSQL(f)+`) o GROUP BY o.kind, o.worker`)
}

// itemRow is a row of a drill-down or item list.
type itemRow struct {
	Kind       string `db:"kind"`
	Collection string `db:"collection"`
	ID         string `db:"id"`
	Date       string `db:"date"`
	Worker     string `db:"worker"`
	Site       string `db:"site"`
	Team       string `db:"team"`
	Status     string `db:"status"`
	Codes      string `db:"codes"`
	Field      string `db:"field"`
	LagMs      *int64 `db:"lag_ms"`
}

func (r itemRow) item() Item {
	it := Item{
		Collection: r.Collection, ID: r.ID, Date: r.Date, Kind: r.Kind, Status: r.Status,
		Site: r.Site, Worker: r.Worker, Team: r.Team, PersonCodes: codes(r.Codes), Field: r.Field,
	}
	if r.LagMs != nil {
		s := float64(*r.LagMs) / 1000
		it.LagSeconds = &s
	}
	return it
}

func overdue(app core.App, f filters) (Overdue, error) {
	var o Overdue
	var rows []struct {
		Kind   string `db:"kind"`
		Worker string `db:"worker"`
		N      int    `db:"n"`
	}
	if err := overdueCountQuery(f).all(app, &rows); err != nil {
		return o, err
	}
	byWorker := map[string]*WorkerOverdue{}
	for _, r := range rows {
		w := byWorker[r.Worker]
		if w == nil {
			w = &WorkerOverdue{Worker: r.Worker}
			byWorker[r.Worker] = w
		}
		switch r.Kind {
		case OverdueVisit:
			w.Visits += r.N
			o.Visits += r.N
		case OverdueContact:
			w.Contacts += r.N
			o.Contacts += r.N
		case OverdueReferral:
			w.Referrals += r.N
			o.Referrals += r.N
		}
		w.Total += r.N
		o.Total += r.N
	}
	o.ByWorker = []WorkerOverdue{}
	for _, w := range byWorker {
		o.ByWorker = append(o.ByWorker, *w)
	}
	slices.SortFunc(o.ByWorker, func(a, b WorkerOverdue) int {
		if d := b.Total - a.Total; d != 0 {
			return d
		}
		return compare(a.Worker, b.Worker)
	})
	items, _, err := overdueItems(app, f, "", MaxSummaryItems, 0, false)
	if err != nil {
		return o, err
	}
	o.Items = items
	return o, nil
}

// overdueItems lists overdue items (of one kind, or all) by due date, the
// oldest first.
func overdueItems(app core.App, f filters, kind string, limit, offset int, count bool) ([]Item, int, error) {
	b := newBuilder()
	where := ""
	if kind != "" {
		where = " WHERE o.kind = " + b.arg(kind)
	}
	inner := b.overdueSQL(f)
	return listItems(app, b, "overdue items", `SELECT o.kind, o.collection, o.id, substr(o.due, 1, 10) AS date,
		coalesce(o.worker, '') AS worker, o.site, o.team, o.status, `+personCodes("o.persons")+` AS codes, '' AS field
		FROM (`+inner+`) o`+where, "date, id", limit, offset, count)
}

// listItems runs the item query sel (columns of itemRow) ordered by order,
// one page of it, and its total when count is set.
func listItems(app core.App, b *sqlBuilder, name, sel, order string, limit, offset int, count bool) ([]Item, int, error) {
	var rows []itemRow
	q := b.query(name, `SELECT * FROM (`+sel+`) ORDER BY `+order+` LIMIT `+b.arg(limit)+` OFFSET `+b.arg(offset))
	if err := q.all(app, &rows); err != nil {
		return nil, 0, err
	}
	items := make([]Item, 0, len(rows))
	for _, r := range rows {
		items = append(items, r.item())
	}
	total := 0
	if count {
		if err := b.query(name+" total", `SELECT count(*) FROM (`+sel+`)`).row(app, &total); err != nil {
			return nil, 0, err
		}
	}
	return items, total, nil
}

// lagQuery is the offline lag per day of the current window.
func lagQuery(f filters) (query, []string) {
	b := newBuilder()
	var days []string
	values := ""
	for d := f.period.Current.From; d.Before(f.period.Current.To); d = addDays(d, 1) {
		if values != "" {
			values += ", "
		}
		values += "(" + b.arg(dateOf(d)) + ", " + b.arg(logTime(d)) + ", " + b.arg(logTime(addDays(d, 1))) + ")"
		days = append(days, dateOf(d))
	}
	lag := `(` + logMillis + ` - ` + rollup.UUIDMillis("c.record_id") + `)`
	q := b.query("offline lag", `WITH days(day, lo, hi) AS (VALUES `+values+`)
		SELECT d.day AS day, count(*) AS records,
			coalesce(avg(max(`+lag+`, 0)), 0) / 1000.0 AS avg_seconds,
			coalesce(max(max(`+lag+`, 0)), 0) / 1000.0 AS max_seconds,
			sum(`+lag+` > 3600000) AS over1h, sum(`+lag+` > 86400000) AS over24h, sum(`+lag+` < 0) AS ahead
		FROM `+changesTable+` c JOIN days d ON c.at >= d.lo AND c.at < d.hi
		WHERE c.team IN (`+b.in(f.teams)+`) AND c.at >= `+b.arg(logTime(f.period.Current.From))+` AND c.at < `+b.arg(logTime(f.period.Current.To))+`
			AND c.op = 'create' AND c.collection IN (`+b.in(domain.FieldWork)+`)`+logFilters(b, f)+`
		GROUP BY d.day`)
	return q, days
}

func logFilters(b *sqlBuilder, f filters) string {
	w := ""
	if f.site != "" {
		w += " AND c.site = " + b.arg(f.site)
	}
	if f.worker != "" {
		w += " AND c.actor_user = " + b.arg(f.worker)
	}
	return w
}

// offlineLagOf reads the offline lag from the change log.
func offlineLagOf(app core.App, f filters) ([]LagDay, error) {
	q, days := lagQuery(f)
	return runLag(app, q, days)
}

// runLag runs the offline lag statement q and gives every day its entry.
func runLag(app core.App, q query, days []string) ([]LagDay, error) {
	var rows []struct {
		Day     string  `db:"day"`
		Records int     `db:"records"`
		Avg     float64 `db:"avg_seconds"`
		Max     float64 `db:"max_seconds"`
		Over1h  int     `db:"over1h"`
		Over24h int     `db:"over24h"`
		Ahead   int     `db:"ahead"`
	}
	if err := q.all(app, &rows); err != nil {
		return nil, err
	}
	byDay := map[string]LagDay{}
	for _, r := range rows {
		byDay[r.Day] = LagDay{Day: r.Day, Records: r.Records, AvgSeconds: r.Avg, MaxSeconds: r.Max, Over1h: r.Over1h, Over24h: r.Over24h, Ahead: r.Ahead}
	}
	out := make([]LagDay, 0, len(days))
	for _, d := range days {
		if l, ok := byDay[d]; ok {
			out = append(out, l)
		} else {
			out = append(out, LagDay{Day: d})
		}
	}
	return out, nil
}

// conflictScope is the SQL condition of the open journal entries of f's
// scope; the worker filter keeps the entries whose overwritten edit was
// theirs.
func (b *sqlBuilder) conflictScope(f filters) string {
	w := `j.team IN (` + b.in(f.teams) + `) AND j.resolved_at = ''`
	if f.worker != "" {
		w += ` AND j.overwritten_by = ` + b.arg(f.worker)
	}
	return w
}

func conflicts(app core.App, f filters) (Conflicts, error) {
	var c Conflicts
	b := newBuilder()
	var kinds []CategoryCount
	if err := b.query("open conflicts", `SELECT j.kind AS category, count(*) AS n FROM `+domain.SyncConflicts+` j
		WHERE `+b.conflictScope(f)+` GROUP BY j.kind`).all(app, &kinds); err != nil {
		return c, err
	}
	c.ByKind = inOrder(conflictKinds, kinds)
	for _, k := range kinds {
		c.Open += k.Count
	}
	items, _, err := conflictItems(app, f, "", MaxSummaryItems, 0, false)
	if err != nil {
		return c, err
	}
	c.Items = items
	return c, nil
}

// conflictKinds are the kinds of the conflict journal.
var conflictKinds = []string{"same_field", "delete_over_edit", "rejected_transition"}

func conflictItems(app core.App, f filters, kind string, limit, offset int, count bool) ([]Item, int, error) {
	b := newBuilder()
	where := b.conflictScope(f)
	if kind != "" {
		where += " AND j.kind = " + b.arg(kind)
	}
	return listItems(app, b, "conflict items", `SELECT j.kind, j.collection, j.id, j.created AS date,
		coalesce(j.overwritten_by, '') AS worker, '' AS site, j.team, '' AS status,
		CASE WHEN j.person != '' THEN `+personCodes("json_array(j.person)")+` ELSE '[]' END AS codes, j.field
		FROM `+domain.SyncConflicts+` j WHERE `+where, "date DESC, id", limit, offset, count)
}

// deviceScope is the SQL condition of the devices of the members of f's
// teams (the worker filter: of that worker).
func (b *sqlBuilder) deviceScope(f filters) string {
	w := `EXISTS (SELECT 1 FROM ` + domain.Users + ` u, json_each(u.teams) t WHERE u.id = d.user AND t.value IN (` + b.in(f.teams) + `))`
	if f.worker != "" {
		w += ` AND d.user = ` + b.arg(f.worker)
	}
	return w
}

func devices(app core.App, f filters, silentAfter time.Duration) (Devices, error) {
	out := Devices{SilentAfterHours: silentAfter.Hours(), Items: []Device{}}
	b := newBuilder()
	var rows []Device
	if err := b.query("devices", `SELECT d.id, d.name, d.platform, d.user, d.app_version, d.last_seen, d.last_push, d.last_pull,
		d.pending, coalesce(d.storage, '') AS storage, coalesce(d.clock_skew_ms, 0) AS clock_skew_ms, d.revoked, d.created
		FROM `+domain.Devices+` d WHERE `+b.deviceScope(f)+` ORDER BY d.last_seen, d.id`).all(app, &rows); err != nil {
		return out, err
	}
	cutoff := recordTime(f.now.Add(-silentAfter))
	for _, d := range rows {
		d.Silent = isSilent(d, cutoff)
		if d.Silent {
			out.Silent++
		}
		out.Items = append(out.Items, d)
	}
	return out, nil
}

// isSilent reports whether a device that is not revoked has not synced
// since cutoff (or, never seen, was registered before it).
func isSilent(d Device, cutoff string) bool {
	if d.Revoked {
		return false
	}
	last := d.LastSeen
	if last == "" {
		last = d.Registered
	}
	return last < cutoff
}

// feedSQL is the SQL of the feed's changes of one team in the current
// window, the newest first.
func (b *sqlBuilder) feedSQL(f filters, team string, limit int) string {
	return `SELECT c.seq, c.at, c.collection, c.op, c.record_id, c.team, c.site, c.actor_user FROM ` + changesTable + ` c
		WHERE c.team = ` + b.arg(team) + ` AND c.at >= ` + b.arg(logTime(f.period.Current.From)) + ` AND c.at < ` + b.arg(logTime(f.period.Current.To)) +
		logFilters(b, f) + ` ORDER BY c.at DESC, c.seq DESC LIMIT ` + b.arg(limit)
}

// feedPerson is the SQL of the person a change is about: the person
// itself, or the person of a contact, referral or referral event.
const feedPerson = `CASE f.collection
	WHEN '` + domain.Persons + `' THEN f.record_id
	WHEN '` + domain.SecretariatContacts + `' THEN (SELECT x.person FROM ` + domain.SecretariatContacts + ` x WHERE x.id = f.record_id)
	WHEN '` + domain.Referrals + `' THEN (SELECT x.person FROM ` + domain.Referrals + ` x WHERE x.id = f.record_id)
	WHEN '` + domain.ReferralEvents + `' THEN (SELECT r.person FROM ` + domain.ReferralEvents + ` x JOIN ` + domain.Referrals + ` r ON r.id = x.referral WHERE x.id = f.record_id)
	END`

// feed returns the latest changes of the current window, newest first,
// skipping offset of them.
func feed(app core.App, f filters, limit, offset int) ([]FeedItem, error) {
	b := newBuilder()
	sel := ""
	for _, team := range f.teams {
		if sel != "" {
			sel += " UNION ALL "
		}
		sel += "SELECT * FROM (" + b.feedSQL(f, team, limit+offset) + ")"
	}
	out := []FeedItem{}
	if sel == "" {
		return out, nil
	}
	q := b.query("feed", `SELECT f.seq, f.at, f.collection, f.op, f.record_id, f.team, f.site, f.actor_user,
		coalesce((SELECT p.code FROM `+domain.Persons+` p WHERE p.id = `+feedPerson+`), '') AS code
		FROM (`+sel+`) f ORDER BY f.at DESC, f.seq DESC LIMIT `+b.arg(limit)+` OFFSET `+b.arg(offset))
	if err := q.all(app, &out); err != nil {
		return nil, err
	}
	return nonNil(out), nil
}

func jsonList(values []string) string {
	b, err := json.Marshal(nonNil(values))
	if err != nil {
		return "[]" // a []string always encodes
	}
	return string(b)
}
