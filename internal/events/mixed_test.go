package events_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/events"
	"strada/internal/syncclient"
	hooks "strada/pb_hooks"
)

var writesFlag = flag.Int("events.writes", 0,
	"writes made by TestMixedWritesReachStreamOnce (default 10,000; 2,000 with -race)")

// mixedWrites is the number of writes of TestMixedWritesReachStreamOnce.
func mixedWrites() int {
	switch {
	case *writesFlag > 0:
		return *writesFlag
	case raceDetector:
		return 2_000
	}
	return 10_000
}

// fixture is what the mixed writers need of the demo data.
type fixture struct {
	app                        *apptest.App
	campTeam, prisonTeam       string
	campSite, prisonSite       string
	service                    string
	campWorker, prisonWorker   *core.Record
	supervisor                 *core.Record
	persons, visits, contacts  *core.Collection
	referrals                  *core.Collection
	campREST, prisonREST       *restClient
	server                     *httptest.Server
	campApp, prisonApp, supApp core.App
}

func newFixture(t testing.TB, app *apptest.App, rest bool) *fixture {
	t.Helper()
	f := &fixture{app: app}
	f.campTeam = apptest.Team(t, app, "camp_outreach")
	f.prisonTeam = apptest.Team(t, app, "prison_secretariat")
	f.campSite = findID(t, app, domain.Sites, "kind = 'camp'")
	f.prisonSite = findID(t, app, domain.Sites, "kind = 'prison'")
	f.service = findID(t, app, domain.Services, "active = true")
	f.campWorker = apptest.User(t, app, apptest.CampWorker)
	f.prisonWorker = apptest.User(t, app, apptest.PrisonWorker)
	f.supervisor = apptest.User(t, app, apptest.Supervisor)
	f.persons = collection(t, app, domain.Persons)
	f.visits = collection(t, app, domain.CampVisits)
	f.contacts = collection(t, app, domain.SecretariatContacts)
	f.referrals = collection(t, app, domain.Referrals)
	f.campApp = changelog.AppWithActor(app, changelog.Actor{User: f.campWorker.Id, Device: "camp-tablet"})
	f.prisonApp = changelog.AppWithActor(app, changelog.Actor{User: f.prisonWorker.Id, Device: "prison-phone"})
	f.supApp = changelog.AppWithActor(app, changelog.Actor{User: f.supervisor.Id})
	if rest {
		hooks.BindSyncAPI(app, events.NewHub(quiet))
		srv := apptest.Serve(t, app)
		f.server = srv
		f.campREST = newRESTClient(srv, apptest.Token(t, app, apptest.CampWorker))
		f.prisonREST = newRESTClient(srv, apptest.Token(t, app, apptest.PrisonWorker))
	}
	return f
}

func findID(t testing.TB, app core.App, collection, filter string) string {
	t.Helper()
	r, err := app.FindFirstRecordByFilter(collection, filter)
	if err != nil {
		t.Fatalf("find %s where %s: %v", collection, filter, err)
	}
	return r.Id
}

func collection(t testing.TB, app core.App, name string) *core.Collection {
	t.Helper()
	c, err := app.FindCollectionByNameOrId(name)
	if err != nil {
		t.Fatalf("find collection %s: %v", name, err)
	}
	return c
}

// syncDevice registers a device of the camp worker with the sync API.
func (f *fixture) syncDevice(t testing.TB) *syncclient.Client {
	t.Helper()
	c := &syncclient.Client{
		BaseURL: f.server.URL,
		Token:   apptest.Token(t, f.app, apptest.CampWorker),
		Store:   syncclient.NewMemoryStore(),
		HTTP:    &http.Client{Timeout: 30 * time.Second},
	}
	if err := c.Register(context.Background(), uuid.NewString(), "camp tablet", "test", "1.0"); err != nil {
		t.Fatalf("register device: %v", err)
	}
	return c
}

// tally counts the change rows a writer expects, by collection and op.
type tally struct {
	mu sync.Mutex
	n  map[string]int
}

func (t *tally) add(collection string, op changelog.Op) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == nil {
		t.n = map[string]int{}
	}
	t.n[collection+"/"+string(op)]++
}

// writer is one concurrent client of the mixed-path test: it owns the
// records it makes, so writers never contend for the same record.
type writer struct {
	f      *fixture
	want   *tally
	writes int
	base   *core.Record // a camp person made before the count starts
	device *syncclient.Client

	p1, p2, q *core.Record
	visit     string
	contact   string
	r1, r2    *core.Record
}

