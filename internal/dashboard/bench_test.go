package dashboard_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/dashboard"
	"strada/internal/dashboard/rollup"
	"strada/internal/domain"
	"strada/internal/events"
	"strada/internal/storage"
	hooks "strada/pb_hooks"
)

// benchDataVersion names the generated database in the cache; change it
// when the generator changes.
const benchDataVersion = "v2"

// Sizes of the generated field work: 1,000,000 records over three years.
const (
	benchPersons   = 150_000
	benchVisits    = 330_000
	benchContacts  = 330_000
	benchReferrals = 190_000
	benchDays      = 3 * 365
)

// benchApp returns a test app holding the demo data and 1,000,000
// generated field-work records, with their history and change log. The
// database is generated once with plain SQL in one transaction and kept
// in the temp directory; each run works on a copy of it.
func benchApp(b *testing.B) *tests.TestApp {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "strada-dashboard-bench-"+benchDataVersion)
	if _, err := os.Stat(filepath.Join(dir, "data.db")); err != nil {
		start := time.Now()
		if err := generateBenchData(b, dir); err != nil {
			os.RemoveAll(dir)
			b.Fatalf("generate benchmark data: %v", err)
		}
		b.Logf("generated %d field-work records in %s into %s", benchPersons+benchVisits+benchContacts+benchReferrals, time.Since(start).Round(time.Second), dir)
	}
	// Opening a copy runs the migrations the cached file has not seen: the
	// rollups' migration fills them from the generated records.
	start := time.Now()
	app, err := tests.NewTestAppWithConfig(core.BaseAppConfig{DataDir: dir, EncryptionEnv: "pb_test_env", DBConnect: storage.Connect})
	if err != nil {
		b.Fatalf("open benchmark data: %v", err)
	}
	b.Cleanup(app.Cleanup)
	b.Logf("copied and migrated in %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if err := rollup.Rebuild(app); err != nil {
		b.Fatalf("rebuild rollups: %v", err)
	}
	b.Logf("rollups rebuilt from 1,000,000 records in %s", time.Since(start).Round(time.Millisecond))
	return app
}

