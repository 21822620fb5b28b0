package syncapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/dashboard/rollup"
	"strada/internal/domain"
	"strada/internal/syncclient"
)

// TestBulkCreateWritesWhatSaveWrites pushes a new record of each
// collection the push writes on its bulk path and saves the same record
// through app.Save with Strada's hooks: the two rows and their change rows
// must be the same but for ids and times.
func TestBulkCreateWritesWhatSaveWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	camp, prison := e.team("camp_outreach"), e.team("prison_secretariat")
	person := newID()
	sup := e.device(apptest.Supervisor)
	sup.Upsert(domain.Persons, person, map[string]any{"team": prison, "consent": "verbal", "given_name": "Ana"})
	mustSync(t, sup)
	cases := []struct {
		collection string
		fields     map[string]any
	}{
		{domain.CampVisits, map[string]any{
			"team": camp, "site": e.siteOf("camp"), "visited_at": "2026-11-20 10:00:00.000Z",
			"households_met": 3, "topics": []string{"health", "documents"}, "needs": "bisogni",
		}},
		{domain.SecretariatContacts, map[string]any{
			"team": prison, "person": person, "site": e.siteOf("prison"), "setting": "intra",
			"contacted_at": "2026-11-19 09:00:00.000Z", "notes": "colloquio",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.collection, func(t *testing.T) {
			pushed := newID()
			m, _ := sup.Upsert(tc.collection, pushed, tc.fields)
			if r := statusOf(t, mustSync(t, sup), m.ID); r.Status != "applied" || r.Version != 1 {
				t.Fatalf("got %+v, want applied at version 1", r)
			}

			collection, err := e.app.FindCachedCollectionByNameOrId(tc.collection)
			if err != nil {
				t.Fatal(err)
			}
			saved := core.NewRecord(collection)
			saved.Id = newID()
			saved.Load(tc.fields)
			user := apptest.User(t, e.app, apptest.Supervisor)
			ctx := changelog.WithActor(context.Background(), changelog.Actor{User: user.Id, Device: "go", Mutation: newUUID()})
			if err := e.app.SaveWithContext(ctx, saved); err != nil {
				t.Fatalf("save: %v", err)
			}

			a, b := rowOf(t, e, tc.collection, pushed), rowOf(t, e, tc.collection, saved.Id)
			for _, k := range []string{"id", "created", "updated"} {
				if a[k] == b[k] {
					t.Fatalf("got %s %s on both rows, want each its own", k, a[k])
				}
				delete(a, k)
				delete(b, k)
			}
			if !maps.Equal(a, b) {
				t.Fatalf("got pushed row %v, want the saved row %v", a, b)
			}
			ca, cb := changeOf(t, e, tc.collection, pushed), changeOf(t, e, tc.collection, saved.Id)
			for _, k := range []string{"seq", "record_id", "at", "actor_device", "mutation_id"} {
				delete(ca, k)
				delete(cb, k)
			}
			if !maps.Equal(ca, cb) {
				t.Fatalf("got pushed change row %v, want the saved one %v", ca, cb)
			}
		})
	}
}

// TestBulkCreateRunsAfterCreateHooks: a record written on the bulk path
// runs PocketBase's after-create hooks once the push commits, as app.Save
// does, and a rejected mutation runs none.
func TestBulkCreateRunsAfterCreateHooks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var created atomic.Int64
	e.app.OnRecordAfterCreateSuccess(domain.CampVisits).BindFunc(func(ev *core.RecordEvent) error {
		if ev.Record.IsNew() || ev.Record.GetInt("version") != 1 {
			t.Errorf("got a record new=%v version %d, want written at version 1", ev.Record.IsNew(), ev.Record.GetInt("version"))
		}
		created.Add(1)
		return ev.Next()
	})
	c := e.device(apptest.CampWorker)
	camp := e.team("camp_outreach")
	fields := map[string]any{"team": camp, "site": e.siteOf("camp"), "visited_at": "2026-11-20 10:00:00.000Z"}
	for range 3 {
		c.Upsert(domain.CampVisits, newID(), fields)
	}
	bad, _ := c.Upsert(domain.CampVisits, newID(), map[string]any{"team": camp, "site": e.siteOf("prison"), "visited_at": "2026-11-20 10:00:00.000Z"})
	res := mustSync(t, c)
	if r := statusOf(t, res, bad.ID); r.Status != "rejected" {
		t.Fatalf("got %+v, want the visit at a prison rejected", r)
	}
	if got := created.Load(); got != 3 {
		t.Fatalf("got %d after-create hooks, want 3", got)
	}
}

