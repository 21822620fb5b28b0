package webclient

import (
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser returns a headless Chromium context. Locally the test is skipped
// without Chromium; in CI (.ci/run installs it) its absence fails the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed; .ci/run installs it")
		}
		t.Skip("chromium is not installed")
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("lang", "it-IT"),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// TestDistIsTheBuiltApp checks what the binary embeds: the app shell, the
// service worker and the manifest, and an index.html that the server's
// Content-Security-Policy allows (no inline script or style).
func TestDistIsTheBuiltApp(t *testing.T) {
	for _, name := range []string{"index.html", "sw.js", "manifest.webmanifest", "icon.svg"} {
		if _, err := fs.Stat(DistFS(), name); err != nil {
			t.Errorf("got %v for dist/%s, want the file", err, name)
		}
	}
	html, err := fs.ReadFile(DistFS(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAll(html, -1) {
		if !strings.Contains(string(tag), " src=") {
			t.Errorf("got inline %q in index.html, want scripts from files only", tag)
		}
	}
	if m := regexp.MustCompile(`<style|\sstyle=`).Find(html); m != nil {
		t.Errorf("got %q in index.html, want no inline style", m)
	}
	if !strings.Contains(string(html), `<script type="module" crossorigin src="/assets/`) {
		t.Errorf("got index.html without its hashed module script:\n%s", html)
	}
}

// TestSignInPageInChromium loads the embedded app in headless Chromium: a
// device without an account shows the sign-in form in Italian, and the
// language buttons switch to English.
func TestSignInPageInChromium(t *testing.T) {
	ctx := browser(t)
	srv := httptest.NewServer(http.FileServerFS(DistFS()))
	t.Cleanup(srv.Close)

	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
		t.Fatalf("load: %v", err)
	}
	if got, want := text("h1"), "Accedi a Strada"; got != want {
		t.Fatalf("got heading %q, want %q", got, want)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("[data-lang=en]"))); err != nil {
		t.Fatal(err)
	}
	if got, want := text("h1"), "Sign in to Strada"; got != want {
		t.Fatalf("got %q after choosing English, want %q", got, want)
	}
	lang, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`))
	if err != nil || lang != "en" {
		t.Fatalf("got lang %q (%v), want en", lang, err)
	}
}
