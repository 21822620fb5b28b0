package opsview_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/events"
	"strada/internal/natsbus"
	"strada/internal/opsview"
)

func TestMain(m *testing.M) { apptest.Main(m) }

var quiet = slog.New(slog.DiscardHandler)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func collect(t *testing.T, app core.App, src opsview.Sources) opsview.Status {
	t.Helper()
	st, err := opsview.Collect(context.Background(), app, src)
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	return st
}

// TestStatusFollowsTheEventFlow reads the status before the relay has run,
// after it has drained the log, and while NATS is down with writes waiting.
func TestStatusFollowsTheEventFlow(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	store := t.TempDir()
	srv, err := natsbus.StartServer(store, "127.0.0.1:-1")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	bus, err := natsbus.Start(natsbus.Config{URL: srv.ClientURL(), NKeyFile: filepath.Join(store, natsbus.ProcessSeedFile), Name: "opsview"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	hub := events.NewHub(quiet)
	if err := hub.Listen(bus.Conn, events.NewCodec(app)); err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	relay := events.NewRelay(app, app.Log, bus.JS, events.DefaultStreamOptions, quiet)
	src := opsview.Sources{Relay: relay, Hub: hub, JS: bus.JS}
	last, err := changelog.LastSeq(app)
	if err != nil {
		t.Fatal(err)
	}
	demoRows, err := changelog.Count(app, 0)
	if err != nil {
		t.Fatal(err)
	}

	// Before the relay's first run: everything is backlog, no stream yet.
	st := collect(t, app, src)
	if st.LastSeq != last || st.Backlog != last || st.Relay.LastPublished != 0 || st.Stream != nil || st.StreamError == "" {
		t.Fatalf("before the relay: got %+v, want last %d, backlog %d, no stream and its error", st, last, last)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		relay.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	subCtx, endSub := context.WithCancel(context.Background())
	defer endSub()
	hub.Subscribe(subCtx, events.Scope{All: true})
	waitFor(t, "drain", func() bool { return collect(t, app, src).Backlog == 0 })

	st = collect(t, app, src)
	if st.Relay.LastPublished != last || st.Relay.Published != uint64(demoRows) || !st.Relay.StreamReady || st.Relay.PublishErrors != 0 {
		t.Fatalf("after the drain: got relay %+v, want last published %d, %d published, no errors", st.Relay, last, demoRows)
	}
	if st.Stream == nil || st.Stream.Messages != uint64(demoRows) || st.Stream.LastSeq != uint64(demoRows) || st.StreamError != "" {
		t.Fatalf("after the drain: got stream %+v (%q), want %d messages", st.Stream, st.StreamError, demoRows)
	}
	if st.Subscribers != 1 {
		t.Fatalf("got %d subscribers, want 1", st.Subscribers)
	}

	// NATS down: writes wait in the backlog, errors are counted.
	srv.Shutdown()
	srv.WaitForShutdown()
	persons, err := app.FindCachedCollectionByNameOrId(domain.Persons)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		p := core.NewRecord(persons)
		p.Load(map[string]any{"team": apptest.Team(t, app, "camp_outreach"), "consent": "verbal"})
		if err := app.Save(p); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "publish error", func() bool { return collect(t, app, src).Relay.PublishErrors > 0 })
	st = collect(t, app, src)
	if st.Backlog != 3 || st.LastSeq != last+3 || st.Relay.LastPublished != last {
		t.Fatalf("NATS down: got backlog %d last %d published %d, want 3, %d, %d", st.Backlog, st.LastSeq, st.Relay.LastPublished, last+3, last)
	}
	if st.Relay.LastError == "" || st.Relay.RetryingSince.IsZero() || st.StreamError == "" || st.Stream != nil {
		t.Fatalf("NATS down: got %+v, want the last error, retrying since, and the stream's error", st)
	}
}

// TestEndpoints serves the status and the metrics as pb_hooks binds them:
// superusers only.
func TestEndpoints(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	bus, err := natsbus.Start(natsbus.Config{StoreDir: t.TempDir(), Name: "endpoints"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	hub := events.NewHub(quiet)
	relay := events.NewRelay(app, app.Log, bus.JS, events.DefaultStreamOptions, quiet)
	src := opsview.Sources{Relay: relay, Hub: hub, JS: bus.JS}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		relay.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitFor(t, "drain", func() bool { return collect(t, app, src).Backlog == 0 })

	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.GET("/api/strada/events", opsview.HandleStatus(src)).Bind(apis.RequireSuperuserAuth())
		se.Router.GET("/api/strada/metrics", opsview.HandleMetrics(src)).Bind(apis.RequireSuperuserAuth())
		return se.Next()
	})
	srv := apptest.Serve(t, app)
	get := func(path, token string) (int, string, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", token)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, res.Header.Get("Content-Type"), string(body)
	}
	admin := apptest.Token(t, app, apptest.Admin)
	supervisor := apptest.Token(t, app, apptest.Supervisor)

	for _, path := range []string{"/api/strada/events", "/api/strada/metrics"} {
		for _, c := range []struct {
			who, token string
			want       int
		}{{"anonymous", "", http.StatusUnauthorized}, {"supervisor", supervisor, http.StatusForbidden}} {
			if status, _, _ := get(path, c.token); status != c.want {
				t.Errorf("%s as %s: got status %d, want %d", path, c.who, status, c.want)
			}
		}
	}

	status, _, body := get("/api/strada/events", admin)
	if status != http.StatusOK {
		t.Fatalf("status as superuser: got %d %s", status, body)
	}
	var st opsview.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("decode status: %v", err)
	}
	if st.Backlog != 0 || st.LastSeq == 0 || st.Relay.LastPublished != st.LastSeq || st.Stream == nil || st.Stream.Messages == 0 {
		t.Fatalf("got status %s, want an empty backlog and the stream", body)
	}

	status, ctype, body := get("/api/strada/metrics", admin)
	if status != http.StatusOK || !strings.HasPrefix(ctype, "text/plain; version=0.0.4") {
		t.Fatalf("metrics as superuser: got %d %q", status, ctype)
	}
	for _, line := range []string{
		"strada_relay_backlog 0",
		"strada_stream_up 1",
		"strada_relay_errors_total 0",
		"# TYPE strada_relay_published_total counter",
		"strada_changelog_last_seq " + jsonInt(st.LastSeq),
		"strada_stream_messages " + jsonInt(int64(st.Stream.Messages)),
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("metrics: no line %q in\n%s", line, body)
		}
	}
}

func jsonInt(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
