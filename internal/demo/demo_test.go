package demo_test

import (
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"strada/internal/changelog"
	"strada/internal/demo"
	"strada/internal/domain"
	hooks "strada/pb_hooks"
	_ "strada/pb_migrations"
)

var now = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// emptyApp is a migrated database with Strada's record hooks and no data,
// as `serve` finds it on first start.
func emptyApp(t *testing.T) *tests.TestApp {
	t.Helper()
	app, err := tests.NewTestApp(t.TempDir())
	if err != nil {
		t.Fatalf("new test app: %v", err)
	}
	t.Cleanup(app.Cleanup)
	hooks.BindRecordHooks(app, changelog.New(domain.Reference))
	return app
}

func count(t *testing.T, app core.App, collection string, where ...dbx.Expression) int64 {
	t.Helper()
	n, err := app.CountRecords(collection, where...)
	if err != nil {
		t.Fatalf("count %s: %v", collection, err)
	}
	return n
}

func counts(t *testing.T, app core.App) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, c := range []string{
		domain.Users, core.CollectionNameSuperusers, domain.Teams, domain.Sites, domain.Services, domain.Persons,
		domain.CampVisits, domain.SecretariatContacts, domain.Referrals, domain.ReferralEvents, domain.Devices,
	} {
		out[c] = count(t, app, c)
	}
	return out
}

