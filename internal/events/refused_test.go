package events_test

import (
	"bytes"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/domain"
)

// TestRefusedWritesLeaveNoTrace makes writes that validation, API rules or
// a rolled-back transaction refuse, through Go and the REST API, and checks
// that none leaves a change row, a record or a message.
func TestRefusedWritesLeaveNoTrace(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	f := newFixture(t, app, true)
	anon := newRESTClient(f.server, "")

	// Existing records of each team to aim refused writes at.
	campPerson := core.NewRecord(f.persons)
	campPerson.Load(map[string]any{"team": f.campTeam, "consent": "verbal", "notes": "before"})
	prisonPerson := core.NewRecord(f.persons)
	prisonPerson.Load(map[string]any{"team": f.prisonTeam, "consent": "verbal", "notes": "before"})
	referral := core.NewRecord(f.referrals)
	for _, r := range []*core.Record{campPerson, prisonPerson} {
		if err := app.Save(r); err != nil {
			t.Fatal(err)
		}
	}
	referral.Load(map[string]any{"team": f.campTeam, "person": campPerson.Id, "service": f.service,
		"reason": "orientation", "status": domain.StatusDraft})
	if err := app.Save(referral); err != nil {
		t.Fatal(err)
	}

	newID := func() string { return uuid.Must(uuid.NewV7()).String() }
	person := func(fields map[string]any) *core.Record {
		r := core.NewRecord(f.persons)
		r.Load(fields)
		return r
	}
	errRollback := errors.New("rolled back on purpose")

	cases := []struct {
		name string
		// id is a record that must not exist afterwards ("" for none).
		id         string
		write      func(id string) (status int, err error)
		wantStatus int // 0 for a Go write that must return an error
	}{
		{"validation: unknown consent", newID(), func(id string) (int, error) {
			return 0, f.campApp.Save(person(map[string]any{"id": id, "team": f.campTeam, "consent": "maybe"}))
		}, 0},
		{"validation: camp visit at a prison", newID(), func(id string) (int, error) {
			v := core.NewRecord(f.visits)
			v.Load(map[string]any{"id": id, "team": f.campTeam, "site": f.prisonSite, "visited_at": time.Now().UTC()})
			return 0, f.campApp.Save(v)
		}, 0},
		{"validation: relation into another team", newID(), func(id string) (int, error) {
			v := core.NewRecord(f.visits)
			v.Load(map[string]any{"id": id, "team": f.campTeam, "site": f.campSite, "visited_at": time.Now().UTC(),
				"persons_met": []string{prisonPerson.Id}})
			return 0, f.campApp.Save(v)
		}, 0},
		{"validation: worker skips the referral state machine", "", func(string) (int, error) {
			return f.campREST.do(http.MethodPatch, "/api/collections/referrals/records/"+referral.Id,
				map[string]any{"status": domain.StatusCompleted}, nil)
		}, http.StatusBadRequest},
		{"validation: server-managed field", newID(), func(id string) (int, error) {
			return f.campREST.do(http.MethodPost, "/api/collections/persons/records",
				map[string]any{"id": id, "team": f.campTeam, "consent": "verbal", "version": 7}, nil)
		}, http.StatusBadRequest},
		{"validation: unknown field", newID(), func(id string) (int, error) {
			return f.campREST.do(http.MethodPost, "/api/collections/persons/records",
				map[string]any{"id": id, "team": f.campTeam, "consent": "verbal", "nickname": "x"}, nil)
		}, http.StatusBadRequest},
		{"rule: create in another team", newID(), func(id string) (int, error) {
			return f.campREST.do(http.MethodPost, "/api/collections/persons/records",
				map[string]any{"id": id, "team": f.prisonTeam, "consent": "verbal"}, nil)
		}, http.StatusForbidden},
		{"rule: anonymous create", newID(), func(id string) (int, error) {
			return anon.do(http.MethodPost, "/api/collections/persons/records",
				map[string]any{"id": id, "team": f.campTeam, "consent": "verbal"}, nil)
		}, http.StatusBadRequest},
		{"rule: update in another team", "", func(string) (int, error) {
			return f.campREST.do(http.MethodPatch, "/api/collections/persons/records/"+prisonPerson.Id,
				map[string]any{"notes": "after"}, nil)
		}, http.StatusNotFound},
		{"rule: delete in another team", "", func(string) (int, error) {
			return f.campREST.do(http.MethodDelete, "/api/collections/persons/records/"+prisonPerson.Id, nil, nil)
		}, http.StatusForbidden},
		{"rule: worker deletes a person", "", func(string) (int, error) {
			return f.campREST.do(http.MethodDelete, "/api/collections/persons/records/"+campPerson.Id, nil, nil)
		}, http.StatusForbidden},
		{"rule: worker writes reference data", "", func(string) (int, error) {
			return f.campREST.do(http.MethodPost, "/api/collections/services/records",
				map[string]any{"name": "Servizio", "category": "other"}, nil)
		}, http.StatusForbidden},
		{"rollback: transaction returns an error", newID(), func(id string) (int, error) {
			return 0, f.campApp.RunInTransaction(func(tx core.App) error {
				if err := tx.Save(person(map[string]any{"id": id, "team": f.campTeam, "consent": "verbal"})); err != nil {
					return err
				}
				fresh, err := tx.FindRecordById(domain.Persons, campPerson.Id)
				if err != nil {
					return err
				}
				fresh.Set("notes", "after")
				if err := tx.Save(fresh); err != nil {
					return err
				}
				return errRollback
			})
		}, 0},
		{"rollback: a later save of the transaction is invalid", newID(), func(id string) (int, error) {
			return 0, f.campApp.RunInTransaction(func(tx core.App) error {
				if err := tx.Save(person(map[string]any{"id": id, "team": f.campTeam, "consent": "verbal"})); err != nil {
					return err
				}
				return tx.Save(person(map[string]any{"team": f.campTeam, "consent": "maybe"}))
			})
		}, 0},
	}

	baseline, err := changelog.LastSeq(app)
	if err != nil {
		t.Fatal(err)
	}
	signalled := app.Log.Committed()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, err := c.write(c.id)
			if err == nil {
				t.Fatalf("got no error, want the write refused")
			}
			if status != c.wantStatus {
				t.Fatalf("got status %d (%v), want %d", status, err, c.wantStatus)
			}
			if last, err := changelog.LastSeq(app); err != nil || last != baseline {
				t.Fatalf("got last change %d (%v), want %d", last, err, baseline)
			}
			if c.id != "" {
				for _, col := range []string{domain.Persons, domain.CampVisits} {
					if _, err := app.FindRecordById(col, c.id); err == nil {
						t.Fatalf("refused record %s found in %s", c.id, col)
					}
				}
			}
		})
	}
	select {
	case <-signalled:
		t.Fatal("change log signalled a commit for refused writes")
	default:
	}
	for _, r := range []*core.Record{campPerson, prisonPerson} {
		fresh, err := app.FindRecordById(domain.Persons, r.Id)
		if err != nil {
			t.Fatal(err)
		}
		if fresh.GetString("notes") != "before" || fresh.GetInt("version") != 1 {
			t.Fatalf("person %s: got notes %q version %d, want untouched", r.Id, fresh.GetString("notes"), fresh.GetInt("version"))
		}
	}

	bus := startBus(t)
	relay := startRelay(t, app, app.Log, bus.JS)
	if got := waitDrained(t, app, relay.Relay, 30*time.Second); got != baseline {
		t.Fatalf("got last change %d, want %d", got, baseline)
	}
	msgs := readStream(t, bus.JS)
	assertStreamIsLog(t, app, msgs, allEntries(t, app))
	for _, c := range cases {
		for _, m := range msgs {
			if c.id != "" && bytes.Contains(m.Body, []byte(c.id)) {
				t.Fatalf("%s: message %d names the refused record %s", c.name, m.Event.Seq, c.id)
			}
		}
	}
}

