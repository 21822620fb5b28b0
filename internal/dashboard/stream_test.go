package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/dashboard"
	"strada/internal/domain"
	"strada/internal/events"
	"strada/internal/natsbus"
	hooks "strada/pb_hooks"
)

// startEvents starts an in-process NATS server, the relay of app's change
// log and a hub listening to it, all stopped when the test ends.
func startEvents(t testing.TB, app *apptest.App) (*events.Hub, *events.Relay) {
	t.Helper()
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
	done := make(chan struct{})
	go func() { defer close(done); relay.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	// The demo data first, so that what follows is about the test's writes.
	last, err := changelog.LastSeq(app)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for relay.Stats().LastPublished < last {
		if time.Now().After(deadline) {
			t.Fatalf("relay stuck at %d of %d", relay.Stats().LastPublished, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return hub, relay
}

type sse struct{ event, data string }

// openStream opens url as an SSE stream and returns its events; the
// channel closes when the stream ends.
func openStream(t testing.TB, url string) (<-chan sse, int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		var er dashboard.Error
		_ = json.NewDecoder(resp.Body).Decode(&er)
		resp.Body.Close()
		return nil, resp.StatusCode, er.Code
	}
	out := make(chan sse, 256)
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
	return out, resp.StatusCode, ""
}

// ticket asks for a stream ticket with the auth token.
func ticket(t testing.TB, base, token string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+dashboard.RouteStreamTicket, nil)
	req.Header.Set("Authorization", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tk dashboard.Ticket
	if err := json.NewDecoder(resp.Body).Decode(&tk); err != nil || resp.StatusCode != http.StatusOK || tk.Ticket == "" {
		t.Fatalf("stream ticket: got %d %v", resp.StatusCode, err)
	}
	return tk.Ticket
}

// nextEvent returns the next event other than skip, failing after 10 s.
func nextEvent(t testing.TB, ch <-chan sse, skip ...string) sse {
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

func saveVisit(t testing.TB, app core.App, team, site string) *core.Record {
	t.Helper()
	c, err := app.FindCachedCollectionByNameOrId(domain.CampVisits)
	if err != nil {
		t.Fatal(err)
	}
	r := core.NewRecord(c)
	r.Load(map[string]any{"team": team, "site": site, "visited_at": time.Now().UTC().Format("2006-01-02 15:04:05.000Z"), "households_met": 1})
	if err := app.Save(r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestStreamHintsAWriteWithinScope(t *testing.T) {
	app := apptest.New(t)
	hub, _ := startEvents(t, app)
	d := hooks.BindDashboard(app, hub)
	d.Heartbeat = 200 * time.Millisecond
	d.Coalesce = 50 * time.Millisecond
	srv := apptest.Serve(t, app)

	camp := apptest.Team(t, app, "camp_outreach")
	campSite, err := app.FindFirstRecordByData(domain.Sites, "kind", "camp")
	if err != nil {
		t.Fatal(err)
	}
	// A supervisor of the prison team only.
	prisonSup := func() string {
		c, _ := app.FindCachedCollectionByNameOrId(domain.Users)
		u := core.NewRecord(c)
		u.Load(map[string]any{"email": "sup.prison@example.org", "password": "a-long-password-1", "passwordConfirm": "a-long-password-1",
			"role": domain.RoleSupervisor, "teams": []string{apptest.Team(t, app, "prison_secretariat")}})
		if err := app.Save(u); err != nil {
			t.Fatal(err)
		}
		return tokenOf(t, u)
	}()

	sup := apptest.Token(t, app, apptest.Supervisor)
	tk := ticket(t, srv.URL, sup)
	stream, code, _ := openStream(t, srv.URL+dashboard.RouteStream+"?ticket="+tk)
	if code != http.StatusOK {
		t.Fatalf("stream: got %d, want 200", code)
	}
	if ev := nextEvent(t, stream); ev.event != "hello" {
		t.Fatalf("got %q first, want hello", ev.event)
	}
	// A ticket opens one stream.
	if _, code, errCode := openStream(t, srv.URL+dashboard.RouteStream+"?ticket="+tk); code != http.StatusUnauthorized || errCode != dashboard.CodeInvalidTicket {
		t.Fatalf("second use of a ticket: got %d %s, want 401 %s", code, errCode, dashboard.CodeInvalidTicket)
	}
	// A ticket is not an auth token, nor an auth token a ticket.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+dashboard.RouteSummary, nil)
	req.Header.Set("Authorization", ticket(t, srv.URL, sup))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("summary with a ticket as auth: got %v %v, want 401", resp.StatusCode, err)
	}
	if _, code, _ := openStream(t, srv.URL+dashboard.RouteStream+"?ticket="+sup); code != http.StatusUnauthorized {
		t.Fatalf("stream with an auth token as ticket: got %d, want 401", code)
	}
	other, code, _ := openStream(t, srv.URL+dashboard.RouteStream+"?ticket="+ticket(t, srv.URL, prisonSup))
	if code != http.StatusOK {
		t.Fatalf("prison supervisor's stream: got %d", code)
	}
	nextEvent(t, other)

	if ev := nextEvent(t, stream); ev.event != "heartbeat" {
		t.Fatalf("got %q, want a heartbeat", ev.event)
	}
	v := saveVisit(t, app, camp, campSite.Id)
	want, err := changelog.LastOf(app, domain.CampVisits, v.Id)
	if err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, stream, "heartbeat")
	var hint dashboard.Hint
	if err := json.Unmarshal([]byte(ev.data), &hint); err != nil || ev.event != "changed" {
		t.Fatalf("got %s %s, want changed", ev.event, ev.data)
	}
	if hint.Seq != want.Seq || len(hint.Changes) != 1 || hint.Changes[0] != (dashboard.Change{Collection: domain.CampVisits, Team: camp, Op: "create"}) {
		t.Fatalf("got hint %+v, want seq %d, one camp visit create", hint, want.Seq)
	}
	if strings.Contains(ev.data, v.Id) {
		t.Fatalf("hint %s names the record", ev.data)
	}
	// The prison supervisor is not told of the camp's write.
	quiet := time.After(500 * time.Millisecond)
	for waiting := true; waiting; {
		select {
		case ev := <-other:
			if ev.event != "heartbeat" {
				t.Fatalf("prison supervisor got %s %s", ev.event, ev.data)
			}
		case <-quiet:
			waiting = false
		}
	}

	// A supervisor made a worker is told to reset, and the stream ends.
	u := apptest.User(t, app, apptest.Supervisor)
	u.Set("role", domain.RoleWorker)
	if err := app.Save(u); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, stream, "heartbeat", "changed"); ev.event != "reset" {
		t.Fatalf("got %s, want reset", ev.event)
	}
}
