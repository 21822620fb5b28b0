package integrity_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/integrity"
	"strada/internal/teamscope"
)

func TestMain(m *testing.M) { apptest.Main(m) }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func request(t testing.TB, h http.Handler, method, url, token string, body any) (int, string) {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(method, url, strings.NewReader(string(data)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func savePerson(t testing.TB, app core.App, data map[string]any) (*core.Record, error) {
	t.Helper()
	c, err := app.FindCollectionByNameOrId(domain.Persons)
	if err != nil {
		t.Fatal(err)
	}
	r := core.NewRecord(c)
	r.Load(data)
	return r, app.Save(r)
}

// codeTail is the upper-case tail of an id that person codes are made of.
func codeTail(id string, n int) string {
	tail := strings.ToUpper(strings.ReplaceAll(id, "-", ""))
	return tail[len(tail)-n:]
}

func TestPersonCodesAreUniquePerTeam(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	h := apptest.Handler(t, app.TestApp)
	camp, prison := apptest.Team(t, app, "camp_outreach"), apptest.Team(t, app, "prison_secretariat")
	prisonPerson, err := app.FindFirstRecordByData(domain.Persons, "team", prison)
	if err != nil {
		t.Fatal(err)
	}
	code := prisonPerson.GetString("code")
	token := apptest.Token(t, app, apptest.CampWorker)
	url := "/api/collections/persons/records"

	// A code of another team is free in this one.
	status, body := request(t, h, http.MethodPost, url, token, map[string]any{"id": newID(), "team": camp, "consent": "verbal", "code": code})
	if status != http.StatusOK || !strings.Contains(body, `"code":"`+code+`"`) {
		t.Fatalf("create a camp person with a prison person's code: got %d %s, want 200 with the code", status, body)
	}

	// Within the team it is taken: a clear 400 on the code, nothing written,
	// nothing about the other team.
	persons, _ := app.CountRecords(domain.Persons)
	seq, _ := changelog.LastSeq(app)
	status, body = request(t, h, http.MethodPost, url, token, map[string]any{"id": newID(), "team": camp, "consent": "verbal", "code": code})
	if status != http.StatusBadRequest || !strings.Contains(body, `"code":{"code":"`+integrity.CodeNotUnique+`","message":"Another person of this team has this code; choose another."}`) {
		t.Fatalf("create a second camp person with the code: got %d %s, want 400 naming the code", status, body)
	}
	if strings.Contains(body, prison) || strings.Contains(body, prisonPerson.Id) {
		t.Errorf("got %s, want nothing about the prison team", body)
	}
	if n, _ := app.CountRecords(domain.Persons); n != persons {
		t.Errorf("got %d persons after a refused create, want %d", n, persons)
	}
	if s, _ := changelog.LastSeq(app); s != seq {
		t.Errorf("got change log seq %d after a refused create, want %d", s, seq)
	}

	// Every write path refuses it the same way, moves into the team too.
	_, err = savePerson(t, app, map[string]any{"team": camp, "consent": "none", "code": code})
	var verrs validation.Errors
	if !errors.As(err, &verrs) || verrs["code"] == nil {
		t.Fatalf("save a camp person with a taken code: got %v, want a validation error on code", err)
	}
	prisonPerson.Set("team", camp)
	prisonPerson.Set("site", "")
	if err := app.Save(prisonPerson); !errors.As(err, &verrs) || verrs["code"] == nil {
		t.Fatalf("move a person into a team that has their code: got %v, want a validation error on code", err)
	}
}

func TestAssignedCodesAvoidTheTeamsCodes(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	camp, prison := apptest.Team(t, app, "camp_outreach"), apptest.Team(t, app, "prison_secretariat")

	// The id's code is taken in the team: the code grows.
	id := newID()
	if _, err := savePerson(t, app, map[string]any{"team": camp, "consent": "none", "code": "P-" + codeTail(id, 8)}); err != nil {
		t.Fatalf("save a person with a code: %v", err)
	}
	p, err := savePerson(t, app, map[string]any{"id": id, "team": camp, "consent": "none"})
	if err != nil {
		t.Fatalf("save a person whose code is taken in the team: %v", err)
	}
	if got, want := p.GetString("code"), "P-"+codeTail(id, 10); got != want {
		t.Errorf("got code %s, want %s", got, want)
	}

	// Taken in another team only: the code stays short.
	id = newID()
	if _, err := savePerson(t, app, map[string]any{"team": prison, "consent": "none", "code": "P-" + codeTail(id, 8)}); err != nil {
		t.Fatalf("save a prison person with a code: %v", err)
	}
	p, err = savePerson(t, app, map[string]any{"id": id, "team": camp, "consent": "none"})
	if err != nil {
		t.Fatalf("save a camp person whose code another team has: %v", err)
	}
	if got, want := p.GetString("code"), "P-"+codeTail(id, 8); got != want {
		t.Errorf("got code %s, want %s", got, want)
	}
}

// TestRelationsAnswerByWhatTheActorMaySee: a relation to another team's
// record that the actor may not read gets exactly the answer of an id that
// does not exist, whatever else is wrong with the request; one the actor
// may read is named as another team's.
func TestRelationsAnswerByWhatTheActorMaySee(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	h := apptest.Handler(t, app.TestApp)
	camp, prison := apptest.Team(t, app, "camp_outreach"), apptest.Team(t, app, "prison_secretariat")
	prisonPerson, err := app.FindFirstRecordByData(domain.Persons, "team", prison)
	if err != nil {
		t.Fatal(err)
	}
	services, err := app.FindAllRecords(domain.Services)
	if err != nil || len(services) == 0 {
		t.Fatalf("find services: %v", err)
	}
	url := "/api/collections/referrals/records"
	referral := func(person string, extra map[string]any) map[string]any {
		b := map[string]any{"id": newID(), "team": camp, "person": person, "service": services[0].Id, "reason": "Documenti", "status": "draft"}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	worker := apptest.Token(t, app, apptest.CampWorker)
	for _, tc := range []struct {
		name  string
		extra map[string]any
	}{
		{"otherwise valid", nil},
		{"with another field missing", map[string]any{"reason": ""}},
		{"with a transition the worker may not make", map[string]any{"status": domain.StatusAccepted}},
	} {
		otherStatus, other := request(t, h, http.MethodPost, url, worker, referral(prisonPerson.Id, tc.extra))
		missingStatus, missing := request(t, h, http.MethodPost, url, worker, referral(newID(), tc.extra))
		if otherStatus != missingStatus || other != missing {
			t.Errorf("%s: another team's person and a missing one answer differently:\ngot  %d %s\nwant %d %s",
				tc.name, otherStatus, other, missingStatus, missing)
		}
	}

	// The supervisor of both teams may read the prison person: told plainly.
	status, body := request(t, h, http.MethodPost, url, apptest.Token(t, app, apptest.Supervisor), referral(prisonPerson.Id, nil))
	want := `"person":{"code":"` + teamscope.CodeOtherTeam + `","message":"Person must belong to the record's team; not in it: ` + prisonPerson.Id + `."}`
	if status != http.StatusBadRequest || !strings.Contains(body, want) {
		t.Errorf("supervisor of both teams: got %d %s, want 400 with %s", status, body, want)
	}
}