// step is one write path of the mixed test; it reports how many writes (in
// the sense of the test: saves, deletes and REST calls) it made.
type step struct {
	name   string
	writes int
	run    func(w *writer) error
}

var mixedSteps = []step{
	{"go create camp person", 1, func(w *writer) error {
		w.p1 = core.NewRecord(w.f.persons)
		w.p1.Load(map[string]any{"team": w.f.campTeam, "site": w.f.campSite, "consent": "verbal", "given_name": "Mixed", "notes": "first meeting"})
		return w.save(w.f.campApp, w.p1, changelog.OpCreate)
	}},
	{"rest create camp person", 1, func(w *writer) error {
		var out struct{ ID string }
		if _, err := w.f.campREST.do(http.MethodPost, "/api/collections/persons/records",
			map[string]any{"team": w.f.campTeam, "consent": "written", "family_name": "Rest"}, &out); err != nil {
			return err
		}
		w.want.add(domain.Persons, changelog.OpCreate)
		p, err := w.f.app.FindRecordById(domain.Persons, out.ID)
		w.p2 = p
		return err
	}},
	{"rest update person", 1, func(w *writer) error {
		return w.patch(w.f.campREST, domain.Persons, w.p1.Id, map[string]any{"notes": "second meeting"})
	}},
	{"go update person", 1, func(w *writer) error {
		w.p2.Set("birth_year", 1990)
		return w.save(w.f.campApp, w.p2, changelog.OpUpdate)
	}},
	{"go create camp visit", 1, func(w *writer) error {
		v := core.NewRecord(w.f.visits)
		v.Load(map[string]any{"team": w.f.campTeam, "site": w.f.campSite, "visited_at": time.Now().UTC(),
			"workers": []string{w.f.campWorker.Id}, "persons_met": []string{w.p1.Id, w.p2.Id}, "topics": []string{"health"}})
		err := w.save(w.f.campApp, v, changelog.OpCreate)
		w.visit = v.Id
		return err
	}},
	{"rest update camp visit", 1, func(w *writer) error {
		return w.patch(w.f.campREST, domain.CampVisits, w.visit, map[string]any{"households_met": 3, "needs": "blankets"})
	}},
	{"rest create referral", 1, func(w *writer) error {
		var out struct{ ID string }
		if _, err := w.f.campREST.do(http.MethodPost, "/api/collections/referrals/records", map[string]any{
			"team": w.f.campTeam, "person": w.p1.Id, "service": w.f.service, "reason": "orientation", "status": domain.StatusDraft,
		}, &out); err != nil {
			return err
		}
		w.want.add(domain.Referrals, changelog.OpCreate)
		w.want.add(domain.ReferralEvents, changelog.OpCreate)
		r, err := w.f.app.FindRecordById(domain.Referrals, out.ID)
		w.r1 = r
		return err
	}},
	{"rest send referral", 1, func(w *writer) error {
		w.want.add(domain.ReferralEvents, changelog.OpCreate)
		return w.patch(w.f.campREST, domain.Referrals, w.r1.Id, map[string]any{"status": domain.StatusSent})
	}},
	{"go supervisor accepts referral", 1, func(w *writer) error {
		if err := w.reload(&w.r1); err != nil {
			return err
		}
		w.r1.Set("status", domain.StatusAccepted)
		w.want.add(domain.ReferralEvents, changelog.OpCreate)
		return w.save(w.f.supApp, w.r1, changelog.OpUpdate)
	}},
	{"go update referral without status change", 1, func(w *writer) error {
		w.r1.Set("notes", "called the service")
		return w.save(w.f.supApp, w.r1, changelog.OpUpdate)
	}},
	{"rest delete camp visit", 1, func(w *writer) error {
		if _, err := w.f.campREST.do(http.MethodDelete, "/api/collections/camp_visits/records/"+w.visit, nil, nil); err != nil {
			return err
		}
		w.want.add(domain.CampVisits, changelog.OpDelete)
		return nil
	}},
	{"go create and delete person", 2, func(w *writer) error {
		p := core.NewRecord(w.f.persons)
		p.Load(map[string]any{"team": w.f.campTeam, "consent": "none"})
		if err := w.save(w.f.campApp, p, changelog.OpCreate); err != nil {
			return err
		}
		if err := w.f.supApp.Delete(p); err != nil {
			return err
		}
		w.want.add(domain.Persons, changelog.OpDelete)
		return nil
	}},
	{"sync push of two creates", 2, func(w *writer) error {
		pid, vid := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
		if _, err := w.device.Upsert(domain.Persons, pid, map[string]any{"team": w.f.campTeam, "consent": "verbal", "given_name": "Sync"}); err != nil {
			return err
		}
		if _, err := w.device.Upsert(domain.CampVisits, vid, map[string]any{"team": w.f.campTeam, "site": w.f.campSite,
			"visited_at": time.Now().UTC().Format("2006-01-02 15:04:05.000Z"), "persons_met": []string{pid}}); err != nil {
			return err
		}
		results, err := w.device.Push(context.Background())
		if err != nil {
			return err
		}
		if len(results) != 2 || results[0].Status != "applied" || results[1].Status != "applied" {
			return fmt.Errorf("got push results %+v, want two applied", results)
		}
		w.want.add(domain.Persons, changelog.OpCreate)
		w.want.add(domain.CampVisits, changelog.OpCreate)
		w.want.add("sync mutations", "")
		w.want.add("sync mutations", "")
		return nil
	}},
	{"go create prison person", 1, func(w *writer) error {
		w.q = core.NewRecord(w.f.persons)
		w.q.Load(map[string]any{"team": w.f.prisonTeam, "consent": "written", "given_name": "Detained"})
		return w.save(w.f.prisonApp, w.q, changelog.OpCreate)
	}},
	{"rest create secretariat contact", 1, func(w *writer) error {
		var out struct{ ID string }
		if _, err := w.f.prisonREST.do(http.MethodPost, "/api/collections/secretariat_contacts/records", map[string]any{
			"team": w.f.prisonTeam, "person": w.q.Id, "site": w.f.prisonSite, "setting": "intra",
			"contacted_at": time.Now().UTC(), "requests": []string{"residence"}, "actions": "collected papers",
		}, &out); err != nil {
			return err
		}
		w.contact = out.ID
		w.want.add(domain.SecretariatContacts, changelog.OpCreate)
		return nil
	}},
	{"go update secretariat contact", 1, func(w *writer) error {
		c, err := w.f.app.FindRecordById(domain.SecretariatContacts, w.contact)
		if err != nil {
			return err
		}
		c.Set("next_steps", "call the registry office")
		return w.save(w.f.prisonApp, c, changelog.OpUpdate)
	}},
	{"go transaction of two records then rest delete", 3, func(w *writer) error {
		c := core.NewRecord(w.f.contacts)
		err := w.f.prisonApp.RunInTransaction(func(tx core.App) error {
			c.Load(map[string]any{"team": w.f.prisonTeam, "person": w.q.Id, "site": w.f.prisonSite,
				"setting": "intra", "contacted_at": time.Now().UTC()})
			if err := tx.Save(c); err != nil {
				return err
			}
			w.q.Set("languages", "romanes")
			return tx.Save(w.q)
		})
		if err != nil {
			return err
		}
		w.want.add(domain.SecretariatContacts, changelog.OpCreate)
		w.want.add(domain.Persons, changelog.OpUpdate)
		if _, err := w.f.prisonREST.do(http.MethodDelete, "/api/collections/secretariat_contacts/records/"+c.Id, nil, nil); err != nil {
			return err
		}
		w.want.add(domain.SecretariatContacts, changelog.OpDelete)
		return nil
	}},
	{"go create sent referral", 1, func(w *writer) error {
		w.r2 = core.NewRecord(w.f.referrals)
		w.r2.Load(map[string]any{"team": w.f.prisonTeam, "person": w.q.Id, "service": w.f.service,
			"source_contact": w.contact, "reason": "residence", "status": domain.StatusSent})
		w.want.add(domain.ReferralEvents, changelog.OpCreate)
		return w.save(w.f.prisonApp, w.r2, changelog.OpCreate)
	}},
	{"go supervisor declines referral", 1, func(w *writer) error {
		w.r2.Set("status", domain.StatusDeclined)
		w.r2.Set("outcome", "no places")
		w.want.add(domain.ReferralEvents, changelog.OpCreate)
		return w.save(w.f.supApp, w.r2, changelog.OpUpdate)
	}},
}

