package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/events"
	"strada/internal/natsbus"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// quiet is the logger of the parts under test: failures are asserted
// through their results and stats, not read from logs.
var quiet = slog.New(slog.DiscardHandler)

// startBus starts an embedded JetStream server on a fresh store and
// connects to it in-process.
func startBus(t testing.TB) *natsbus.Bus {
	t.Helper()
	bus, err := natsbus.Start(natsbus.Config{StoreDir: t.TempDir(), Name: t.Name()}, quiet)
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(bus.Close)
	return bus
}

// relayRun is a relay running in the background until stopped.
type relayRun struct {
	*events.Relay
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Stop ends the relay and waits for it to return.
func (r *relayRun) Stop() {
	r.once.Do(func() {
		r.cancel()
		<-r.done
	})
}

// startRelay runs a relay of app's log into js until the test ends or Stop
// is called.
func startRelay(t testing.TB, app core.App, log *changelog.Log, js jetstream.JetStream) *relayRun {
	t.Helper()
	return startRelayWith(t, events.NewRelay(app, log, js, events.DefaultStreamOptions, quiet))
}

func startRelayWith(t testing.TB, relay *events.Relay) *relayRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &relayRun{Relay: relay, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		relay.Run(ctx)
	}()
	t.Cleanup(r.Stop)
	return r
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitDrained waits until the relay's high-water mark reaches the last
// committed change.
func waitDrained(t testing.TB, app core.App, relay *events.Relay, timeout time.Duration) int64 {
	t.Helper()
	var last int64
	waitFor(t, timeout, "relay drain", func() (bool, error) {
		var err error
		last, err = changelog.LastSeq(app)
		if err != nil {
			return false, err
		}
		hwm, err := relay.HighWaterMark()
		return hwm == last, err
	})
	return last
}

// stored is one message read back from the stream.
type stored struct {
	StreamSeq uint64
	Subject   string
	MsgID     string
	Body      []byte
	Event     events.Event
}

// readStream reads every message of the STRADA stream in stream order with
// an ordered consumer.
func readStream(t testing.TB, js jetstream.JetStream) []stored {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatalf("stream %s: %v", events.StreamName, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	want := info.State.Msgs
	out := make([]stored, 0, want)
	if want == 0 {
		return out
	}
	cons, err := js.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	for uint64(len(out)) < want {
		if ctx.Err() != nil {
			t.Fatalf("read stream: got %d of %d messages before the deadline", len(out), want)
		}
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		for m := range batch.Messages() {
			meta, err := m.Metadata()
			if err != nil {
				t.Fatalf("message metadata: %v", err)
			}
			s := stored{StreamSeq: meta.Sequence.Stream, Subject: m.Subject(), MsgID: m.Headers().Get(nats.MsgIdHdr), Body: m.Data()}
			if err := json.Unmarshal(s.Body, &s.Event); err != nil {
				t.Fatalf("stream message %d: decode: %v", s.StreamSeq, err)
			}
			out = append(out, s)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			t.Fatalf("fetch: %v", err)
		}
	}
	return out
}

// allEntries reads the whole change log.
func allEntries(t testing.TB, app core.App) []changelog.Entry {
	t.Helper()
	var out []changelog.Entry
	var after int64
	for {
		page, err := changelog.Since(app, after, 5000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Seq
	}
}

// assertStreamIsLog checks that the stream holds exactly one message per
// change log row, in sequence order, each the encoding of its row, on its
// subject, with the id of its log and sequence as Nats-Msg-Id.
func assertStreamIsLog(t testing.TB, app core.App, msgs []stored, entries []changelog.Entry) {
	t.Helper()
	codec := events.NewCodec(app)
	seen := make(map[string]uint64, len(msgs))
	var prev int64
	for _, m := range msgs {
		if first, dup := seen[m.MsgID]; dup {
			t.Fatalf("change %s stored twice: stream seqs %d and %d", m.MsgID, first, m.StreamSeq)
		}
		seen[m.MsgID] = m.StreamSeq
		if m.Event.Seq <= prev {
			t.Fatalf("stream seq %d holds change %d after change %d: want increasing", m.StreamSeq, m.Event.Seq, prev)
		}
		prev = m.Event.Seq
	}
	if len(msgs) != len(entries) {
		t.Fatalf("got %d messages, want %d (one per change row)", len(msgs), len(entries))
	}
	for i, e := range entries {
		m := msgs[i]
		want, err := codec.Message(events.FromEntry(e))
		if err != nil {
			t.Fatal(err)
		}
		if wantID := want.Header.Get(nats.MsgIdHdr); m.MsgID != wantID {
			t.Fatalf("message %d: got Nats-Msg-Id %q, want %q (change %d)", i, m.MsgID, wantID, e.Seq)
		}
		if m.Subject != want.Subject {
			t.Fatalf("change %d: got subject %q, want %q", e.Seq, m.Subject, want.Subject)
		}
		if !bytes.Equal(m.Body, want.Data) {
			t.Fatalf("change %d: got body %s, want %s", e.Seq, m.Body, want.Data)
		}
	}
}

// restClient calls a REST server as one account.
type restClient struct {
	base  string
	token string
	http  *http.Client
}

func newRESTClient(srv *httptest.Server, token string) *restClient {
	return &restClient{base: srv.URL, token: token, http: &http.Client{Transport: srv.Client().Transport, Timeout: 30 * time.Second}}
}

// do sends a JSON request and decodes a JSON answer into out (when not
// nil); it returns the status code.
func (c *restClient) do(method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, err
	}
	if res.StatusCode >= 300 {
		return res.StatusCode, fmt.Errorf("%s %s: status %d: %s", method, path, res.StatusCode, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return res.StatusCode, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return res.StatusCode, nil
}
