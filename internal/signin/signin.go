// Package signin slows password guessing against one account. After
// FreeFailures consecutive failed sign-ins with the same identity (the
// email, in any case), every further attempt on it, the right password
// included, is refused with 429 and Retry-After for a window that doubles
// with each further failure, up to MaxLock. A successful sign-in clears the
// count. Unknown identities are counted like known ones, so the answers say
// nothing about which accounts exist.
//
// The state lives in memory: it is bounded (MaxTracked identities), it is
// per process and it starts empty after a restart. That is enough to turn
// 200 guesses in 38 seconds into a handful; PocketBase's per-address rate
// limits bound the rest.
package signin

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"
)

// Policy.
const (
	// FreeFailures is how many consecutive failures an identity has before
	// its attempts are held back.
	FreeFailures = 5
	// BaseLock is the first window after FreeFailures failures; each further
	// failure doubles it.
	BaseLock = 2 * time.Second
	// MaxLock is the longest window.
	MaxLock = 15 * time.Minute
	// Forget is how long after its last failure an identity's count is kept.
	Forget = 24 * time.Hour
	// MaxTracked is how many identities are tracked at once.
	MaxTracked = 10_000
)

type entry struct {
	failures    int
	inflight    int
	lockedUntil time.Time
	last        time.Time
}

// Guard holds the failure counts of the identities of every auth
// collection. The zero value is not usable; call [New].
type Guard struct {
	// Now is the clock; tests set it.
	Now func() time.Time

	mu      sync.Mutex
	entries map[string]*entry
	max     int
}

// New returns a guard tracking up to MaxTracked identities.
func New() *Guard {
	return &Guard{Now: time.Now, entries: map[string]*entry{}, max: MaxTracked}
}

// Key is the identity an attempt counts against: the auth collection and
// the identity as typed, trimmed and in lower case.
func Key(collectionID, identity string) string {
	return collectionID + "\x00" + strings.ToLower(strings.TrimSpace(identity))
}

// Begin admits an attempt on key, or returns how long the caller must wait.
// An admitted attempt must be ended with [Guard.End]. Below FreeFailures
// only as many attempts run at once as failures remain; from then on, one
// at a time, so that a burst of parallel guesses is held back like a
// sequence.
func (g *Guard) Begin(key string) (wait time.Duration, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.Now()
	en := g.entries[key]
	if en == nil {
		if !g.makeRoom(now) {
			return 0, true // every tracked identity is held back; this one is not counted
		}
		en = &entry{}
		g.entries[key] = en
	}
	if en.inflight == 0 && en.failures > 0 && now.Sub(en.last) > Forget {
		en.failures = 0
	}
	if now.Before(en.lockedUntil) {
		return en.lockedUntil.Sub(now), false
	}
	if en.inflight >= max(1, FreeFailures-en.failures) {
		return time.Second, false
	}
	en.inflight++
	return 0, true
}

// End records the outcome of an attempt admitted by Begin: a failure counts
// and, from FreeFailures on, holds the identity back; a success clears it;
// any other outcome (an error before the password was judged) changes
// nothing.
func (g *Guard) End(key string, outcome Outcome) {
	g.mu.Lock()
	defer g.mu.Unlock()
	en := g.entries[key]
	if en == nil {
		return
	}
	en.inflight = max(0, en.inflight-1)
	now := g.Now()
	switch outcome {
	case Succeeded:
		en.failures = 0
		en.lockedUntil = time.Time{}
	case Failed:
		en.failures++
		en.last = now
		if en.failures >= FreeFailures {
			en.lockedUntil = now.Add(lockFor(en.failures))
		}
	}
	if en.failures == 0 && en.inflight == 0 {
		delete(g.entries, key)
	}
}

// Outcome is how an attempt ended.
type Outcome int

// Outcomes.
const (
	Undecided Outcome = iota
	Failed
	Succeeded
)

// lockFor is the window after the given number of consecutive failures.
func lockFor(failures int) time.Duration {
	shift := failures - FreeFailures
	if shift >= 20 {
		return MaxLock
	}
	return min(BaseLock<<shift, MaxLock)
}

// makeRoom keeps the map within its bound: it forgets identities whose
// last failure is older than Forget, then, if still full, the least recent
// one that is not held back. It reports false when every tracked identity
// is held back.
func (g *Guard) makeRoom(now time.Time) bool {
	if len(g.entries) < g.max {
		return true
	}
	var oldest string
	var oldestAt time.Time
	for k, en := range g.entries {
		if en.inflight > 0 || now.Before(en.lockedUntil) {
			continue
		}
		if now.Sub(en.last) > Forget {
			delete(g.entries, k)
			continue
		}
		if oldest == "" || en.last.Before(oldestAt) {
			oldest, oldestAt = k, en.last
		}
	}
	if len(g.entries) < g.max {
		return true
	}
	if oldest == "" {
		return false
	}
	delete(g.entries, oldest)
	return true
}

// Tracked is how many identities are being tracked.
func (g *Guard) Tracked() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.entries)
}

// OnAuthWithPassword is bound to OnRecordAuthWithPasswordRequest of every
// auth collection (users and _superusers).
func (g *Guard) OnAuthWithPassword(e *core.RecordAuthWithPasswordRequestEvent) error {
	key := Key(e.Collection.Id, e.Identity)
	wait, ok := g.Begin(key)
	if !ok {
		secs := int(math.Ceil(wait.Seconds()))
		e.Response.Header().Set("Retry-After", strconv.Itoa(secs))
		return e.TooManyRequestsError(
			fmt.Sprintf("Too many failed sign-ins for this account; try again in %d seconds.", secs), nil)
	}
	err := e.Next()
	g.End(key, outcomeOf(err))
	return err
}

// outcomeOf reads the answer of PocketBase's password check: nil is a
// success, its 400 "Failed to authenticate" a wrong identity or password.
func outcomeOf(err error) Outcome {
	if err == nil {
		return Succeeded
	}
	var apiErr *router.ApiError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest {
		return Failed
	}
	return Undecided
}