func generateBenchData(b *testing.B, dir string) error {
	app := apptest.NewUnbound(b)
	rnd := rand.New(rand.NewPCG(2026, 1))
	now := time.Now().UTC()
	pb := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000Z") }
	ago := func() time.Time {
		return now.Add(-time.Duration(rnd.Int64N(int64(benchDays) * int64(24*time.Hour))))
	}
	var teams []string
	if err := app.DB().NewQuery("SELECT id FROM teams ORDER BY id").Column(&teams); err != nil {
		return err
	}
	sites := map[string]map[string][]string{} // team -> kind -> ids
	var siteRows []struct {
		ID   string `db:"id"`
		Kind string `db:"kind"`
		Team string `db:"team"`
	}
	if err := app.DB().NewQuery("SELECT id, kind, team FROM sites").All(&siteRows); err != nil {
		return err
	}
	for _, s := range siteRows {
		if sites[s.Team] == nil {
			sites[s.Team] = map[string][]string{}
		}
		sites[s.Team][s.Kind] = append(sites[s.Team][s.Kind], s.ID)
	}
	var services, workers []string
	if err := app.DB().NewQuery("SELECT id FROM services").Column(&services); err != nil {
		return err
	}
	if err := app.DB().NewQuery("SELECT id FROM users").Column(&workers); err != nil {
		return err
	}
	pick := func(l []string) string { return l[rnd.IntN(len(l))] }
	someOf := func(l []string, n int) string {
		var out []string
		for range 1 + rnd.IntN(n) {
			if v := pick(l); !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
		j, _ := json.Marshal(out)
		return string(j)
	}
	// A team with camps gets visits, one with prisons contacts.
	var campTeam, prisonTeam string
	for team, kinds := range sites {
		if len(kinds["camp"]) > 0 {
			campTeam = team
		}
		if len(kinds["prison"]) > 0 {
			prisonTeam = team
		}
	}
	err := app.RunInTransaction(func(tx core.App) error {
		db := tx.NonconcurrentDB()
		exec := func(sql string, params dbx.Params) error {
			_, err := db.NewQuery(sql).Bind(params).Execute()
			return err
		}
		change := db.NewQuery(`INSERT INTO strada_changes (collection, record_id, op, version, team, site, fields, actor_user, at, person)
			VALUES ({:c}, {:id}, 'create', 1, {:team}, {:site}, '[]', {:actor}, {:at}, {:person})`).Prepare()
		defer change.Close()
		logged := func(collection, id, team, site, actor, person string, made time.Time) error {
			// Most records reach the server within minutes; some after days offline.
			lag := time.Duration(rnd.IntN(600)) * time.Second
			if rnd.IntN(20) == 0 {
				lag = time.Duration(rnd.IntN(5*24)) * time.Hour
			}
			_, err := change.Bind(dbx.Params{"c": collection, "id": id, "team": team, "site": site, "actor": actor,
				"at": made.Add(lag).UTC().Format(time.RFC3339Nano), "person": person}).Execute()
			return err
		}
		type person struct{ id, team, site string }
		persons := make([]person, 0, benchPersons)
		byTeam := map[string][]int{}
		followUp := func(at time.Time) string {
			if rnd.IntN(3) != 0 {
				return ""
			}
			return at.AddDate(0, 0, 7+rnd.IntN(14)).Format(time.DateOnly) + " 00:00:00.000Z"
		}
		// Records arrive in time order, as they do in the field.
		type arrival struct {
			at   time.Time
			kind int
		}
		var arrivals []arrival
		for kind, n := range []int{benchPersons, benchVisits, benchContacts, benchReferrals} {
			for range n {
				arrivals = append(arrivals, arrival{ago(), kind})
			}
		}
		slices.SortFunc(arrivals, func(a, b arrival) int { return a.at.Compare(b.at) })
		insPerson := db.NewQuery(`INSERT INTO persons (id, team, code, consent, site, version, created_by, created, updated)
			VALUES ({:id}, {:team}, {:code}, 'verbal', {:site}, 1, {:by}, {:at}, {:at})`).Prepare()
		defer insPerson.Close()
		insVisit := db.NewQuery(`INSERT INTO camp_visits (id, team, site, visited_at, workers, persons_met, households_met, topics, follow_up_on, version, created_by, created, updated)
			VALUES ({:id}, {:team}, {:site}, {:at}, {:workers}, {:met}, {:hh}, {:topics}, {:fu}, 1, {:by}, {:at}, {:at})`).Prepare()
		defer insVisit.Close()
		insContact := db.NewQuery(`INSERT INTO secretariat_contacts (id, team, person, site, setting, contacted_at, requests, follow_up_on, version, created_by, created, updated)
			VALUES ({:id}, {:team}, {:person}, {:site}, {:setting}, {:at}, {:req}, {:fu}, 1, {:by}, {:at}, {:at})`).Prepare()
		defer insContact.Close()
		insReferral := db.NewQuery(`INSERT INTO referrals (id, team, person, service, reason, status, due_on, version, created_by, created, updated)
			VALUES ({:id}, {:team}, {:person}, {:service}, 'motivo', {:status}, {:due}, 1, {:by}, {:at}, {:at})`).Prepare()
		defer insReferral.Close()
		insEvent := db.NewQuery(`INSERT INTO referral_events (id, referral, team, from_status, to_status, created, updated)
			VALUES ({:id}, {:ref}, {:team}, {:from}, {:to}, {:at}, {:at})`).Prepare()
		defer insEvent.Close()
		paths := [][]string{{"draft"}, {"sent"}, {"sent", "accepted"}, {"sent", "accepted", "in_progress"},
			{"sent", "accepted", "completed"}, {"sent", "declined"}, {"sent", "cancelled"}, {"sent", "accepted", "in_progress", "completed"}}
		newPerson := func(i int, made time.Time) error {
			team := teams[i%len(teams)]
			var all []string
			for _, ids := range sites[team] {
				all = append(all, ids...)
			}
			p := person{id: v7At(rnd, made), team: team, site: pick(all)}
			by := pick(workers)
			if _, err := insPerson.Bind(dbx.Params{"id": p.id, "team": team, "code": fmt.Sprintf("B-%08d", i), "site": p.site, "by": by, "at": pb(made)}).Execute(); err != nil {
				return fmt.Errorf("person: %w", err)
			}
			byTeam[team] = append(byTeam[team], len(persons))
			persons = append(persons, p)
			return logged(domain.Persons, p.id, team, p.site, by, p.id, made)
		}
		// A few persons first, so that the first records have someone to
		// be about.
		for i := range 2 * len(teams) {
			if err := newPerson(i, arrivals[0].at.Add(-time.Hour)); err != nil {
				return err
			}
		}
		for i, a := range arrivals {
			at := a.at
			id := v7At(rnd, at)
			by := pick(workers)
			switch a.kind {
			case 0:
				if err := newPerson(2*len(teams)+i, at); err != nil {
					return err
				}
			case 1:
				var met []string
				for range rnd.IntN(4) {
					met = append(met, persons[pick2(rnd, byTeam[campTeam])].id)
				}
				metJSON, _ := json.Marshal(nonNilStrings(met))
				site := pick(sites[campTeam]["camp"])
				if _, err := insVisit.Bind(dbx.Params{"id": id, "team": campTeam, "site": site, "at": pb(at), "workers": `["` + by + `"]`, "met": string(metJSON),
					"hh": rnd.IntN(8), "topics": someOf(domain.VisitTopics, 3), "fu": followUp(at), "by": by}).Execute(); err != nil {
					return fmt.Errorf("visit: %w", err)
				}
				if err := logged(domain.CampVisits, id, campTeam, site, by, "", at); err != nil {
					return err
				}
			case 2:
				p := persons[pick2(rnd, byTeam[prisonTeam])]
				setting, site := "intra", pick(sites[prisonTeam]["prison"])
				if rnd.IntN(4) == 0 {
					setting, site = "extra", pick(sites[prisonTeam]["office"])
				}
				if _, err := insContact.Bind(dbx.Params{"id": id, "team": prisonTeam, "person": p.id, "site": site, "setting": setting, "at": pb(at),
					"req": someOf(domain.ContactRequests, 3), "fu": followUp(at), "by": by}).Execute(); err != nil {
					return fmt.Errorf("contact: %w", err)
				}
				if err := logged(domain.SecretariatContacts, id, prisonTeam, site, by, p.id, at); err != nil {
					return err
				}
			case 3:
				p := persons[rnd.IntN(len(persons))]
				// Older referrals are mostly closed.
				path := paths[rnd.IntN(len(paths))]
				if at.Before(now.AddDate(0, 0, -90)) && rnd.IntN(10) != 0 {
					path = paths[4+rnd.IntN(4)]
				}
				due := ""
				if rnd.IntN(2) == 0 {
					due = at.AddDate(0, 0, 21).Format(time.DateOnly) + " 00:00:00.000Z"
				}
				if _, err := insReferral.Bind(dbx.Params{"id": id, "team": p.team, "person": p.id, "service": pick(services), "status": path[len(path)-1],
					"due": due, "by": by, "at": pb(at)}).Execute(); err != nil {
					return fmt.Errorf("referral: %w", err)
				}
				from, evAt := "", at
				for j, to := range path {
					if _, err := insEvent.Bind(dbx.Params{"id": fmt.Sprintf("e%07d%07d", i, j), "ref": id, "team": p.team, "from": from, "to": to, "at": pb(evAt)}).Execute(); err != nil {
						return fmt.Errorf("referral event: %w", err)
					}
					from, evAt = to, evAt.Add(time.Duration(1+rnd.IntN(240))*time.Hour)
					if evAt.After(now) {
						evAt = now
					}
				}
				if err := logged(domain.Referrals, id, p.team, "", by, p.id, at); err != nil {
					return err
				}
			}
		}
		return exec("ANALYZE", nil)
	})
	if err != nil {
		return err
	}
	if err := storage.Checkpoint(app); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, name := range []string{"data.db", "auxiliary.db"} {
		body, err := os.ReadFile(filepath.Join(app.DataDir(), name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func pick2(rnd *rand.Rand, l []int) int { return l[rnd.IntN(len(l))] }

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// percentile returns the p-th percentile of sorted durations, in ms.
func percentile(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	i := int(float64(len(d)-1) * p)
	return float64(d[i].Microseconds()) / 1000
}

// BenchmarkSummary measures the summary read from the rollups and, side by
// side in the same run, computed from the records at each request
// (Dashboard.Direct).
func BenchmarkSummary(b *testing.B) {
	app := benchApp(b)
	d := hooks.BindDashboard(app, events.NewHub(app.Logger()))
	handler := apptest.Handler(b, app)
	token := apptest.Token(b, app, apptest.Supervisor)
	var n int
	if err := app.DB().NewQuery(`SELECT (SELECT count(*) FROM persons) + (SELECT count(*) FROM camp_visits) +
		(SELECT count(*) FROM secretariat_contacts) + (SELECT count(*) FROM referrals)`).Row(&n); err != nil {
		b.Fatal(err)
	}
	if n < 1_000_000 {
		b.Fatalf("got %d field-work records, want 1,000,000", n)
	}
	worker := apptest.User(b, app, apptest.CampWorker).Id
	for _, c := range []struct{ name, query string }{
		{"week", "period=week"},
		{"month", "period=month"},
		{"today", "period=today"},
		{"worker-month", "period=month&worker=" + worker},
	} {
		for _, direct := range []bool{false, true} {
			name := "rollups/" + c.name
			if direct {
				name = "direct/" + c.name
			}
			b.Run(name, func(b *testing.B) {
				d.Direct = direct
				summaryTimes(b, handler, token, c.query)
			})
		}
	}
}

// summaryTimes gets the summary with query b.N times and reports the
// median and 99th percentile.
func summaryTimes(b *testing.B, handler http.Handler, token, query string) {
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest(http.MethodGet, dashboard.RouteSummary+"?"+query, nil)
		req.Header.Set("Authorization", token)
		rec := httptest.NewRecorder()
		start := time.Now()
		handler.ServeHTTP(rec, req)
		times = append(times, time.Since(start))
		if rec.Code != http.StatusOK {
			b.Fatalf("summary: got %d %s", rec.Code, rec.Body.String())
		}
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(percentile(times, 0.50), "p50_ms")
	b.ReportMetric(percentile(times, 0.99), "p99_ms")
}

// BenchmarkWriteVisit measures saving a camp visit (with Strada's hooks,
// on the demo database) with the rollup hooks and, side by side, without
// them: what keeping the counts costs a write.
func BenchmarkWriteVisit(b *testing.B) {
	for _, withRollups := range []bool{true, false} {
		name := "with-rollups"
		if !withRollups {
			name = "without-rollups"
		}
		b.Run(name, func(b *testing.B) {
			app := apptest.New(b)
			if !withRollups {
				rollup.Unbind(app)
			}
			team := apptest.Team(b, app, "camp_outreach")
			site, err := app.FindFirstRecordByData(domain.Sites, "kind", "camp")
			if err != nil {
				b.Fatal(err)
			}
			var persons []string
			if err := app.DB().NewQuery("SELECT id FROM persons WHERE team = {:t} LIMIT 3").Bind(dbx.Params{"t": team}).Column(&persons); err != nil {
				b.Fatal(err)
			}
			worker := apptest.User(b, app, apptest.CampWorker).Id
			visits, err := app.FindCachedCollectionByNameOrId(domain.CampVisits)
			if err != nil {
				b.Fatal(err)
			}
			actor := changelog.AppWithActor(app, changelog.Actor{User: worker})
			times := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				v := core.NewRecord(visits)
				v.Load(map[string]any{"team": team, "site": site.Id, "visited_at": time.Now().UTC().Format("2006-01-02 15:04:05.000Z"),
					"workers": []string{worker}, "persons_met": persons, "households_met": i % 5, "topics": []string{"health", "school"}})
				start := time.Now()
				if err := actor.Save(v); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(times)
			b.ReportMetric(percentile(times, 0.50), "p50_ms")
			b.ReportMetric(percentile(times, 0.99), "p99_ms")
		})
	}
}

// BenchmarkCommitToDashboard writes camp visits at 200 a second and
// measures, for each, the time from its commit to the "changed" hint of
// an open dashboard stream that covers it: relay, NATS, hub, coalescing
// and SSE, with the default coalescing window.
func BenchmarkCommitToDashboard(b *testing.B) {
	app := apptest.New(b)
	hub, _ := startEvents(b, app)
	hooks.BindDashboard(app, hub)
	srv := apptest.Serve(b, app)
	stream, code, _ := openStream(b, srv.URL+dashboard.RouteStream+"?ticket="+ticket(b, srv.URL, apptest.Token(b, app, apptest.Supervisor)))
	if code != http.StatusOK {
		b.Fatalf("stream: got %d", code)
	}
	nextEvent(b, stream)
	team := apptest.Team(b, app, "camp_outreach")
	site, err := app.FindFirstRecordByData(domain.Sites, "kind", "camp")
	if err != nil {
		b.Fatal(err)
	}

	type hintAt struct {
		seq int64
		at  time.Time
	}
	var (
		mu    sync.Mutex
		hints []hintAt
		want  int64 = -1
	)
	got := make(chan struct{})
	go func() {
		defer close(got)
		for ev := range stream {
			if ev.event != "changed" {
				continue
			}
			at := time.Now()
			var h dashboard.Hint
			if err := json.Unmarshal([]byte(ev.data), &h); err != nil {
				continue
			}
			mu.Lock()
			hints = append(hints, hintAt{h.Seq, at})
			finished := want >= 0 && h.Seq >= want
			mu.Unlock()
			if finished {
				return
			}
		}
	}()
	type write struct {
		seq int64
		at  time.Time
	}
	writes := make([]write, 0, b.N)
	tick := time.NewTicker(5 * time.Millisecond) // 200 writes a second
	defer tick.Stop()
	b.ResetTimer()
	for range b.N {
		<-tick.C
		v := saveVisit(b, app, team, site.Id)
		at := time.Now()
		e, err := changelog.LastOf(app, domain.CampVisits, v.Id)
		if err != nil {
			b.Fatal(err)
		}
		writes = append(writes, write{e.Seq, at})
	}
	mu.Lock()
	want = writes[len(writes)-1].seq
	reached := false
	for _, h := range hints {
		reached = reached || h.seq >= want
	}
	mu.Unlock()
	if !reached {
		select {
		case <-got:
		case <-time.After(30 * time.Second):
			b.Fatalf("no hint reached seq %d within 30s", want)
		}
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	latencies := make([]time.Duration, 0, len(writes))
	for _, w := range writes {
		for _, h := range hints {
			if h.seq >= w.seq {
				latencies = append(latencies, max(0, h.at.Sub(w.at)))
				break
			}
		}
	}
	if len(latencies) != len(writes) {
		b.Fatalf("got hints for %d of %d writes", len(latencies), len(writes))
	}
	slices.Sort(latencies)
	b.ReportMetric(percentile(latencies, 0.50), "p50_ms")
	b.ReportMetric(percentile(latencies, 0.99), "p99_ms")
}
