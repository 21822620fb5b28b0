package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/events"
)

func TestSubject(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		ev   events.Event
		want string
	}{
		{"team record", events.Event{Team: "k3x9team0000001", Collection: "persons", Op: changelog.OpCreate, RecordID: "0193a5b2-7c1e-7d40-9a51-3f2b8c6d1e07"},
			"strada.changes.k3x9team0000001.persons.create.0193a5b2-7c1e-7d40-9a51-3f2b8c6d1e07"},
		{"reference data", events.Event{Collection: "services", Op: changelog.OpUpdate, RecordID: "s1"},
			"strada.changes.global.services.update.s1"},
		{"tombstone", events.Event{Team: "t1", Collection: "referrals", Op: changelog.OpDelete, RecordID: "r1"},
			"strada.changes.t1.referrals.delete.r1"},
		{"separators and wildcards made safe", events.Event{Team: "a.b*c>d e", Collection: "x.y", Op: "p\tq", RecordID: "i.d>"},
			"strada.changes.a_b_c_d_e.x_y.p_q.i_d_"},
	}
	for _, c := range cases {
		if got := c.ev.Subject(); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
	if got, want := events.TeamSubject("a.b"), "strada.changes.a_b.>"; got != want {
		t.Errorf("team subject: got %q, want %q", got, want)
	}
}

// TestSubjectFilters subscribes with the filters docs/events.md documents
// and checks which events each receives from a real server.
func TestSubjectFilters(t *testing.T) {
	t.Parallel()
	bus := startBus(t)
	evs := []events.Event{
		{Seq: 1, Team: "camp", Collection: "persons", Op: changelog.OpCreate, RecordID: "p1"},
		{Seq: 2, Team: "camp", Collection: "referrals", Op: changelog.OpUpdate, RecordID: "r1"},
		{Seq: 3, Team: "prison", Collection: "referrals", Op: changelog.OpDelete, RecordID: "r2"},
		{Seq: 4, Collection: "services", Op: changelog.OpUpdate, RecordID: "s1"},
		{Seq: 5, Team: "prison", Collection: "referral_events", Op: changelog.OpCreate, RecordID: "e1"},
		{Seq: 6, Team: "camp", Collection: "persons", Op: changelog.OpPurge, RecordID: "p1"},
	}
	cases := []struct {
		filter string
		want   []int64
	}{
		{events.SubjectPrefix + ".>", []int64{1, 2, 3, 4, 5, 6}},
		{events.TeamSubject("camp"), []int64{1, 2, 6}},
		{"strada.changes.*.referrals.>", []int64{2, 3}},
		{"strada.changes.prison.*.delete.*", []int64{3}},
		{"strada.changes.global.>", []int64{4}},
		{"strada.changes.*.*.create.*", []int64{1, 5}},
		{"strada.changes.*.*.purge.*", []int64{6}},
		{"strada.changes.*.persons.*.p1", []int64{1, 6}},
	}
	subs := make([]*nats.Subscription, len(cases))
	for i, c := range cases {
		sub, err := bus.Conn.SubscribeSync(c.filter)
		if err != nil {
			t.Fatalf("subscribe %s: %v", c.filter, err)
		}
		subs[i] = sub
	}
	for _, ev := range evs {
		body, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := bus.Conn.Publish(ev.Subject(), body); err != nil {
			t.Fatal(err)
		}
	}
	if err := bus.Conn.Flush(); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		var got []int64
		for {
			m, err := subs[i].NextMsg(100 * time.Millisecond)
			if err != nil {
				break
			}
			var ev events.Event
			if err := json.Unmarshal(m.Data, &ev); err != nil {
				t.Fatal(err)
			}
			got = append(got, ev.Seq)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("filter %s: got seqs %v, want %v", c.filter, got, c.want)
		}
	}
}

func TestMessage(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	at := time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	entry := changelog.Entry{
		Seq: 4812, Collection: "referrals", RecordID: "0193a5b2-7c1e-7d40-9a51-3f2b8c6d1e07",
		Op: changelog.OpUpdate, Version: 3, Team: "t1", Fields: []string{"status", "outcome"},
		Actor: changelog.Actor{User: "u1", Device: "d1", Mutation: "m1"}, At: at,
	}
	msg, err := events.NewCodec(app).Message(events.FromEntry(entry))
	if err != nil {
		t.Fatal(err)
	}
	identity, err := changelog.Identity(app)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.Split(msg.Header.Get(nats.MsgIdHdr), ":")
	if len(id) != 3 || id[0] != identity || id[1] != "4812" || len(id[2]) != 16 {
		t.Fatalf("got Nats-Msg-Id %q, want %s:4812:<16 hex digits>", msg.Header.Get(nats.MsgIdHdr), identity)
	}
	if msg.Subject != "strada.changes.t1.referrals.update.0193a5b2-7c1e-7d40-9a51-3f2b8c6d1e07" {
		t.Fatalf("got subject %q", msg.Subject)
	}
	want := `{"v":1,"seq":4812,"collection":"referrals","recordId":"0193a5b2-7c1e-7d40-9a51-3f2b8c6d1e07",` +
		`"op":"update","version":3,"team":"t1","fields":["status","outcome"],` +
		`"actor":{"user":"u1","device":"d1","mutation":"m1"},"at":"2026-11-20T09:30:00Z"}`
	if string(msg.Data) != want {
		t.Fatalf("got body\n%s\nwant\n%s", msg.Data, want)
	}
}

