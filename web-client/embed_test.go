package webclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
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
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// TestPlaceholderPageInChromium loads the embedded web client in headless
// Chromium: every text comes from the translations, English for an English
// browser, and the language buttons switch between Italian and English.
func TestPlaceholderPageInChromium(t *testing.T) {
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
	empty, err := chromedp.Run(ctx, chromedp.Evaluate[int](
		`[...document.querySelectorAll("[data-i18n]")].filter(e => e.textContent.trim() === "").length`))
	if err != nil || empty != 0 {
		t.Fatalf("got %d untranslated elements (%v), want 0", empty, err)
	}
	if got, want := text("a[href='/_/']"), "Administration"; got != want {
		t.Fatalf("got %q for an English browser, want %q", got, want)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("[data-lang=it]"))); err != nil {
		t.Fatal(err)
	}
	if got, want := text("a[href='/_/']"), "Amministrazione"; got != want {
		t.Fatalf("got %q after choosing Italiano, want %q", got, want)
	}
	lang, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`))
	if err != nil || lang != "it" {
		t.Fatalf("got lang %q (%v), want it", lang, err)
	}
}
