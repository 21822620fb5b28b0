// Package apptest builds PocketBase test apps with Strada's schema, record
// hooks and the demo data, for the tests of every other package. A template
// database is migrated and seeded once per test binary and cloned per test.
package apptest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"strada/internal/changelog"
	"strada/internal/demo"
	"strada/internal/domain"
	"strada/internal/storage"
	hooks "strada/pb_hooks"
	_ "strada/pb_migrations"
)

// Now is the fixed clock of the demo data in tests.
var Now = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

var (
	once        sync.Once
	templateDir string
	templateErr error
)

func template() (string, error) {
	once.Do(func() {
		empty, err := os.MkdirTemp("", "strada-template-src-")
		if err != nil {
			templateErr = err
			return
		}
		defer os.RemoveAll(empty)
		app, err := newTestApp(empty)
		if err != nil {
			templateErr = err
			return
		}
		hooks.BindRecordHooks(app, changelog.New(domain.Reference))
		if _, err := demo.Seed(app, Now); err != nil {
			templateErr = err
			cleanup(app)
			return
		}
		templateDir = app.DataDir()
		app.ResetBootstrapState() // closes the database, keeps the directory
	})
	return templateDir, templateErr
}

// newTestApp opens a clone of dir as PocketBase's tests do, with Strada's
// database connections (secure delete).
func newTestApp(dir string) (*tests.TestApp, error) {
	return tests.NewTestAppWithConfig(core.BaseAppConfig{
		DataDir: dir, EncryptionEnv: "pb_test_env", DBConnect: storage.Connect,
	})
}

// App is a test app and its change log.
type App struct {
	*tests.TestApp
	Log *changelog.Log
}

// New returns a test app with Strada's schema, hooks and demo data, removed
// when the test ends.
func New(t testing.TB) *App {
	t.Helper()
	app := NewUnbound(t)
	log := changelog.New(domain.Reference)
	hooks.BindRecordHooks(app, log)
	hooks.BindRecordAPI(app)
	return &App{TestApp: app, Log: log}
}

// NewUnbound returns a test app with the schema and demo data but without
// Strada's hooks, for measuring what they cost.
func NewUnbound(t testing.TB) *tests.TestApp {
	t.Helper()
	dir, err := template()
	if err != nil {
		t.Fatalf("build template app: %v", err)
	}
	app, err := newTestApp(dir)
	if err != nil {
		t.Fatalf("new test app: %v", err)
	}
	t.Cleanup(func() { cleanup(app) })
	return app
}

// cleanup removes a test app. Its cron, started by the serve hooks, is
// stopped and emptied first, so that no scheduled job starts while the app
// is being reset (a ticker that was starting at that moment finds no job).
func cleanup(app *tests.TestApp) {
	app.Cron().Stop()
	app.Cron().RemoveAll()
	app.Cleanup()
}

// Main runs the tests of a package and removes the template afterwards. Call
// it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if templateDir != "" {
		os.RemoveAll(templateDir)
	}
	os.Exit(code)
}

// User returns the users record with the given email.
func User(t testing.TB, app core.App, email string) *core.Record {
	t.Helper()
	u, err := app.FindAuthRecordByEmail(domain.Users, email)
	if err != nil {
		t.Fatalf("find user %s: %v", email, err)
	}
	return u
}

// Token returns an auth token of the user with the given email; a superuser
// when the email is a superuser's.
func Token(t testing.TB, app core.App, email string) string {
	t.Helper()
	rec, err := app.FindAuthRecordByEmail(domain.Users, email)
	if err != nil {
		rec, err = app.FindAuthRecordByEmail(core.CollectionNameSuperusers, email)
	}
	if err != nil {
		t.Fatalf("find account %s: %v", email, err)
	}
	tok, err := rec.NewAuthToken()
	if err != nil {
		t.Fatalf("token for %s: %v", email, err)
	}
	return tok
}

// Team returns the id of the demo team of the given kind.
func Team(t testing.TB, app core.App, kind string) string {
	t.Helper()
	r, err := app.FindFirstRecordByData(domain.Teams, "kind", kind)
	if err != nil {
		t.Fatalf("find team %s: %v", kind, err)
	}
	return r.Id
}

// Demo account emails.
const (
	PrisonWorker = "operatore.carcere@example.org"
	CampWorker   = "operatore.campi@example.org"
	Supervisor   = "supervisore@example.org"
	Admin        = "admin@example.org"
)

// Handler returns the app's router with every route bound in OnServe, for
// many requests against one database.
func Handler(t testing.TB, app core.App) http.Handler {
	t.Helper()
	r, err := apis.NewRouter(app)
	if err != nil {
		t.Fatalf("new router: %v", err)
	}
	se := &core.ServeEvent{App: app, Router: r}
	// OnServe starts the app's cron: stop it when the test ends, before
	// the app is reset, whoever made the app.
	t.Cleanup(app.Cron().Stop)
	if err := app.OnServe().Trigger(se, func(e *core.ServeEvent) error { return nil }); err != nil {
		t.Fatalf("serve hooks: %v", err)
	}
	mux, err := r.BuildMux()
	if err != nil {
		t.Fatalf("build mux: %v", err)
	}
	return mux
}

// Serve starts an HTTP server with Handler, closed when the test ends.
func Serve(t testing.TB, app core.App) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(Handler(t, app))
	t.Cleanup(srv.Close)
	return srv
}
