package events_test

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/erasure"
	"strada/internal/events"
)

// forge stores a message in the stream as a client other than the relay
// would, and returns its stream sequence.
func forge(t testing.TB, js jetstream.JetStream, msg *nats.Msg) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatalf("forge a message on %s: %v", msg.Subject, err)
	}
	if ack.Duplicate {
		t.Fatalf("forged message on %s taken as a duplicate, want it stored", msg.Subject)
	}
	return ack.Sequence
}

// forgedMsg is a message on subject with a JSON event body and, unless
// empty, the given Nats-Msg-Id.
func forgedMsg(t testing.TB, ev events.Event, id string) *nats.Msg {
	t.Helper()
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(ev.Subject())
	msg.Data = body
	if id != "" {
		msg.Header.Set(nats.MsgIdHdr, id)
	}
	return msg
}

// without returns msgs less those at the given stream sequences.
func without(msgs []stored, streamSeqs ...uint64) []stored {
	return slices.DeleteFunc(slices.Clone(msgs), func(m stored) bool { return slices.Contains(streamSeqs, m.StreamSeq) })
}

func identityOf(t testing.TB, app core.App) string {
	t.Helper()
	id, err := changelog.Identity(app)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestRelaySkipsMessagesItDidNotPublish starts a relay on a stream whose
// last message it did not publish, after a crash left its mark behind:
// whatever that message's id, the relay finds its own last message behind
// it, publishes exactly what the stream lacks, and starts again cleanly.
// No such message moves the mark, or stops the relay.
func TestRelaySkipsMessagesItDidNotPublish(t *testing.T) {
	t.Parallel()
	const inStream, mark, later = 60, 20, 100
	cases := []struct {
		name string
		msg  func(t *testing.T, app core.App, entries []changelog.Entry, i int) *nats.Msg
	}{
		{"no id", func(t *testing.T, _ core.App, entries []changelog.Entry, i int) *nats.Msg {
			return forgedMsg(t, events.FromEntry(entries[i]), "")
		}},
		{"huge id", func(t *testing.T, _ core.App, entries []changelog.Entry, i int) *nats.Msg {
			return forgedMsg(t, events.FromEntry(entries[i]), strconv.FormatInt(math.MaxInt64-int64(i), 10))
		}},
		{"bare sequence of a later change", func(t *testing.T, _ core.App, entries []changelog.Entry, i int) *nats.Msg {
			return forgedMsg(t, events.FromEntry(entries[i]), strconv.FormatInt(entries[i].Seq, 10))
		}},
		{"this log's identity and a later sequence", func(t *testing.T, app core.App, entries []changelog.Entry, i int) *nats.Msg {
			return forgedMsg(t, events.FromEntry(entries[i]), identityOf(t, app)+":"+strconv.FormatInt(entries[i].Seq, 10))
		}},
		{"a made-up code", func(t *testing.T, app core.App, entries []changelog.Entry, i int) *nats.Msg {
			return forgedMsg(t, events.FromEntry(entries[i]), identityOf(t, app)+":"+strconv.FormatInt(entries[i].Seq, 10)+":0123456789abcdef")
		}},
		{"another database's event", func(t *testing.T, _ core.App, entries []changelog.Entry, i int) *nats.Msg {
			msg, err := events.NewCodec(apptest.New(t)).Message(events.FromEntry(entries[i]))
			if err != nil {
				t.Fatal(err)
			}
			return msg
		}},
		{"own event of a change the log does not hold", func(t *testing.T, app core.App, entries []changelog.Entry, i int) *nats.Msg {
			ev := events.FromEntry(entries[i])
			ev.Seq = entries[len(entries)-1].Seq + 1000 + int64(i)
			msg, err := events.NewCodec(app).Message(ev)
			if err != nil {
				t.Fatal(err)
			}
			return msg
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			app := apptest.New(t)
			bus := startBus(t)
			entries := allEntries(t, app)
			if len(entries) <= later+1 {
				t.Fatalf("got %d demo changes, want more than %d", len(entries), later+1)
			}
			publishDirect(t, app, bus.JS, entries[:inStream])
			setMark(t, app, entries[mark-1].Seq)
			forged := []uint64{forge(t, bus.JS, c.msg(t, app, entries, later))}

			relay := startRelay(t, app, app.Log, bus.JS)
			waitDrained(t, app, relay.Relay, 30*time.Second)
			relay.Stop()
			assertStreamIsLog(t, app, without(readStream(t, bus.JS), forged...), entries)
			st := relay.Stats()
			if want := entries[inStream-1].Seq; st.ReconciledFrom != want || st.Published != uint64(len(entries)-inStream) || !st.StreamReady {
				t.Fatalf("got reconciled from %d, %d published, ready %v; want from %d, %d published, ready",
					st.ReconciledFrom, st.Published, st.StreamReady, want, len(entries)-inStream)
			}

			// Started again behind another such message: nothing to do.
			forged = append(forged, forge(t, bus.JS, c.msg(t, app, entries, later+1)))
			again := startRelay(t, app, app.Log, bus.JS)
			waitFor(t, 30*time.Second, "relay ready again", func() (bool, error) { return again.Stats().StreamReady, nil })
			assertStreamIsLog(t, app, without(readStream(t, bus.JS), forged...), entries)
			if st := again.Stats(); st.ReconciledFrom != entries[len(entries)-1].Seq || st.Published != 0 {
				t.Fatalf("after the restart: got reconciled from %d, %d published; want from %d, none published",
					st.ReconciledFrom, st.Published, entries[len(entries)-1].Seq)
			}
		})
	}
}

// TestRelayNotPoisonedByGuessedIDs stores, ahead of the relay, messages
// under every id a client that reads the stream could guess for the next
// changes: the relay's own events are stored all the same, and none is
// taken for a duplicate of a forgery.
func TestRelayNotPoisonedByGuessedIDs(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	team := apptest.Team(t, app, "camp_outreach")
	bus := startBus(t)
	relay := startRelay(t, app, app.Log, bus.JS)
	last := waitDrained(t, app, relay.Relay, 30*time.Second)
	msgs := readStream(t, bus.JS)
	seen := msgs[len(msgs)-1].MsgID
	identity, code := seen[:strings.IndexByte(seen, ':')], seen[strings.LastIndexByte(seen, ':')+1:]

	const n = 20
	var forged []uint64
	for seq := last + 1; seq <= last+n; seq++ {
		s := strconv.FormatInt(seq, 10)
		for _, id := range []string{s, identity + ":" + s, identity + ":" + s + ":" + code} {
			ev := events.Event{V: events.SchemaVersion, Seq: seq, Collection: domain.Persons, RecordID: "forged", Op: changelog.OpPurge, Team: team}
			forged = append(forged, forge(t, bus.JS, forgedMsg(t, ev, id)))
		}
	}
	if err := writePersons(app, team, n, 1, nil); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, app, relay.Relay, 30*time.Second)
	assertStreamIsLog(t, app, without(readStream(t, bus.JS), forged...), allEntries(t, app))
}

