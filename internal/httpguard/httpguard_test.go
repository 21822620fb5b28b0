package httpguard_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/subscriptions"

	"strada/internal/apptest"
	"strada/internal/events"
	"strada/internal/httpguard"
	"strada/internal/syncapi"
	"strada/internal/syncclient"
	hooks "strada/pb_hooks"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// serve starts app on a real http.Server made as PocketBase makes it, after
// the serve hooks have run, with the read timeouts the hooks set replaced
// by short ones (the mechanism is the same; a test cannot wait a minute).
func serve(t *testing.T, app core.App, readHeader, read time.Duration) string {
	t.Helper()
	r, err := apis.NewRouter(app)
	if err != nil {
		t.Fatal(err)
	}
	server := &http.Server{WriteTimeout: 5 * time.Minute, ReadTimeout: 5 * time.Minute, ReadHeaderTimeout: time.Minute}
	se := &core.ServeEvent{App: app, Router: r, Server: server}
	if err := app.OnServe().Trigger(se, func(*core.ServeEvent) error { return nil }); err != nil {
		t.Fatalf("serve hooks: %v", err)
	}
	if server.ReadHeaderTimeout != httpguard.ReadHeaderTimeout || server.ReadTimeout != httpguard.ReadTimeout {
		t.Fatalf("got read header timeout %s, read timeout %s; want %s, %s",
			server.ReadHeaderTimeout, server.ReadTimeout, httpguard.ReadHeaderTimeout, httpguard.ReadTimeout)
	}
	mux, err := r.BuildMux()
	if err != nil {
		t.Fatal(err)
	}
	server.Handler = mux
	server.ReadHeaderTimeout, server.ReadTimeout = readHeader, read
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := server.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		server.Close()
		<-done
	})
	return ln.Addr().String()
}

func TestTimeoutsAreWellUnderFiveMinutes(t *testing.T) {
	t.Parallel()
	if httpguard.ReadHeaderTimeout > 30*time.Second || httpguard.ReadTimeout > 2*time.Minute {
		t.Fatalf("got read header timeout %s, read timeout %s; want at most 30s and 2m",
			httpguard.ReadHeaderTimeout, httpguard.ReadTimeout)
	}
}

