package restguard_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/restguard"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// world holds the demo records the requests refer to.
type world struct {
	campTeam, prisonTeam     string
	campSite, prisonSite     string
	campPerson, prisonPerson string
	campVisit                string
	service                  string
}

func load(t testing.TB, app core.App) world {
	t.Helper()
	w := world{
		campTeam:   apptest.Team(t, app, "camp_outreach"),
		prisonTeam: apptest.Team(t, app, "prison_secretariat"),
	}
	first := func(collection string, where dbx.HashExp) string {
		t.Helper()
		rs, err := app.FindAllRecords(collection, where)
		if err != nil || len(rs) == 0 {
			t.Fatalf("find %s where %v: got %d records, err %v", collection, where, len(rs), err)
		}
		return rs[0].Id
	}
	w.campSite = first(domain.Sites, dbx.HashExp{"kind": "camp"})
	w.prisonSite = first(domain.Sites, dbx.HashExp{"kind": "prison"})
	w.campPerson = first(domain.Persons, dbx.HashExp{"team": w.campTeam})
	w.prisonPerson = first(domain.Persons, dbx.HashExp{"team": w.prisonTeam})
	w.campVisit = first(domain.CampVisits, dbx.HashExp{"team": w.campTeam})
	w.service = first(domain.Services, dbx.HashExp{"active": true})
	return w
}

func jsonBody(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode body: %v", err)
	}
	return string(b)
}

// streamed hides a body's length, as a chunked upload does.
type streamed struct{ io.Reader }

// snapshot is what a refused request must leave as it was.
type snapshot struct {
	count  int64
	seq    int64
	target string // JSON of the addressed record, for updates
}

func take(t testing.TB, app core.App, collection, id string) snapshot {
	t.Helper()
	n, err := app.CountRecords(collection)
	if err != nil {
		t.Fatalf("count %s: %v", collection, err)
	}
	seq, err := changelog.LastSeq(app)
	if err != nil {
		t.Fatal(err)
	}
	s := snapshot{count: n, seq: seq}
	if id != "" {
		r, err := app.FindRecordById(collection, id)
		if err != nil {
			t.Fatalf("find %s/%s: %v", collection, id, err)
		}
		b, _ := json.Marshal(r.FieldsData())
		s.target = string(b)
	}
	return s
}

