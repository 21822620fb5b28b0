package events_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/events"
	"strada/internal/natsbus"
)

// writePersons saves n new persons of team through app, split over
// several concurrent writers, and counts each successful write in done.
func writePersons(app core.App, team string, n, writers int, done *atomic.Int64) error {
	persons, err := app.FindCachedCollectionByNameOrId(domain.Persons)
	if err != nil {
		return err
	}
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		count := n / writers
		if w == 0 {
			count += n % writers
		}
		wg.Go(func() {
			var last *core.Record
			for i := range count {
				// Alternate creates and updates of the last person.
				if i%2 == 1 {
					last.Set("notes", "updated "+strconv.Itoa(i))
					if err := app.Save(last); err != nil {
						errs[w] = err
						return
					}
				} else {
					last = core.NewRecord(persons)
					last.Load(map[string]any{"team": team, "consent": "verbal"})
					if err := app.Save(last); err != nil {
						errs[w] = err
						return
					}
				}
				if done != nil {
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// TestRelayDeliversAfterNATSRestart stops the NATS server during 2,000
// writes and starts it again on the same store and port: the writes keep
// succeeding while it is down, and afterwards every change is in the stream
// exactly once, in order.
func TestRelayDeliversAfterNATSRestart(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	team := apptest.Team(t, app, "camp_outreach")
	store := t.TempDir()
	srv, err := natsbus.StartServer(store, "127.0.0.1:-1")
	if err != nil {
		t.Fatal(err)
	}
	listen := srv.Addr().(*net.TCPAddr).String()
	defer func() { srv.Shutdown() }()
	bus, err := natsbus.Start(natsbus.Config{URL: srv.ClientURL(), NKeyFile: filepath.Join(store, natsbus.ProcessSeedFile), Name: "restart"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	relay := startRelay(t, app, app.Log, bus.JS)

	// 500 writes with NATS up, 1,000 while it stops and stays down, 500
	// while it starts again.
	var done atomic.Int64
	if err := writePersons(app, team, 500, 2, &done); err != nil {
		t.Fatalf("writes before the stop: %v", err)
	}
	down := make(chan error, 1)
	go func() { down <- writePersons(app, team, 1000, 2, &done) }()
	srv.Shutdown()
	srv.WaitForShutdown()
	if err := <-down; err != nil {
		t.Fatalf("writes while NATS is down: got %v, want none", err)
	}
	last, err := changelog.LastSeq(app)
	if err != nil {
		t.Fatal(err)
	}
	hwm, err := relay.HighWaterMark()
	if err != nil {
		t.Fatal(err)
	}
	if hwm >= last {
		t.Fatalf("got high-water mark %d with NATS down, want below the last change %d", hwm, last)
	}

	up := make(chan error, 1)
	go func() { up <- writePersons(app, team, 500, 2, &done) }()
	srv, err = natsbus.StartServer(store, listen)
	if err != nil {
		t.Fatalf("restart nats on %s: %v", listen, err)
	}
	if err := <-up; err != nil {
		t.Fatalf("writes while NATS restarts: %v", err)
	}
	if got := done.Load(); got != 2000 {
		t.Fatalf("got %d successful writes, want 2000", got)
	}

	waitDrained(t, app, relay.Relay, time.Minute)
	assertStreamIsLog(t, app, readStream(t, bus.JS), allEntries(t, app))
	if st := relay.Stats(); st.PublishErrors == 0 {
		t.Fatalf("got no publish errors while NATS was down, want some: %+v", st)
	}
}

// setMark stores the relay's high-water mark as a crashed relay would
// have left it.
func setMark(t testing.TB, app core.App, seq int64) {
	t.Helper()
	_, err := app.NonconcurrentDB().NewQuery(
		`INSERT INTO strada_state (key, value) VALUES ('relay.published', {:v})
		 ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
	).Bind(dbx.Params{"v": strconv.FormatInt(seq, 10)}).Execute()
	if err != nil {
		t.Fatalf("set mark: %v", err)
	}
}

// publishDirect stores the events of entries in the stream as the relay
// of app does, without advancing any mark.
func publishDirect(t testing.TB, app core.App, js jetstream.JetStream, entries []changelog.Entry) {
	t.Helper()
	codec := events.NewCodec(app)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, events.StreamConfig(events.DefaultStreamOptions)); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	for _, e := range entries {
		msg, err := codec.Message(events.FromEntry(e))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatalf("publish %d: %v", e.Seq, err)
		}
	}
}

// TestRelayStartsFromMarkAndStream starts a relay over a stream and a mark
// left in every state a stop or crash can leave them, and checks that the
// stream ends up holding each change exactly once and that the relay
// publishes only what the stream lacks.
func TestRelayStartsFromMarkAndStream(t *testing.T) {
	t.Parallel()
	// The demo data's change log has well over 100 rows; positions are
	// counts of rows from the start of the log.
	cases := []struct {
		name     string
		inStream int // rows already in the stream
		mark     int // rows the stored mark covers
	}{
		{"fresh", 0, 0},
		{"clean stop", 60, 60},
		{"crash between ack and mark", 60, 20},
		{"crash before the first mark", 60, 0},
		{"stream lost its tail", 20, 60},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			app := apptest.New(t)
			bus := startBus(t)
			entries := allEntries(t, app)
			if len(entries) < 100 {
				t.Fatalf("got %d demo changes, want at least 100", len(entries))
			}
			publishDirect(t, app, bus.JS, entries[:c.inStream])
			if c.mark > 0 {
				setMark(t, app, entries[c.mark-1].Seq)
			}

			relay := startRelay(t, app, app.Log, bus.JS)
			waitDrained(t, app, relay.Relay, 30*time.Second)
			assertStreamIsLog(t, app, readStream(t, bus.JS), entries)

			st := relay.Stats()
			if want := uint64(len(entries) - c.inStream); st.Published != want {
				t.Fatalf("got %d events published, want %d (only those the stream lacked)", st.Published, want)
			}
			var wantFrom int64
			if c.inStream > 0 {
				wantFrom = entries[c.inStream-1].Seq
			}
			if st.ReconciledFrom != wantFrom {
				t.Fatalf("got reconciled from %d, want %d", st.ReconciledFrom, wantFrom)
			}
		})
	}
}

// TestRelayResumesAfterRestart stops a relay, writes more, and starts a new
// relay: it publishes only the new changes, from the stored mark.
func TestRelayResumesAfterRestart(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	team := apptest.Team(t, app, "prison_secretariat")
	bus := startBus(t)

	first := startRelay(t, app, app.Log, bus.JS)
	if err := writePersons(app, team, 40, 2, nil); err != nil {
		t.Fatal(err)
	}
	mark := waitDrained(t, app, first.Relay, 30*time.Second)
	first.Stop()

	if err := writePersons(app, team, 30, 1, nil); err != nil {
		t.Fatal(err)
	}
	second := startRelay(t, app, app.Log, bus.JS)
	waitDrained(t, app, second.Relay, 30*time.Second)
	assertStreamIsLog(t, app, readStream(t, bus.JS), allEntries(t, app))
	st := second.Stats()
	if st.Published != 30 || st.ReconciledFrom != mark {
		t.Fatalf("got published %d reconciled from %d, want 30 from %d", st.Published, st.ReconciledFrom, mark)
	}
}

// TestRelayRecreatesRemovedStream removes the stream under a running relay:
// the relay creates it again, with its settings, and the changes made
// afterwards reach it.
func TestRelayRecreatesRemovedStream(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	team := apptest.Team(t, app, "camp_outreach")
	bus := startBus(t)
	relay := startRelay(t, app, app.Log, bus.JS)
	mark := waitDrained(t, app, relay.Relay, 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.JS.DeleteStream(ctx, events.StreamName); err != nil {
		t.Fatal(err)
	}
	if err := writePersons(app, team, 10, 1, nil); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, app, relay.Relay, 30*time.Second)
	entries, err := changelog.Since(app, mark, 100)
	if err != nil {
		t.Fatal(err)
	}
	assertStreamIsLog(t, app, readStream(t, bus.JS), entries)
	if st := relay.Stats(); !st.StreamReady {
		t.Fatalf("got stats %+v, want the stream ready again", st)
	}
	stream, err := bus.JS.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if got := stream.CachedInfo().Config; got.MaxConsumers != events.DefaultStreamOptions.MaxConsumers || got.MaxAge != events.DefaultStreamOptions.MaxAge {
		t.Fatalf("recreated stream: got max consumers %d, max age %s; want the configured ones", got.MaxConsumers, got.MaxAge)
	}
}

// TestRelayWaitsForNATS starts a relay while NATS is unreachable: writes
// succeed, errors are counted, and the backlog drains once NATS is there.
func TestRelayWaitsForNATS(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	team := apptest.Team(t, app, "camp_outreach")
	store := t.TempDir()
	srv, err := natsbus.StartServer(store, "127.0.0.1:-1")
	if err != nil {
		t.Fatal(err)
	}
	listen := srv.Addr().(*net.TCPAddr).String()
	bus, err := natsbus.Start(natsbus.Config{URL: srv.ClientURL(), NKeyFile: filepath.Join(store, natsbus.ProcessSeedFile), Name: "late"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	srv.Shutdown()
	srv.WaitForShutdown()

	relay := startRelay(t, app, app.Log, bus.JS)
	if err := writePersons(app, team, 20, 2, nil); err != nil {
		t.Fatalf("writes with NATS down: %v", err)
	}
	waitFor(t, 30*time.Second, "relay error", func() (bool, error) {
		st := relay.Stats()
		return st.PublishErrors > 0 && st.LastError != "" && !st.RetryingSince.IsZero(), nil
	})
	if st := relay.Stats(); st.StreamReady || st.Published != 0 {
		t.Fatalf("got stats %+v with NATS down, want stream not ready and nothing published", st)
	}

	srv, err = natsbus.StartServer(store, listen)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	waitDrained(t, app, relay.Relay, 30*time.Second)
	assertStreamIsLog(t, app, readStream(t, bus.JS), allEntries(t, app))
	if st := relay.Stats(); !st.RetryingSince.IsZero() {
		t.Fatalf("got retrying since %s after the drain, want zero", st.RetryingSince)
	}
}

// TestRelayAfterDatabaseRestore starts a relay on a log restored from an
// older copy while the stream still holds the later events: the mark stops
// at the log's last change, so the sequences the log will use again are
// not counted as published.
func TestRelayAfterDatabaseRestore(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	bus := startBus(t)
	entries := allEntries(t, app)
	publishDirect(t, app, bus.JS, entries)

	// The copy was taken 20 changes before the end, with the relay 20
	// further behind.
	restoredLast := entries[len(entries)-21].Seq
	_, err := app.NonconcurrentDB().NewQuery(`DELETE FROM strada_changes WHERE seq > {:seq};
		UPDATE sqlite_sequence SET seq = {:seq} WHERE name = 'strada_changes'`).
		Bind(dbx.Params{"seq": restoredLast}).Execute()
	if err != nil {
		t.Fatal(err)
	}
	setMark(t, app, entries[len(entries)-41].Seq)

	relay := startRelay(t, app, app.Log, bus.JS)
	waitFor(t, 30*time.Second, "relay ready", func() (bool, error) { return relay.Stats().StreamReady, nil })
	hwm, err := relay.HighWaterMark()
	if err != nil {
		t.Fatal(err)
	}
	if st := relay.Stats(); hwm != restoredLast || st.LastPublished != restoredLast || st.Published != 0 {
		t.Fatalf("got mark %d, last published %d, %d published; want mark %d (the log's last change), nothing published",
			hwm, st.LastPublished, st.Published, restoredLast)
	}
}