// TestRelayLeavesOldSubjects starts a relay on a stream that holds events
// of the subject layout without the record id: they are removed, since an
// erasure could not find them.
func TestRelayLeavesOldSubjects(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	bus := startBus(t)
	entries := allEntries(t, app)
	publishDirect(t, app, bus.JS, entries[:10])
	ev := events.FromEntry(entries[10])
	old := forgedMsg(t, ev, strconv.FormatInt(ev.Seq, 10))
	old.Subject = strings.Join(strings.Split(ev.Subject(), ".")[:5], ".")
	forge(t, bus.JS, old)

	relay := startRelay(t, app, app.Log, bus.JS)
	waitDrained(t, app, relay.Relay, 30*time.Second)
	assertStreamIsLog(t, app, readStream(t, bus.JS), entries)
}

// streamSettings reads the stream's configuration.
func streamSettings(t testing.TB, js jetstream.JetStream) jetstream.StreamConfig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	return stream.CachedInfo().Config
}

// TestRelayPutsBackChangedSettings changes the stream's settings under a
// running relay, as a client with stream rights could: before its next
// publish the relay puts them back, and every later change is kept (what
// the change itself removed is gone).
func TestRelayPutsBackChangedSettings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(c *jetstream.StreamConfig)
	}{
		{"one message kept", func(c *jetstream.StreamConfig) { c.MaxMsgs = 1 }},
		{"one message per subject", func(c *jetstream.StreamConfig) { c.MaxMsgsPerSubject = 1 }},
		{"kept one second", func(c *jetstream.StreamConfig) { c.MaxAge, c.Duplicates = time.Second, time.Second }},
		{"copied to another subject", func(c *jetstream.StreamConfig) {
			c.RePublish = &jetstream.RePublish{Source: ">", Destination: "copy.>"}
		}},
		{"fewer subjects", func(c *jetstream.StreamConfig) { c.Subjects = []string{events.SubjectPrefix + ".global.>"} }},
		{"no acknowledgements", func(c *jetstream.StreamConfig) { c.NoAck = true }},
		{"short duplicate window", func(c *jetstream.StreamConfig) { c.Duplicates = 100 * time.Millisecond }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			app := apptest.New(t)
			team := apptest.Team(t, app, "camp_outreach")
			bus := startBus(t)
			relay := startRelay(t, app, app.Log, bus.JS)
			mark := waitDrained(t, app, relay.Relay, 30*time.Second)

			cfg := streamSettings(t, bus.JS)
			c.change(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := bus.JS.UpdateStream(ctx, cfg); err != nil {
				t.Fatalf("change the stream: %v", err)
			}
			if err := writePersons(app, team, 30, 1, nil); err != nil {
				t.Fatal(err)
			}
			waitDrained(t, app, relay.Relay, 30*time.Second)
			want := events.StreamConfig(events.DefaultStreamOptions)
			got := streamSettings(t, bus.JS)
			if !slices.Equal(got.Subjects, want.Subjects) || got.MaxMsgs != -1 || got.MaxMsgsPerSubject != -1 || got.MaxAge != want.MaxAge ||
				got.RePublish != nil || got.NoAck || got.Duplicates != want.Duplicates {
				t.Fatalf("after the relay published: got subjects %v, max msgs %d, per subject %d, max age %s, republish %v, no ack %v, duplicates %s; want the configured %v, -1, -1, %s, nil, false, %s",
					got.Subjects, got.MaxMsgs, got.MaxMsgsPerSubject, got.MaxAge, got.RePublish, got.NoAck, got.Duplicates, want.Subjects, want.MaxAge, want.Duplicates)
			}
			after, err := changelog.Since(app, mark, 100)
			if err != nil {
				t.Fatal(err)
			}
			msgs := slices.DeleteFunc(readStream(t, bus.JS), func(m stored) bool { return m.Event.Seq <= mark })
			assertStreamIsLog(t, app, msgs, after)
		})
	}
}