func TestBadInputIsRefusedAndNothingIsWritten(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", int(restguard.MaxBodyBytes))
	visit := func(w world, extra map[string]any) map[string]any {
		b := map[string]any{"team": w.campTeam, "site": w.campSite, "visited_at": "2026-11-19 10:00:00.000Z"}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	cases := []struct {
		name       string
		as         string
		method     string
		collection string
		target     func(w world) string // record id of an update
		body       func(w world) map[string]any
		raw        func(w world) io.Reader // instead of body
		status     int
		want       []string
	}{
		{
			name: "unknown field on create", as: apptest.CampWorker, method: http.MethodPost, collection: domain.CampVisits,
			body:   func(w world) map[string]any { return visit(w, map[string]any{"colour": "red"}) },
			status: 400, want: []string{`"colour":{"code":"validation_unknown_field"`},
		},
		{
			name: "unknown field on update", as: apptest.CampWorker, method: http.MethodPatch, collection: domain.Persons,
			target: func(w world) string { return w.campPerson },
			body:   func(w world) map[string]any { return map[string]any{"nickname": "Gigi"} },
			status: 400, want: []string{`"nickname":{"code":"validation_unknown_field"`},
		},
		{
			name: "text for a number", as: apptest.CampWorker, method: http.MethodPost, collection: domain.CampVisits,
			body:   func(w world) map[string]any { return visit(w, map[string]any{"households_met": "many"}) },
			status: 400, want: []string{`"households_met":{"code":"validation_invalid_type","message":"\"households_met\" must be a number."`},
		},
		{
			name: "text for a number on update", as: apptest.CampWorker, method: http.MethodPatch, collection: domain.Persons,
			target: func(w world) string { return w.campPerson },
			body:   func(w world) map[string]any { return map[string]any{"birth_year": "nineteen eighty"} },
			status: 400, want: []string{`"birth_year":{"code":"validation_invalid_type"`},
		},
		{
			name: "words for a date", as: apptest.CampWorker, method: http.MethodPost, collection: domain.CampVisits,
			body:   func(w world) map[string]any { return visit(w, map[string]any{"follow_up_on": "next week"}) },
			status: 400, want: []string{`"follow_up_on":{"code":"validation_invalid_type"`},
		},
		{
			name: "object for a multiple select", as: apptest.CampWorker, method: http.MethodPost, collection: domain.CampVisits,
			body: func(w world) map[string]any {
				return visit(w, map[string]any{"topics": map[string]any{"health": true}})
			},
			status: 400, want: []string{`"topics":{"code":"validation_invalid_type"`},
		},
		{
			name: "list for a text", as: apptest.CampWorker, method: http.MethodPatch, collection: domain.Persons,
			target: func(w world) string { return w.campPerson },
			body:   func(w world) map[string]any { return map[string]any{"notes": []string{"a", "b"}} },
			status: 400, want: []string{`"notes":{"code":"validation_invalid_type"`},
		},
		{
			name: "value outside a select", as: apptest.CampWorker, method: http.MethodPatch, collection: domain.Persons,
			target: func(w world) string { return w.campPerson },
			body:   func(w world) map[string]any { return map[string]any{"consent": "maybe"} },
			status: 400, want: []string{`"consent":{"code":"validation_invalid_value"`},
		},
		{
			name: "relation to another team's person", as: apptest.CampWorker, method: http.MethodPost, collection: domain.CampVisits,
			body: func(w world) map[string]any {
				return visit(w, map[string]any{"persons_met": []string{w.campPerson, w.prisonPerson}})
			},
			status: 400, want: []string{`"persons_met":{"code":"validation_missing_rel_records"`},
		},
		{
			name: "relation to another team's person on update", as: apptest.CampWorker, method: http.MethodPatch, collection: domain.CampVisits,
			target: func(w world) string { return w.campVisit },
			body:   func(w world) map[string]any { return map[string]any{"persons_met+": []string{w.prisonPerson}} },
			status: 400, want: []string{`"persons_met":{"code":"validation_missing_rel_records"`},
		},
		{
			name: "referral for another team's person", as: apptest.PrisonWorker, method: http.MethodPost, collection: domain.Referrals,
			body: func(w world) map[string]any {
				return map[string]any{"team": w.prisonTeam, "person": w.campPerson, "service": w.service, "reason": "x", "status": "draft"}
			},
			status: 400, want: []string{`"person":{"code":"validation_missing_rel_records"`},
		},
		{
			name: "site of another team", as: apptest.CampWorker, method: http.MethodPatch, collection: domain.Persons,
			target: func(w world) string { return w.campPerson },
			body:   func(w world) map[string]any { return map[string]any{"site": w.prisonSite} },
			status: 400, want: []string{`"site":{"code":"validation_other_team"`},
		},
		{
			name: "body over 1 MiB", as: apptest.CampWorker, method: http.MethodPost, collection: domain.CampVisits,
			body:   func(w world) map[string]any { return visit(w, map[string]any{"notes": big}) },
			status: 413, want: []string{`"status":413`},
		},
		{
			name: "body over 1 MiB without a length", as: apptest.CampWorker, method: http.MethodPatch, collection: domain.CampVisits,
			target: func(w world) string { return w.campVisit },
			raw: func(w world) io.Reader {
				return streamed{strings.NewReader(`{"notes":"` + big + `"}`)}
			},
			status: 413, want: []string{`"status":413`},
		},
		{
			name: "NUL in a text", as: apptest.CampWorker, method: http.MethodPatch, collection: domain.Persons,
			target: func(w world) string { return w.campPerson },
			body:   func(w world) map[string]any { return map[string]any{"notes": "Rossi\x00Mario"} },
			status: 400, want: []string{`"notes":{"code":"validation_control_character"`},
		},
		{
			name: "escape sequence in a text on create", as: apptest.CampWorker, method: http.MethodPost, collection: domain.CampVisits,
			body:   func(w world) map[string]any { return visit(w, map[string]any{"needs": "\x1b[2J"}) },
			status: 400, want: []string{`"needs":{"code":"validation_control_character"`},
		},
		{
			name: "C1 control in a text", as: apptest.CampWorker, method: http.MethodPatch, collection: domain.Persons,
			target: func(w world) string { return w.campPerson },
			body:   func(w world) map[string]any { return map[string]any{"given_name": "Ana\u0085"} },
			status: 400, want: []string{`"given_name":{"code":"validation_control_character"`},
		},
		{
			name: "50,000 workers", as: apptest.CampWorker, method: http.MethodPost, collection: domain.CampVisits,
			body: func(w world) map[string]any {
				return visit(w, map[string]any{"workers": ids(50_000)})
			},
			status: 400, want: []string{`"workers":{"code":"validation_too_many_values"`},
		},
		{
			name: "21 workers", as: apptest.CampWorker, method: http.MethodPatch, collection: domain.CampVisits,
			target: func(w world) string { return w.campVisit },
			body:   func(w world) map[string]any { return map[string]any{"workers": ids(21)} },
			status: 400, want: []string{`"workers":{"code":"validation_too_many_values"`},
		},
		{
			name: "appending 5,000 persons met", as: apptest.CampWorker, method: http.MethodPatch, collection: domain.CampVisits,
			target: func(w world) string { return w.campVisit },
			body:   func(w world) map[string]any { return map[string]any{"persons_met+": ids(5_000)} },
			status: 400, want: []string{`"persons_met+":{"code":"validation_too_many_values"`},
		},
		{
			name: "version on create", as: apptest.CampWorker, method: http.MethodPost, collection: domain.CampVisits,
			body:   func(w world) map[string]any { return visit(w, map[string]any{"version": 7}) },
			status: 400, want: []string{`"version":{"code":"validation_server_managed"`},
		},
		{
			name: "version on update", as: apptest.Supervisor, method: http.MethodPatch, collection: domain.CampVisits,
			target: func(w world) string { return w.campVisit },
			body:   func(w world) map[string]any { return map[string]any{"version": 1, "notes": "x"} },
			status: 400, want: []string{`"version":{"code":"validation_server_managed"`},
		},
		{
			name: "created_by on create", as: apptest.CampWorker, method: http.MethodPost, collection: domain.CampVisits,
			body:   func(w world) map[string]any { return visit(w, map[string]any{"created_by": ""}) },
			status: 400, want: []string{`"created_by":{"code":"validation_server_managed"`},
		},
		{
			name: "updated_by on update", as: apptest.CampWorker, method: http.MethodPatch, collection: domain.Persons,
			target: func(w world) string { return w.campPerson },
			body:   func(w world) map[string]any { return map[string]any{"updated_by": ""} },
			status: 400, want: []string{`"updated_by":{"code":"validation_server_managed"`},
		},
		{
			name: "team that is not the user's", as: apptest.CampWorker, method: http.MethodPost, collection: domain.Persons,
			body:   func(w world) map[string]any { return map[string]any{"team": w.prisonTeam, "consent": "verbal"} },
			status: 403, want: []string{`"team":{"code":"validation_other_team"`},
		},
		{
			name: "move to a team that is not the user's", as: apptest.CampWorker, method: http.MethodPatch, collection: domain.CampVisits,
			target: func(w world) string { return w.campVisit },
			body:   func(w world) map[string]any { return map[string]any{"team": w.prisonTeam} },
			status: 403, want: []string{`"team":{"code":"validation_other_team"`},
		},
		{
			name: "id that is not a UUID", as: apptest.CampWorker, method: http.MethodPost, collection: domain.Persons,
			body: func(w world) map[string]any {
				return map[string]any{"id": "abc123abc123abc", "team": w.campTeam, "consent": "verbal"}
			},
			status: 400, want: []string{`"id":{"code":"validation_`},
		},
		{
			name: "id that is a UUIDv4", as: apptest.CampWorker, method: http.MethodPost, collection: domain.Persons,
			body: func(w world) map[string]any {
				return map[string]any{"id": uuid.NewString(), "team": w.campTeam, "consent": "verbal"}
			},
			status: 400, want: []string{`"id":{"code":"validation_invalid_format"`},
		},
		{
			name: "id in capitals", as: apptest.CampWorker, method: http.MethodPost, collection: domain.Persons,
			body: func(w world) map[string]any {
				return map[string]any{"id": strings.ToUpper(uuid.Must(uuid.NewV7()).String()), "team": w.campTeam, "consent": "verbal"}
			},
			status: 400, want: []string{`"id":{"code":"validation_invalid_format"`},
		},
	}
	for _, c := range cases {
		var (
			w      world
			before snapshot
			target string
		)
		s := &tests.ApiScenario{
			Name:                  c.name,
			Method:                c.method,
			ExpectedStatus:        c.status,
			ExpectedContent:       c.want,
			TestAppFactory:        func(t testing.TB) *tests.TestApp { return apptest.New(t).TestApp },
			DisableTestAppCleanup: true, // apptest.New removes the app when the test ends
		}
		s.BeforeTestFunc = func(t testing.TB, app *tests.TestApp, _ *core.ServeEvent) {
			w = load(t, app)
			s.URL = "/api/collections/" + c.collection + "/records"
			if c.target != nil {
				target = c.target(w)
				s.URL += "/" + target
			}
			if c.raw != nil {
				s.Body = c.raw(w)
			} else {
				s.Body = strings.NewReader(jsonBody(t, c.body(w)))
			}
			s.Headers = map[string]string{"Authorization": apptest.Token(t, app, c.as)}
			before = take(t, app, c.collection, target)
		}
		s.AfterTestFunc = func(t testing.TB, app *tests.TestApp, _ *http.Response) {
			after := take(t, app, c.collection, target)
			if after.count != before.count {
				t.Errorf("got %d %s records after a refused write, want %d", after.count, c.collection, before.count)
			}
			if after.seq != before.seq {
				t.Errorf("got change log seq %d after a refused write, want %d", after.seq, before.seq)
			}
			if after.target != before.target {
				t.Errorf("refused update changed the record:\ngot  %s\nwant %s", after.target, before.target)
			}
		}
		s.Test(t)
	}
}

// ids returns n distinct record ids.
func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("r%014d", i)
	}
	return out
}

