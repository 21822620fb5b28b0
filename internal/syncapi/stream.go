package syncapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/events"
)

// Hint tells a device that its scope changed up to Seq. The device pulls
// from its own cursor when Seq is beyond the Seq of its last pull; Cursor
// names the same position, opaque like every cursor.
type Hint struct {
	Cursor string `json:"cursor"`
	Seq    int64  `json:"seq"`
}

// Stream answers GET /api/sync/stream with Server-Sent Events: "hint"
// whenever something in the user's scope changed (many changes in a burst
// give one hint), "heartbeat" at least every Heartbeat, and "reset" or
// "revoked" before the stream ends when the user's scope changed or the
// device was revoked. Hints come from NATS, so they arrive whichever server
// process committed the change.
func (a *API) Stream(e *core.RequestEvent) error {
	user := e.Auth
	device := deviceOf(e)
	if !a.streams.acquire(device.Id, user.Id) {
		return tooManyStreams(e)
	}
	defer a.streams.release(device.Id, user.Id)
	scope := scopeOf(user)
	rc := http.NewResponseController(e.Response)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout

	h := e.Response.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	e.Response.WriteHeader(http.StatusOK)

	ctx := e.Request.Context()
	sub := a.hub.Subscribe(ctx, events.Scope{Teams: scope.teams, Global: true})
	send := func(event string, data any) error {
		body, err := json.Marshal(data)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(e.Response, "event: %s\ndata: %s\n\n", event, body); err != nil {
			return err
		}
		return rc.Flush()
	}
	last, err := changelog.LastSeq(e.App)
	if err != nil {
		return err
	}
	if err := send("hello", map[string]any{"seq": last, "heartbeat": a.Heartbeat.Seconds()}); err != nil {
		return nil
	}
	heartbeat := time.NewTicker(a.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-sub.C:
			if !ok {
				return nil
			}
			// Coalesce a burst into one hint for its newest change.
			burst := []int64{ev.Seq}
			for more := true; more; {
				select {
				case next, ok := <-sub.C:
					if !ok {
						return nil
					}
					burst = append(burst, next.Seq)
				default:
					more = false
				}
			}
			seq, err := newestHeld(e.App, burst)
			if err != nil {
				return err
			}
			if seq == 0 {
				continue
			}
			cursor, err := a.cursors.encode(e.App, Cursor{Seq: seq, Scope: scope.fingerprint, User: user.Id, Hint: true})
			if err != nil {
				return err
			}
			if err := send("hint", Hint{Cursor: cursor, Seq: seq}); err != nil {
				return nil
			}
		case <-heartbeat.C:
			if stop, event, data := a.stillAllowed(e.App, user, device, scope); stop {
				_ = send(event, data)
				return nil
			}
			if err := send("heartbeat", map[string]any{"at": time.Now().UTC()}); err != nil {
				return nil
			}
		}
	}
}

// newestHeld returns the highest of seqs that the change log holds, or 0:
// a hint names only a change the log holds.
func newestHeld(app core.App, seqs []int64) (int64, error) {
	slices.Sort(seqs)
	for i := len(seqs) - 1; i >= 0; i-- {
		if i < len(seqs)-1 && seqs[i] == seqs[i+1] {
			continue
		}
		_, held, err := changelog.RowTag(app, seqs[i])
		if err != nil {
			return 0, err
		}
		if held {
			return seqs[i], nil
		}
	}
	return 0, nil
}

// stillAllowed re-reads the device and the user: a revoked device or a
// changed scope ends the stream with the event that says why.
func (a *API) stillAllowed(app core.App, user, device *core.Record, scope userScope) (bool, string, any) {
	d, err := app.FindRecordById(domain.Devices, device.Id)
	if err != nil || d.GetBool("revoked") {
		return true, "revoked", Error{Status: http.StatusForbidden, Code: "device_revoked", Message: "This device has been revoked: delete its local data.", Wipe: true}
	}
	u, err := app.FindRecordById(domain.Users, user.Id)
	if err != nil || scopeOf(u).fingerprint != scope.fingerprint {
		return true, "reset", map[string]any{"reset": true}
	}
	return false, "", nil
}
