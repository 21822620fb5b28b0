package webserve_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/fstest"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/ui"

	"strada/internal/apptest"
	"strada/internal/webserve"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// TestHeaders serves a built client the way serve binds it, beside the API
// and the admin UI, and reads the headers of each kind of path.
func TestHeaders(t *testing.T) {
	t.Parallel()
	dist := fstest.MapFS{
		"index.html":                  {Data: []byte("<!doctype html><title>Strada</title>")},
		"sw.js":                       {Data: []byte("self.addEventListener('fetch', () => {})")},
		"manifest.webmanifest":        {Data: []byte(`{"name":"Strada"}`)},
		"assets/index-3f2a9c.js":      {Data: []byte("console.log(1)")},
		"assets/index-77ab01.css":     {Data: []byte("body{}")},
		"assets/fonts/inter-9a8b.ttf": {Data: []byte("font")},
	}
	app := apptest.New(t)
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		// The admin UI as PocketBase's serve command binds it.
		se.Router.GET("/_/{path...}", apis.Static(ui.DistDirFS, false))
		se.Router.GET("/{path...}", webserve.Handler(dist))
		return se.Next()
	})
	h := apptest.Handler(t, app)

	const none = "-"
	cases := []struct {
		path   string
		status int
		csp    bool
		cache  string
	}{
		{"/", 200, true, webserve.CacheEntryPoint},
		{"/sw.js", 200, true, webserve.CacheEntryPoint},
		{"/manifest.webmanifest", 200, true, webserve.CacheEntryPoint},
		{"/persone/0193a5b2", 200, true, webserve.CacheEntryPoint}, // a client route: the page
		{"/assets/index-3f2a9c.js", 200, true, webserve.CacheImmutable},
		{"/assets/index-77ab01.css", 200, true, webserve.CacheImmutable},
		{"/assets/fonts/inter-9a8b.ttf", 200, true, webserve.CacheImmutable},
		{"/assets/index-000000.js", 404, true, none}, // never the page under an asset's name
		{"/api/health", 200, false, none},
		{"/api/nothing-here", 404, false, none},
		{"/_/", 200, false, none},
	}
	for _, c := range cases {
		req := httptest.NewRequest(http.MethodGet, c.path, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header()
		if rec.Code != c.status {
			t.Errorf("%s: got status %d, want %d", c.path, rec.Code, c.status)
		}
		if hasCSP := got.Get("Content-Security-Policy") == webserve.ContentSecurityPolicy; hasCSP != c.csp {
			t.Errorf("%s: got Content-Security-Policy %q, want the web client's: %v", c.path, got.Get("Content-Security-Policy"), c.csp)
		}
		if c.csp && (got.Get("Referrer-Policy") != "no-referrer" || got.Get("X-Content-Type-Options") != "nosniff") {
			t.Errorf("%s: got Referrer-Policy %q X-Content-Type-Options %q, want no-referrer and nosniff",
				c.path, got.Get("Referrer-Policy"), got.Get("X-Content-Type-Options"))
		}
		if c.cache != none && c.status == 200 && got.Get("Cache-Control") != c.cache {
			t.Errorf("%s: got Cache-Control %q, want %q", c.path, got.Get("Cache-Control"), c.cache)
		}
		if c.cache == none && got.Get("Cache-Control") == webserve.CacheImmutable {
			t.Errorf("%s: got Cache-Control %q, want no permanent caching", c.path, got.Get("Cache-Control"))
		}
	}
}

func TestPolicyIsStrict(t *testing.T) {
	t.Parallel()
	for _, directive := range []string{
		"default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
		"connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'", "object-src 'none'",
	} {
		if !contains(webserve.ContentSecurityPolicy, directive) {
			t.Errorf("policy %q: no %q", webserve.ContentSecurityPolicy, directive)
		}
	}
	for _, loose := range []string{"unsafe-inline", "unsafe-eval", "*", "http:", "https:"} {
		if contains(webserve.ContentSecurityPolicy, loose) {
			t.Errorf("policy %q: got %q, want none", webserve.ContentSecurityPolicy, loose)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