// TestRelayRefusesStreamItCannotRepair puts the stream in states the relay
// cannot put right: it publishes nothing, moves no mark and says why,
// until an operator removes the stream; then it creates it again and
// publishes the backlog.
func TestRelayRefusesStreamItCannotRepair(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// change returns the streams to remove afterwards.
		change  func(t *testing.T, ctx context.Context, js jetstream.JetStream) []string
		wantErr string
	}{
		{"sealed", func(t *testing.T, ctx context.Context, js jetstream.JetStream) []string {
			cfg := streamSettings(t, js)
			cfg.Sealed = true
			if _, err := js.UpdateStream(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			return []string{events.StreamName}
		}, "sealed"},
		{"replaced by a memory stream", func(t *testing.T, ctx context.Context, js jetstream.JetStream) []string {
			if err := js.DeleteStream(ctx, events.StreamName); err != nil {
				t.Fatal(err)
			}
			cfg := events.StreamConfig(events.DefaultStreamOptions)
			cfg.Storage, cfg.MaxBytes = jetstream.MemoryStorage, 1<<20
			if _, err := js.CreateStream(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			return []string{events.StreamName}
		}, "storage"},
		{"purges denied", func(t *testing.T, ctx context.Context, js jetstream.JetStream) []string {
			cfg := streamSettings(t, js)
			cfg.DenyPurge = true
			if _, err := js.UpdateStream(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			return []string{events.StreamName}
		}, "deny purge"},
		{"replaced by another stream on its subjects", func(t *testing.T, ctx context.Context, js jetstream.JetStream) []string {
			if err := js.DeleteStream(ctx, events.StreamName); err != nil {
				t.Fatal(err)
			}
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TAKEN", Subjects: []string{events.SubjectPrefix + ".>"}}); err != nil {
				t.Fatal(err)
			}
			return []string{"TAKEN"}
		}, "subjects overlap"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			app := apptest.New(t)
			team := apptest.Team(t, app, "camp_outreach")
			bus := startBus(t)
			relay := startRelay(t, app, app.Log, bus.JS)
			mark := waitDrained(t, app, relay.Relay, 30*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			remove := c.change(t, ctx, bus.JS)
			errorsBefore := relay.Stats().PublishErrors

			if err := writePersons(app, team, 10, 1, nil); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 30*time.Second, "relay refusing", func() (bool, error) {
				st := relay.Stats()
				return st.PublishErrors > errorsBefore+1 && !st.StreamReady, nil
			})
			st := relay.Stats()
			if !strings.Contains(st.LastError, c.wantErr) {
				t.Fatalf("got last error %q, want one containing %q", st.LastError, c.wantErr)
			}
			if hwm, err := relay.HighWaterMark(); err != nil || hwm != mark {
				t.Fatalf("got mark %d (%v) while refusing, want it kept at %d", hwm, err, mark)
			}
			for _, name := range remove {
				stream, err := bus.JS.Stream(ctx, name)
				if err != nil {
					t.Fatal(err)
				}
				if got := stream.CachedInfo().State.LastSeq; name != events.StreamName && got != 0 {
					t.Fatalf("stream %s got %d messages, want none", name, got)
				}
				if err := bus.JS.DeleteStream(ctx, name); err != nil {
					t.Fatal(err)
				}
			}

			waitDrained(t, app, relay.Relay, 30*time.Second)
			after, err := changelog.Since(app, mark, 100)
			if err != nil {
				t.Fatal(err)
			}
			assertStreamIsLog(t, app, readStream(t, bus.JS), after)
		})
	}
}

