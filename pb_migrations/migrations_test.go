package migrations_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/domain"
)

// outreach lists the collections the migrations create.
var outreach = []string{
	domain.Teams, domain.Sites, domain.Services, domain.Persons, domain.CampVisits,
	domain.SecretariatContacts, domain.Referrals, domain.ReferralEvents, domain.Devices,
}

// schemaOf describes what the migrations decide about a collection: its
// rules, fields and indexes (not its generated ids).
func schemaOf(t testing.TB, app core.App, name string) string {
	t.Helper()
	c, err := app.FindCollectionByNameOrId(name)
	if err != nil {
		t.Fatalf("find collection %s: %v", name, err)
	}
	type field struct{ Name, Type string }
	var fields []field
	for _, f := range c.Fields {
		fields = append(fields, field{f.GetName(), f.Type()})
	}
	b, err := json.Marshal(map[string]any{
		"list": c.ListRule, "view": c.ViewRule, "create": c.CreateRule, "update": c.UpdateRule, "delete": c.DeleteRule,
		"fields": fields, "indexes": c.Indexes,
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMigrateDownAndUpAgain(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	before := map[string]string{}
	for _, name := range append([]string{domain.Users}, outreach...) {
		before[name] = schemaOf(t, app, name)
	}

	runner := core.NewMigrationsRunner(app, core.AppMigrations)
	var files []string
	for _, m := range core.AppMigrations.Items() {
		files = append(files, m.File)
	}
	reverted, err := runner.Down(len(files))
	if err != nil {
		t.Fatalf("migrate down: %v", err)
	}
	wantReverted := slices.Clone(files)
	slices.Reverse(wantReverted)
	if !slices.Equal(reverted, wantReverted) {
		t.Fatalf("got reverted %v, want %v", reverted, wantReverted)
	}

	for _, name := range outreach {
		if _, err := app.FindCollectionByNameOrId(name); err == nil {
			t.Errorf("collection %s still exists after migrating down", name)
		}
	}
	users, err := app.FindCollectionByNameOrId(domain.Users)
	if err != nil {
		t.Fatalf("users collection gone after migrating down: %v", err)
	}
	for _, f := range []string{"role", "teams", "locale"} {
		if users.Fields.GetByName(f) != nil {
			t.Errorf("users.%s still exists after migrating down", f)
		}
	}
	for _, table := range []string{changelog.Table, "strada_state"} {
		if app.HasTable(table) {
			t.Errorf("table %s still exists after migrating down", table)
		}
	}

	applied, err := runner.Up()
	if err != nil {
		t.Fatalf("migrate up again: %v", err)
	}
	if !slices.Equal(applied, files) {
		t.Fatalf("got applied %v, want %v", applied, files)
	}
	for name, want := range before {
		if got := schemaOf(t, app, name); got != want {
			t.Errorf("%s after down and up:\ngot  %s\nwant %s", name, got, want)
		}
	}

	// The schema works again: a write goes through the hooks into a fresh
	// change log.
	teams, _ := app.FindCollectionByNameOrId(domain.Teams)
	team := core.NewRecord(teams)
	team.Load(map[string]any{"name": "Squadra", "kind": "camp_outreach"})
	if err := app.Save(team); err != nil {
		t.Fatalf("save team after up: %v", err)
	}
	persons, _ := app.FindCollectionByNameOrId(domain.Persons)
	p := core.NewRecord(persons)
	p.Load(map[string]any{"team": team.Id, "consent": "verbal"})
	if err := app.Save(p); err != nil {
		t.Fatalf("save person after up: %v", err)
	}
	if p.GetInt("version") != 1 {
		t.Errorf("got version %d, want 1", p.GetInt("version"))
	}
	entries, err := changelog.Since(app, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Seq != 1 || entries[1].RecordID != p.Id {
		t.Errorf("got change log %+v, want two rows from seq 1 ending with person %s", entries, p.Id)
	}
}
