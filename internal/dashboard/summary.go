package dashboard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"strada/internal/changelog"
	"strada/internal/domain"
)

// Summary is the answer of GET /api/dashboard/summary.
type Summary struct {
	GeneratedAt time.Time `json:"generatedAt"`
	// Seq is the change log position read before the summary: a hint of
	// the stream with a greater seq means the summary is out of date.
	Seq      int64      `json:"seq"`
	Filters  FilterEcho `json:"filters"`
	Period   PeriodInfo `json:"period"`
	Teams    []Named    `json:"teams"`
	Sites    []SiteRef  `json:"sites"`
	Workers  []Named    `json:"workers"`
	Activity struct {
		Current  Activity `json:"current"`
		Previous Activity `json:"previous"`
	} `json:"activity"`
	Caseload   Caseload   `json:"caseload"`
	Referrals  Referrals  `json:"referrals"`
	Overdue    Overdue    `json:"overdue"`
	OfflineLag []LagDay   `json:"offlineLag"`
	Conflicts  Conflicts  `json:"conflicts"`
	Devices    Devices    `json:"devices"`
	Feed       []FeedItem `json:"feed"`
}

// FilterEcho repeats the filters the answer applied.
type FilterEcho struct {
	Teams  []string `json:"teams"`
	Team   string   `json:"team,omitempty"`
	Site   string   `json:"site,omitempty"`
	Worker string   `json:"worker,omitempty"`
}

// Named is a team or a worker.
type Named struct {
	ID   string `json:"id" db:"id"`
	Name string `json:"name" db:"name"`
}

// SiteRef is a site of the supervisor's teams.
type SiteRef struct {
	ID   string `json:"id" db:"id"`
	Name string `json:"name" db:"name"`
	Kind string `json:"kind" db:"kind"`
	Team string `json:"team" db:"team"`
}

// Activity is the field work of one window.
type Activity struct {
	CampVisits          int              `json:"campVisits"`
	HouseholdsMet       int              `json:"householdsMet"`
	VisitsByCamp        []CampCount      `json:"visitsByCamp"`
	Topics              []CategoryCount  `json:"topics"`
	Contacts            int              `json:"contacts"`
	ContactsByInstitute []InstituteCount `json:"contactsByInstitute"`
	Requests            []CategoryCount  `json:"requests"`
}

// CampCount is the visits of one camp.
type CampCount struct {
	Site          string `json:"site" db:"site"`
	Visits        int    `json:"visits" db:"visits"`
	HouseholdsMet int    `json:"householdsMet" db:"households"`
}

// InstituteCount is the contacts at one institute or office.
type InstituteCount struct {
	Site  string `json:"site" db:"site"`
	Intra int    `json:"intra" db:"intra"`
	Extra int    `json:"extra" db:"extra"`
	Total int    `json:"total" db:"total"`
}

// CategoryCount counts one value of an enumeration.
type CategoryCount struct {
	Category string `json:"category" db:"category"`
	Count    int    `json:"count" db:"n"`
}

// Caseload is the persons followed, as of now.
type Caseload struct {
	Followed    int `json:"followed"`
	NewThisWeek int `json:"newThisWeek"`
	NotSeen30   int `json:"notSeen30"`
	NotSeen60   int `json:"notSeen60"`
	NotSeen90   int `json:"notSeen90"`
}

// Referrals is the referral pipeline.
type Referrals struct {
	Total     int             `json:"total"`
	ByStatus  []CategoryCount `json:"byStatus"`
	ByService []ServiceCount  `json:"byService"`
	StuckSent int             `json:"stuckSent"`
	StuckDays int             `json:"stuckDays"`
	Outcomes  struct {
		Current  []CategoryCount `json:"current"`
		Previous []CategoryCount `json:"previous"`
	} `json:"outcomes"`
}

// ServiceCount is the referrals to one service.
type ServiceCount struct {
	Service  string         `json:"service"`
	Name     string         `json:"name"`
	Category string         `json:"category"`
	Total    int            `json:"total"`
	Open     int            `json:"open"`
	ByStatus map[string]int `json:"byStatus"`
}