// TestErasureEmptiesStream erases a person whose records are in the
// stream: every message about them is removed and only the purge events
// remain, so the stream holds exactly what the scrubbed log holds.
func TestErasureEmptiesStream(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	f := newFixture(t, app, false)
	bus := startBus(t)
	relay := startRelay(t, app, app.Log, bus.JS)

	p := core.NewRecord(f.persons)
	p.Load(map[string]any{"team": f.campTeam, "consent": "verbal", "notes": "first"})
	if err := f.campApp.Save(p); err != nil {
		t.Fatal(err)
	}
	p.Set("notes", "second")
	if err := f.campApp.Save(p); err != nil {
		t.Fatal(err)
	}
	r := core.NewRecord(f.referrals)
	r.Load(map[string]any{"team": f.campTeam, "person": p.Id, "service": f.service, "reason": "r", "status": domain.StatusSent})
	if err := f.campApp.Save(r); err != nil {
		t.Fatal(err)
	}
	// A record that moved team leaves events under both teams.
	moved := core.NewRecord(f.persons)
	moved.Load(map[string]any{"team": f.campTeam, "consent": "verbal"})
	if err := f.supApp.Save(moved); err != nil {
		t.Fatal(err)
	}
	moved.Set("team", f.prisonTeam)
	if err := f.supApp.Save(moved); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, app, relay.Relay, 30*time.Second)
	about := func(msgs []stored, ids ...string) (n int) {
		for _, m := range msgs {
			if slices.Contains(ids, m.Event.RecordID) && m.Event.Op != changelog.OpPurge {
				n++
			}
		}
		return n
	}
	if got := about(readStream(t, bus.JS), p.Id, r.Id, moved.Id); got < 6 {
		t.Fatalf("got %d messages about the records before the erasure, want at least 6", got)
	}

	actor := changelog.Actor{User: f.supervisor.Id}
	for _, id := range []string{p.Id, moved.Id} {
		if _, err := erasure.Erase(context.Background(), app, id, actor, f.supervisor.Id, "test"); err != nil {
			t.Fatalf("erase %s: %v", id, err)
		}
	}
	waitDrained(t, app, relay.Relay, 30*time.Second)
	msgs := readStream(t, bus.JS)
	if got := about(msgs, p.Id, r.Id, moved.Id); got != 0 {
		t.Fatalf("got %d messages about the erased records, want none", got)
	}
	assertStreamIsLog(t, app, msgs, allEntries(t, app))
	var purges []string
	for _, m := range msgs {
		if m.Event.Op == changelog.OpPurge {
			purges = append(purges, m.Event.RecordID)
		}
	}
	for _, id := range []string{p.Id, r.Id, moved.Id} {
		if !slices.Contains(purges, id) {
			t.Fatalf("no purge event for %s in the stream (purges %v)", id, purges)
		}
	}
}

