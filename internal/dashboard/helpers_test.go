package dashboard_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/dashboard"
	"strada/internal/events"
	hooks "strada/pb_hooks"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// env is a test app with the dashboard bound, at a fixed clock.
type env struct {
	t       testing.TB
	app     *apptest.App
	dash    *dashboard.Dashboard
	hub     *events.Hub
	handler http.Handler
}

func newEnv(t testing.TB, now time.Time) *env {
	t.Helper()
	app := apptest.New(t)
	hub := events.NewHub(app.Logger())
	d := hooks.BindDashboard(app, hub)
	d.Now = func() time.Time { return now }
	return &env{t: t, app: app, dash: d, hub: hub, handler: apptest.Handler(t, app)}
}

// get sends a GET as the account with token ("" for nobody) and returns
// the status and body.
func (e *env) get(token, path string) (int, []byte) {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	body, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return rec.Code, body
}

// summary fetches a summary and decodes it.
func (e *env) summary(token, query string) dashboard.Summary {
	e.t.Helper()
	code, body := e.get(token, dashboard.RouteSummary+"?"+query)
	if code != http.StatusOK {
		e.t.Fatalf("summary %q: got %d %s, want 200", query, code, body)
	}
	var s dashboard.Summary
	if err := json.Unmarshal(body, &s); err != nil {
		e.t.Fatalf("decode summary: %v", err)
	}
	return s
}

func tokenOf(t testing.TB, rec *core.Record) string {
	t.Helper()
	tok, err := rec.NewAuthToken()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