// call makes one JSON request and decodes the answer.
func call(t testing.TB, h http.Handler, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader([]byte(jsonBody(t, body)))
	}
	req := httptest.NewRequest(method, url, r)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	out := map[string]any{}
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, url, rec.Body.String(), err)
		}
	}
	return rec.Code, out
}

func TestRecordIDs(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	w := load(t, app)
	h := apptest.Handler(t, app)
	token := apptest.Token(t, app, apptest.CampWorker)
	url := "/api/collections/" + domain.Persons + "/records"

	clientID := uuid.Must(uuid.NewV7()).String()
	status, body := call(t, h, http.MethodPost, url, token, map[string]any{"id": clientID, "team": w.campTeam, "consent": "verbal"})
	if status != http.StatusOK || body["id"] != clientID {
		t.Fatalf("create with client id: got %d id %v, want 200 id %s (%v)", status, body["id"], clientID, body)
	}
	if _, err := app.FindRecordById(domain.Persons, clientID); err != nil {
		t.Errorf("record %s not stored under the client's id: %v", clientID, err)
	}

	status, body = call(t, h, http.MethodPost, url, token, map[string]any{"team": w.campTeam, "consent": "verbal"})
	if status != http.StatusOK {
		t.Fatalf("create without id: got %d, want 200 (%v)", status, body)
	}
	id, _ := body["id"].(string)
	parsed, err := uuid.Parse(id)
	if err != nil || parsed.Version() != 7 || parsed.String() != id {
		t.Errorf("got server-made id %q (version %d, err %v), want a lowercase UUIDv7", id, parsed.Version(), err)
	}

	// The same id twice is refused, not merged into the first record.
	status, body = call(t, h, http.MethodPost, url, token, map[string]any{"id": clientID, "team": w.campTeam, "consent": "written"})
	if status != http.StatusBadRequest || !strings.Contains(jsonBody(t, body), `"id"`) {
		t.Errorf("create with a taken id: got %d %v, want 400 naming id", status, body)
	}
}