// rowOf returns a record's columns as JSON values.
func rowOf(t *testing.T, e *env, collection, id string) map[string]string {
	t.Helper()
	row := dbx.NullStringMap{}
	if err := e.app.DB().Select("*").From(collection).Where(dbx.HashExp{"id": id}).One(row); err != nil {
		t.Fatalf("read %s/%s: %v", collection, id, err)
	}
	return flatten(row)
}

// changeOf returns the change row of a record's creation.
func changeOf(t *testing.T, e *env, collection, id string) map[string]string {
	t.Helper()
	row := dbx.NullStringMap{}
	err := e.app.DB().Select("*").From(changelog.Table).
		Where(dbx.HashExp{"collection": collection, "record_id": id, "op": "create"}).One(row)
	if err != nil {
		t.Fatalf("read the change row of %s/%s: %v", collection, id, err)
	}
	return flatten(row)
}

func flatten(row dbx.NullStringMap) map[string]string {
	out := make(map[string]string, len(row))
	for k, v := range row {
		j, _ := json.Marshal(v)
		out[k] = string(j)
	}
	return out
}

// TestBulkCreateRefusesADeletedID: an id of a deleted record is never
// used again, whether it was deleted by an earlier push or earlier in the
// same push.
func TestBulkCreateRefusesADeletedID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.device(apptest.CampWorker)
	camp := e.team("camp_outreach")
	fields := map[string]any{"team": camp, "site": e.siteOf("camp"), "visited_at": "2026-11-20 10:00:00.000Z"}
	earlier, same := newID(), newID()
	c.Upsert(domain.CampVisits, earlier, fields)
	mustSync(t, c)
	c.Delete(domain.CampVisits, earlier)
	mustSync(t, c)

	c.Upsert(domain.CampVisits, same, fields)
	c.Delete(domain.CampVisits, same)
	body := map[string]any{"mutations": []any{
		c.Store.Outbox()[0], c.Store.Outbox()[1],
		map[string]any{"id": newUUID(), "collection": domain.CampVisits, "recordId": same, "op": "upsert", "fields": fields},
		map[string]any{"id": newUUID(), "collection": domain.CampVisits, "recordId": earlier, "op": "upsert", "fields": fields},
	}}
	var got struct{ Results []syncclient.Result }
	if err := e.post(c, "/api/sync/push", body, &got); err != nil {
		t.Fatal(err)
	}
	want := []string{"applied", "applied", "record_deleted", "record_deleted"}
	for i, r := range got.Results {
		code := r.Status
		if r.Error != nil {
			code = r.Error.Code
		}
		if code != want[i] {
			t.Fatalf("got result %d %+v, want %s", i, r, want[i])
		}
	}
	for _, id := range []string{earlier, same} {
		if _, err := e.app.FindRecordById(domain.CampVisits, id); err == nil {
			t.Fatalf("got camp visit %s, want none", id)
		}
	}
}

// TestBulkCreateKeepsTheDashboardCounts pushes new visits and contacts,
// which the bulk path inserts without record hooks: the dashboard's kept
// counts must equal a full recount afterwards, and must have moved.
func TestBulkCreateKeepsTheDashboardCounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	camp, prison := e.team("camp_outreach"), e.team("prison_secretariat")
	sup := e.device(apptest.Supervisor)
	person := newID()
	sup.Upsert(domain.Persons, person, map[string]any{"team": prison, "consent": "verbal"})
	mustSync(t, sup)
	before := rollupRows(t, e.app)
	for i := range 5 {
		sup.Upsert(domain.CampVisits, newID(), map[string]any{
			"team": camp, "site": e.siteOf("camp"), "visited_at": fmt.Sprintf("2026-11-2%d 10:00:00.000Z", i),
			"households_met": i + 1, "topics": []string{"health"},
		})
		sup.Upsert(domain.SecretariatContacts, newID(), map[string]any{
			"team": prison, "person": person, "site": e.siteOf("prison"), "setting": "intra",
			"contacted_at": fmt.Sprintf("2026-11-1%d 09:00:00.000Z", i),
		})
	}
	for _, r := range mustSync(t, sup) {
		if r.Status != "applied" {
			t.Fatalf("got %+v, want applied", r)
		}
	}
	kept := rollupRows(t, e.app)
	if reflect.DeepEqual(before, kept) {
		t.Fatal("got the same kept counts after 10 pushed creates, want them changed")
	}
	if err := rollup.Rebuild(e.app); err != nil {
		t.Fatal(err)
	}
	if recount := rollupRows(t, e.app); !reflect.DeepEqual(kept, recount) {
		t.Fatalf("got kept counts\n%v\nwant the recount\n%v", kept, recount)
	}
}

// rollupRows returns every row of the dashboard's kept counts.
func rollupRows(t *testing.T, app core.App) map[string][]string {
	t.Helper()
	rows, err := rollup.Rows(app)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
