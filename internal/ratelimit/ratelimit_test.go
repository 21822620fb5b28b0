package ratelimit_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/ratelimit"
	hooks "strada/pb_hooks"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// TestDefaultsAreAppliedOnce enables the rules on the first serve; an
// operator's later change survives the next start, and rate limits an
// operator enabled before are left as they are.
func TestDefaultsAreAppliedOnce(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	hooks.BindLimits(app)
	apptest.Handler(t, app) // the first serve
	rl := app.Settings().RateLimits
	if !rl.Enabled || !slices.Equal(rl.Rules, ratelimit.Rules) {
		t.Fatalf("after the first serve: got enabled %v rules %v, want enabled with Strada's rules", rl.Enabled, rl.Rules)
	}

	// The operator turns them off; the next start keeps that.
	settings, err := app.Settings().Clone()
	if err != nil {
		t.Fatal(err)
	}
	settings.RateLimits.Enabled = false
	if err := app.Save(settings); err != nil {
		t.Fatal(err)
	}
	if changed, err := ratelimit.ApplyDefaults(app); err != nil || changed {
		t.Fatalf("second start: got changed %v (%v), want nothing changed", changed, err)
	}
	if app.Settings().RateLimits.Enabled {
		t.Fatal("second start: the operator's change was undone")
	}

	// A database whose operator enabled rate limits before keeps its rules.
	other := apptest.New(t)
	settings, err = other.Settings().Clone()
	if err != nil {
		t.Fatal(err)
	}
	own := []core.RateLimitRule{{Label: "/api/", MaxRequests: 5, Duration: 1}}
	settings.RateLimits.Enabled = true
	settings.RateLimits.Rules = own
	if err := other.Save(settings); err != nil {
		t.Fatal(err)
	}
	if changed, err := ratelimit.ApplyDefaults(other); err != nil || changed {
		t.Fatalf("operator's own rules: got changed %v (%v), want nothing changed", changed, err)
	}
	if got := other.Settings().RateLimits.Rules; !slices.Equal(got, own) {
		t.Fatalf("got rules %v, want the operator's %v", got, own)
	}
}

// TestRulesPerRoute checks which rule each kind of request falls under,
// as PocketBase looks them up, and sends a burst of sign-ins from one
// address: those past the rule are refused.
func TestRulesPerRoute(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	hooks.BindLimits(app)
	h := apptest.Handler(t, app)

	cases := []struct {
		name   string
		labels []string // as PocketBase makes them for the request
		want   string
	}{
		{"password sign-in", []string{"users:authWithPassword", "users:auth", "*:authWithPassword", "*:auth",
			"POST /api/collections/users/auth-with-password", "/api/collections/users/auth-with-password"}, "*:auth"},
		{"superuser sign-in", []string{"_superusers:authWithPassword", "_superusers:auth", "*:authWithPassword", "*:auth",
			"POST /api/collections/_superusers/auth-with-password", "/api/collections/_superusers/auth-with-password"}, "*:auth"},
		{"password reset", []string{"users:requestPasswordReset", "*:requestPasswordReset",
			"POST /api/collections/users/request-password-reset", "/api/collections/users/request-password-reset"}, "*:requestPasswordReset"},
		{"device registration", []string{"POST /api/sync/devices", "/api/sync/devices"}, "POST /api/sync/devices"},
		{"push", []string{"POST /api/sync/push", "/api/sync/push"}, "/api/sync/"},
		{"pull", []string{"GET /api/sync/pull", "/api/sync/pull"}, "/api/sync/"},
		{"stream", []string{"GET /api/sync/stream", "/api/sync/stream"}, "/api/sync/"},
		{"record list", []string{"GET /api/collections/persons/records", "/api/collections/persons/records"}, "/api/"},
		{"realtime", []string{"GET /api/realtime", "/api/realtime"}, "/api/"},
		{"erasure", []string{"POST /api/persons/x/erase", "/api/persons/x/erase"}, "/api/"},
	}
	rl := app.Settings().RateLimits
	for _, c := range cases {
		rule, ok := rl.FindRateLimitRule(c.labels, core.RateLimitRuleAudienceAll, core.RateLimitRuleAudienceGuest)
		if !ok || rule.Label != c.want {
			t.Errorf("%s: got rule %q (found %v), want %q", c.name, rule.Label, ok, c.want)
		}
	}
	// A thousand devices behind one carrier NAT push, pull and reconnect
	// their stream within one window.
	if rule, _ := rl.FindRateLimitRule([]string{"/api/sync/pull"}); rule.MaxRequests < 5*1000 {
		t.Errorf("got %d sync calls per window, want room for 5 per device of 1,000", rule.MaxRequests)
	}

	// Sign-ins from one address past the rule are refused before anything
	// else is looked at (these have no password, so none is checked).
	var auth core.RateLimitRule
	for _, r := range ratelimit.Rules {
		if r.Label == "*:auth" {
			auth = r
		}
	}
	refused := 0
	for i := range auth.MaxRequests + 5 {
		body := `{"identity":"nessuno` + strconv.Itoa(i) + `@example.org","password":""}`
		req := httptest.NewRequest(http.MethodPost, "/api/collections/users/auth-with-password", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused != 5 {
		t.Errorf("%d sign-ins from one address: got %d refused, want 5", auth.MaxRequests+5, refused)
	}
}
