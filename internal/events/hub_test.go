package events_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/events"
	"strada/internal/natsbus"
)

// collect reads n events from sub, or fails after timeout.
func collect(t testing.TB, sub *events.Subscription, n int, timeout time.Duration) []events.Event {
	t.Helper()
	out := make([]events.Event, 0, n)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for len(out) < n {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				t.Fatalf("subscription closed after %d of %d events", len(out), n)
			}
			out = append(out, ev)
		case <-timer.C:
			t.Fatalf("got %d of %d events within %s", len(out), n, timeout)
		}
	}
	return out
}

// assertNoMore checks that sub receives nothing more for a while.
func assertNoMore(t testing.TB, sub *events.Subscription, wait time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-sub.C:
		if ok {
			t.Fatalf("got extra event %d (%s %s team %q), want none", ev.Seq, ev.Op, ev.Collection, ev.Team)
		}
	case <-time.After(wait):
	}
}

func seqs(evs []events.Event) []int64 {
	out := make([]int64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}

// TestHubScopes relays the demo data through NATS to a hub and checks that
// each subscriber receives exactly the events of its scope, in order: a
// camp team subscriber never sees a prison event.
func TestHubScopes(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	camp := apptest.Team(t, app, "camp_outreach")
	prison := apptest.Team(t, app, "prison_secretariat")
	bus := startBus(t)
	hub := events.NewHub(quiet)
	if err := hub.Listen(bus.Conn, events.NewCodec(app)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)

	scopes := []struct {
		name  string
		scope events.Scope
	}{
		{"camp team", events.Scope{Teams: []string{camp}}},
		{"camp team and reference data", events.Scope{Teams: []string{camp}, Global: true}},
		{"prison team", events.Scope{Teams: []string{prison}}},
		{"both teams", events.Scope{Teams: []string{camp, prison}}},
		{"reference data only", events.Scope{Global: true}},
		{"operator", events.Scope{All: true}},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	subs := make([]*events.Subscription, len(scopes))
	for i, s := range scopes {
		subs[i] = hub.Subscribe(ctx, s.scope)
	}
	if got := hub.Subscribers(); got != len(scopes) {
		t.Fatalf("got %d subscribers, want %d", got, len(scopes))
	}

	entries := allEntries(t, app)
	relay := startRelay(t, app, app.Log, bus.JS)
	waitDrained(t, app, relay.Relay, 30*time.Second)

	for i, s := range scopes {
		t.Run(s.name, func(t *testing.T) {
			var want []int64
			for _, e := range entries {
				if s.scope.Allows(events.FromEntry(e)) {
					want = append(want, e.Seq)
				}
			}
			if len(want) == 0 {
				t.Fatal("no demo event in scope: the case proves nothing")
			}
			got := collect(t, subs[i], len(want), 10*time.Second)
			if !slices.Equal(seqs(got), want) {
				t.Fatalf("got seqs %v, want %v", seqs(got), want)
			}
			for _, ev := range got {
				if !s.scope.All && ev.Team != "" && !slices.Contains(s.scope.Teams, ev.Team) {
					t.Fatalf("got event %d of team %s outside the scope", ev.Seq, ev.Team)
				}
			}
			assertNoMore(t, subs[i], 100*time.Millisecond)
		})
	}

	cancel()
	waitFor(t, 5*time.Second, "subscriptions end", func() (bool, error) { return hub.Subscribers() == 0, nil })
	for i := range subs {
		if _, ok := <-subs[i].C; ok {
			t.Fatalf("subscription %d: channel still open after its context ended", i)
		}
	}
}

func TestScopeAllows(t *testing.T) {
	t.Parallel()
	camp := events.Event{Team: "camp"}
	prison := events.Event{Team: "prison"}
	global := events.Event{}
	cases := []struct {
		name                 string
		scope                events.Scope
		camp, prison, global bool
	}{
		{"nothing", events.Scope{}, false, false, false},
		{"camp", events.Scope{Teams: []string{"camp"}}, true, false, false},
		{"camp and global", events.Scope{Teams: []string{"camp"}, Global: true}, true, false, true},
		{"both teams", events.Scope{Teams: []string{"camp", "prison"}}, true, true, false},
		{"all", events.Scope{All: true}, true, true, true},
	}
	for _, c := range cases {
		got := []bool{c.scope.Allows(camp), c.scope.Allows(prison), c.scope.Allows(global)}
		want := []bool{c.camp, c.prison, c.global}
		if !slices.Equal(got, want) {
			t.Errorf("%s: got camp/prison/global %v, want %v", c.name, got, want)
		}
	}
}

// TestTwoHubsSeeEveryEvent connects two hubs to one NATS server over two
// connections, as two server processes would, with the relay on a third:
// each hub sees every event.
func TestTwoHubsSeeEveryEvent(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	team := apptest.Team(t, app, "camp_outreach")
	store := t.TempDir()
	srv, err := natsbus.StartServer(store, "127.0.0.1:-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	connect := func(name string) *natsbus.Bus {
		bus, err := natsbus.Start(natsbus.Config{URL: srv.ClientURL(), NKeyFile: filepath.Join(store, natsbus.ProcessSeedFile), Name: name}, quiet)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bus.Close)
		return bus
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var subs []*events.Subscription
	for _, name := range []string{"process-a", "process-b"} {
		hub := events.NewHub(quiet)
		nc := connect(name).Conn
		if err := hub.Listen(nc, events.NewCodec(app)); err != nil {
			t.Fatal(err)
		}
		// The server knows of the subscription before anything is published.
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(hub.Close)
		subs = append(subs, hub.Subscribe(ctx, events.Scope{All: true}))
	}
	before, err := changelog.LastSeq(app)
	if err != nil {
		t.Fatal(err)
	}
	relay := startRelay(t, app, app.Log, connect("relay").JS)
	waitDrained(t, app, relay.Relay, 30*time.Second)
	if err := writePersons(app, team, 40, 2, nil); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, app, relay.Relay, 30*time.Second)
	entries := allEntries(t, app)
	var want []int64
	for _, e := range entries {
		want = append(want, e.Seq)
	}
	if want[len(want)-1] <= before {
		t.Fatalf("got last change %d, want new changes after %d", want[len(want)-1], before)
	}
	for i, sub := range subs {
		got := collect(t, sub, len(want), 10*time.Second)
		if !slices.Equal(seqs(got), want) {
			t.Fatalf("hub %d: got %d events %v, want %d %v", i, len(got), seqs(got), len(want), want)
		}
		assertNoMore(t, sub, 50*time.Millisecond)
	}
}

// TestSlowSubscriberKeepsNewest publishes more events than a subscriber's
// buffer while it does not read: it keeps the newest, in order, and a
// reading subscriber of the same hub receives everything.
func TestSlowSubscriberKeepsNewest(t *testing.T) {
	t.Parallel()
	codec := events.NewCodec(apptest.New(t))
	bus := startBus(t)
	hub := events.NewHub(quiet)
	if err := hub.Listen(bus.Conn, codec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow := hub.Subscribe(ctx, events.Scope{All: true})
	fast := hub.Subscribe(ctx, events.Scope{All: true})

	const n, chunk = 1000, 50
	// The fast subscriber reads everything as it comes; the publisher
	// waits for it after each chunk so that only the slow one falls behind.
	var seen, count atomic.Int64
	go func() {
		for ev := range fast.C {
			count.Add(1)
			seen.Store(ev.Seq)
		}
	}()
	// Published on the hub's own connection: the server handles its
	// subscription before these messages.
	pub := bus.Conn
	for i := 1; i <= n; i++ {
		msg, err := codec.Message(events.Event{V: events.SchemaVersion, Seq: int64(i), Collection: "persons", RecordID: "r", Op: changelog.OpUpdate, Team: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
		if i%chunk == 0 {
			waitFor(t, 10*time.Second, "fast subscriber", func() (bool, error) { return seen.Load() == int64(i), nil })
		}
	}

	if got := count.Load(); got != n {
		t.Fatalf("fast subscriber: got %d events, want %d", got, n)
	}
	// Everything was delivered to the fast subscriber, so the hub has
	// offered every event to the slow one too.
	var got []int64
	for len(slow.C) > 0 {
		got = append(got, (<-slow.C).Seq)
	}
	if len(got) == 0 || len(got) >= n {
		t.Fatalf("slow subscriber: got %d events, want a full buffer of fewer than %d", len(got), n)
	}
	want := make([]int64, 0, len(got))
	for s := n - len(got) + 1; s <= n; s++ {
		want = append(want, int64(s))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("slow subscriber: got %v, want the newest %d events %v", got, len(want), want)
	}
}

// TestHubCloseEndsSubscriptions closes a hub: every subscriber's channel is
// closed and later publishes are not delivered.
func TestHubCloseEndsSubscriptions(t *testing.T) {
	t.Parallel()
	hub := events.NewHub(quiet)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := hub.Subscribe(ctx, events.Scope{All: true})
	b := hub.Subscribe(ctx, events.Scope{Teams: []string{"t"}})
	hub.Publish(events.Event{Seq: 1, Team: "t"})
	hub.Close()
	hub.Publish(events.Event{Seq: 2, Team: "t"})
	for name, sub := range map[string]*events.Subscription{"all": a, "team": b} {
		got := collect(t, sub, 1, time.Second)
		if got[0].Seq != 1 {
			t.Fatalf("%s: got seq %d, want 1", name, got[0].Seq)
		}
		if ev, ok := <-sub.C; ok {
			t.Fatalf("%s: got event %d after close, want the channel closed", name, ev.Seq)
		}
	}
	if got := hub.Subscribers(); got != 0 {
		t.Fatalf("got %d subscribers after close, want 0", got)
	}
}