// Overdue is the follow-ups and referrals past their date.
type Overdue struct {
	Total     int             `json:"total"`
	Visits    int             `json:"visits"`
	Contacts  int             `json:"contacts"`
	Referrals int             `json:"referrals"`
	ByWorker  []WorkerOverdue `json:"byWorker"`
	// Items are the most overdue, at most MaxSummaryItems; the drill-down
	// pages through all of them.
	Items []Item `json:"items"`
}

// WorkerOverdue is the overdue items of one worker ("" for records
// without an author).
type WorkerOverdue struct {
	Worker    string `json:"worker"`
	Visits    int    `json:"visits"`
	Contacts  int    `json:"contacts"`
	Referrals int    `json:"referrals"`
	Total     int    `json:"total"`
}

// LagDay is the offline lag of the records that reached the server on one
// day: the time between their creation on the device (the UUIDv7 id) and
// their commit.
type LagDay struct {
	Day        string  `json:"day"`
	Records    int     `json:"records"`
	AvgSeconds float64 `json:"avgSeconds"`
	MaxSeconds float64 `json:"maxSeconds"`
	Over1h     int     `json:"over1h"`
	Over24h    int     `json:"over24h"`
	// Ahead counts ids dated after their commit: a device clock ahead.
	Ahead int `json:"ahead"`
}

// Conflicts is the conflict journal's open entries.
type Conflicts struct {
	Open   int             `json:"open"`
	ByKind []CategoryCount `json:"byKind"`
	Items  []Item          `json:"items"`
}

// Devices is the health of the devices of the teams' members.
type Devices struct {
	SilentAfterHours float64  `json:"silentAfterHours"`
	Silent           int      `json:"silent"`
	Items            []Device `json:"items"`
}

// Device is one device's health.
type Device struct {
	ID          string `json:"id" db:"id"`
	Name        string `json:"name" db:"name"`
	Platform    string `json:"platform" db:"platform"`
	Worker      string `json:"worker" db:"user"`
	AppVersion  string `json:"appVersion" db:"app_version"`
	LastSeen    string `json:"lastSeen" db:"last_seen"`
	LastPush    string `json:"lastPush" db:"last_push"`
	LastPull    string `json:"lastPull" db:"last_pull"`
	Pending     int    `json:"pending" db:"pending"`
	Storage     string `json:"storage" db:"storage"`
	ClockSkewMs int64  `json:"clockSkewMs" db:"clock_skew_ms"`
	Revoked     bool   `json:"revoked" db:"revoked"`
	Registered  string `json:"registered" db:"created"`
	Silent      bool   `json:"silent"`
}

// FeedItem is one change of the activity feed: who did what, where, when.
type FeedItem struct {
	Seq        int64  `json:"seq" db:"seq"`
	At         string `json:"at" db:"at"`
	Collection string `json:"collection" db:"collection"`
	Op         string `json:"op" db:"op"`
	RecordID   string `json:"recordId" db:"record_id"`
	Team       string `json:"team" db:"team"`
	Site       string `json:"site" db:"site"`
	Worker     string `json:"worker" db:"actor_user"`
	PersonCode string `json:"personCode" db:"code"`
}

// Item is a record behind a number: its id, the date that placed it in
// the block and the codes (never names) of the persons it is about.
type Item struct {
	Collection  string   `json:"collection"`
	ID          string   `json:"id"`
	Date        string   `json:"date"`
	Kind        string   `json:"kind,omitempty"`
	Status      string   `json:"status,omitempty"`
	Site        string   `json:"site,omitempty"`
	Worker      string   `json:"worker,omitempty"`
	Team        string   `json:"team,omitempty"`
	PersonCodes []string `json:"personCodes"`
	Field       string   `json:"field,omitempty"`
	// LagSeconds is the offline lag of a record of the offline_lag block.
	LagSeconds *float64 `json:"lagSeconds,omitempty"`
}

// Bounds of the lists in a summary.
const (
	MaxSummaryItems = 50
	FeedSize        = 50
)

