// Package rollup keeps the counts that the supervisor dashboard reads, as
// the records change: daily counts of visits, topics, contacts, requests,
// persons registered and referral outcomes by team, site and worker; the
// referral pipeline by service and status; when each person was last seen;
// and the offline lag of each day. Record hooks update them in the
// record's own transaction, whatever path writes it (sync push, REST, the
// admin UI, Go code); triggers update the offline lag with the change log.
// A summary then sums a few hundred rows instead of reading every record.
//
// The tables hold counts and the ids of teams, sites, services and
// workers. Two hold person ids, as indexes of the persons table: when a
// person was last seen, and which persons a visit met; both lose a
// person's rows when the person is erased or leaves the visit.
package rollup

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Rome wherever the binary runs

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/changelog"
	"strada/internal/domain"
)

// Tables of the rollups.
const (
	// Counts holds one row per kind, team, day, site, worker, category and
	// status: n records, and amount (the households met of visits).
	Counts = "dashboard_counts"
	// Lag holds the offline lag per team, day, site and worker.
	Lag = "dashboard_lag"
	// Seen holds, per person, their team, site, registering worker and
	// when they were last seen.
	Seen = "dashboard_seen"
	// VisitPersons holds the persons met by each visit, and when.
	VisitPersons = "dashboard_visit_persons"
	// Days maps the start of each day in Rome (UTC, "YYYY-MM-DD
	// HH:MM:SS") to its date, so that SQL can place a time in its day.
	Days = "dashboard_days"
)

// Kinds of rows of Counts.
const (
	// KindVisit: camp visits by visit day; amount is households met.
	KindVisit = "visit"
	// KindTopic: visits by day and topic (category).
	KindTopic = "visit_topic"
	// KindContact: contacts by day and setting (category).
	KindContact = "contact"
	// KindRequest: contacts by day and request kind (category).
	KindRequest = "contact_request"
	// KindPerson: persons by registration day, at their site, by who
	// registered them.
	KindPerson = "person"
	// KindReferral: referrals by service (category) and status, at the
	// person's site, by who recorded them; no day.
	KindReferral = "referral"
	// KindOutcome: moves of referrals to a final status (category) by day,
	// at the person's site, by who recorded the referral.
	KindOutcome = "outcome"
)

// FirstDay and LastDay bound the days the Days table knows: a time outside
// them is counted under no day.
var (
	FirstDay = time.Date(2000, 1, 1, 0, 0, 0, 0, rome)
	LastDay  = time.Date(2080, 1, 1, 0, 0, 0, 0, rome)
)

var rome = mustLoad("Europe/Rome")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic("rollup: load time zone " + name + ": " + err.Error())
	}
	return loc
}

// DayOf is the SQL of the Rome date of a time column (PocketBase's
// "YYYY-MM-DD HH:MM:SS.sssZ" or the change log's RFC 3339), empty when the
// time is empty or outside FirstDay..LastDay.
func DayOf(expr string) string {
	return `coalesce((SELECT dd.day FROM ` + Days + ` dd WHERE dd.lo <= replace(` + expr + `, 'T', ' ') ORDER BY dd.lo DESC LIMIT 1), '')`
}

// UUIDMillis is the SQL of the creation time, in milliseconds since the
// epoch, that a UUIDv7 id (column col) carries in its first 48 bits.
func UUIDMillis(col string) string {
	var terms []string
	for i := 0; i < 12; i++ {
		pos := i + 1
		if i >= 8 {
			pos = i + 2 // skip the dash
		}
		terms = append(terms, fmt.Sprintf("(instr('0123456789abcdef', substr(%s, %d, 1)) - 1) * %d", col, pos, int64(1)<<(4*(11-i))))
	}
	return "(" + strings.Join(terms, " + ") + ")"
}

// LogMillis is the SQL of a change log time (column col) in milliseconds.
func LogMillis(col string) string {
	return `CAST(round((julianday(` + col + `) - 2440587.5) * 86400000.0) AS INTEGER)`
}

var (
	finalStatuses = `'` + domain.StatusCompleted + `', '` + domain.StatusDeclined + `', '` + domain.StatusCancelled + `'`
	fieldWorkList = `'` + strings.Join(domain.FieldWork, `', '`) + `'`
)

// personSite is the SQL of the site of the person of referral r (empty when
// the person is gone).
const personSite = `coalesce((SELECT ps.site FROM ` + domain.Persons + ` ps WHERE ps.id = r.person), '')`