func TestSeed(t *testing.T) {
	t.Parallel()
	app := emptyApp(t)

	// Migrations alone create nothing synthetic.
	for c, n := range counts(t, app) {
		if n != 0 {
			t.Errorf("got %d %s records before seeding, want 0", n, c)
		}
	}

	created, err := demo.Seed(app, now)
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	if !created {
		t.Fatal("got created=false on an empty database, want true")
	}

	t.Run("teams", func(t *testing.T) {
		for _, kind := range []string{"prison_secretariat", "camp_outreach"} {
			if n := count(t, app, domain.Teams, dbx.HashExp{"kind": kind}); n != 1 {
				t.Errorf("got %d %s teams, want 1", n, kind)
			}
		}
	})

	t.Run("sites", func(t *testing.T) {
		prisonTeam, _ := app.FindFirstRecordByData(domain.Teams, "kind", "prison_secretariat")
		campTeam, _ := app.FindFirstRecordByData(domain.Teams, "kind", "camp_outreach")
		want := map[string][]string{
			"prison": {"Casal del Marmo", "Rebibbia Femminile", "Rebibbia Nuovo Complesso", "Rebibbia Reclusione",
				"Rebibbia Terza Casa", "Regina Coeli"},
			"camp":   {"Via Candoni", "Via di Salone"},
			"office": {"Via della Mercede"},
		}
		team := map[string]string{"prison": prisonTeam.Id, "office": prisonTeam.Id, "camp": campTeam.Id}
		for kind, names := range want {
			sites, err := app.FindAllRecords(domain.Sites, dbx.HashExp{"kind": kind})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range sites {
				got = append(got, s.GetString("name"))
				if s.GetString("team") != team[kind] {
					t.Errorf("site %q: got team %s, want %s", s.GetString("name"), s.GetString("team"), team[kind])
				}
				if s.GetString("address") == "" || s.GetString("municipio") == "" {
					t.Errorf("site %q: got address %q municipio %q, want both", s.GetString("name"),
						s.GetString("address"), s.GetString("municipio"))
				}
			}
			sort.Strings(got)
			if len(got) != len(names) {
				t.Fatalf("got %s sites %q, want %d", kind, got, len(names))
			}
			for i, name := range names {
				if !strings.Contains(got[i], name) {
					t.Errorf("got %s site %q, want one named %q", kind, got[i], name)
				}
			}
		}
		office, err := app.FindFirstRecordByData(domain.Sites, "kind", "office")
		if err != nil || !strings.Contains(office.GetString("address"), "Via della Mercede, 52") {
			t.Errorf("got office %v (err %v), want it at Via della Mercede, 52", office, err)
		}
	})

	t.Run("services", func(t *testing.T) {
		if n := count(t, app, domain.Services); n != 9 {
			t.Errorf("got %d services, want the 9 of the seed document", n)
		}
		// Facts taken from the seed document.
		want := []struct{ name, field, value string }{
			{"Ufficio Immigrazione", "address", "Via Assisi, 39A"},
			{"Ufficio Immigrazione", "hours", "lunedì e giovedì 9:00–11:00; mercoledì 15:00–17:00"},
			{"Centri di accoglienza", "notes", "22 centri"},
			{"Centri Interculturali per minori", "category", "minors"},
			{"Servizio di mediazione interculturale", "category", "mediation"},
			{"Assistenza agli emigrati italiani rimpatriati", "notes", "rimpatriati"},
			{"Ufficio detenuti ed ex detenuti", "phone", "06 67105360 – 5278"},
			{"Segretariato Sociale intra ed extra murario", "address", "Via della Mercede, 52"},
			{"Segretariato Sociale intra ed extra murario", "phone", "06 669190417"},
			{"Segretariato Sociale intra ed extra murario", "hours", "lunedì e giovedì 9:00–17:30"},
			{"Segretariato Sociale intra ed extra murario", "organisation", "Pronto Intervento Disagio"},
			{"La Fabbrica dei Mestieri", "notes", "Via Candoni e Via di Salone"},
			{"Programma Retis", "email", "info@programmaretis.it"},
		}
		for _, w := range want {
			rs, err := app.FindRecordsByFilter(domain.Services, "name ~ {:name}", "", 0, 0, dbx.Params{"name": w.name})
			if err != nil || len(rs) != 1 {
				t.Errorf("service %q: got %d records (err %v), want 1", w.name, len(rs), err)
				continue
			}
			if got := rs[0].GetString(w.field); !strings.Contains(got, w.value) {
				t.Errorf("service %q %s: got %q, want it to contain %q", w.name, w.field, got, w.value)
			}
		}
		inactive, err := app.FindFirstRecordByData(domain.Services, "active", false)
		if err != nil || !strings.Contains(inactive.GetString("name"), "Fabbrica dei Mestieri") {
			t.Errorf("got inactive service %v (err %v), want only La Fabbrica dei Mestieri (courses ended 2009)", inactive, err)
		}
	})

	t.Run("accounts", func(t *testing.T) {
		if demo.Password != "strada-demo-2026" {
			t.Errorf("got password %q, want strada-demo-2026", demo.Password)
		}
		prisonTeam, _ := app.FindFirstRecordByData(domain.Teams, "kind", "prison_secretariat")
		campTeam, _ := app.FindFirstRecordByData(domain.Teams, "kind", "camp_outreach")
		want := []struct {
			email, role string
			teams       []string
		}{
			{"operatore.carcere@example.org", domain.RoleWorker, []string{prisonTeam.Id}},
			{"operatore.campi@example.org", domain.RoleWorker, []string{campTeam.Id}},
			{"supervisore@example.org", domain.RoleSupervisor, []string{prisonTeam.Id, campTeam.Id}},
		}
		if n := count(t, app, domain.Users); n != int64(len(want)) {
			t.Errorf("got %d users, want %d", n, len(want))
		}
		for _, w := range want {
			u, err := app.FindAuthRecordByEmail(domain.Users, w.email)
			if err != nil {
				t.Errorf("user %s: %v", w.email, err)
				continue
			}
			teams := u.GetStringSlice("teams")
			slices.Sort(teams)
			wantTeams := slices.Clone(w.teams)
			slices.Sort(wantTeams)
			if u.GetString("role") != w.role || !slices.Equal(teams, wantTeams) || !u.Verified() {
				t.Errorf("user %s: got role %q teams %v verified %v, want %q %v true",
					w.email, u.GetString("role"), teams, u.Verified(), w.role, wantTeams)
			}
			if !u.ValidatePassword("strada-demo-2026") {
				t.Errorf("user %s: demo password refused", w.email)
			}
		}
		admin, err := app.FindAuthRecordByEmail(core.CollectionNameSuperusers, "admin@example.org")
		if err != nil || !admin.ValidatePassword("strada-demo-2026") {
			t.Errorf("superuser admin@example.org: got %v (err %v), want it with the demo password", admin, err)
		}
	})

	t.Run("field work", func(t *testing.T) {
		persons, err := app.FindAllRecords(domain.Persons)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(persons); n < 24 || n > 60 {
			t.Errorf("got %d persons, want a few dozen", n)
		}
		teams := map[string]int{}
		for _, p := range persons {
			teams[p.GetString("team")]++
			if id, err := uuid.Parse(p.Id); err != nil || id.Version() != 7 {
				t.Errorf("person id %q: want a UUIDv7", p.Id)
			}
			if p.GetInt("version") != 1 {
				t.Errorf("person %s: got version %d, want 1", p.Id, p.GetInt("version"))
			}
		}
		if len(teams) != 2 {
			t.Errorf("got persons in %d teams, want both teams", len(teams))
		}
		for _, c := range []struct{ collection, at string }{
			{domain.CampVisits, "visited_at"}, {domain.SecretariatContacts, "contacted_at"},
		} {
			rs, err := app.FindAllRecords(c.collection)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) < 10 {
				t.Errorf("got %d %s, want at least 10", len(rs), c.collection)
			}
			first, last := now, now.AddDate(-1, 0, 0)
			for _, r := range rs {
				at := r.GetDateTime(c.at).Time()
				first, last = minTime(first, at), maxTime(last, at)
			}
			if first.Before(now.AddDate(0, 0, -60)) || last.After(now) || last.Sub(first) < 14*24*time.Hour {
				t.Errorf("%s: got %s from %s to %s, want spread over the weeks before %s", c.collection, c.at, first, last, now)
			}
		}
	})

	t.Run("referrals and their history", func(t *testing.T) {
		referrals, err := app.FindAllRecords(domain.Referrals)
		if err != nil {
			t.Fatal(err)
		}
		if len(referrals) < 5 {
			t.Errorf("got %d referrals, want at least 5", len(referrals))
		}
		statuses := map[string]bool{}
		for _, r := range referrals {
			statuses[r.GetString("status")] = true
			events, err := app.FindRecordsByFilter(domain.ReferralEvents, "referral = {:id}", "version", 0, 0, dbx.Params{"id": r.Id})
			if err != nil {
				t.Fatal(err)
			}
			// One event per save: the creation and each status change.
			if len(events) != r.GetInt("version") || len(events) == 0 {
				t.Errorf("referral %s: got %d events, want its version %d", r.Id, len(events), r.GetInt("version"))
				continue
			}
			if last := events[len(events)-1]; last.GetString("to_status") != r.GetString("status") {
				t.Errorf("referral %s: got last event to %q, want its status %q", r.Id, last.GetString("to_status"), r.GetString("status"))
			}
			if first := events[0]; first.GetString("from_status") != "" || first.GetString("to_status") != domain.StatusDraft {
				t.Errorf("referral %s: got first event %q -> %q, want \"\" -> draft", r.Id,
					first.GetString("from_status"), first.GetString("to_status"))
			}
		}
		if len(statuses) < 2 {
			t.Errorf("got statuses %v, want referrals at several stages", statuses)
		}
	})

	t.Run("change log", func(t *testing.T) {
		var logged int64
		for _, c := range domain.Logged {
			logged += count(t, app, c)
		}
		creates, err := changeRows(app, changelog.OpCreate)
		if err != nil {
			t.Fatal(err)
		}
		if creates != logged {
			t.Errorf("got %d create rows in the change log, want one per logged record (%d)", creates, logged)
		}
	})

	t.Run("a second seed changes nothing", func(t *testing.T) {
		before := counts(t, app)
		seq, err := changelog.LastSeq(app)
		if err != nil {
			t.Fatal(err)
		}
		created, err := demo.Seed(app, now.AddDate(0, 0, 7))
		if err != nil {
			t.Fatalf("second seed: %v", err)
		}
		if created {
			t.Error("got created=true on a seeded database, want false")
		}
		after := counts(t, app)
		for c, n := range before {
			if after[c] != n {
				t.Errorf("%s: got %d records after a second seed, want %d", c, after[c], n)
			}
		}
		if got, _ := changelog.LastSeq(app); got != seq {
			t.Errorf("got last change seq %d after a second seed, want %d", got, seq)
		}
	})
}

func changeRows(app core.App, op changelog.Op) (int64, error) {
	var n int64
	err := app.DB().Select("count(*)").From(changelog.Table).Where(dbx.HashExp{"op": string(op)}).Row(&n)
	return n, err
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