func TestVersionIsServerManaged(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	w := load(t, app)
	h := apptest.Handler(t, app)
	worker := apptest.Token(t, app, apptest.CampWorker)
	supervisor := apptest.Token(t, app, apptest.Supervisor)
	admin := apptest.Token(t, app, apptest.Admin)

	status, body := call(t, h, http.MethodPost, "/api/collections/persons/records", worker,
		map[string]any{"team": w.campTeam, "consent": "verbal", "notes": "v1"})
	if status != http.StatusOK {
		t.Fatalf("create: got %d, want 200 (%v)", status, body)
	}
	url := "/api/collections/persons/records/" + body["id"].(string)
	steps := []struct {
		name    string
		token   string
		body    map[string]any
		status  int
		version float64
	}{
		{"created", "", nil, 200, 1},
		{"worker edits", worker, map[string]any{"notes": "v2"}, 200, 2},
		{"worker edits nothing new", worker, map[string]any{"notes": "v2"}, 200, 3},
		{"worker sets version", worker, map[string]any{"notes": "v?", "version": 1}, 400, 3},
		{"worker sets version with a modifier", worker, map[string]any{"version+": 10}, 400, 3},
		{"supervisor edits", supervisor, map[string]any{"notes": "v4"}, 200, 4},
		{"superuser sets version", admin, map[string]any{"notes": "v5", "version": 99}, 200, 5},
	}
	for _, st := range steps {
		if st.token != "" {
			status, body = call(t, h, http.MethodPatch, url, st.token, st.body)
			if status != st.status {
				t.Fatalf("%s: got status %d, want %d (%v)", st.name, status, st.status, body)
			}
		}
		status, body = call(t, h, http.MethodGet, url, worker, nil)
		if status != http.StatusOK {
			t.Fatalf("%s: read back: got %d (%v)", st.name, status, body)
		}
		if body["version"] != st.version {
			t.Errorf("%s: got version %v, want %v", st.name, body["version"], st.version)
		}
	}
	if body["notes"] != "v5" {
		t.Errorf("got notes %v, want v5", body["notes"])
	}
}