// Sources of Counts rows. Each statement selects the contributions of the
// records its condition keeps (alias v, c, p, r or ev), in the columns of
// Counts; "true" keeps all of them.
var sources = map[string]string{
	domain.CampVisits: `SELECT '` + KindVisit + `' AS kind, v.team AS team, ` + DayOf("v.visited_at") + ` AS day, v.site AS site,
			coalesce(v.created_by, '') AS worker, '' AS category, '' AS status, 1 AS n, coalesce(v.households_met, 0) AS amount
		FROM ` + domain.CampVisits + ` v WHERE %[1]s
		UNION ALL
		SELECT '` + KindTopic + `', v.team, ` + DayOf("v.visited_at") + `, v.site, coalesce(v.created_by, ''), t.value, '', 1, 0
		FROM ` + domain.CampVisits + ` v, json_each(v.topics) t WHERE %[1]s`,
	domain.SecretariatContacts: `SELECT '` + KindContact + `' AS kind, c.team AS team, ` + DayOf("c.contacted_at") + ` AS day, c.site AS site,
			coalesce(c.created_by, '') AS worker, c.setting AS category, '' AS status, 1 AS n, 0 AS amount
		FROM ` + domain.SecretariatContacts + ` c WHERE %[1]s
		UNION ALL
		SELECT '` + KindRequest + `', c.team, ` + DayOf("c.contacted_at") + `, c.site, coalesce(c.created_by, ''), q.value, '', 1, 0
		FROM ` + domain.SecretariatContacts + ` c, json_each(c.requests) q WHERE %[1]s`,
	domain.Persons: `SELECT '` + KindPerson + `' AS kind, p.team AS team, ` + DayOf("p.created") + ` AS day, coalesce(p.site, '') AS site,
			coalesce(p.created_by, '') AS worker, '' AS category, '' AS status, 1 AS n, 0 AS amount
		FROM ` + domain.Persons + ` p WHERE %[1]s`,
	domain.Referrals: `SELECT '` + KindReferral + `' AS kind, r.team AS team, '' AS day, ` + personSite + ` AS site,
			coalesce(r.created_by, '') AS worker, r.service AS category, r.status AS status, 1 AS n, 0 AS amount
		FROM ` + domain.Referrals + ` r WHERE %[1]s`,
	domain.ReferralEvents: `SELECT '` + KindOutcome + `' AS kind, ev.team AS team, ` + DayOf("ev.created") + ` AS day, ` + personSite + ` AS site,
			coalesce(r.created_by, '') AS worker, ev.to_status AS category, '' AS status, 1 AS n, 0 AS amount
		FROM ` + domain.ReferralEvents + ` ev JOIN ` + domain.Referrals + ` r ON r.id = ev.referral
		WHERE ev.to_status IN (` + finalStatuses + `) AND %[1]s`,
}

// aliases are the table aliases of sources, for their id conditions.
var aliases = map[string]string{
	domain.CampVisits: "v", domain.SecretariatContacts: "c", domain.Persons: "p",
	domain.Referrals: "r", domain.ReferralEvents: "ev",
}

// addCounts adds sign times the contributions of the records of collection
// that cond keeps to Counts. Rows that fall to zero stay, and readers skip
// them: a record moving back and forth leaves no churn of rows.
func addCounts(tx core.App, collection, cond string, params dbx.Params, sign int) error {
	sql := `INSERT INTO ` + Counts + ` (kind, team, day, site, worker, category, status, n, amount)
		SELECT kind, team, day, site, worker, category, status, ` + fmt.Sprint(sign) + ` * sum(n), ` + fmt.Sprint(sign) + ` * sum(amount)
		FROM (` + fmt.Sprintf(sources[collection], cond) + `) WHERE true
		GROUP BY kind, team, day, site, worker, category, status
		ON CONFLICT (kind, team, day, site, worker, category, status) DO UPDATE SET n = n + excluded.n, amount = amount + excluded.amount`
	if _, err := tx.NonconcurrentDB().NewQuery(sql).Bind(params).Execute(); err != nil {
		return fmt.Errorf("dashboard counts of %s: %w", collection, err)
	}
	return nil
}

// lagOf is the SQL of one change log row's offline lag in milliseconds
// (alias c).
var lagOf = `(` + LogMillis("c.at") + ` - ` + UUIDMillis("c.record_id") + `)`

// lagRows is the SQL of the Lag rows of the change log rows cond keeps.
func lagRows(cond string) string {
	return `SELECT team, day, site, worker, count(*), sum(max(l, 0)), max(max(l, 0)), sum(l > 3600000), sum(l > 86400000), sum(l < 0)
		FROM (SELECT c.team AS team, ` + DayOf("c.at") + ` AS day, c.site AS site, c.actor_user AS worker, ` + lagOf + ` AS l
			FROM ` + changelog.Table + ` c WHERE c.op = '` + string(changelog.OpCreate) + `' AND c.collection IN (` + fieldWorkList + `) AND ` + cond + `)
		GROUP BY team, day, site, worker`
}