// TestSlowClientsAreCut trickles a request's headers, then a body: the
// server closes both connections; an event stream stays open past the
// same timeouts.
func TestSlowClientsAreCut(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	hooks.BindLimits(app)
	api := hooks.BindSyncAPI(app, events.NewHub(app.Logger()))
	api.Heartbeat = 50 * time.Millisecond
	const readHeader, read = 200 * time.Millisecond, 400 * time.Millisecond
	addr := serve(t, app, readHeader, read)

	// closed reports whether the server ended the connection within the
	// test's bound, and what it answered first.
	closed := func(conn net.Conn) (bool, string) {
		if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false, string(got)
		}
		return true, string(got)
	}
	cases := []struct{ name, request string }{
		{"headers never finished", "POST /api/collections/users/auth-with-password HTTP/1.1\r\nHost: strada\r\nX-Slow: "},
		{"body never finished", "POST /api/collections/users/auth-with-password HTTP/1.1\r\nHost: strada\r\n" +
			"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"identity\":\"a"},
	}
	for _, c := range cases {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte(c.request)); err != nil {
			t.Fatal(err)
		}
		ok, answer := closed(conn)
		conn.Close()
		if !ok {
			t.Errorf("%s: connection still open after 10s, want it closed after the read timeout", c.name)
		}
		if strings.HasPrefix(answer, "HTTP/1.1 2") {
			t.Errorf("%s: got %q, want no success", c.name, answer)
		}
	}

	// The sync stream outlives the read timeout several times over.
	token := apptest.Token(t, app, apptest.CampWorker)
	c := &syncclient.Client{BaseURL: "http://" + addr, Token: token, Store: syncclient.NewMemoryStore()}
	if err := c.Register(context.Background(), uuid.NewString(), "tablet", "test", "1"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/sync/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", token)
	req.Header.Set(syncapi.DeviceHeader, c.DeviceID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("open stream: got %d, want 200", resp.StatusCode)
	}
	lines := bufio.NewScanner(resp.Body)
	until := time.Now().Add(4 * read)
	heartbeats := 0
	for time.Now().Before(until) {
		if !lines.Scan() {
			t.Fatalf("stream ended after %d heartbeats (%v), want it open past %s", heartbeats, lines.Err(), 4*read)
		}
		if lines.Text() == "event: heartbeat" {
			heartbeats++
		}
	}

	// So does PocketBase's realtime stream: its client is still registered
	// and takes subscriptions after the read timeout.
	rtReq, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/realtime", nil)
	if err != nil {
		t.Fatal(err)
	}
	rtResp, err := http.DefaultClient.Do(rtReq)
	if err != nil {
		t.Fatal(err)
	}
	defer rtResp.Body.Close()
	rt := bufio.NewScanner(rtResp.Body)
	clientID := ""
	for clientID == "" && rt.Scan() {
		if id, ok := strings.CutPrefix(rt.Text(), "id:"); ok {
			clientID = strings.TrimSpace(id)
		}
	}
	if clientID == "" {
		t.Fatalf("realtime: no client id (%v)", rt.Err())
	}
	time.Sleep(3 * read)
	sub, err := http.Post("http://"+addr+"/api/realtime", "application/json",
		strings.NewReader(`{"clientId":"`+clientID+`","subscriptions":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	sub.Body.Close()
	if sub.StatusCode != http.StatusNoContent {
		t.Fatalf("realtime subscription after %s: got %d, want 204 (the connection was cut)", 3*read, sub.StatusCode)
	}
}

// TestRealtimeCaps connects to PocketBase's realtime API over real
// connections: an account subscribes on at most MaxRealtimePerUser of
// them, and no connection is accepted beyond MaxRealtimeClients.
func TestRealtimeCaps(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	hooks.BindLimits(app)
	addr := serve(t, app, httpguard.ReadHeaderTimeout, httpguard.ReadTimeout)
	base := "http://" + addr
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	connect := func() (string, int) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/realtime", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return "", resp.StatusCode
		}
		t.Cleanup(func() { resp.Body.Close() })
		lines := bufio.NewScanner(resp.Body)
		for lines.Scan() {
			if id, ok := strings.CutPrefix(lines.Text(), "id:"); ok {
				return strings.TrimSpace(id), resp.StatusCode
			}
		}
		t.Fatalf("realtime: no client id (%v)", lines.Err())
		return "", 0
	}
	subscribe := func(clientID, token string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, base+"/api/realtime",
			strings.NewReader(`{"clientId":"`+clientID+`","subscriptions":["services"]}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	worker := apptest.Token(t, app, apptest.CampWorker)
	for i := range httpguard.MaxRealtimePerUser {
		id, status := connect()
		if status != http.StatusOK {
			t.Fatalf("connection %d: got %d, want 200", i+1, status)
		}
		if got := subscribe(id, worker); got != http.StatusNoContent {
			t.Fatalf("subscription %d of one account: got %d, want 204", i+1, got)
		}
	}
	id, _ := connect()
	if got := subscribe(id, worker); got != http.StatusTooManyRequests {
		t.Fatalf("subscription %d of one account: got %d, want 429", httpguard.MaxRealtimePerUser+1, got)
	}
	if got := subscribe(id, apptest.Token(t, app, apptest.Supervisor)); got != http.StatusNoContent {
		t.Fatalf("another account on the same connection: got %d, want 204", got)
	}

	// Fill the broker up to the cap: the next connection is refused.
	for app.SubscriptionsBroker().TotalClients() < httpguard.MaxRealtimeClients {
		app.SubscriptionsBroker().Register(subscriptions.NewDefaultClient())
	}
	if _, status := connect(); status != http.StatusTooManyRequests {
		t.Fatalf("connection beyond %d: got %d, want 429", httpguard.MaxRealtimeClients, status)
	}
}