func (w *writer) save(app core.App, r *core.Record, op changelog.Op) error {
	if err := app.Save(r); err != nil {
		return err
	}
	w.want.add(r.Collection().Name, op)
	return nil
}

func (w *writer) patch(c *restClient, collection, id string, body map[string]any) error {
	if _, err := c.do(http.MethodPatch, "/api/collections/"+collection+"/records/"+id, body, nil); err != nil {
		return err
	}
	w.want.add(collection, changelog.OpUpdate)
	return nil
}

func (w *writer) reload(r **core.Record) error {
	fresh, err := w.f.app.FindRecordById((*r).Collection(), (*r).Id)
	if err != nil {
		return err
	}
	*r = fresh
	return nil
}

// run makes exactly budget writes, cycling through mixedSteps; when a step
// needs more writes than are left it is replaced by updates of base.
func (w *writer) run(budget int) error {
	for w.writes < budget {
		for _, s := range mixedSteps {
			left := budget - w.writes
			if left == 0 {
				return nil
			}
			if s.writes > left {
				for range left {
					w.base.Set("birth_year", 1950+w.writes%50)
					if err := w.save(w.f.campApp, w.base, changelog.OpUpdate); err != nil {
						return fmt.Errorf("filler update: %w", err)
					}
					w.writes++
				}
				return nil
			}
			if err := s.run(w); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			w.writes += s.writes
		}
	}
	return nil
}

