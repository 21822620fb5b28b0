package events_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
		{"team record", events.Event{Team: "k3x9team0000001", Collection: "persons", Op: changelog.OpCreate},
			"strada.changes.k3x9team0000001.persons.create"},
		{"reference data", events.Event{Collection: "services", Op: changelog.OpUpdate},
			"strada.changes.global.services.update"},
		{"tombstone", events.Event{Team: "t1", Collection: "referrals", Op: changelog.OpDelete},
			"strada.changes.t1.referrals.delete"},
		{"separators and wildcards made safe", events.Event{Team: "a.b*c>d e", Collection: "x.y", Op: "p\tq"},
			"strada.changes.a_b_c_d_e.x_y.p_q"},
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
		{Seq: 1, Team: "camp", Collection: "persons", Op: changelog.OpCreate},
		{Seq: 2, Team: "camp", Collection: "referrals", Op: changelog.OpUpdate},
		{Seq: 3, Team: "prison", Collection: "referrals", Op: changelog.OpDelete},
		{Seq: 4, Collection: "services", Op: changelog.OpUpdate},
		{Seq: 5, Team: "prison", Collection: "referral_events", Op: changelog.OpCreate},
	}
	cases := []struct {
		filter string
		want   []int64
	}{
		{events.SubjectPrefix + ".>", []int64{1, 2, 3, 4, 5}},
		{events.TeamSubject("camp"), []int64{1, 2}},
		{"strada.changes.*.referrals.*", []int64{2, 3}},
		{"strada.changes.prison.*.delete", []int64{3}},
		{"strada.changes.global.>", []int64{4}},
		{"strada.changes.*.*.create", []int64{1, 5}},
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
		msg, err := events.Message(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := bus.Conn.PublishMsg(msg); err != nil {
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
	at := time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	entry := changelog.Entry{
		Seq: 4812, Collection: "referrals", RecordID: "0193a5b2-7c1e-7d40-9a51-3f2b8c6d1e07",
		Op: changelog.OpUpdate, Version: 3, Team: "t1", Fields: []string{"status", "outcome"},
		Actor: changelog.Actor{User: "u1", Device: "d1", Mutation: "m1"}, At: at,
	}
	msg, err := events.Message(events.FromEntry(entry))
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get(nats.MsgIdHdr); got != strconv.Itoa(4812) {
		t.Fatalf("got Nats-Msg-Id %q, want 4812", got)
	}
	if msg.Subject != "strada.changes.t1.referrals.update" {
		t.Fatalf("got subject %q", msg.Subject)
	}
	want := `{"v":1,"seq":4812,"collection":"referrals","recordId":"0193a5b2-7c1e-7d40-9a51-3f2b8c6d1e07",` +
		`"op":"update","version":3,"team":"t1","fields":["status","outcome"],` +
		`"actor":{"user":"u1","device":"d1","mutation":"m1"},"at":"2026-11-20T09:30:00Z"}`
	if string(msg.Data) != want {
		t.Fatalf("got body\n%s\nwant\n%s", msg.Data, want)
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
