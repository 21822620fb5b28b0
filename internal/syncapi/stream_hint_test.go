package syncapi_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/events"
	"strada/internal/syncapi"
	hooks "strada/pb_hooks"
)

// TestStreamHintsOnlyChangesOfTheLog hands the stream an event whose
// sequence the change log does not hold, then one it holds: whether they
// arrive together or one by one, the device's first hint names the change
// the log holds.
func TestStreamHintsOnlyChangesOfTheLog(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	hub := events.NewHub(app.Logger())
	api := hooks.BindSyncAPI(app, hub)
	api.Heartbeat = time.Hour
	e := &env{t: t, app: app, url: apptest.Serve(t, app).URL, hub: hub}
	c := e.device(apptest.CampWorker)
	stream := openStream(t, context.Background(), e.url, c)
	if ev := next(t, stream); ev.event != "hello" {
		t.Fatalf("got %q first, want hello", ev.event)
	}
	team := e.team("camp_outreach")
	last := e.lastSeq()

	hub.Publish(events.Event{V: events.SchemaVersion, Seq: last + 1000, Team: team, Collection: domain.Persons, RecordID: "x", Op: changelog.OpUpdate})
	hub.Publish(events.Event{V: events.SchemaVersion, Seq: last, Team: team, Collection: domain.Persons, RecordID: "x", Op: changelog.OpUpdate})
	ev := next(t, stream)
	var hint syncapi.Hint
	if err := json.Unmarshal([]byte(ev.data), &hint); ev.event != "hint" || err != nil || hint.Seq != last {
		t.Fatalf("got %s %s (%v), want a hint of change %d, the newest the log holds", ev.event, ev.data, err, last)
	}
}