// TestMixedWritesReachStreamOnce makes concurrent writes through Go saves,
// transactions, PocketBase's REST API and the sync API while the relay
// publishes, and
// checks that the stream holds exactly one message per change row, in
// sequence order, and one change row per write and derived history row.
func TestMixedWritesReachStreamOnce(t *testing.T) {
	t.Parallel()
	total := mixedWrites()
	const writers = 4
	app := apptest.New(t)
	f := newFixture(t, app, true)
	want := &tally{}
	ws := make([]*writer, writers)
	for i := range ws {
		base := core.NewRecord(f.persons)
		base.Load(map[string]any{"team": f.campTeam, "consent": "verbal"})
		if err := app.Save(base); err != nil {
			t.Fatalf("base person: %v", err)
		}
		ws[i] = &writer{f: f, want: want, base: base, device: f.syncDevice(t)}
	}
	baseline, err := changelog.LastSeq(app)
	if err != nil {
		t.Fatal(err)
	}

	bus := startBus(t)
	relay := startRelay(t, app, app.Log, bus.JS)

	start := time.Now()
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i, w := range ws {
		budget := total / writers
		if i == 0 {
			budget += total % writers
		}
		wg.Go(func() { errs[i] = w.run(budget) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("writers: %v", err)
	}
	made := 0
	for _, w := range ws {
		made += w.writes
	}
	if made != total {
		t.Fatalf("writers made %d writes, want %d", made, total)
	}
	t.Logf("%d writes in %s", total, time.Since(start).Round(time.Millisecond))

	// One change row per write and per derived history row.
	got := map[string]int{}
	var derived int
	entries := allEntries(t, app)
	for _, e := range entries {
		if e.Seq <= baseline {
			continue
		}
		got[e.Collection+"/"+string(e.Op)]++
		if e.Collection == domain.ReferralEvents {
			derived++
		}
		if e.Actor.Mutation != "" {
			got["sync mutations/"]++
		}
		if e.Actor.User == "" {
			t.Fatalf("change %d (%s %s/%s) has no actor user", e.Seq, e.Op, e.Collection, e.RecordID)
		}
	}
	for k, n := range want.n {
		if got[k] != n {
			t.Errorf("%s: got %d change rows, want %d", k, got[k], n)
		}
	}
	for k, n := range got {
		if _, ok := want.n[k]; !ok {
			t.Errorf("%s: got %d unexpected change rows", k, n)
		}
	}
	if derived == 0 {
		t.Fatal("no referral history rows: the derived path was not exercised")
	}

	waitDrained(t, app, relay.Relay, time.Minute)
	msgs := readStream(t, bus.JS)
	assertStreamIsLog(t, app, msgs, entries)
	after := 0
	for _, m := range msgs {
		if m.Event.Seq > baseline {
			after++
		}
	}
	if after != total+derived {
		t.Fatalf("got %d messages for the test's writes, want %d writes + %d derived", after, total, derived)
	}
	if st := relay.Stats(); st.LastPublished != entries[len(entries)-1].Seq {
		t.Fatalf("got relay last published %d, want %d", st.LastPublished, entries[len(entries)-1].Seq)
	}
}
