package dashboard_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/changelog"
	"strada/internal/dashboard/rollup"
	"strada/internal/domain"
)

// The generated world: three teams with their sites, workers and
// supervisors, and field work spread over four months, with a model of
// every record kept in Go so that the tests count independently of SQL.

type gSite struct{ id, kind, team string }

type gPerson struct {
	id, code, team, site, worker string
	created                      time.Time
}

type gVisit struct {
	id, team, site, worker string
	at                     time.Time
	persons                []string
	households             int
	topics                 []string
	followUp               string // YYYY-MM-DD or ""
}

type gContact struct {
	id, team, site, worker, person, setting string
	at                                      time.Time
	requests                                []string
	followUp                                string
}

type gReferral struct {
	id, team, worker, person, service, status string
	created                                   time.Time
	due                                       string
	// events: to status and when.
	events []gEvent
}

type gEvent struct {
	to string
	at time.Time
}

type gConflict struct {
	id, team, kind, overwrittenBy string
	resolved                      bool
}

type gDevice struct {
	id, user string
	lastSeen time.Time // zero: never
	revoked  bool
}

type world struct {
	e        *env
	now      time.Time
	rnd      *rand.Rand
	teams    []string
	sites    []gSite
	workers  map[string][]string // by team
	services map[string]string   // id -> category
	supA     *core.Record        // supervisor of teams 0 and 1
	supB     *core.Record        // supervisor of team 2
	workerA  *core.Record        // a worker of team 0
	persons  []gPerson
	visits   []gVisit
	contacts []gContact
	refs     []gReferral
	conflict []gConflict
	devices  []gDevice
}

// v7At makes a UUIDv7 whose time is at, as a device makes one.
func v7At(rnd *rand.Rand, at time.Time) string {
	var b [16]byte
	ms := uint64(at.UnixMilli())
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], ms)
	copy(b[0:6], t[2:8])
	for i := 6; i < 16; i++ {
		b[i] = byte(rnd.IntN(256))
	}
	b[6] = 0x70 | (b[6] & 0x0f)
	b[8] = 0x80 | (b[8] & 0x3f)
	return uuid.UUID(b).String()
}

func (w *world) save(actor string, collection string, fields map[string]any) *core.Record {
	w.e.t.Helper()
	c, err := w.e.app.FindCachedCollectionByNameOrId(collection)
	if err != nil {
		w.e.t.Fatal(err)
	}
	r := core.NewRecord(c)
	r.Load(fields)
	app := core.App(w.e.app)
	if actor != "" {
		app = changelog.AppWithActor(w.e.app, changelog.Actor{User: actor})
	}
	if err := app.Save(r); err != nil {
		w.e.t.Fatalf("save %s %v: %v", collection, fields, err)
	}
	return r
}

func (w *world) setColumn(table, id, column string, v any) {
	w.e.t.Helper()
	if _, err := w.e.app.NonconcurrentDB().Update(table, dbx.Params{column: v}, dbx.HashExp{"id": id}).Execute(); err != nil {
		w.e.t.Fatal(err)
	}
}

func pbTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000Z") }

// daysAgo is a time d days before now at a working hour, never after now.
func (w *world) daysAgo(d int) time.Time {
	day := w.now.AddDate(0, 0, -d)
	t := time.Date(day.Year(), day.Month(), day.Day(), 8+w.rnd.IntN(10), 5*w.rnd.IntN(12), 0, 0, time.UTC)
	if t.After(w.now) {
		t = w.now.Add(-time.Duration(1+w.rnd.IntN(60)) * time.Minute)
	}
	return t
}

func (w *world) pick(list []string) string { return list[w.rnd.IntN(len(list))] }

