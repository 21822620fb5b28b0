package syncapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"strada/internal/apptest"
	"strada/internal/domain"
	"strada/internal/events"
	"strada/internal/natsbus"
	"strada/internal/syncclient"
	hooks "strada/pb_hooks"
)

type sse struct {
	event string
	data  string
}

// openStream connects to the sync stream and returns its events.
func openStream(t *testing.T, ctx context.Context, url string, c *syncclient.Client) <-chan sse {
	t.Helper()
	// Closed before the test server, which waits for open requests.
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/sync/stream", nil)
	req.Header.Set("Authorization", c.Token)
	req.Header.Set("X-Strada-Device", c.DeviceID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("got %d %s, want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan sse, 64)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		var cur sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				cur.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				cur.data = strings.TrimPrefix(line, "data: ")
			case line == "":
				select {
				case out <- cur:
				case <-ctx.Done():
					return
				}
				cur = sse{}
			}
		}
	}()
	return out
}

func next(t *testing.T, ch <-chan sse, skip ...string) sse {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("stream ended")
			}
			if !contains(skip, ev.event) {
				return ev
			}
		case <-timeout:
			t.Fatal("no event within 10s")
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestStreamHintsFromNATSWithinScope(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	store := t.TempDir()
	srv, err := natsbus.StartServer(store, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	user, err := natsbus.ProcessUser(store)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv), user)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	hub := events.NewHub(app.Logger())
	if err := hub.Listen(nc, events.NewCodec(app)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)
	relay := events.NewRelay(app, app.Log, js, events.DefaultStreamOptions, app.Logger())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan struct{})
	go func() { defer close(done); relay.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	api := hooks.BindSyncAPI(app, hub)
	api.Heartbeat = 300 * time.Millisecond
	e := &env{t: t, app: app, url: apptest.Serve(t, app).URL, hub: hub}

	campWorker := e.device(apptest.CampWorker)
	prisonWorker := e.device(apptest.PrisonWorker)
	// Let the relay publish the demo data first, so that every hint below
	// is about the writes of this test.
	deadline := time.Now().Add(10 * time.Second)
	for relay.Stats().LastPublished < e.lastSeq() {
		if time.Now().After(deadline) {
			t.Fatalf("relay stuck at %d of %d", relay.Stats().LastPublished, e.lastSeq())
		}
		time.Sleep(20 * time.Millisecond)
	}
	stream := openStream(t, ctx, e.url, campWorker)
	if ev := next(t, stream); ev.event != "hello" {
		t.Fatalf("got %q first, want hello", ev.event)
	}
	if ev := next(t, stream, "hint"); ev.event != "heartbeat" {
		t.Fatalf("got %q, want a heartbeat within the interval", ev.event)
	}

	// A prison write gives the camp worker no hint; the camp write after it does.
	prisonWorker.Upsert(domain.Persons, newID(), map[string]any{"team": e.team("prison_secretariat"), "consent": "none"})
	prisonSeq := mustSync(t, prisonWorker)[0].Seq
	campWorker.Upsert(domain.Persons, newID(), map[string]any{"team": e.team("camp_outreach"), "consent": "none"})
	campSeq := mustSync(t, campWorker)[0].Seq
	for {
		ev := next(t, stream, "heartbeat")
		var hint struct {
			Cursor string `json:"cursor"`
			Seq    int64  `json:"seq"`
		}
		if err := json.Unmarshal([]byte(ev.data), &hint); err != nil || ev.event != "hint" || hint.Cursor == "" {
			t.Fatalf("got %s %s, want a hint", ev.event, ev.data)
		}
		if hint.Seq == prisonSeq {
			t.Fatalf("got a hint for the prison write %d, out of the camp worker's scope", prisonSeq)
		}
		if hint.Seq == campSeq {
			// A hint's cursor is for comparing, never for pulling.
			err := e.raw(campWorker, http.MethodGet, "/api/sync/pull?cursor="+hint.Cursor, nil, nil)
			var apiErr *syncclient.APIError
			if !errors.As(err, &apiErr) || apiErr.Code != "hint_cursor" {
				t.Fatalf("pull from a hint cursor: got %v, want 400 hint_cursor", err)
			}
			break
		}
		if hint.Seq > campSeq {
			t.Fatalf("got hint seq %d, want %d", hint.Seq, campSeq)
		}
	}

	// Revoking the device ends its stream with a wipe.
	dev := e.record(domain.Devices, campWorker.DeviceID)
	dev.Set("revoked", true)
	if err := app.Save(dev); err != nil {
		t.Fatal(err)
	}
	ev := next(t, stream, "heartbeat", "hint")
	if ev.event != "revoked" || !strings.Contains(ev.data, `"wipe":true`) {
		t.Fatalf("got %s %s, want revoked with wipe", ev.event, ev.data)
	}
}
