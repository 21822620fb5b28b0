package natsbus_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"strada/internal/natsbus"
)

// violations collects the permission errors a connection is sent.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errs = append(v.errs, err.Error())
}

// saw reports whether the server refused an operation on subject.
func (v *violations) saw(subject string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range v.errs {
		if strings.Contains(strings.ToLower(e), "permissions violation") && strings.Contains(e, subject) {
			return true
		}
	}
	return false
}

// TestObserverReadsAndChangesNothing connects the observer user to the
// embedded server over TCP, as an operator's nats CLI does: it reads the
// event stream and the live events, and every write or administration of
// NATS it tries is refused by the server and leaves the stream as it was.
func TestObserverReadsAndChangesNothing(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	bus, err := natsbus.Start(natsbus.Config{StoreDir: store, Listen: "127.0.0.1:-1", Name: "process"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events := natsbus.EventSubjectPrefix + ".>"
	stream, err := bus.JS.CreateStream(ctx, jetstream.StreamConfig{Name: natsbus.EventStream, Subjects: []string{events}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := bus.JS.Publish(ctx, natsbus.EventSubjectPrefix+".t1.persons.create.r1", []byte(`{"v":1}`)); err != nil {
			t.Fatal(err)
		}
	}

	v := &violations{}
	seed, err := nats.NkeyOptionFromSeed(filepath.Join(store, natsbus.ObserverSeedFile))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(bus.ClientURL(), seed, nats.ErrorHandler(v.handler))
	if err != nil {
		t.Fatalf("observer: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	// What the observer may do.
	live, err := nc.SubscribeSync(events)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.JS.Publish(ctx, natsbus.EventSubjectPrefix+".t1.persons.update.r1", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := live.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("observer's live subscription: %v", err)
	}
	observed, err := js.Stream(ctx, natsbus.EventStream)
	if err != nil {
		t.Fatalf("observer's stream info: %v", err)
	}
	if got := observed.CachedInfo().State.Msgs; got != 4 {
		t.Fatalf("observer sees %d messages, want 4", got)
	}
	if _, err := observed.GetMsg(ctx, 1); err != nil {
		t.Fatalf("observer's message get: %v", err)
	}
	cons, err := js.OrderedConsumer(ctx, natsbus.EventStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("observer's ordered consumer: %v", err)
	}
	batch, err := cons.Fetch(4, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for range batch.Messages() {
		read++
	}
	if read != 4 {
		t.Fatalf("observer's consumer read %d messages, want 4", read)
	}

	// What it may not: each is refused by the server.
	refused := []struct {
		name    string
		subject string
		do      func(ctx context.Context) error
	}{
		{"publish an event", natsbus.EventSubjectPrefix + ".t1.persons.purge.r1", func(ctx context.Context) error {
			_, err := js.Publish(ctx, natsbus.EventSubjectPrefix+".t1.persons.purge.r1", []byte(`{"v":1}`), jetstream.WithMsgID("forged"))
			return err
		}},
		{"create a stream", "$JS.API.STREAM.CREATE.FILL", func(ctx context.Context) error {
			_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILL", Subjects: []string{"fill.>"}})
			return err
		}},
		{"reconfigure the stream", "$JS.API.STREAM.UPDATE." + natsbus.EventStream, func(ctx context.Context) error {
			_, err := js.UpdateStream(ctx, jetstream.StreamConfig{Name: natsbus.EventStream, Subjects: []string{events}, MaxMsgs: 1})
			return err
		}},
		{"delete the stream", "$JS.API.STREAM.DELETE." + natsbus.EventStream, func(ctx context.Context) error {
			return js.DeleteStream(ctx, natsbus.EventStream)
		}},
		{"purge the stream", "$JS.API.STREAM.PURGE." + natsbus.EventStream, func(ctx context.Context) error {
			return observed.Purge(ctx)
		}},
		{"delete a message", "$JS.API.STREAM.MSG.DELETE." + natsbus.EventStream, func(ctx context.Context) error {
			return observed.DeleteMsg(ctx, 1)
		}},
		{"read the process's replies", "_STRADA_INBOX.>", func(ctx context.Context) error {
			sub, err := nc.SubscribeSync("_STRADA_INBOX.>")
			if err != nil {
				return err
			}
			if err := nc.FlushWithContext(ctx); err != nil {
				return err
			}
			_, err = sub.NextMsgWithContext(ctx)
			return err
		}},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := c.do(ctx); err == nil {
				t.Fatal("got it done, want it refused")
			}
			waitUntil(t, "the server's permissions violation", func() bool { return v.saw(c.subject) })
		})
	}
	t.Cleanup(func() {
		// The stream is as the process left it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatalf("stream after the observer: %v", err)
		}
		if info.State.Msgs != 4 || info.Config.MaxMsgs != -1 {
			t.Fatalf("after the observer: got %d messages, max msgs %d; want 4 and unlimited", info.State.Msgs, info.Config.MaxMsgs)
		}
		names := bus.JS.StreamNames(ctx)
		var got []string
		for n := range names.Name() {
			got = append(got, n)
		}
		if len(got) != 1 || got[0] != natsbus.EventStream {
			t.Fatalf("got streams %v, want only %s", got, natsbus.EventStream)
		}
	})
}

// waitUntil polls cond until it holds, failing after 10 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStorageCapped gives the embedded server a 1 MiB store: a stream
// that asks for more is refused, and a stream without limits cannot store
// beyond the cap.
func TestStorageCapped(t *testing.T) {
	t.Parallel()
	const capBytes = 1 << 20
	bus, err := natsbus.Start(natsbus.Config{StoreDir: t.TempDir(), Name: "capped", MaxStore: capBytes}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := bus.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "BIG", Subjects: []string{testSubjects}, MaxBytes: 4 * capBytes}); err == nil {
		t.Fatal("got a 4 MiB stream on a 1 MiB store, want it refused")
	}
	stream, err := bus.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "UNLIMITED", Subjects: []string{testSubjects}})
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	var refused error
	for i := 0; i < 4*capBytes/len(chunk) && refused == nil; i++ {
		_, refused = bus.JS.Publish(ctx, natsbus.EventSubjectPrefix+".test.x", chunk)
	}
	var apiErr *jetstream.APIError
	if !errors.As(refused, &apiErr) {
		t.Fatalf("publishing 4 MiB into a 1 MiB store: got %v, want the store refusing", refused)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The store checks its cap before each message: the last one accepted
	// may end past it.
	if limit := uint64(capBytes + len(chunk) + 1024); info.State.Bytes > limit {
		t.Fatalf("got %d bytes stored, want at most %d (the cap and one message)", info.State.Bytes, limit)
	}
}
