package signin_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/demo"
	"strada/internal/domain"
	"strada/internal/signin"
	hooks "strada/pb_hooks"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// clock is a settable clock for the guard.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestBackOff walks one identity through failures, windows that double,
// a refused right password and the success that clears the count.
func TestBackOff(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	g := signin.New()
	g.Now = clk.Now
	key := signin.Key("users", "Operatore.Campi@Example.org ")
	if other := signin.Key("users", "operatore.campi@example.org"); other != key {
		t.Fatalf("got keys %q and %q for the same email, want one", key, other)
	}
	attempt := func(outcome signin.Outcome) (time.Duration, bool) {
		wait, ok := g.Begin(key)
		if ok {
			g.End(key, outcome)
		}
		return wait, ok
	}
	for i := range signin.FreeFailures {
		if _, ok := attempt(signin.Failed); !ok {
			t.Fatalf("failure %d: got refused, want admitted", i+1)
		}
	}
	// From here each failure doubles the window.
	for i, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second} {
		wait, ok := attempt(signin.Succeeded) // the right password, too early
		if ok || wait != want {
			t.Fatalf("window %d: got admitted %v wait %s, want refused for %s", i, ok, wait, want)
		}
		clk.Advance(want)
		if _, ok := attempt(signin.Failed); !ok {
			t.Fatalf("window %d: got refused after %s, want admitted", i, want)
		}
	}
	clk.Advance(32 * time.Second)
	if _, ok := attempt(signin.Succeeded); !ok {
		t.Fatal("after the last window: got refused, want admitted")
	}
	if n := g.Tracked(); n != 0 {
		t.Fatalf("after a success: got %d identities tracked, want 0", n)
	}
	if _, ok := attempt(signin.Failed); !ok {
		t.Fatal("after a success: got refused, want the count cleared")
	}

	// The window stops growing at MaxLock.
	for range 30 {
		wait, ok := g.Begin(key)
		if ok {
			g.End(key, signin.Failed)
			continue
		}
		if wait > signin.MaxLock {
			t.Fatalf("got a window of %s, want at most %s", wait, signin.MaxLock)
		}
		clk.Advance(wait)
	}
	// A count older than Forget starts again.
	clk.Advance(signin.Forget + signin.MaxLock)
	for i := range signin.FreeFailures {
		if _, ok := attempt(signin.Failed); !ok {
			t.Fatalf("a day later, failure %d: got refused, want admitted", i+1)
		}
	}
}

// TestParallelGuessesAreHeldBack starts many attempts at once: only as many
// run as failures remain before the back-off.
func TestParallelGuessesAreHeldBack(t *testing.T) {
	t.Parallel()
	g := signin.New()
	key := signin.Key("users", "a@example.org")
	admitted := 0
	for range 50 {
		if _, ok := g.Begin(key); ok {
			admitted++
		}
	}
	if admitted != signin.FreeFailures {
		t.Fatalf("got %d attempts admitted at once, want %d", admitted, signin.FreeFailures)
	}
}

// TestUndecidedAttemptsDoNotCount ends attempts with an error that is not
// a wrong password: nothing is counted.
func TestUndecidedAttemptsDoNotCount(t *testing.T) {
	t.Parallel()
	g := signin.New()
	key := signin.Key("users", "a@example.org")
	for range 3 * signin.FreeFailures {
		if _, ok := g.Begin(key); !ok {
			t.Fatal("got refused, want admitted")
		}
		g.End(key, signin.Undecided)
	}
	if n := g.Tracked(); n != 0 {
		t.Fatalf("got %d identities tracked, want 0", n)
	}
}

func signIn(t *testing.T, h http.Handler, collection, identity, password string) (int, http.Header) {
	t.Helper()
	body, err := json.Marshal(map[string]string{"identity": identity, "password": password})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/api/collections/"+collection+"/auth-with-password", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Header()
}

// TestSignInBackOff signs in through the API as serve binds it: wrong
// passwords, then the right one refused with 429 and Retry-After, for
// workers, superusers and unknown accounts alike; admitted again when the
// window has passed.
func TestSignInBackOff(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, collection, identity string
		known                      bool
	}{
		{"worker", domain.Users, apptest.CampWorker, true},
		{"superuser", core.CollectionNameSuperusers, apptest.Admin, true},
		{"unknown account", domain.Users, "nessuno@example.org", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			app := apptest.New(t)
			guard := hooks.BindLimits(app)
			clk := &clock{now: time.Now()}
			guard.Now = clk.Now
			h := apptest.Handler(t, app)

			for i := range signin.FreeFailures {
				if status, _ := signIn(t, h, c.collection, c.identity, "wrong-"+strconv.Itoa(i)); status != http.StatusBadRequest {
					t.Fatalf("wrong password %d: got %d, want 400", i+1, status)
				}
			}
			status, header := signIn(t, h, c.collection, c.identity, demo.Password)
			if status != http.StatusTooManyRequests || header.Get("Retry-After") != "2" {
				t.Fatalf("right password after %d failures: got %d Retry-After %q, want 429 Retry-After 2",
					signin.FreeFailures, status, header.Get("Retry-After"))
			}
			// The identity in another case is the same account.
			if status, _ := signIn(t, h, c.collection, " "+c.identity, demo.Password); status != http.StatusTooManyRequests {
				t.Fatalf("same identity spelled differently: got %d, want 429", status)
			}
			clk.Advance(2 * time.Second)
			want := http.StatusOK
			if !c.known {
				want = http.StatusBadRequest
			}
			if status, _ := signIn(t, h, c.collection, c.identity, demo.Password); status != want {
				t.Fatalf("right password after the window: got %d, want %d", status, want)
			}
			if c.known {
				if n := guard.Tracked(); n != 0 {
					t.Fatalf("after a success: got %d identities tracked, want 0", n)
				}
			}
		})
	}
}