// TestHubPassesOnlyEventsOfItsLog puts messages on the change subjects
// that the relay did not publish: no subscriber receives them, while the
// relay's events arrive.
func TestHubPassesOnlyEventsOfItsLog(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	team := apptest.Team(t, app, "camp_outreach")
	bus := startBus(t)
	relay := startRelay(t, app, app.Log, bus.JS)
	last := waitDrained(t, app, relay.Relay, 30*time.Second)
	hub := events.NewHub(quiet)
	if err := hub.Listen(bus.Conn, events.NewCodec(app)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := hub.Subscribe(ctx, events.Scope{Teams: []string{team}})

	entry, ok, err := changelog.Get(app, last)
	if err != nil || !ok {
		t.Fatalf("last change %d: %v %v", last, ok, err)
	}
	real, err := events.NewCodec(app).Message(events.FromEntry(entry))
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := events.NewCodec(apptest.New(t)).Message(events.Event{V: events.SchemaVersion, Seq: last + 1, Collection: domain.Persons, RecordID: "x", Op: changelog.OpPurge, Team: team})
	if err != nil {
		t.Fatal(err)
	}
	hint := events.Event{V: events.SchemaVersion, Seq: last + 1000, Collection: domain.Persons, RecordID: "x", Op: changelog.OpUpdate, Team: team}
	moved := events.FromEntry(entry)
	moved.Team = team
	moved.Seq = last + 1
	forgeries := []*nats.Msg{
		forgedMsg(t, hint, ""),
		forgedMsg(t, hint, strconv.FormatInt(hint.Seq, 10)),
		forgedMsg(t, hint, identityOf(t, app)+":"+strconv.FormatInt(hint.Seq, 10)+":0123456789abcdef"),
		forgedMsg(t, moved, real.Header.Get(nats.MsgIdHdr)),
		theirs,
		{Subject: events.SubjectPrefix + ".x.persons.create.r", Data: []byte("{not json")},
	}
	for _, m := range forgeries {
		if err := bus.Conn.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "hub rejecting the forgeries", func() (bool, error) {
		return hub.Rejected() == uint64(len(forgeries)), nil
	})
	select {
	case ev := <-sub.C:
		t.Fatalf("got event %+v from a forged message, want none", ev)
	default:
	}

	if err := writePersons(app, team, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	got := collect(t, sub, 1, 10*time.Second)
	if got[0].Seq <= last || got[0].Team != team {
		t.Fatalf("got event %+v, want the new change after %d", got[0], last)
	}
}
