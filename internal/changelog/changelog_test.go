package changelog_test

import (
	"slices"
	"testing"

	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/domain"
)

func TestMain(m *testing.M) { apptest.Main(m) }

func TestWriteAppendsRowInSameTransaction(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	before, err := changelog.LastSeq(app)
	if err != nil {
		t.Fatal(err)
	}
	team := apptest.Team(t, app, "camp_outreach")
	user := apptest.User(t, app, apptest.CampWorker)
	persons, _ := app.FindCollectionByNameOrId(domain.Persons)

	p := core.NewRecord(persons)
	p.Load(map[string]any{"team": team, "consent": "verbal", "given_name": "Test", "notes": "x"})
	actorApp := changelog.AppWithActor(app, changelog.Actor{User: user.Id, Device: "d1", Mutation: "m1"})
	if err := actorApp.Save(p); err != nil {
		t.Fatalf("save: %v", err)
	}
	if p.GetInt("version") != 1 || p.GetString("created_by") != user.Id {
		t.Fatalf("got version %d created_by %q, want 1 and %s", p.GetInt("version"), p.GetString("created_by"), user.Id)
	}
	p.Set("notes", "changed")
	if err := actorApp.Save(p); err != nil {
		t.Fatalf("update: %v", err)
	}
	entries, err := changelog.Since(app, before, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("got %d entries, want 2", len(entries))
	}
	up := entries[1]
	if up.Op != changelog.OpUpdate || up.Version != 2 || !slices.Equal(up.Fields, []string{"notes"}) ||
		up.Team != team || up.Actor.Device != "d1" || up.Actor.Mutation != "m1" {
		t.Fatalf("got update entry %+v", up)
	}

	// A write refused by validation leaves no row.
	bad := core.NewRecord(persons)
	bad.Load(map[string]any{"team": team, "consent": "maybe"})
	if err := app.Save(bad); err == nil {
		t.Fatal("invalid consent saved")
	}
	last, _ := changelog.LastSeq(app)
	if last != entries[1].Seq {
		t.Fatalf("got last seq %d after refused write, want %d", last, entries[1].Seq)
	}
}
