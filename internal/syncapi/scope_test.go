package syncapi_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/pocketbase/dbx"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/syncclient"
)

// teamCollections are pulled only within the user's teams.
var teamCollections = []string{domain.Persons, domain.CampVisits, domain.SecretariatContacts, domain.Referrals, domain.ReferralEvents}

func assertOnlyTeam(t *testing.T, c *syncclient.Client, team string) int {
	t.Helper()
	n := 0
	for _, coll := range teamCollections {
		for id, r := range c.Store.Bases(coll) {
			if r["team"] != team {
				t.Fatalf("device holds %s/%s of team %v, want only team %s", coll, id, r["team"], team)
			}
			n++
		}
	}
	return n
}

func TestPullScopeAndSnapshot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	camp := e.team("camp_outreach")
	c := e.device(apptest.CampWorker)
	c.PageSize = 7 // many pages
	mustSync(t, c)
	if n := assertOnlyTeam(t, c, camp); n == 0 {
		t.Fatal("got no camp records, want the camp team's records")
	}
	for _, coll := range []string{domain.Teams, domain.Sites, domain.Services} {
		if got, want := int64(len(c.Store.Bases(coll))), e.count(coll); got != want {
			t.Fatalf("got %d %s, want all %d reference records", got, coll, want)
		}
	}
	// Exactly the team's records, no more, no fewer.
	for _, coll := range teamCollections {
		want, err := e.app.CountRecords(coll, dbxTeam(camp))
		if err != nil {
			t.Fatal(err)
		}
		if got := int64(len(c.Store.Bases(coll))); got != want {
			t.Fatalf("got %d %s, want %d", got, coll, want)
		}
	}
}

func TestSnapshotMissesNothingWrittenDuringIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	camp := e.team("camp_outreach")
	reader := e.device(apptest.CampWorker)
	writer := e.device(apptest.Supervisor)
	mustSync(t, writer)
	ctx := context.Background()
	// Pull pages until the snapshot has passed the persons, then write
	// persons (a collection already sent) and delete a visit.
	for {
		var page struct {
			Changes []syncclient.Change `json:"changes"`
			Cursor  string              `json:"cursor"`
			Seq     int64               `json:"seq"`
			HasMore bool                `json:"hasMore"`
		}
		cursor, _ := reader.Store.Cursor()
		if err := e.raw(reader, http.MethodGet, "/api/sync/pull?limit=5&cursor="+cursor, nil, &page); err != nil {
			t.Fatal(err)
		}
		if err := reader.Store.ApplyPage(page.Changes, page.Cursor, page.Seq); err != nil {
			t.Fatal(err)
		}
		if !page.HasMore {
			t.Fatal("the snapshot ended before reaching the visits")
		}
		if len(page.Changes) > 0 && page.Changes[len(page.Changes)-1].Collection == domain.CampVisits {
			break
		}
	}
	var created []string
	for range 5 {
		id := newID()
		created = append(created, id)
		writer.Upsert(domain.Persons, id, map[string]any{"team": camp, "consent": "verbal"})
	}
	var visits []string
	for id := range reader.Store.Bases(domain.CampVisits) {
		visits = append(visits, id)
	}
	writer.Delete(domain.CampVisits, visits[0])
	if _, err := writer.Push(ctx); err != nil {
		t.Fatal(err)
	}
	if err := reader.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range created {
		if _, ok := reader.Store.Base(domain.Persons, id); !ok {
			t.Fatalf("person %s written during the snapshot is missing", id)
		}
	}
	if _, ok := reader.Store.Base(domain.CampVisits, visits[0]); ok {
		t.Fatal("a visit deleted during the snapshot is still on the device")
	}
}

func TestScopeChangeGivesReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	camp, prison := e.team("camp_outreach"), e.team("prison_secretariat")
	c := e.device(apptest.CampWorker)
	mustSync(t, c)
	// The camp worker moves to the prison team.
	u := apptest.User(t, e.app, apptest.CampWorker)
	u.Set("teams", []string{prison})
	if err := e.app.Save(u); err != nil {
		t.Fatal(err)
	}
	cursor, _ := c.Store.Cursor()
	var page struct {
		Reset   bool  `json:"reset"`
		Changes []any `json:"changes"`
	}
	if err := e.raw(c, http.MethodGet, "/api/sync/pull?cursor="+cursor, nil, &page); err != nil {
		t.Fatal(err)
	}
	if !page.Reset || len(page.Changes) != 0 {
		t.Fatalf("got reset=%v with %d changes, want reset and nothing else", page.Reset, len(page.Changes))
	}
	mustSync(t, c) // the client starts again
	if n := assertOnlyTeam(t, c, prison); n == 0 {
		t.Fatal("got no prison records after the move")
	}
	_ = camp
}