// textFields are the free-text fields of the schema: what a person said
// or what a worker wrote about them.
var textFields = []string{"notes", "needs", "actions", "next_steps", "reason", "outcome", "note"}

// personalValues reads from the database every name, nationality and
// language of a person and every free-text value of a logged collection.
func personalValues(t testing.TB, app core.App) []string {
	t.Helper()
	var out []string
	add := func(v string) {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	for _, name := range domain.Logged {
		c := collection(t, app, name)
		var fields []string
		for _, field := range c.Fields {
			if slices.Contains(textFields, field.GetName()) {
				fields = append(fields, field.GetName())
			}
		}
		if name == domain.Persons {
			fields = append(fields, "given_name", "family_name", "nationality", "languages")
		}
		if len(fields) == 0 {
			continue
		}
		records, err := app.FindAllRecords(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range records {
			for _, field := range fields {
				add(r.GetString(field))
			}
		}
	}
	return out
}

// TestNoPersonalDataOnBus relays the demo data and writes that change
// names and free text through Go and REST, and checks that no message body
// holds any such value, while the messages do name the changed fields.
func TestNoPersonalDataOnBus(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	f := newFixture(t, app, true)

	// Values that are overwritten: gone from the database, never on the bus.
	overwritten := []string{"Zlatomira", "Kovačević", "Racconta di aver perso il permesso"}
	p := core.NewRecord(f.persons)
	p.Load(map[string]any{"team": f.campTeam, "consent": "written",
		"given_name": overwritten[0], "family_name": overwritten[1], "notes": overwritten[2]})
	if err := f.campApp.Save(p); err != nil {
		t.Fatal(err)
	}
	if _, err := f.campREST.do(http.MethodPatch, "/api/collections/persons/records/"+p.Id,
		map[string]any{"given_name": "Dragana", "family_name": "Nikolić", "notes": "Chiede della scuola del figlio"}, nil); err != nil {
		t.Fatal(err)
	}
	r := core.NewRecord(f.referrals)
	r.Load(map[string]any{"team": f.campTeam, "person": p.Id, "service": f.service,
		"reason": "Rinnovo del permesso di soggiorno", "status": domain.StatusSent})
	if err := f.campApp.Save(r); err != nil {
		t.Fatal(err)
	}
	r.Set("status", domain.StatusAccepted)
	r.Set("outcome", "Appuntamento fissato in questura")
	if err := f.supApp.Save(r); err != nil {
		t.Fatal(err)
	}

	bus := startBus(t)
	relay := startRelay(t, app, app.Log, bus.JS)
	waitDrained(t, app, relay.Relay, 30*time.Second)
	msgs := readStream(t, bus.JS)
	assertStreamIsLog(t, app, msgs, allEntries(t, app))

	secrets := append(personalValues(t, app), overwritten...)
	if len(secrets) < 50 {
		t.Fatalf("got %d personal values from the demo data, want at least 50", len(secrets))
	}
	named := map[string]bool{}
	for _, m := range msgs {
		for _, s := range secrets {
			if bytes.Contains(m.Body, []byte(s)) {
				t.Fatalf("message %d (%s) holds personal value %q: %s", m.Event.Seq, m.Subject, s, m.Body)
			}
		}
		for _, field := range m.Event.Fields {
			named[field] = true
		}
	}
	for _, field := range []string{"given_name", "family_name", "notes", "needs", "actions", "next_steps", "reason", "outcome"} {
		if !named[field] {
			t.Errorf("no message names the changed field %q, want the field named without its value", field)
		}
	}
}
