package dashboard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/events"
)

// Change is one kind of change of a hint: no record id, no field, nothing
// about a person.
type Change struct {
	Collection string `json:"collection"`
	Team       string `json:"team"`
	Op         string `json:"op"`
}

// Hint is the data of a "changed" event: the changes of a burst, up to the
// change log position Seq. The page refetches the summary.
type Hint struct {
	Seq     int64    `json:"seq"`
	Count   int      `json:"count"`
	Changes []Change `json:"changes"`
}

// sseWriter writes Server-Sent Events and flushes each one.
type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (s sseWriter) send(event string, data any) error {
	body, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", event, err)
	}
	if _, err := fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", event, body); err != nil {
		return err
	}
	return s.rc.Flush()
}

// HandleStream answers GET /api/dashboard/stream with Server-Sent Events
// for a supervisor, signed in with the Authorization header or with a
// ticket (?ticket=, from POST /api/dashboard/stream-ticket): "hello" with
// the change log position, "changed" when something in the supervisor's
// teams (or the one team of ?team=) changed, many changes in a burst as one
// hint at most every Coalesce, "heartbeat" every Heartbeat, and "reset"
// before the stream ends when the account's role or teams changed.
func (d *Dashboard) HandleStream(e *core.RequestEvent) error {
	user := e.Auth
	if t := e.Request.URL.Query().Get("ticket"); t != "" {
		var err error
		if user, err = d.redeemTicket(e.App, t); err != nil {
			return answer(e, &Error{Status: http.StatusUnauthorized, Code: CodeInvalidTicket, Field: "ticket",
				Message: "The stream ticket is invalid, expired or used; ask for a new one."})
		}
	}
	teams, er := supervisedTeams(user)
	if er != nil {
		return answer(e, er)
	}
	scope := teams
	if t := e.Request.URL.Query().Get("team"); t != "" {
		if !slices.Contains(teams, t) {
			return answer(e, notFound("team"))
		}
		scope = []string{t}
	}
	if !d.streams.acquire(user.Id) {
		e.Response.Header().Set("Retry-After", strconv.Itoa(30))
		return answer(e, &Error{Status: http.StatusTooManyRequests, Code: CodeTooManyStreams,
			Message: "Too many dashboard streams are open for this account; close one or retry later."})
	}
	defer d.streams.release(user.Id)

	rc := http.NewResponseController(e.Response)
	// A stream outlives the server's read and write timeouts.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	h := e.Response.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	e.Response.WriteHeader(http.StatusOK)
	out := sseWriter{w: e.Response, rc: rc}

	ctx := e.Request.Context()
	sub := d.hub.Subscribe(ctx, events.Scope{Teams: scope})
	last, err := changelog.LastSeq(e.App)
	if err != nil {
		return fmt.Errorf("dashboard stream: %w", err)
	}
	if err := out.send("hello", map[string]any{"seq": last, "heartbeat": d.Heartbeat.Seconds()}); err != nil {
		return nil
	}
	heartbeat := time.NewTicker(d.Heartbeat)
	defer heartbeat.Stop()
	var (
		pending  *Hint
		flush    <-chan time.Time
		timer    *time.Timer
		lastSent time.Time
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	send := func() error {
		err := out.send("changed", pending)
		pending, flush, lastSent = nil, nil, time.Now()
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-sub.C:
			if !ok {
				return nil
			}
			pending = addToHint(pending, ev)
			// Take what the burst has already queued.
			for more := true; more; {
				select {
				case next, ok := <-sub.C:
					if !ok {
						return nil
					}
					pending = addToHint(pending, next)
				default:
					more = false
				}
			}
			if flush != nil {
				continue
			}
			if wait := d.Coalesce - time.Since(lastSent); wait > 0 {
				timer = time.NewTimer(wait)
				flush = timer.C
				continue
			}
			if err := send(); err != nil {
				return nil
			}
		case <-flush:
			if err := send(); err != nil {
				return nil
			}
		case <-heartbeat.C:
			if !d.sameScope(e.App, user, teams) {
				_ = out.send("reset", map[string]any{"reset": true})
				return nil
			}
			if err := out.send("heartbeat", map[string]any{"at": time.Now().UTC()}); err != nil {
				return nil
			}
		}
	}
}

// addToHint adds ev to the hint of a burst.
func addToHint(h *Hint, ev events.Event) *Hint {
	if h == nil {
		h = &Hint{Changes: []Change{}}
	}
	h.Count++
	h.Seq = max(h.Seq, ev.Seq)
	c := Change{Collection: ev.Collection, Team: ev.Team, Op: string(ev.Op)}
	if !slices.Contains(h.Changes, c) {
		h.Changes = append(h.Changes, c)
	}
	return h
}

// sameScope reports whether user is still a supervisor of exactly teams,
// with the same tokens.
func (d *Dashboard) sameScope(app core.App, user *core.Record, teams []string) bool {
	now, err := app.FindRecordById(domain.Users, user.Id)
	if err != nil || now.TokenKey() != user.TokenKey() {
		return false
	}
	t, er := supervisedTeams(now)
	return er == nil && slices.Equal(t, teams)
}
