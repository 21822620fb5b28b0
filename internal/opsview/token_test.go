package opsview_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"strada/internal/apptest"
	"strada/internal/events"
	"strada/internal/opsview"
	hooks "strada/pb_hooks"
)

func TestLoadOrCreateToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, err := opsview.LoadOrCreateToken("", dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, opsview.TokenFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("token file: %v", err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Fatalf("got token file mode %o, want 600", mode)
	}
	if len(first) != 64 {
		t.Fatalf("got a token of %d characters, want 64", len(first))
	}
	again, err := opsview.LoadOrCreateToken("", dir)
	if err != nil || again != first {
		t.Fatalf("second start: got %q (%v), want the same token", again, err)
	}
	// Rotation: delete the file, start again.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	rotated, err := opsview.LoadOrCreateToken("", dir)
	if err != nil || rotated == first || len(rotated) != 64 {
		t.Fatalf("after deleting the file: got %q (%v), want a new token", rotated, err)
	}
	// A configured token wins over the file; a short one is refused.
	configured := strings.Repeat("k", 40)
	if got, err := opsview.LoadOrCreateToken(configured, dir); err != nil || got != configured {
		t.Fatalf("configured token: got %q (%v), want %q", got, err, configured)
	}
	if _, err := opsview.LoadOrCreateToken("short", dir); err == nil {
		t.Fatal("configured token of 5 characters: got no error, want one")
	}
	if err := os.WriteFile(path, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := opsview.LoadOrCreateToken("", dir); err == nil {
		t.Fatal("short token in the file: got no error, want one")
	}
}

// TestMetricsScraperToken serves the operator endpoints as serve binds them:
// the metrics take the token from the data directory or a superuser; the
// event status stays with superusers.
func TestMetricsScraperToken(t *testing.T) {
	t.Parallel()
	app := apptest.NewUnbound(t)
	rt := hooks.Register(app, &hooks.Config{Stream: events.DefaultStreamOptions})
	t.Cleanup(rt.Stop)
	h := apptest.Handler(t, app)
	b, err := os.ReadFile(filepath.Join(app.DataDir(), opsview.TokenFile))
	if err != nil {
		t.Fatalf("metrics token made on start: %v", err)
	}
	token := strings.TrimSpace(string(b))
	admin := apptest.Token(t, app, apptest.Admin)
	supervisor := apptest.Token(t, app, apptest.Supervisor)
	cases := []struct {
		name, path, auth string
		want             int
	}{
		{"scraper", "/api/strada/metrics", "Bearer " + token, http.StatusOK},
		{"scraper, scheme in lower case", "/api/strada/metrics", "bearer " + token, http.StatusOK},
		{"superuser", "/api/strada/metrics", admin, http.StatusOK},
		{"wrong token", "/api/strada/metrics", "Bearer " + strings.Repeat("0", len(token)), http.StatusUnauthorized},
		{"token without scheme", "/api/strada/metrics", token, http.StatusUnauthorized},
		{"token with a character more", "/api/strada/metrics", "Bearer " + token + "0", http.StatusUnauthorized},
		{"anonymous", "/api/strada/metrics", "", http.StatusUnauthorized},
		{"supervisor", "/api/strada/metrics", supervisor, http.StatusForbidden},
		{"scraper on the event status", "/api/strada/events", "Bearer " + token, http.StatusUnauthorized},
		{"superuser on the event status", "/api/strada/events", admin, http.StatusOK},
	}
	for _, c := range cases {
		req := httptest.NewRequest(http.MethodGet, c.path, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s: got %d %s, want %d", c.name, rec.Code, rec.Body.String(), c.want)
		}
		if c.want == http.StatusOK && c.path == "/api/strada/metrics" && !strings.Contains(rec.Body.String(), "strada_relay_backlog ") {
			t.Errorf("%s: got %s, want the metrics", c.name, rec.Body.String())
		}
	}
}