func TestRecordMovedOutOfScopeIsDeletedOnDevice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	camp, prison := e.team("camp_outreach"), e.team("prison_secretariat")
	worker := e.device(apptest.CampWorker)
	sup := e.device(apptest.Supervisor)
	pid := newID()
	sup.Upsert(domain.Persons, pid, map[string]any{"team": camp, "consent": "verbal"})
	mustSync(t, sup)
	mustSync(t, worker)
	if _, ok := worker.Store.Base(domain.Persons, pid); !ok {
		t.Fatal("worker did not receive the camp person")
	}
	sup.Upsert(domain.Persons, pid, map[string]any{"team": prison, "site": ""})
	res := mustSync(t, sup)
	if res[0].Status != "applied" {
		t.Fatalf("got %+v, want the move applied", res)
	}
	mustSync(t, worker)
	if _, ok := worker.Store.Base(domain.Persons, pid); ok {
		t.Fatal("worker still holds a person moved to another team")
	}
}

func TestCompactedCursorGivesReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.device(apptest.CampWorker)
	mustSync(t, c)
	writer := e.device(apptest.CampWorker)
	writer.Upsert(domain.Persons, newID(), map[string]any{"team": e.team("camp_outreach"), "consent": "none"})
	mustSync(t, writer)
	if err := changelog.Compact(e.app, e.lastSeq()); err != nil {
		t.Fatal(err)
	}
	cursor, _ := c.Store.Cursor()
	var page struct {
		Reset bool `json:"reset"`
	}
	if err := e.raw(c, http.MethodGet, "/api/sync/pull?cursor="+cursor, nil, &page); err != nil {
		t.Fatal(err)
	}
	if !page.Reset {
		t.Fatal("got no reset for a cursor older than the log, want reset")
	}
}

func TestRevokedDeviceReadsNothingAndWipes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.device(apptest.CampWorker)
	c.Upsert(domain.Persons, newID(), map[string]any{"team": e.team("camp_outreach"), "consent": "none"})
	// A supervisor revokes the lost tablet through the records API.
	sup := e.device(apptest.Supervisor)
	if err := e.raw(sup, http.MethodPatch, "/api/collections/devices/records/"+c.DeviceID, map[string]any{"revoked": true}, nil); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if err := e.raw(sup, http.MethodPatch, "/api/collections/devices/records/"+c.DeviceID, map[string]any{"revoked": false}, nil); !isStatus(err, 404) {
		t.Fatalf("un-revoke: got %v, want 404", err)
	}
	// The owner's tokens no longer work anywhere, and no new device can be
	// registered with them.
	if err := e.raw(c, http.MethodGet, "/api/collections/persons/records", nil, nil); err == nil {
		var out struct {
			TotalItems int `json:"totalItems"`
		}
		_ = e.raw(c, http.MethodGet, "/api/collections/persons/records", nil, &out)
		if out.TotalItems != 0 {
			t.Fatalf("the revoked device's token still lists %d persons", out.TotalItems)
		}
	}
	thief := *c
	thief.Store = syncclient.NewMemoryStore()
	if err := thief.Register(context.Background(), newUUID(), "stolen", "x", "1"); !isStatus(err, 401) {
		t.Fatalf("register with the revoked device's token: got %v, want 401", err)
	}
	seq := e.lastSeq()
	// Signed out and without its device secret, the device learns nothing;
	// once its owner signs in on it again, it is told to wipe.
	signedOut := *c
	signedOut.DeviceSecret = ""
	if _, err := signedOut.Sync(context.Background()); !isStatus(err, 401) {
		t.Fatalf("sync with the revoked device's old token and no secret: got %v, want 401", err)
	}
	c.Token = apptest.Token(t, e.app, apptest.CampWorker)
	_, err := c.Sync(context.Background())
	if !errors.Is(err, syncclient.ErrRevoked) {
		t.Fatalf("got %v, want ErrRevoked", err)
	}
	if len(c.Store.Outbox()) != 0 || len(c.Store.Bases(domain.Persons)) != 0 {
		t.Fatal("got local data after revocation, want it wiped")
	}
	if e.lastSeq() != seq {
		t.Fatal("a revoked device wrote")
	}
	for _, path := range []string{"/api/sync/pull", "/api/sync/stream"} {
		err := e.raw(c, http.MethodGet, path, nil, nil)
		var apiErr *syncclient.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != 403 || apiErr.Code != "device_revoked" || !apiErr.Wipe {
			t.Fatalf("%s: got %v, want 403 device_revoked with wipe", path, err)
		}
	}
}

func TestDeviceRegistrationIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.device(apptest.CampWorker)
	id := c.DeviceID
	before := e.count(domain.Devices)
	if err := c.Register(context.Background(), id, "tablet", "test", "1.1"); err != nil {
		t.Fatal(err)
	}
	if c.DeviceID != id || e.count(domain.Devices) != before {
		t.Fatalf("got device %s and %d devices, want %s and %d", c.DeviceID, e.count(domain.Devices), id, before)
	}
	other := &syncclient.Client{BaseURL: e.url, Token: apptest.Token(t, e.app, apptest.PrisonWorker), Store: syncclient.NewMemoryStore()}
	err := other.Register(context.Background(), id, "stolen", "test", "1")
	if !isStatus(err, 409) {
		t.Fatalf("got %v, want 409 for another user's device id", err)
	}
	for _, body := range []string{`{"name":""}`, `{"name":"x","id":"NOT-A-UUID"}`, `{"name":"x","admin":true}`, `nope`} {
		if err := e.raw(c, http.MethodPost, "/api/sync/devices", body, nil); !isStatus(err, 400) {
			t.Errorf("register %s: got %v, want 400", body, err)
		}
	}
	// Push and pull record activity on the device.
	mustSync(t, c)
	dev := e.record(domain.Devices, id)
	if dev.GetDateTime("last_seen").IsZero() || dev.GetString("last_cursor") == "" {
		t.Fatalf("got last_seen %v cursor %q, want both set", dev.GetDateTime("last_seen"), dev.GetString("last_cursor"))
	}
	// The outbox size the device reports is kept for supervisors.
	camp := e.team("camp_outreach")
	c.Upsert(domain.Persons, newID(), map[string]any{"team": camp, "consent": "none"})
	c.Upsert(domain.Persons, newID(), map[string]any{"team": camp, "consent": "none"})
	if err := c.Pull(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.record(domain.Devices, id).GetInt("pending"); got != 2 {
		t.Fatalf("got pending %d after a pull with 2 queued mutations, want 2", got)
	}
	mustSync(t, c)
	if got := e.record(domain.Devices, id).GetInt("pending"); got != 0 {
		t.Fatalf("got pending %d after the outbox was pushed, want 0", got)
	}
}

func TestCursorFromAnotherLogGivesReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.device(apptest.CampWorker)
	mustSync(t, c)
	cursor, seq := c.Store.Cursor()
	// The database is restored from a backup taken before the last changes:
	// the log ends before the cursor, then new writes reuse its sequence.
	if _, err := e.app.DB().NewQuery("DELETE FROM strada_changes WHERE seq > {:s}").Bind(dbx.Params{"s": seq - 3}).Execute(); err != nil {
		t.Fatal(err)
	}
	var page struct {
		Reset bool `json:"reset"`
	}
	if err := e.raw(c, http.MethodGet, "/api/sync/pull?cursor="+cursor, nil, &page); err != nil || !page.Reset {
		t.Fatalf("cursor beyond the log: got reset=%v (%v), want reset", page.Reset, err)
	}
	if _, err := e.app.DB().NewQuery("UPDATE sqlite_sequence SET seq = {:s} WHERE name = 'strada_changes'").Bind(dbx.Params{"s": seq - 3}).Execute(); err != nil {
		t.Fatal(err)
	}
	w := e.device(apptest.CampWorker)
	for range 5 {
		w.Upsert(domain.Persons, newID(), map[string]any{"team": e.team("camp_outreach"), "consent": "none"})
	}
	mustSync(t, w)
	if err := e.raw(c, http.MethodGet, "/api/sync/pull?cursor="+cursor, nil, &page); err != nil || !page.Reset {
		t.Fatalf("cursor at a reused sequence: got reset=%v (%v), want reset", page.Reset, err)
	}
}