// HandleSummary answers GET /api/dashboard/summary.
func (d *Dashboard) HandleSummary(e *core.RequestEvent) error {
	q := e.Request.URL.Query()
	f, er := d.readFilters(e.App, e.Auth, q)
	if er != nil {
		return answer(e, er)
	}
	silent, er := d.silentAfter(q.Get("silentHours"))
	if er != nil {
		return answer(e, er)
	}
	s, err := d.summary(e.App, f, silent)
	if err != nil {
		d.logger.Error("dashboard summary failed", "user", e.Auth.Id, "error", err)
		return answer(e, internal(err))
	}
	e.Response.Header().Set("Cache-Control", "no-store")
	return e.JSON(http.StatusOK, s)
}

// silentAfter reads silentHours (1 to 720), or the server's default.
func (d *Dashboard) silentAfter(s string) (time.Duration, *Error) {
	if s == "" {
		return d.SilentAfter, nil
	}
	h, err := strconv.Atoi(s)
	if err != nil || h < 1 || h > 720 {
		return 0, invalid("silentHours", "silentHours is a whole number of hours from 1 to 720.")
	}
	return time.Duration(h) * time.Hour, nil
}

// summary computes every block for f.
func (d *Dashboard) summary(app core.App, f filters, silentAfter time.Duration) (*Summary, error) {
	s := &Summary{GeneratedAt: f.now.UTC(), Period: f.period.info()}
	s.Filters = FilterEcho{Teams: nonNil(f.teams), Team: f.team, Site: f.site, Worker: f.worker}
	seq, err := changelog.LastSeq(app)
	if err != nil {
		return nil, err
	}
	s.Seq = seq
	activity, caseload, referrals, offlineLag := countedActivity, countedCaseload, countedReferrals, countedOfflineLag
	if d.Direct {
		activity, caseload, referrals, offlineLag = activityOf, caseloadOf, referralsOf, offlineLagOf
	}
	steps := []func() error{
		func() (err error) { s.Teams, s.Sites, s.Workers, err = directory(app, f); return },
		func() (err error) { s.Activity.Current, err = activity(app, f, f.period.Current); return },
		func() (err error) { s.Activity.Previous, err = activity(app, f, f.period.Previous); return },
		func() (err error) { s.Caseload, err = caseload(app, f); return },
		func() (err error) { s.Referrals, err = referrals(app, f); return },
		func() (err error) { s.Overdue, err = overdue(app, f); return },
		func() (err error) { s.OfflineLag, err = offlineLag(app, f); return },
		func() (err error) { s.Conflicts, err = conflicts(app, f); return },
		func() (err error) { s.Devices, err = devices(app, f, silentAfter); return },
		func() (err error) { s.Feed, err = feed(app, f, FeedSize, 0); return },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// directory lists the teams, their sites and their members, so that the
// ids of the other blocks can be shown by name.
func directory(app core.App, f filters) ([]Named, []SiteRef, []Named, error) {
	var teams []Named
	b := newBuilder()
	if err := b.query("teams", `SELECT id, name FROM `+domain.Teams+` WHERE id IN (`+b.in(f.supervised)+`) ORDER BY name`).all(app, &teams); err != nil {
		return nil, nil, nil, err
	}
	var sites []SiteRef
	b = newBuilder()
	if err := b.query("sites", `SELECT id, name, kind, team FROM `+domain.Sites+` WHERE team IN (`+b.in(f.teams)+`) ORDER BY name`).all(app, &sites); err != nil {
		return nil, nil, nil, err
	}
	var workers []Named
	b = newBuilder()
	if err := b.query("workers", `SELECT u.id, u.name FROM `+domain.Users+` u WHERE EXISTS (SELECT 1 FROM json_each(u.teams) t WHERE t.value IN (`+b.in(f.teams)+`)) ORDER BY u.name`).all(app, &workers); err != nil {
		return nil, nil, nil, err
	}
	return nonNil(teams), nonNil(sites), nonNil(workers), nil
}

// activityQueries are the statements of one window's activity.
func activityQueries(f filters, w window) (visits, topics, contacts, requests query) {
	lo, hi := recordTime(w.From), recordTime(w.To)
	b := newBuilder()
	visits = b.query("visits by camp", `SELECT v.site AS site, count(*) AS visits, coalesce(sum(v.households_met), 0) AS households
		FROM `+domain.CampVisits+` v WHERE `+b.workScope(f, "v", true)+` AND v.visited_at >= `+b.arg(lo)+` AND v.visited_at < `+b.arg(hi)+`
		GROUP BY v.site`)
	b = newBuilder()
	topics = b.query("visit topics", `SELECT t.value AS category, count(*) AS n
		FROM `+domain.CampVisits+` v, json_each(v.topics) t WHERE `+b.workScope(f, "v", true)+` AND v.visited_at >= `+b.arg(lo)+` AND v.visited_at < `+b.arg(hi)+`
		GROUP BY t.value`)
	b = newBuilder()
	contacts = b.query("contacts by institute", `SELECT c.site AS site, sum(c.setting = 'intra') AS intra, sum(c.setting = 'extra') AS extra, count(*) AS total
		FROM `+domain.SecretariatContacts+` c WHERE `+b.workScope(f, "c", true)+` AND c.contacted_at >= `+b.arg(lo)+` AND c.contacted_at < `+b.arg(hi)+`
		GROUP BY c.site`)
	b = newBuilder()
	requests = b.query("contact requests", `SELECT r.value AS category, count(*) AS n
		FROM `+domain.SecretariatContacts+` c, json_each(c.requests) r WHERE `+b.workScope(f, "c", true)+` AND c.contacted_at >= `+b.arg(lo)+` AND c.contacted_at < `+b.arg(hi)+`
		GROUP BY r.value`)
	return
}

// activityOf reads one window's activity from the records.
func activityOf(app core.App, f filters, w window) (Activity, error) {
	qv, qt, qc, qr := activityQueries(f, w)
	return runActivity(app, qv, qt, qc, qr)
}

// runActivity runs the statements of one window's activity: visits by
// camp, topics, contacts by institute, requests.
func runActivity(app core.App, qv, qt, qc, qr query) (Activity, error) {
	var a Activity
	if err := qv.all(app, &a.VisitsByCamp); err != nil {
		return a, err
	}
	var topics, requests []CategoryCount
	if err := qt.all(app, &topics); err != nil {
		return a, err
	}
	if err := qc.all(app, &a.ContactsByInstitute); err != nil {
		return a, err
	}
	if err := qr.all(app, &requests); err != nil {
		return a, err
	}
	for _, v := range a.VisitsByCamp {
		a.CampVisits += v.Visits
		a.HouseholdsMet += v.HouseholdsMet
	}
	for _, c := range a.ContactsByInstitute {
		a.Contacts += c.Total
	}
	a.VisitsByCamp = nonNil(a.VisitsByCamp)
	a.ContactsByInstitute = nonNil(a.ContactsByInstitute)
	a.Topics = inOrder(domain.VisitTopics, topics)
	a.Requests = inOrder(domain.ContactRequests, requests)
	return a, nil
}

// inOrder returns a count for every value of an enumeration, in its order,
// followed by any value found outside it.
func inOrder(values []string, counts []CategoryCount) []CategoryCount {
	out := make([]CategoryCount, 0, len(values))
	found := map[string]int{}
	for _, c := range counts {
		found[c.Category] += c.Count
	}
	for _, v := range values {
		out = append(out, CategoryCount{Category: v, Count: found[v]})
		delete(found, v)
	}
	var rest []string
	for v := range found {
		rest = append(rest, v)
	}
	slices.Sort(rest)
	for _, v := range rest {
		out = append(out, CategoryCount{Category: v, Count: found[v]})
	}
	return out
}

// Not-seen thresholds of the caseload, in days.
var notSeenDays = []int{30, 60, 90}

// seenSince is the SQL of the persons (column person) met since a time:
// in a camp visit (among persons_met), a contact or a referral of the
// queried teams, or registered then.
func (b *sqlBuilder) seenSince(f filters, since time.Time) string {
	at := b.arg(recordTime(since))
	teams := b.in(f.teams)
	return `SELECT m.value AS person, v.visited_at AS at FROM ` + domain.CampVisits + ` v, json_each(v.persons_met) m
			WHERE v.team IN (` + teams + `) AND v.visited_at >= ` + at + `
		UNION ALL SELECT c.person, c.contacted_at FROM ` + domain.SecretariatContacts + ` c
			WHERE c.team IN (` + teams + `) AND c.contacted_at >= ` + at + `
		UNION ALL SELECT r.person, r.created FROM ` + domain.Referrals + ` r
			WHERE r.team IN (` + teams + `) AND r.created >= ` + at + `
		UNION ALL SELECT p.id, p.created FROM ` + domain.Persons + ` p
			WHERE p.team IN (` + teams + `) AND p.created >= ` + at
}

// personScope keeps the persons of the queried teams, site (the person's)
// and worker (who registered them).
func (b *sqlBuilder) personScope(f filters, alias string) string {
	return b.workScope(f, alias, true)
}

func caseloadQueries(f filters) (total, seen query) {
	b := newBuilder()
	week := recordTime(weekStart(f.now))
	total = b.query("persons followed", `SELECT count(*), coalesce(sum(p.created >= `+b.arg(week)+`), 0)
		FROM `+domain.Persons+` p WHERE `+b.personScope(f, "p"))
	b = newBuilder()
	cols := ""
	for _, n := range notSeenDays {
		cols += fmt.Sprintf(", coalesce(sum(l.at >= %s), 0)", b.arg(recordTime(f.now.AddDate(0, 0, -n))))
	}
	seen = b.query("persons seen", `WITH recent AS (`+b.seenSince(f, f.now.AddDate(0, 0, -slices.Max(notSeenDays)))+`),
		last AS (SELECT person, max(at) AS at FROM recent GROUP BY person)
		SELECT count(*)`+cols+` FROM last l JOIN `+domain.Persons+` p ON p.id = l.person WHERE `+b.personScope(f, "p"))
	return
}

// caseloadOf reads the caseload from the records.
func caseloadOf(app core.App, f filters) (Caseload, error) {
	qt, qs := caseloadQueries(f)
	return runCaseload(app, qt, qs)
}

// runCaseload runs the statements of the persons followed (total, new this
// week) and of those seen within 90, 30 and 60 days.
func runCaseload(app core.App, qt, qs query) (Caseload, error) {
	var c Caseload
	if err := qt.row(app, &c.Followed, &c.NewThisWeek); err != nil {
		return c, err
	}
	var seen90 int
	seen := make([]int, len(notSeenDays))
	if err := qs.row(app, &seen90, &seen[0], &seen[1], &seen[2]); err != nil {
		return c, err
	}
	c.NotSeen30 = c.Followed - seen[0]
	c.NotSeen60 = c.Followed - seen[1]
	c.NotSeen90 = c.Followed - seen[2]
	return c, nil
}

func referralQueries(f filters) (byService, stuck query, outcomes [2]query) {
	b := newBuilder()
	byService = b.query("referrals by service and status", `SELECT r.service AS service, r.status AS status, count(*) AS n
		FROM `+domain.Referrals+` r WHERE `+b.workScope(f, "r", false)+b.personSite(f, "r.person")+`
		GROUP BY r.service, r.status`)
	b = newBuilder()
	stuck = b.query("referrals stuck in sent", `SELECT count(*) FROM `+domain.Referrals+` r
		WHERE `+b.workScope(f, "r", false)+` AND r.status = 'sent'`+b.personSite(f, "r.person")+`
		AND `+sentAt+` < `+b.arg(recordTime(f.now.Add(-StuckAfter))))
	for i, w := range []window{f.period.Current, f.period.Previous} {
		b = newBuilder()
		outcomes[i] = b.query("referral outcomes", `SELECT ev.to_status AS category, count(*) AS n
			FROM `+domain.ReferralEvents+` ev JOIN `+domain.Referrals+` r ON r.id = ev.referral
			WHERE ev.team IN (`+b.in(f.teams)+`) AND ev.to_status IN (`+b.in(finalStatuses)+`)
			AND ev.created >= `+b.arg(recordTime(w.From))+` AND ev.created < `+b.arg(recordTime(w.To))+
			workerOf(b, f, "r")+b.personSite(f, "r.person")+`
			GROUP BY ev.to_status`)
	}
	return
}

func workerOf(b *sqlBuilder, f filters, alias string) string {
	if f.worker == "" {
		return ""
	}
	return " AND " + alias + ".created_by = " + b.arg(f.worker)
}

// referralsOf reads the pipeline from the records.
func referralsOf(app core.App, f filters) (Referrals, error) {
	qs, qstuck, qo := referralQueries(f)
	return runReferrals(app, qs, qstuck, qo)
}

// runReferrals runs the statements of the pipeline by service and status,
// the stuck referrals and the outcomes of both windows.
func runReferrals(app core.App, qs, qstuck query, qo [2]query) (Referrals, error) {
	var r Referrals
	r.StuckDays = int(StuckAfter.Hours() / 24)
	var rows []struct {
		Service string `db:"service"`
		Status  string `db:"status"`
		N       int    `db:"n"`
	}
	if err := qs.all(app, &rows); err != nil {
		return r, err
	}
	services := map[string]*ServiceCount{}
	var order []string
	statuses := map[string]int{}
	for _, row := range rows {
		sc := services[row.Service]
		if sc == nil {
			sc = &ServiceCount{Service: row.Service, ByStatus: map[string]int{}}
			services[row.Service] = sc
			order = append(order, row.Service)
		}
		sc.ByStatus[row.Status] += row.N
		sc.Total += row.N
		if slices.Contains(openStatuses, row.Status) {
			sc.Open += row.N
		}
		statuses[row.Status] += row.N
		r.Total += row.N
	}
	if err := nameServices(app, services); err != nil {
		return r, err
	}
	slices.SortFunc(order, func(a, b string) int {
		if d := services[b].Total - services[a].Total; d != 0 {
			return d
		}
		return compare(services[a].Name, services[b].Name)
	})
	r.ByService = []ServiceCount{}
	for _, id := range order {
		r.ByService = append(r.ByService, *services[id])
	}
	var byStatus []CategoryCount
	for s, n := range statuses {
		byStatus = append(byStatus, CategoryCount{Category: s, Count: n})
	}
	r.ByStatus = inOrder(domain.ReferralStatuses, byStatus)
	if err := qstuck.row(app, &r.StuckSent); err != nil {
		return r, err
	}
	var cur, prev []CategoryCount
	if err := qo[0].all(app, &cur); err != nil {
		return r, err
	}
	if err := qo[1].all(app, &prev); err != nil {
		return r, err
	}
	r.Outcomes.Current = inOrder(finalStatuses, cur)
	r.Outcomes.Previous = inOrder(finalStatuses, prev)
	return r, nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func nameServices(app core.App, services map[string]*ServiceCount) error {
	if len(services) == 0 {
		return nil
	}
	ids := make([]string, 0, len(services))
	for id := range services {
		ids = append(ids, id)
	}
	b := newBuilder()
	var rows []struct {
		ID       string `db:"id"`
		Name     string `db:"name"`
		Category string `db:"category"`
	}
	if err := b.query("service names", `SELECT id, name, category FROM `+domain.Services+` WHERE id IN (`+b.in(ids)+`)`).all(app, &rows); err != nil {
		return err
	}
	for _, row := range rows {
		services[row.ID].Name, services[row.ID].Category = row.Name, row.Category
	}
	return nil
}

// codes decodes a JSON array of person codes.
func codes(raw string) []string {
	out := []string{}
	if raw == "" {
		return out
	}
	if err := json.Unmarshal([]byte(raw), &out); err != nil || out == nil {
		return []string{}
	}
	slices.Sort(out)
	return out
}
