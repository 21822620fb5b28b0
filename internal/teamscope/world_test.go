package teamscope_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/domain"
	"strada/internal/events"
	hooks "strada/pb_hooks"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// world is the demo data served over HTTP with the sync API, and the
// accounts that act in it.
type world struct {
	t       testing.TB
	app     *apptest.App
	url     string
	camp    string
	prison  string
	service string
	as      map[string]*account
}

// account is a users account with a token and a registered device.
type account struct {
	user   *core.Record
	token  string
	device string
}

// Accounts of the world: a worker and a supervisor of the camp team only,
// and the demo supervisor of both teams.
const (
	campWorker     = "camp worker"
	campSupervisor = "camp supervisor"
	bothSupervisor = "supervisor of both teams"
)

func newWorld(t testing.TB) *world {
	t.Helper()
	app := apptest.New(t)
	hooks.BindSyncAPI(app, events.NewHub(app.Logger()))
	srv := apptest.Serve(t, app)
	w := &world{t: t, app: app, url: srv.URL, as: map[string]*account{}}
	w.camp = apptest.Team(t, app, "camp_outreach")
	w.prison = apptest.Team(t, app, "prison_secretariat")
	services, err := app.FindAllRecords(domain.Services)
	if err != nil || len(services) == 0 {
		t.Fatalf("find services: got %d, err %v", len(services), err)
	}
	w.service = services[0].Id

	users, err := app.FindCollectionByNameOrId(domain.Users)
	if err != nil {
		t.Fatal(err)
	}
	sup := core.NewRecord(users)
	sup.SetEmail("supervisore.campi@example.org")
	sup.SetPassword("una-password-lunga")
	sup.Set("name", "Supervisore Campi")
	sup.Set("role", domain.RoleSupervisor)
	sup.Set("teams", []string{w.camp})
	if err := app.Save(sup); err != nil {
		t.Fatalf("save camp supervisor: %v", err)
	}
	for name, email := range map[string]string{
		campWorker:     apptest.CampWorker,
		campSupervisor: sup.Email(),
		bothSupervisor: apptest.Supervisor,
	} {
		a := &account{user: apptest.User(t, app, email), token: apptest.Token(t, app, email)}
		code, body := w.call(a, http.MethodPost, "/api/sync/devices", map[string]any{"name": "tablet " + name})
		var reg struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &reg); err != nil || code != http.StatusCreated || reg.ID == "" {
			t.Fatalf("register device of %s: got %d %s", name, code, body)
		}
		a.device = reg.ID
		w.as[name] = a
	}
	return w
}

// call sends a request as a (signed out when nil) and returns the status
// and body of the answer.
func (w *world) call(a *account, method, path string, body any) (int, []byte) {
	w.t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			w.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, w.url+path, rd)
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if a != nil {
		req.Header.Set("Authorization", a.token)
		req.Header.Set("X-Strada-Device", a.device)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	return resp.StatusCode, data
}

// mutation is one mutation of a push.
type mutation struct {
	ID          string         `json:"id"`
	Collection  string         `json:"collection"`
	RecordID    string         `json:"recordId"`
	Op          string         `json:"op"`
	BaseVersion int            `json:"baseVersion"`
	Fields      map[string]any `json:"fields,omitempty"`
}

// push sends one mutation as a and returns its result as the server wrote
// it.
func (w *world) push(a *account, m mutation) json.RawMessage {
	w.t.Helper()
	if m.ID == "" {
		m.ID = newID()
	}
	code, body := w.call(a, http.MethodPost, "/api/sync/push", map[string]any{"mutations": []mutation{m}})
	var out struct {
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(body, &out); err != nil || code != http.StatusOK || len(out.Results) != 1 {
		w.t.Fatalf("push %+v: got %d %s, want 200 with one result", m, code, body)
	}
	return out.Results[0]
}

// pushStatus is the status of a pushed mutation's result.
func pushStatus(t testing.TB, result json.RawMessage) string {
	t.Helper()
	var r struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(result, &r); err != nil {
		t.Fatalf("decode result %s: %v", result, err)
	}
	return r.Status
}

// pulled returns the ids of collection that a full pull from an empty
// cursor gives a.
func (w *world) pulled(a *account, collection string) map[string]bool {
	w.t.Helper()
	ids := map[string]bool{}
	cursor := ""
	for range 100 {
		code, body := w.call(a, http.MethodGet, "/api/sync/pull?limit=1000&cursor="+cursor, nil)
		var page struct {
			Changes []struct {
				Collection string `json:"collection"`
				ID         string `json:"id"`
				Op         string `json:"op"`
			} `json:"changes"`
			Cursor  string `json:"cursor"`
			HasMore bool   `json:"hasMore"`
		}
		if err := json.Unmarshal(body, &page); err != nil || code != http.StatusOK {
			w.t.Fatalf("pull: got %d %s", code, body)
		}
		for _, c := range page.Changes {
			if c.Collection == collection {
				ids[c.ID] = c.Op == "upsert"
			}
		}
		if !page.HasMore {
			return ids
		}
		cursor = page.Cursor
	}
	w.t.Fatal("pull did not end in 100 pages")
	return nil
}

// save saves a record of collection as the server and returns it.
func (w *world) save(collection string, data map[string]any) *core.Record {
	w.t.Helper()
	c, err := w.app.FindCollectionByNameOrId(collection)
	if err != nil {
		w.t.Fatal(err)
	}
	r := core.NewRecord(c)
	r.Load(data)
	if err := w.app.Save(r); err != nil {
		w.t.Fatalf("save %s %v: %v", collection, data, err)
	}
	return r
}

func (w *world) person(team string) *core.Record {
	return w.save(domain.Persons, map[string]any{"team": team, "consent": "verbal"})
}

func (w *world) referral(team string) *core.Record {
	return w.save(domain.Referrals, map[string]any{
		"team": team, "person": w.person(team).Id, "service": w.service, "reason": "Documenti", "status": "draft",
	})
}

// conflict returns an open conflict journal entry about a person of team.
func (w *world) conflict(team string) *core.Record {
	p := w.person(team)
	return w.save(domain.SyncConflicts, map[string]any{
		"collection": domain.Persons, "record_id": p.Id, "field": "notes", "person": p.Id,
		"kind": "same_field", "team": team, "kept_value": "nuova", "overwritten_value": "vecchia",
	})
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// anonymise replaces each of ids in an answer by a placeholder, so that
// two answers about different ids compare byte for byte.
func anonymise(answer []byte, ids ...string) string {
	s := string(answer)
	for _, id := range ids {
		if id != "" {
			s = strings.ReplaceAll(s, id, "<id>")
		}
	}
	return s
}