const lagColumns = `(team, day, site, worker, records, sum_ms, max_ms, over1h, over24h, ahead)`

// schema creates the tables, indexes and triggers of the rollups.
func schema() []string {
	lagNew := strings.NewReplacer("c.at", "NEW.at", "c.record_id", "NEW.record_id").Replace(lagOf)
	dayStart := func(cmp, order string) string {
		return `(SELECT replace(dd.lo, ' ', 'T') FROM ` + Days + ` dd WHERE dd.lo ` + cmp + ` replace(OLD.at, 'T', ' ') ORDER BY dd.lo ` + order + ` LIMIT 1)`
	}
	return []string{
		`CREATE TABLE ` + Days + ` (lo TEXT PRIMARY KEY NOT NULL, day TEXT NOT NULL) WITHOUT ROWID`,
		`CREATE TABLE ` + Counts + ` (kind TEXT NOT NULL, team TEXT NOT NULL, day TEXT NOT NULL, site TEXT NOT NULL,
			worker TEXT NOT NULL, category TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL, amount INTEGER NOT NULL,
			PRIMARY KEY (kind, team, day, site, worker, category, status)) WITHOUT ROWID`,
		`CREATE TABLE ` + Lag + ` (team TEXT NOT NULL, day TEXT NOT NULL, site TEXT NOT NULL, worker TEXT NOT NULL,
			records INTEGER NOT NULL, sum_ms INTEGER NOT NULL, max_ms INTEGER NOT NULL,
			over1h INTEGER NOT NULL, over24h INTEGER NOT NULL, ahead INTEGER NOT NULL,
			PRIMARY KEY (team, day, site, worker)) WITHOUT ROWID`,
		`CREATE TABLE ` + Seen + ` (person TEXT PRIMARY KEY NOT NULL, team TEXT NOT NULL, site TEXT NOT NULL,
			worker TEXT NOT NULL, seen TEXT NOT NULL) WITHOUT ROWID`,
		`CREATE INDEX idx_` + Seen + `_team_seen ON ` + Seen + ` (team, seen, site, worker)`,
		`CREATE TABLE ` + VisitPersons + ` (person TEXT NOT NULL, visit TEXT NOT NULL, at TEXT NOT NULL,
			PRIMARY KEY (person, visit)) WITHOUT ROWID`,
		`CREATE INDEX idx_` + VisitPersons + `_visit ON ` + VisitPersons + ` (visit)`,
		// The offline lag follows the change log itself: a create row adds
		// to its day, a create row removed (an erasure scrubs the history of
		// what it erases) recounts its day.
		`CREATE TRIGGER ` + Lag + `_insert AFTER INSERT ON ` + changelog.Table + `
		WHEN NEW.op = '` + string(changelog.OpCreate) + `' AND NEW.collection IN (` + fieldWorkList + `)
		BEGIN
			INSERT INTO ` + Lag + ` ` + lagColumns + `
			SELECT NEW.team, ` + DayOf("NEW.at") + `, NEW.site, NEW.actor_user, 1, max(l, 0), max(l, 0), l > 3600000, l > 86400000, l < 0
			FROM (SELECT ` + lagNew + ` AS l) WHERE true
			ON CONFLICT (team, day, site, worker) DO UPDATE SET records = records + 1, sum_ms = sum_ms + excluded.sum_ms,
				max_ms = max(max_ms, excluded.max_ms), over1h = over1h + excluded.over1h,
				over24h = over24h + excluded.over24h, ahead = ahead + excluded.ahead;
		END`,
		`CREATE TRIGGER ` + Lag + `_delete AFTER DELETE ON ` + changelog.Table + `
		WHEN OLD.op = '` + string(changelog.OpCreate) + `' AND OLD.collection IN (` + fieldWorkList + `)
		BEGIN
			DELETE FROM ` + Lag + ` WHERE team = OLD.team AND day = ` + DayOf("OLD.at") + ` AND site = OLD.site AND worker = OLD.actor_user;
			INSERT INTO ` + Lag + ` ` + lagColumns + ` ` + lagRows(`c.team = OLD.team AND c.site = OLD.site AND c.actor_user = OLD.actor_user
				AND c.at >= `+dayStart("<=", "DESC")+` AND c.at < `+dayStart(">", "ASC")) + `;
		END`,
	}
}

// Create makes the rollup tables and fills them from the records: the
// migration that introduces them calls it.
func Create(app core.App) error {
	return app.RunInTransaction(func(tx core.App) error {
		for _, sql := range schema() {
			if _, err := tx.NonconcurrentDB().NewQuery(sql).Execute(); err != nil {
				return fmt.Errorf("create dashboard rollups: %w", err)
			}
		}
		if err := fillDays(tx); err != nil {
			return err
		}
		return Rebuild(tx)
	})
}

