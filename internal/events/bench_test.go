package events_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/events"
)

// benchApp returns a test app with the hooks of variant: "off" (none),
// "changelog" (only the change log's) or "all" (every Strada hook).
func benchApp(b *testing.B, variant string) core.App {
	b.Helper()
	switch variant {
	case "off":
		return apptest.NewUnbound(b)
	case "changelog":
		app := apptest.NewUnbound(b)
		log := changelog.New(domain.Reference)
		app.OnRecordCreateExecute(domain.Logged...).BindFunc(log.OnCreateExecute)
		app.OnRecordUpdateExecute(domain.Logged...).BindFunc(log.OnUpdateExecute)
		app.OnRecordDeleteExecute(domain.Logged...).BindFunc(log.OnDeleteExecute)
		return app
	case "all":
		return apptest.New(b)
	}
	b.Fatalf("unknown variant %q", variant)
	return nil
}

// newPerson returns an unsaved person with its id and code set, as a
// device sends it, so that every variant does the same work.
func newPerson(persons *core.Collection, team string) *core.Record {
	id := uuid.Must(uuid.NewV7()).String()
	p := core.NewRecord(persons)
	p.Load(map[string]any{
		"id": id, "code": "B-" + strings.ToUpper(strings.ReplaceAll(id, "-", "")[20:32]),
		"team": team, "consent": "verbal", "given_name": "Bench", "notes": "bench",
	})
	return p
}

// BenchmarkWrites measures single-writer saves of persons, creates and
// updates, with Strada's hooks off, with only the change log's hooks, and
// with every hook. The change log's cost is changelog against off. An
// update loads the record and saves one changed field, as the REST and
// sync paths do.
func BenchmarkWrites(b *testing.B) {
	for _, op := range []string{"create", "update"} {
		for _, variant := range []string{"off", "changelog", "all"} {
			b.Run(fmt.Sprintf("op=%s/hooks=%s", op, variant), func(b *testing.B) {
				app := benchApp(b, variant)
				team := apptest.Team(b, app, "camp_outreach")
				user := apptest.User(b, app, apptest.CampWorker)
				actorApp := changelog.AppWithActor(app, changelog.Actor{User: user.Id, Device: "bench"})
				persons, err := app.FindCachedCollectionByNameOrId(domain.Persons)
				if err != nil {
					b.Fatal(err)
				}
				pool := make([]*core.Record, 64)
				if op == "update" {
					for i := range pool {
						pool[i] = newPerson(persons, team)
						if err := actorApp.Save(pool[i]); err != nil {
							b.Fatal(err)
						}
					}
				}
				write := func(i int) {
					var r *core.Record
					var err error
					if op == "create" {
						r = newPerson(persons, team)
					} else {
						r, err = app.FindRecordById(persons, pool[i%len(pool)].Id)
						if err != nil {
							b.Fatal(err)
						}
						r.Set("notes", fmt.Sprintf("update %d", i))
					}
					if err := actorApp.Save(r); err != nil {
						b.Fatal(err)
					}
				}
				// Warm the caches so that no variant pays for being first.
				for i := range 200 {
					write(i)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					write(i)
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
			})
		}
	}
}

// appendBacklog writes n change rows in one transaction, as committed
// writes would have left them while NATS was away.
func appendBacklog(b *testing.B, app *apptest.App, n int) {
	b.Helper()
	team := apptest.Team(b, app, "camp_outreach")
	err := app.RunInTransaction(func(tx core.App) error {
		for i := range n {
			_, err := app.Log.Append(tx, changelog.Entry{
				Collection: domain.Persons, RecordID: uuid.Must(uuid.NewV7()).String(), Op: changelog.OpUpdate,
				Version: i%9 + 2, Team: team, Fields: []string{"notes", "languages"},
				Actor: changelog.Actor{User: "u1abcdefghijklm", Device: "d1", Mutation: uuid.Must(uuid.NewV7()).String()},
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("append backlog: %v", err)
	}
}

// drain starts a relay into a fresh embedded server and waits until it
// has published the whole log.
func drain(b *testing.B, app *apptest.App) {
	b.Helper()
	bus := startBus(b)
	relay := startRelay(b, app, app.Log, bus.JS)
	waitDrained(b, app, relay.Relay, 10*time.Minute)
	relay.Stop()
	bus.Close()
}

// BenchmarkRelayThroughput measures how fast the relay moves a backlog
// into the embedded JetStream; one op is one message.
func BenchmarkRelayThroughput(b *testing.B) {
	app := apptest.New(b)
	appendBacklog(b, app, b.N)
	last, err := changelog.LastSeq(app)
	if err != nil {
		b.Fatal(err)
	}
	setMark(b, app, last-int64(b.N))
	b.ResetTimer()
	drain(b, app)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkBacklogDrain100k measures the drain of a 100,000-row backlog
// into a fresh stream; one op is one whole drain.
func BenchmarkBacklogDrain100k(b *testing.B) {
	const backlog = 100_000
	app := apptest.New(b)
	appendBacklog(b, app, backlog)
	last, err := changelog.LastSeq(app)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		setMark(b, app, last-backlog)
		b.StartTimer()
		drain(b, app)
	}
	b.StopTimer()
	perDrain := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(perDrain, "s/drain")
	b.ReportMetric(backlog/perDrain, "msgs/s")
}

// BenchmarkCommitToSubscriberLatency writes 200 persons per second and
// measures the time from each write's commit to a hub subscriber receiving
// its event through the relay and NATS. Run it with -benchtime=2000x or
// more for a stable p99.
func BenchmarkCommitToSubscriberLatency(b *testing.B) {
	const rate = 200
	app := apptest.New(b)
	team := apptest.Team(b, app, "camp_outreach")
	persons, err := app.FindCachedCollectionByNameOrId(domain.Persons)
	if err != nil {
		b.Fatal(err)
	}
	bus := startBus(b)
	hub := events.NewHub(quiet)
	if err := hub.Listen(bus.Conn, events.NewCodec(app)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(hub.Close)
	relay := startRelay(b, app, app.Log, bus.JS)
	waitDrained(b, app, relay.Relay, time.Minute)

	var mu sync.Mutex
	committed := make(map[string]time.Time, b.N)
	received := make(map[string]time.Time, b.N)
	all := make(chan struct{})
	ctx := b.Context()
	sub := hub.Subscribe(ctx, events.Scope{Teams: []string{team}})
	go func() {
		for ev := range sub.C {
			now := time.Now()
			mu.Lock()
			received[ev.RecordID] = now
			n := len(received)
			mu.Unlock()
			if n == b.N {
				close(all)
				return
			}
		}
	}()

	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		<-tick.C
		p := newPerson(persons, team)
		err := app.RunInTransaction(func(tx core.App) error {
			// Registered before the save, so it runs first after commit.
			tx.TxInfo().OnComplete(func(txErr error) error {
				if txErr == nil {
					mu.Lock()
					committed[p.Id] = time.Now()
					mu.Unlock()
				}
				return nil
			})
			return tx.Save(p)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		b.Fatalf("got %d of %d events within 30s", len(received), b.N)
	}
	b.StopTimer()

	mu.Lock()
	defer mu.Unlock()
	lat := make([]time.Duration, 0, b.N)
	for id, c := range committed {
		r, ok := received[id]
		if !ok {
			b.Fatalf("no event for %s", id)
		}
		lat = append(lat, r.Sub(c))
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}