// TestCodecVerify checks that a codec accepts the messages it made and
// nothing else: no message without the id it gives, with another
// database's id, or changed after it was made.
func TestCodecVerify(t *testing.T) {
	t.Parallel()
	app, other := apptest.New(t), apptest.New(t)
	codec := events.NewCodec(app)
	identity, err := changelog.Identity(app)
	if err != nil {
		t.Fatal(err)
	}
	otherIdentity, err := changelog.Identity(other)
	if err != nil {
		t.Fatal(err)
	}
	if identity == otherIdentity {
		t.Fatalf("two databases got the same identity %s", identity)
	}
	ev := events.Event{V: events.SchemaVersion, Seq: 77, Collection: "persons", RecordID: "p1", Op: changelog.OpUpdate, Team: "t1", Fields: []string{"notes"}}
	msg, err := codec.Message(ev)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := events.NewCodec(other).Message(ev)
	if err != nil {
		t.Fatal(err)
	}
	id := msg.Header.Get(nats.MsgIdHdr)
	withID := func(id string) nats.Header {
		h := nats.Header{}
		if id != "" {
			h.Set(nats.MsgIdHdr, id)
		}
		return h
	}
	forged := ev
	forged.Team = "t2"
	forgedBody, err := json.Marshal(forged)
	if err != nil {
		t.Fatal(err)
	}
	mac := id[strings.LastIndexByte(id, ':')+1:]
	cases := []struct {
		name    string
		subject string
		header  nats.Header
		body    []byte
	}{
		{"no id", msg.Subject, withID(""), msg.Data},
		{"sequence only", msg.Subject, withID("77"), msg.Data},
		{"huge sequence", msg.Subject, withID(identity + ":9223372036854775807:" + mac), msg.Data},
		{"identity and sequence without code", msg.Subject, withID(identity + ":77"), msg.Data},
		{"another database's message", theirs.Subject, theirs.Header, theirs.Data},
		{"another database's code under our identity", msg.Subject,
			withID(identity + ":77:" + theirs.Header.Get(nats.MsgIdHdr)[strings.LastIndexByte(theirs.Header.Get(nats.MsgIdHdr), ':')+1:]), msg.Data},
		{"body changed", msg.Subject, msg.Header, forgedBody},
		{"subject changed", forged.Subject(), msg.Header, msg.Data},
		{"sequence changed", msg.Subject, withID(identity + ":78:" + mac), msg.Data},
	}
	for _, c := range cases {
		if got, err := codec.Verify(c.subject, c.header, c.body); !errors.Is(err, events.ErrForeign) {
			t.Errorf("%s: got event %+v and error %v, want ErrForeign", c.name, got, err)
		}
	}
	got, err := codec.Verify(msg.Subject, msg.Header, msg.Data)
	if err != nil {
		t.Fatalf("own message: got %v, want it accepted", err)
	}
	if got.Seq != 77 || got.Team != "t1" || got.RecordID != "p1" {
		t.Fatalf("own message: got %+v", got)
	}
}

// TestStreamConfig checks the stream's limits, as configured and as a real
// server keeps them.
func TestStreamConfig(t *testing.T) {
	t.Parallel()
	cfg := events.StreamConfig(events.DefaultStreamOptions)
	if cfg.Name != "STRADA" || cfg.Storage != jetstream.FileStorage || !slices.Equal(cfg.Subjects, []string{"strada.changes.>"}) {
		t.Fatalf("got name %q storage %v subjects %v", cfg.Name, cfg.Storage, cfg.Subjects)
	}
	if cfg.MaxAge != 30*24*time.Hour || cfg.Duplicates != 10*time.Minute || cfg.MaxConsumers != 10_000 || cfg.MaxBytes != 1<<30 {
		t.Fatalf("got max age %s duplicates %s max consumers %d max bytes %d", cfg.MaxAge, cfg.Duplicates, cfg.MaxConsumers, cfg.MaxBytes)
	}
	short := events.StreamConfig(events.StreamOptions{MaxAge: time.Minute, Duplicates: time.Hour, Replicas: 1})
	if short.Duplicates != time.Minute {
		t.Fatalf("got duplicate window %s with max age 1m, want it cut to 1m", short.Duplicates)
	}

	bus := startBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := bus.JS.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := info.Config
	if got.MaxConsumers != 10_000 || got.Duplicates != 10*time.Minute || got.MaxAge != 30*24*time.Hour || got.Storage != jetstream.FileStorage {
		t.Fatalf("server keeps max consumers %d duplicates %s max age %s storage %v, want 10000 10m 720h file",
			got.MaxConsumers, got.Duplicates, got.MaxAge, got.Storage)
	}
}