// Drop removes the rollup tables and triggers.
func Drop(app core.App) error {
	for _, sql := range []string{
		`DROP TRIGGER IF EXISTS ` + Lag + `_insert`, `DROP TRIGGER IF EXISTS ` + Lag + `_delete`,
		`DROP TABLE IF EXISTS ` + VisitPersons, `DROP TABLE IF EXISTS ` + Seen, `DROP TABLE IF EXISTS ` + Lag,
		`DROP TABLE IF EXISTS ` + Counts, `DROP TABLE IF EXISTS ` + Days,
	} {
		if _, err := app.NonconcurrentDB().NewQuery(sql).Execute(); err != nil {
			return fmt.Errorf("drop dashboard rollups: %w", err)
		}
	}
	return nil
}

// fillDays writes the start of every day in Rome from FirstDay to LastDay.
func fillDays(tx core.App) error {
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := tx.NonconcurrentDB().NewQuery(`INSERT INTO ` + Days + ` (lo, day) VALUES ` + strings.Join(batch, ", ")).Execute()
		batch = batch[:0]
		if err != nil {
			return fmt.Errorf("fill dashboard days: %w", err)
		}
		return nil
	}
	for d := FirstDay; d.Before(LastDay); d = time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, rome) {
		batch = append(batch, `('`+d.UTC().Format(time.DateTime)+`', '`+d.Format(time.DateOnly)+`')`)
		if len(batch) == 500 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// Rebuild recounts every rollup from the records and the change log, in
// one transaction: the backfill of the migration, and the repair after
// records were written with plain SQL, bypassing the hooks. Running it
// again changes nothing.
func Rebuild(app core.App) error {
	return app.RunInTransaction(func(tx core.App) error {
		db := tx.NonconcurrentDB()
		for _, t := range []string{Counts, Lag, Seen, VisitPersons} {
			if _, err := db.NewQuery(`DELETE FROM ` + t).Execute(); err != nil {
				return fmt.Errorf("rebuild dashboard rollups: clear %s: %w", t, err)
			}
		}
		for _, c := range []string{domain.CampVisits, domain.SecretariatContacts, domain.Persons, domain.Referrals, domain.ReferralEvents} {
			if err := addCounts(tx, c, "true", nil, 1); err != nil {
				return err
			}
		}
		for _, sql := range []string{
			`INSERT INTO ` + Lag + ` ` + lagColumns + ` ` + lagRows("true"),
			`INSERT INTO ` + VisitPersons + ` (person, visit, at) SELECT m.value, v.id, v.visited_at
				FROM ` + domain.CampVisits + ` v, json_each(v.persons_met) m WHERE true ON CONFLICT DO NOTHING`,
			`INSERT INTO ` + Seen + ` (person, team, site, worker, seen) ` + seenRows("true"),
		} {
			if _, err := db.NewQuery(sql).Execute(); err != nil {
				return fmt.Errorf("rebuild dashboard rollups: %w", err)
			}
		}
		return nil
	})
}

// seenRows is the SQL of the Seen rows of the persons cond keeps (alias
// p): the latest of their registration, a visit that met them, a contact
// and a referral made for them.
func seenRows(cond string) string {
	return `SELECT p.id, p.team, coalesce(p.site, ''), coalesce(p.created_by, ''), max(p.created,
			coalesce((SELECT max(x.at) FROM ` + VisitPersons + ` x WHERE x.person = p.id), ''),
			coalesce((SELECT max(x.contacted_at) FROM ` + domain.SecretariatContacts + ` x WHERE x.person = p.id), ''),
			coalesce((SELECT max(x.created) FROM ` + domain.Referrals + ` x WHERE x.person = p.id), ''))
		FROM ` + domain.Persons + ` p WHERE ` + cond
}

// Rows returns, by table, every row of the kept counts that counts
// something, as sorted "column=value" lines: what Rebuild reproduces from
// the records, to compare the kept counts with a recount.
func Rows(app core.App) (map[string][]string, error) {
	out := map[string][]string{}
	for table, where := range map[string]string{
		Counts: "n != 0 OR amount != 0", Lag: "records != 0", Seen: "true", VisitPersons: "true",
	} {
		var rows []dbx.NullStringMap
		if err := app.DB().NewQuery("SELECT * FROM " + table + " WHERE " + where).All(&rows); err != nil {
			return nil, fmt.Errorf("read %s: %w", table, err)
		}
		for _, r := range rows {
			keys := slices.Sorted(maps.Keys(r))
			line := make([]string, 0, len(keys))
			for _, k := range keys {
				line = append(line, k+"="+r[k].String)
			}
			out[table] = append(out[table], strings.Join(line, " "))
		}
		slices.Sort(out[table])
	}
	return out, nil
}