func (w *world) some(list []string, max int) []string {
	var out []string
	for range 1 + w.rnd.IntN(max) {
		v := w.pick(list)
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func newWorld(t *testing.T, seed uint64) *world {
	t.Helper()
	now := time.Now().UTC()
	e := newEnv(t, now)
	w := &world{e: e, now: now, rnd: rand.New(rand.NewPCG(seed, 9)), workers: map[string][]string{}, services: map[string]string{}}

	svcs, err := e.app.FindAllRecords(domain.Services, dbx.HashExp{"active": true})
	if err != nil || len(svcs) < 3 {
		t.Fatalf("services: %v (%d)", err, len(svcs))
	}
	var serviceIDs []string
	for _, s := range svcs[:6] {
		w.services[s.Id] = s.GetString("category")
		serviceIDs = append(serviceIDs, s.Id)
	}

	kinds := [][]string{{"camp", "camp", "office"}, {"prison", "prison", "office"}, {"camp", "prison", "office"}}
	for i := range 3 {
		team := w.save("", domain.Teams, map[string]any{"name": fmt.Sprintf("Team %d", i), "kind": domain.TeamKinds[i%2]})
		w.teams = append(w.teams, team.Id)
		for j, k := range kinds[i] {
			name := fmt.Sprintf("Sede %d-%d", i, j)
			if j == 0 {
				name = fmt.Sprintf("=Sede; \"%d\"", i) // quoting and formula guard in the export
			}
			s := w.save("", domain.Sites, map[string]any{"name": name, "kind": k, "team": team.Id})
			w.sites = append(w.sites, gSite{id: s.Id, kind: k, team: team.Id})
		}
	}
	user := func(email, role string, teams ...string) *core.Record {
		r := w.save("", domain.Users, map[string]any{
			"email": email, "password": "a-long-password-1", "passwordConfirm": "a-long-password-1",
			"name": email, "role": role, "teams": teams, "verified": true,
		})
		return r
	}
	w.supA = user("sup.a@example.org", domain.RoleSupervisor, w.teams[0], w.teams[1])
	w.supB = user("sup.b@example.org", domain.RoleSupervisor, w.teams[2])
	for i, team := range w.teams {
		for j := range 2 {
			u := user(fmt.Sprintf("worker.%d.%d@example.org", i, j), domain.RoleWorker, team)
			w.workers[team] = append(w.workers[team], u.Id)
			if i == 0 && j == 0 {
				w.workerA = u
			}
		}
	}

	sitesOf := func(team, kind string) []gSite {
		var out []gSite
		for _, s := range w.sites {
			if s.team == team && s.kind == kind {
				out = append(out, s)
			}
		}
		return out
	}
	// Persons, registered over four months.
	for i := range 45 {
		team := w.teams[i%3]
		worker := w.pick(w.workers[team])
		sites := sitesOf(team, "office")
		if i%2 == 0 {
			all := append(sitesOf(team, "camp"), sitesOf(team, "prison")...)
			sites = all
		}
		site := sites[w.rnd.IntN(len(sites))]
		created := w.daysAgo(w.rnd.IntN(120))
		if i%10 == 0 {
			created = w.daysAgo(0) // new this week
		}
		r := w.save(worker, domain.Persons, map[string]any{
			"id": v7At(w.rnd, created), "team": team, "site": site.id, "consent": "verbal", "given_name": "Nome",
		})
		w.setColumn(domain.Persons, r.Id, "created", pbTime(created))
		w.persons = append(w.persons, gPerson{id: r.Id, code: r.GetString("code"), team: team, site: site.id, worker: worker, created: created})
	}
	personsOf := func(team string) []gPerson {
		var out []gPerson
		for _, p := range w.persons {
			if p.team == team {
				out = append(out, p)
			}
		}
		return out
	}
	followUp := func(at time.Time) string {
		if w.rnd.IntN(3) == 0 {
			return ""
		}
		return at.AddDate(0, 0, w.rnd.IntN(40)-5).In(time.UTC).Format(time.DateOnly)
	}
	// Camp visits; some made offline and synced days later.
	for i := range 90 {
		team := w.teams[[]int{0, 2}[i%2]]
		camps := sitesOf(team, "camp")
		site := camps[w.rnd.IntN(len(camps))]
		worker := w.pick(w.workers[team])
		at := w.daysAgo(w.rnd.IntN(100))
		if i%10 == 0 {
			at = w.daysAgo(w.rnd.IntN(3)) // today and yesterday get some
		}
		var met []string
		ps := personsOf(team)
		for range w.rnd.IntN(4) {
			p := ps[w.rnd.IntN(len(ps))].id
			if !slices.Contains(met, p) {
				met = append(met, p)
			}
		}
		made := w.now.Add(-time.Duration(w.rnd.IntN(72*60)) * time.Minute)
		v := gVisit{id: v7At(w.rnd, made), team: team, site: site.id, worker: worker, at: at, persons: met,
			households: w.rnd.IntN(6), topics: w.some(domain.VisitTopics, 3), followUp: followUp(at)}
		fields := map[string]any{
			"id": v.id, "team": team, "site": site.id, "visited_at": pbTime(at), "workers": []string{worker},
			"persons_met": met, "households_met": v.households, "topics": v.topics,
		}
		if v.followUp != "" {
			fields["follow_up_on"] = v.followUp
		}
		w.save(worker, domain.CampVisits, fields)
		w.visits = append(w.visits, v)
	}
	// A camp visited once, long ago, whose follow-up is past; and persons
	// registered long ago and never met since.
	quiet := w.save("", domain.Sites, map[string]any{"name": "Campo tranquillo", "kind": "camp", "team": w.teams[0]})
	w.sites = append(w.sites, gSite{id: quiet.Id, kind: "camp", team: w.teams[0]})
	qv := gVisit{id: v7At(w.rnd, w.now.AddDate(0, 0, -20)), team: w.teams[0], site: quiet.Id, worker: w.workers[w.teams[0]][0],
		at: w.daysAgo(20), persons: []string{}, topics: []string{"other"}, followUp: w.now.AddDate(0, 0, -6).Format(time.DateOnly)}
	w.save(qv.worker, domain.CampVisits, map[string]any{"id": qv.id, "team": qv.team, "site": qv.site, "visited_at": pbTime(qv.at),
		"topics": qv.topics, "follow_up_on": qv.followUp})
	w.visits = append(w.visits, qv)
	for i := range 3 {
		team := w.teams[i]
		created := w.daysAgo(130 + i)
		worker := w.workers[team][0]
		site := sitesOf(team, "office")[0]
		r := w.save(worker, domain.Persons, map[string]any{"id": v7At(w.rnd, created), "team": team, "site": site.id, "consent": "none"})
		w.setColumn(domain.Persons, r.Id, "created", pbTime(created))
		w.persons = append(w.persons, gPerson{id: r.Id, code: r.GetString("code"), team: team, site: site.id, worker: worker, created: created})
	}
	// Secretariat contacts.
	for i := range 90 {
		team := w.teams[[]int{1, 2}[i%2]]
		ps := personsOf(team)
		p := ps[w.rnd.IntN(len(ps))]
		setting, sites := "intra", sitesOf(team, "prison")
		if w.rnd.IntN(3) == 0 {
			setting, sites = "extra", sitesOf(team, "office")
		}
		site := sites[w.rnd.IntN(len(sites))]
		worker := w.pick(w.workers[team])
		at := w.daysAgo(w.rnd.IntN(100))
		c := gContact{id: v7At(w.rnd, at.Add(time.Duration(w.rnd.IntN(30))*time.Minute)), team: team, site: site.id, worker: worker,
			person: p.id, setting: setting, at: at, requests: w.some(domain.ContactRequests, 3), followUp: followUp(at)}
		fields := map[string]any{
			"id": c.id, "team": team, "site": site.id, "person": p.id, "setting": setting,
			"contacted_at": pbTime(at), "requests": c.requests,
		}
		if c.followUp != "" {
			fields["follow_up_on"] = c.followUp
		}
		w.save(worker, domain.SecretariatContacts, fields)
		w.contacts = append(w.contacts, c)
	}
	// Referrals in every status, their history backdated.
	paths := [][]string{
		{domain.StatusDraft},
		{domain.StatusSent},
		{domain.StatusSent, domain.StatusAccepted},
		{domain.StatusSent, domain.StatusAccepted, domain.StatusInProgress},
		{domain.StatusSent, domain.StatusAccepted, domain.StatusCompleted},
		{domain.StatusSent, domain.StatusAccepted, domain.StatusInProgress, domain.StatusCompleted},
		{domain.StatusSent, domain.StatusDeclined},
		{domain.StatusDraft, domain.StatusCancelled},
		{domain.StatusSent, domain.StatusCancelled},
	}
	for i := range 60 {
		team := w.teams[i%3]
		ps := personsOf(team)
		p := ps[w.rnd.IntN(len(ps))]
		worker := w.pick(w.workers[team])
		created := w.daysAgo(w.rnd.IntN(60))
		path := paths[i%len(paths)]
		ref := gReferral{id: v7At(w.rnd, created), team: team, worker: worker, person: p.id, service: w.pick(serviceIDs),
			created: created, status: path[len(path)-1]}
		if w.rnd.IntN(4) != 0 {
			ref.due = created.AddDate(0, 0, 7+w.rnd.IntN(40)).Format(time.DateOnly)
		}
		fields := map[string]any{"id": ref.id, "team": team, "person": p.id, "service": ref.service, "reason": "motivo", "status": path[0]}
		if ref.due != "" {
			fields["due_on"] = ref.due
		}
		rec := w.save(worker, domain.Referrals, fields)
		at := created
		ref.events = append(ref.events, gEvent{to: path[0], at: at})
		for _, status := range path[1:] {
			rec.Set("status", status)
			app := changelog.AppWithActor(w.e.app, changelog.Actor{User: w.supervisorOf(team)})
			if err := app.Save(rec); err != nil {
				t.Fatalf("move referral to %s: %v", status, err)
			}
			at = at.Add(time.Duration(1+w.rnd.IntN(20*24)) * time.Hour)
			if at.After(w.now) {
				at = w.now.Add(-time.Minute)
			}
			ref.events = append(ref.events, gEvent{to: status, at: at})
		}
		w.setColumn(domain.Referrals, ref.id, "created", pbTime(created))
		evs, err := w.e.app.FindAllRecords(domain.ReferralEvents, dbx.HashExp{"referral": ref.id})
		if err != nil || len(evs) != len(ref.events) {
			t.Fatalf("history of referral: got %d rows (%v), want %d", len(evs), err, len(ref.events))
		}
		for _, ev := range evs {
			for _, g := range ref.events {
				if g.to == ev.GetString("to_status") {
					w.setColumn(domain.ReferralEvents, ev.Id, "created", pbTime(g.at))
				}
			}
		}
		w.refs = append(w.refs, ref)
	}
	// The conflict journal.
	for i := range 12 {
		team := w.teams[i%3]
		c := gConflict{team: team, kind: []string{"same_field", "delete_over_edit", "rejected_transition"}[i%3],
			overwrittenBy: w.pick(w.workers[team]), resolved: i%4 == 0}
		fields := map[string]any{"collection": domain.CampVisits, "record_id": uuid.NewString(), "field": "notes", "kind": c.kind,
			"team": team, "overwritten_by": c.overwrittenBy, "kept_value": "x", "overwritten_value": "y"}
		if c.resolved {
			fields["resolved_at"] = pbTime(w.now.Add(-time.Hour))
			fields["resolution"] = "keep_current"
		}
		c.id = w.save("", domain.SyncConflicts, fields).Id
		w.conflict = append(w.conflict, c)
	}
	// Devices: synced recently, silent, never seen, revoked.
	for i, team := range w.teams {
		for j, u := range w.workers[team] {
			d := gDevice{id: uuid.NewString(), user: u, revoked: i == 0 && j == 1}
			switch (i + j) % 3 {
			case 0:
				d.lastSeen = w.now.Add(-2 * time.Hour)
			case 1:
				d.lastSeen = w.now.Add(-72 * time.Hour)
			}
			fields := map[string]any{"id": d.id, "user": u, "name": "telefono", "revoked": d.revoked, "pending": j}
			if !d.lastSeen.IsZero() {
				fields["last_seen"] = pbTime(d.lastSeen)
			}
			w.save("", domain.Devices, fields)
			// A device registered long ago.
			w.setColumn(domain.Devices, d.id, "created", pbTime(w.now.AddDate(0, 0, -10)))
			w.devices = append(w.devices, d)
		}
	}
	// The backdated dates above were written with plain SQL, past the
	// hooks that keep the rollups: recount them, as after such a repair.
	if err := rollup.Rebuild(e.app); err != nil {
		t.Fatalf("rebuild rollups: %v", err)
	}
	return w
}

func (w *world) supervisorOf(team string) string {
	if team == w.teams[2] {
		return w.supB.Id
	}
	return w.supA.Id
}
