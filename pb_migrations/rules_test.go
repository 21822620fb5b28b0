package migrations_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/domain"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// The accounts a request is made as; anon makes it without signing in.
const (
	anon = ""
	cw   = apptest.CampWorker
	pw   = apptest.PrisonWorker
	sv   = apptest.Supervisor
	su   = apptest.Admin
)

var roleName = map[string]string{
	anon: "anonymous", cw: "camp worker", pw: "prison worker", sv: "supervisor", su: "superuser",
}

// fixture names the demo records that a request refers to. Requests,
// bodies and expected content are written with {placeholders}, resolved on
// first use; a placeholder ending in * stands for every id of a list and
// repeats the expectation for each.
type fixture struct {
	t     testing.TB
	app   core.App
	vals  map[string]string
	lists map[string][]string
}

var placeholder = regexp.MustCompile(`\{[A-Za-z]+\*?\}`)

// listOf says which records a list placeholder stands for.
var listOf = map[string]struct{ collection, team string }{
	"campPersons":     {domain.Persons, "campTeam"},
	"prisonPersons":   {domain.Persons, "prisonTeam"},
	"campVisits":      {domain.CampVisits, "campTeam"},
	"prisonContacts":  {domain.SecretariatContacts, "prisonTeam"},
	"campReferrals":   {domain.Referrals, "campTeam"},
	"prisonReferrals": {domain.Referrals, "prisonTeam"},
	"campEvents":      {domain.ReferralEvents, "campTeam"},
	"prisonEvents":    {domain.ReferralEvents, "prisonTeam"},
}

func newFixture(t testing.TB, app core.App) *fixture {
	t.Helper()
	f := &fixture{t: t, app: app, vals: map[string]string{}, lists: map[string][]string{}}
	// Demo data has no devices: each worker gets one.
	devices, err := app.FindCollectionByNameOrId(domain.Devices)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct{ key, user string }{{"campDevice", "campWorker"}, {"prisonDevice", "prisonWorker"}} {
		r := core.NewRecord(devices)
		r.Load(map[string]any{"user": f.value(d.user), "name": "Telefono " + d.user, "platform": "android"})
		if err := app.Save(r); err != nil {
			t.Fatalf("save device: %v", err)
		}
		f.vals[d.key] = r.Id
	}
	return f
}

// ids returns the ids of collection's records matching where, oldest first.
func (f *fixture) ids(collection string, where dbx.HashExp) []string {
	f.t.Helper()
	var ids []string
	err := f.app.DB().Select("id").From(collection).Where(where).OrderBy("created", "id").Column(&ids)
	if err != nil || len(ids) == 0 {
		f.t.Fatalf("find %s where %v: got %d records, err %v", collection, where, len(ids), err)
	}
	return ids
}

func (f *fixture) list(key string) []string {
	f.t.Helper()
	if ids, ok := f.lists[key]; ok {
		return ids
	}
	spec, ok := listOf[key]
	if !ok {
		f.t.Fatalf("unknown list placeholder {%s*}", key)
	}
	f.lists[key] = f.ids(spec.collection, dbx.HashExp{"team": f.value(spec.team)})
	return f.lists[key]
}

func (f *fixture) value(key string) string {
	f.t.Helper()
	if v, ok := f.vals[key]; ok {
		return v
	}
	var v string
	switch key {
	case "campTeam":
		v = apptest.Team(f.t, f.app, "camp_outreach")
	case "prisonTeam":
		v = apptest.Team(f.t, f.app, "prison_secretariat")
	case "campWorker":
		v = apptest.User(f.t, f.app, cw).Id
	case "prisonWorker":
		v = apptest.User(f.t, f.app, pw).Id
	case "supervisor":
		v = apptest.User(f.t, f.app, sv).Id
	case "campSite", "prisonSite", "officeSite":
		// The first site of the kind the name starts with.
		v = f.ids(domain.Sites, dbx.HashExp{"kind": strings.TrimSuffix(key, "Site")})[0]
	case "service":
		v = f.ids(domain.Services, dbx.HashExp{"active": true})[0]
	case "inactiveService":
		v = f.ids(domain.Services, dbx.HashExp{"active": false})[0]
	case "newId":
		v = uuid.Must(uuid.NewV7()).String()
	case "eventCount":
		v = strconv.Itoa(len(f.list("campEvents")) + len(f.list("prisonEvents")))
	default:
		// {campPerson} is the first of {campPersons*}, {campPersonCount}
		// their number.
		if base, ok := strings.CutSuffix(key, "Count"); ok {
			v = strconv.Itoa(len(f.list(base + "s")))
		} else if _, ok := listOf[key+"s"]; ok {
			v = f.list(key + "s")[0]
		} else {
			f.t.Fatalf("unknown placeholder {%s}", key)
		}
	}
	f.vals[key] = v
	return v
}

func (f *fixture) expand(s string) string {
	f.t.Helper()
	return placeholder.ReplaceAllStringFunc(s, func(p string) string {
		return f.value(strings.Trim(p, "{}"))
	})
}

func (f *fixture) expandAll(items []string) []string {
	f.t.Helper()
	var out []string
	for _, item := range items {
		p := placeholder.FindString(item)
		if strings.HasSuffix(p, "*}") {
			for _, id := range f.list(strings.Trim(p, "{*}")) {
				out = append(out, f.expand(strings.Replace(item, p, id, 1)))
			}
			continue
		}
		out = append(out, f.expand(item))
	}
	return out
}

// saved returns a setup that saves a record of collection and names it
// {made}.
func saved(collection, body string) func(t testing.TB, app core.App, f *fixture) {
	return func(t testing.TB, app core.App, f *fixture) {
		t.Helper()
		c, err := app.FindCollectionByNameOrId(collection)
		if err != nil {
			t.Fatal(err)
		}
		data := map[string]any{}
		if err := json.Unmarshal([]byte(f.expand(body)), &data); err != nil {
			t.Fatalf("setup body: %v", err)
		}
		r := core.NewRecord(c)
		r.Load(data)
		if err := app.Save(r); err != nil {
			t.Fatalf("setup %s: %v", collection, err)
		}
		f.vals["made"] = r.Id
	}
}

// statusPath is how a referral reaches each status from its creation.
var statusPath = map[string][]string{
	domain.StatusDraft:      {domain.StatusDraft},
	domain.StatusSent:       {domain.StatusSent},
	domain.StatusAccepted:   {domain.StatusSent, domain.StatusAccepted},
	domain.StatusInProgress: {domain.StatusSent, domain.StatusAccepted, domain.StatusInProgress},
	domain.StatusCompleted:  {domain.StatusSent, domain.StatusAccepted, domain.StatusCompleted},
	domain.StatusDeclined:   {domain.StatusSent, domain.StatusDeclined},
	domain.StatusCancelled:  {domain.StatusDraft, domain.StatusCancelled},
}

// referralIn returns a setup that makes a prison referral in status and
// names it {made}. It is saved by the server, which may make every move.
func referralIn(status string) func(t testing.TB, app core.App, f *fixture) {
	return func(t testing.TB, app core.App, f *fixture) {
		t.Helper()
		f.vals["made"] = saveReferral(t, app, f.value("prisonTeam"), f.value("prisonPerson"), f.value("service"), status)
	}
}

func saveReferral(t testing.TB, app core.App, team, person, service, status string) string {
	t.Helper()
	c, err := app.FindCollectionByNameOrId(domain.Referrals)
	if err != nil {
		t.Fatal(err)
	}
	r := core.NewRecord(c)
	r.Load(map[string]any{"team": team, "person": person, "service": service, "reason": "Prova"})
	for _, s := range statusPath[status] {
		r.Set("status", s)
		if err := app.Save(r); err != nil {
			t.Fatalf("move referral to %s: %v", s, err)
		}
	}
	return r.Id
}

// rule is one request of the access table and what must come of it.
type rule struct {
	name    string
	as      string
	method  string
	url     string
	body    string
	setup   func(t testing.TB, app core.App, f *fixture)
	status  int
	want    []string
	notWant []string
	// events is the number of referral_events rows a referral write adds.
	events int
}

func list(collection string) string {
	return "/api/collections/" + collection + "/records?perPage=500&sort=created"
}
func one(collection, id string) string { return "/api/collections/" + collection + "/records/" + id }
func all(collection string) string     { return "/api/collections/" + collection + "/records" }

const (
	get   = http.MethodGet
	post  = http.MethodPost
	patch = http.MethodPatch
	del   = http.MethodDelete
)

func items(n string) string { return `"totalItems":` + n + `,` }

// rules is the access rule set: role x collection x operation, with the
// cross-team attempts. A refused write must leave everything as it was; the
// checks after each request prove that.
var rules = []rule{
	// users: each user sees the members of their teams; only superusers
	// make accounts or change roles and teams.
	{name: "list", as: anon, method: get, url: list("users"), status: 200, want: []string{items("0")}},
	{name: "list own teams' members", as: cw, method: get, url: list("users"), status: 200,
		want: []string{items("2"), `"id":"{campWorker}"`, `"id":"{supervisor}"`}, notWant: []string{`"id":"{prisonWorker}"`}},
	{name: "list own teams' members", as: pw, method: get, url: list("users"), status: 200,
		want: []string{items("2"), `"id":"{prisonWorker}"`, `"id":"{supervisor}"`}, notWant: []string{`"id":"{campWorker}"`}},
	{name: "list both teams' members", as: sv, method: get, url: list("users"), status: 200,
		want: []string{items("3"), `"id":"{campWorker}"`, `"id":"{prisonWorker}"`}},
	{name: "list", as: su, method: get, url: list("users"), status: 200, want: []string{items("3")}},
	{name: "view", as: anon, method: get, url: one("users", "{campWorker}"), status: 404},
	{name: "view own supervisor", as: cw, method: get, url: one("users", "{supervisor}"), status: 200, want: []string{`"id":"{supervisor}"`}},
	{name: "view other team's worker", as: cw, method: get, url: one("users", "{prisonWorker}"), status: 404},
	{name: "view other team's worker", as: pw, method: get, url: one("users", "{campWorker}"), status: 404},
	{name: "view", as: su, method: get, url: one("users", "{prisonWorker}"), status: 200, want: []string{`"id":"{prisonWorker}"`}},
	{name: "create", as: anon, method: post, url: all("users"), body: newUser, status: 403},
	{name: "create", as: cw, method: post, url: all("users"), body: newUser, status: 403},
	{name: "create", as: sv, method: post, url: all("users"), body: newUser, status: 403},
	{name: "create", as: su, method: post, url: all("users"), body: newUser, status: 200, want: []string{`"email":"nuova@example.org"`, `"role":"worker"`}},
	{name: "update own name", as: cw, method: patch, url: one("users", "{campWorker}"), body: `{"name":"Nuovo Nome"}`, status: 200, want: []string{`"name":"Nuovo Nome"`}},
	{name: "update own role", as: cw, method: patch, url: one("users", "{campWorker}"), body: `{"role":"supervisor"}`, status: 404},
	{name: "update own teams", as: cw, method: patch, url: one("users", "{campWorker}"), body: `{"teams":["{campTeam}","{prisonTeam}"]}`, status: 404},
	{name: "add a team to self", as: cw, method: patch, url: one("users", "{campWorker}"), body: `{"teams+":"{prisonTeam}"}`, status: 404},
	{name: "update own teams", as: sv, method: patch, url: one("users", "{supervisor}"), body: `{"teams-":"{prisonTeam}"}`, status: 404},
	{name: "update a worker's role", as: sv, method: patch, url: one("users", "{campWorker}"), body: `{"role":"supervisor"}`, status: 404},
	{name: "update another worker", as: cw, method: patch, url: one("users", "{prisonWorker}"), body: `{"name":"X"}`, status: 404},
	{name: "update", as: anon, method: patch, url: one("users", "{campWorker}"), body: `{"name":"X"}`, status: 404},
	{name: "update a worker's teams", as: su, method: patch, url: one("users", "{campWorker}"), body: `{"teams":["{campTeam}","{prisonTeam}"]}`, status: 200,
		want: []string{`"teams":["{campTeam}","{prisonTeam}"]`}},
	{name: "delete self", as: cw, method: del, url: one("users", "{campWorker}"), status: 403},
	{name: "delete a worker", as: sv, method: del, url: one("users", "{campWorker}"), status: 403},
	{name: "delete a worker", as: su, method: del, url: one("users", "{prisonWorker}"), status: 204},

	// teams, sites, services: read by every signed-in user, written by
	// superusers only.
	{name: "list", as: anon, method: get, url: list("teams"), status: 200, want: []string{items("0")}},
	{name: "list both teams", as: cw, method: get, url: list("teams"), status: 200, want: []string{items("2"), `"id":"{prisonTeam}"`}},
	{name: "list", as: sv, method: get, url: list("teams"), status: 200, want: []string{items("2")}},
	{name: "list", as: su, method: get, url: list("teams"), status: 200, want: []string{items("2")}},
	{name: "view", as: anon, method: get, url: one("teams", "{campTeam}"), status: 404},
	{name: "view other team", as: pw, method: get, url: one("teams", "{campTeam}"), status: 200, want: []string{`"id":"{campTeam}"`}},
	{name: "create", as: anon, method: post, url: all("teams"), body: newTeam, status: 403},
	{name: "create", as: cw, method: post, url: all("teams"), body: newTeam, status: 403},
	{name: "create", as: sv, method: post, url: all("teams"), body: newTeam, status: 403},
	{name: "create", as: su, method: post, url: all("teams"), body: newTeam, status: 200, want: []string{`"name":"Ufficio"`}},
	{name: "update", as: cw, method: patch, url: one("teams", "{campTeam}"), body: `{"name":"X"}`, status: 403},
	{name: "update", as: sv, method: patch, url: one("teams", "{campTeam}"), body: `{"name":"X"}`, status: 403},
	{name: "update", as: su, method: patch, url: one("teams", "{campTeam}"), body: `{"name":"Unità di strada"}`, status: 200, want: []string{`"name":"Unità di strada"`}},
	{name: "delete", as: anon, method: del, url: one("teams", "{campTeam}"), status: 403},
	{name: "delete", as: cw, method: del, url: one("teams", "{campTeam}"), status: 403},
	{name: "delete", as: sv, method: del, url: one("teams", "{campTeam}"), status: 403},
	{name: "delete a team in use", as: su, method: del, url: one("teams", "{prisonTeam}"), status: 400},
	{name: "delete an unused team", as: su, method: del, url: one("teams", "{made}"), setup: saved("teams", newTeam), status: 204},

	{name: "list", as: anon, method: get, url: list("sites"), status: 200, want: []string{items("0")}},
	{name: "list every site", as: cw, method: get, url: list("sites"), status: 200, want: []string{items("9"), `"id":"{prisonSite}"`}},
	{name: "list", as: su, method: get, url: list("sites"), status: 200, want: []string{items("9")}},
	{name: "view", as: anon, method: get, url: one("sites", "{campSite}"), status: 404},
	{name: "view other team's site", as: pw, method: get, url: one("sites", "{campSite}"), status: 200, want: []string{`"id":"{campSite}"`}},
	{name: "create", as: cw, method: post, url: all("sites"), body: newSite, status: 403},
	{name: "create", as: sv, method: post, url: all("sites"), body: newSite, status: 403},
	{name: "create", as: su, method: post, url: all("sites"), body: newSite, status: 200, want: []string{`"name":"Nuovo insediamento"`}},
	{name: "update", as: cw, method: patch, url: one("sites", "{campSite}"), body: `{"team":"{prisonTeam}"}`, status: 403},
	{name: "update", as: sv, method: patch, url: one("sites", "{campSite}"), body: `{"name":"X"}`, status: 403},
	{name: "update", as: su, method: patch, url: one("sites", "{campSite}"), body: `{"municipio":"XV bis"}`, status: 200, want: []string{`"municipio":"XV bis"`}},
	{name: "delete", as: cw, method: del, url: one("sites", "{campSite}"), status: 403},
	{name: "delete", as: sv, method: del, url: one("sites", "{campSite}"), status: 403},
	{name: "delete", as: su, method: del, url: one("sites", "{made}"), setup: saved("sites", newSite), status: 204},

	{name: "list", as: anon, method: get, url: list("services"), status: 200, want: []string{items("0")}},
	{name: "list the directory", as: pw, method: get, url: list("services"), status: 200,
		want: []string{items("9"), `"name":"Segretariato Sociale intra ed extra murario"`}},
	{name: "list", as: su, method: get, url: list("services"), status: 200, want: []string{items("9")}},
	{name: "view", as: anon, method: get, url: one("services", "{service}"), status: 404},
	{name: "view", as: cw, method: get, url: one("services", "{service}"), status: 200, want: []string{`"id":"{service}"`}},
	{name: "create", as: cw, method: post, url: all("services"), body: newService, status: 403},
	{name: "create", as: sv, method: post, url: all("services"), body: newService, status: 403},
	{name: "create", as: su, method: post, url: all("services"), body: newService, status: 200, want: []string{`"name":"Sportello di prova"`}},
	{name: "update", as: pw, method: patch, url: one("services", "{service}"), body: `{"active":false}`, status: 403},
	{name: "update", as: sv, method: patch, url: one("services", "{service}"), body: `{"active":false}`, status: 403},
	{name: "update", as: su, method: patch, url: one("services", "{service}"), body: `{"phone":"06 000000"}`, status: 200, want: []string{`"phone":"06 000000"`}},
	{name: "delete", as: pw, method: del, url: one("services", "{inactiveService}"), status: 403},
	{name: "delete", as: sv, method: del, url: one("services", "{inactiveService}"), status: 403},
	{name: "delete", as: su, method: del, url: one("services", "{inactiveService}"), status: 204},

	// persons: members of the person's team; only erasure (or a superuser)
	// removes one.
	{name: "list", as: anon, method: get, url: list("persons"), status: 200, want: []string{items("0")}},
	{name: "list own team only", as: cw, method: get, url: list("persons"), status: 200,
		want: []string{items("{campPersonCount}"), `"id":"{campPersons*}"`}, notWant: []string{`"id":"{prisonPersons*}"`}},
	{name: "list own team only", as: pw, method: get, url: list("persons"), status: 200,
		want: []string{items("{prisonPersonCount}"), `"id":"{prisonPersons*}"`}, notWant: []string{`"id":"{campPersons*}"`}},
	{name: "list both teams", as: sv, method: get, url: list("persons"), status: 200,
		want: []string{`"id":"{campPersons*}"`, `"id":"{prisonPersons*}"`}},
	{name: "list", as: su, method: get, url: list("persons"), status: 200, want: []string{`"id":"{campPersons*}"`, `"id":"{prisonPersons*}"`}},
	{name: "view", as: anon, method: get, url: one("persons", "{campPerson}"), status: 404},
	{name: "view own team's person", as: cw, method: get, url: one("persons", "{campPerson}"), status: 200, want: []string{`"id":"{campPerson}"`}},
	{name: "view a prison person", as: cw, method: get, url: one("persons", "{prisonPerson}"), status: 404},
	{name: "view a camp person", as: pw, method: get, url: one("persons", "{campPerson}"), status: 404},
	{name: "view either team's person", as: sv, method: get, url: one("persons", "{prisonPerson}"), status: 200, want: []string{`"id":"{prisonPerson}"`}},
	{name: "create", as: anon, method: post, url: all("persons"), body: `{"team":"{campTeam}","consent":"verbal"}`, status: 400},
	{name: "create in own team", as: cw, method: post, url: all("persons"), body: `{"id":"{newId}","team":"{campTeam}","consent":"verbal","site":"{campSite}"}`, status: 200,
		want: []string{`"id":"{newId}"`, `"team":"{campTeam}"`, `"version":1`, `"created_by":"{campWorker}"`}},
	{name: "create in the other team", as: cw, method: post, url: all("persons"), body: `{"team":"{prisonTeam}","consent":"verbal"}`, status: 403,
		want: []string{`"team":{"code":"validation_other_team"`}},
	{name: "create at the other team's site", as: cw, method: post, url: all("persons"), body: `{"team":"{campTeam}","consent":"verbal","site":"{prisonSite}"}`, status: 400,
		want: []string{`"site":{"code":"validation_other_team"`}},
	{name: "create at the office", as: pw, method: post, url: all("persons"), body: `{"team":"{prisonTeam}","consent":"written","site":"{officeSite}"}`, status: 200,
		want: []string{`"team":"{prisonTeam}"`}},
	{name: "create", as: su, method: post, url: all("persons"), body: `{"team":"{campTeam}","consent":"none"}`, status: 200, want: []string{`"version":1`}},
	{name: "update own team's person", as: cw, method: patch, url: one("persons", "{campPerson}"), body: `{"notes":"Aggiornato"}`, status: 200,
		want: []string{`"notes":"Aggiornato"`, `"version":2`, `"updated_by":"{campWorker}"`}},
	{name: "update a prison person", as: cw, method: patch, url: one("persons", "{prisonPerson}"), body: `{"notes":"X"}`, status: 404},
	{name: "update a camp person", as: pw, method: patch, url: one("persons", "{campPerson}"), body: `{"notes":"X"}`, status: 404},
	{name: "move a person to the other team", as: cw, method: patch, url: one("persons", "{campPerson}"), body: `{"team":"{prisonTeam}","site":""}`, status: 403,
		want: []string{`"team":{"code":"validation_other_team"`}},
	{name: "move a person with a modifier", as: cw, method: patch, url: one("persons", "{campPerson}"), body: `{"team+":"{prisonTeam}","site":""}`, status: 404},
	{name: "take a camp person into own team", as: pw, method: patch, url: one("persons", "{campPerson}"), body: `{"team":"{prisonTeam}","site":""}`, status: 404},
	{name: "point a person at the other team's site", as: cw, method: patch, url: one("persons", "{campPerson}"), body: `{"site":"{prisonSite}"}`, status: 400,
		want: []string{`"site":{"code":"validation_other_team"`}},
	{name: "move a person between own teams", as: sv, method: patch, url: one("persons", "{campPerson}"), body: `{"team":"{prisonTeam}","site":"{officeSite}"}`, status: 200,
		want: []string{`"team":"{prisonTeam}"`}},
	{name: "update", as: su, method: patch, url: one("persons", "{prisonPerson}"), body: `{"consent":"written"}`, status: 200, want: []string{`"consent":"written"`}},
	{name: "update", as: anon, method: patch, url: one("persons", "{campPerson}"), body: `{"notes":"X"}`, status: 404},
	{name: "delete", as: anon, method: del, url: one("persons", "{campPerson}"), status: 403},
	{name: "delete own team's person", as: cw, method: del, url: one("persons", "{campPerson}"), status: 403},
	{name: "delete own team's person", as: pw, method: del, url: one("persons", "{prisonPerson}"), status: 403},
	{name: "delete (erasure is the way)", as: sv, method: del, url: one("persons", "{campPerson}"), status: 403},
	{name: "delete", as: su, method: del, url: one("persons", "{prisonPerson}"), status: 204},

	// camp_visits
	{name: "list", as: anon, method: get, url: list("camp_visits"), status: 200, want: []string{items("0")}},
	{name: "list own team", as: cw, method: get, url: list("camp_visits"), status: 200,
		want: []string{items("{campVisitCount}"), `"id":"{campVisits*}"`}},
	{name: "list the camp team's visits", as: pw, method: get, url: list("camp_visits"), status: 200,
		want: []string{items("0")}, notWant: []string{`"id":"{campVisits*}"`}},
	{name: "list", as: sv, method: get, url: list("camp_visits"), status: 200, want: []string{`"id":"{campVisits*}"`}},
	{name: "list", as: su, method: get, url: list("camp_visits"), status: 200, want: []string{`"id":"{campVisits*}"`}},
	{name: "view", as: anon, method: get, url: one("camp_visits", "{campVisit}"), status: 404},
	{name: "view", as: cw, method: get, url: one("camp_visits", "{campVisit}"), status: 200, want: []string{`"id":"{campVisit}"`}},
	{name: "view the camp team's visit", as: pw, method: get, url: one("camp_visits", "{campVisit}"), status: 404},
	{name: "create", as: anon, method: post, url: all("camp_visits"), body: newVisit, status: 400},
	{name: "create", as: cw, method: post, url: all("camp_visits"), body: newVisit, status: 200,
		want: []string{`"persons_met":["{campPerson}"]`, `"version":1`, `"households_met":3`}},
	{name: "create meeting a prison person", as: cw, method: post, url: all("camp_visits"),
		body:   `{"team":"{campTeam}","site":"{campSite}","visited_at":"2026-11-19 10:00:00.000Z","persons_met":["{campPerson}","{prisonPerson}"]}`,
		status: 400, want: []string{`"persons_met":{"code":"validation_missing_rel_records"`}},
	{name: "create with a prison worker", as: cw, method: post, url: all("camp_visits"),
		body:   `{"team":"{campTeam}","site":"{campSite}","visited_at":"2026-11-19 10:00:00.000Z","workers":["{prisonWorker}"]}`,
		status: 400, want: []string{`"workers":{"code":"validation_missing_rel_records"`}},
	{name: "create at a prison", as: cw, method: post, url: all("camp_visits"),
		body:   `{"team":"{campTeam}","site":"{prisonSite}","visited_at":"2026-11-19 10:00:00.000Z"}`,
		status: 400, want: []string{`"site":{"code":"validation_other_team"`}},
	{name: "create in the other team", as: cw, method: post, url: all("camp_visits"),
		body: `{"team":"{prisonTeam}","site":"{campSite}","visited_at":"2026-11-19 10:00:00.000Z"}`, status: 403},
	{name: "create in the camp team", as: pw, method: post, url: all("camp_visits"), body: newVisit, status: 403},
	{name: "create at the camp team's site", as: pw, method: post, url: all("camp_visits"),
		body:   `{"team":"{prisonTeam}","site":"{campSite}","visited_at":"2026-11-19 10:00:00.000Z"}`,
		status: 400, want: []string{`"site":{"code":"validation_other_team"`}},
	{name: "create", as: su, method: post, url: all("camp_visits"), body: newVisit, status: 200, want: []string{`"version":1`}},
	{name: "update", as: cw, method: patch, url: one("camp_visits", "{campVisit}"), body: `{"households_met":5}`, status: 200,
		want: []string{`"households_met":5`, `"version":2`}},
	{name: "add a prison person met", as: cw, method: patch, url: one("camp_visits", "{campVisit}"), body: `{"persons_met+":"{prisonPerson}"}`, status: 400,
		want: []string{`"persons_met":{"code":"validation_missing_rel_records"`}},
	{name: "move to the other team", as: cw, method: patch, url: one("camp_visits", "{campVisit}"), body: `{"team":"{prisonTeam}"}`, status: 403},
	{name: "update the camp team's visit", as: pw, method: patch, url: one("camp_visits", "{campVisit}"), body: `{"notes":"X"}`, status: 404},
	{name: "update", as: sv, method: patch, url: one("camp_visits", "{campVisit}"), body: `{"notes":"Visto"}`, status: 200, want: []string{`"notes":"Visto"`}},
	{name: "update", as: anon, method: patch, url: one("camp_visits", "{campVisit}"), body: `{"notes":"X"}`, status: 404},
	{name: "delete", as: anon, method: del, url: one("camp_visits", "{campVisit}"), status: 404},
	{name: "delete the camp team's visit", as: pw, method: del, url: one("camp_visits", "{campVisit}"), status: 404},
	{name: "delete", as: cw, method: del, url: one("camp_visits", "{campVisit}"), status: 204},
	{name: "delete", as: sv, method: del, url: one("camp_visits", "{campVisit}"), status: 204},

	// secretariat_contacts
	{name: "list", as: anon, method: get, url: list("secretariat_contacts"), status: 200, want: []string{items("0")}},
	{name: "list own team", as: pw, method: get, url: list("secretariat_contacts"), status: 200,
		want: []string{items("{prisonContactCount}"), `"id":"{prisonContacts*}"`}},
	{name: "list the prison team's contacts", as: cw, method: get, url: list("secretariat_contacts"), status: 200,
		want: []string{items("0")}, notWant: []string{`"id":"{prisonContacts*}"`}},
	{name: "list", as: sv, method: get, url: list("secretariat_contacts"), status: 200, want: []string{`"id":"{prisonContacts*}"`}},
	{name: "view", as: pw, method: get, url: one("secretariat_contacts", "{prisonContact}"), status: 200, want: []string{`"id":"{prisonContact}"`}},
	{name: "view the prison team's contact", as: cw, method: get, url: one("secretariat_contacts", "{prisonContact}"), status: 404},
	{name: "view", as: anon, method: get, url: one("secretariat_contacts", "{prisonContact}"), status: 404},
	{name: "create inside", as: pw, method: post, url: all("secretariat_contacts"), body: newContact, status: 200,
		want: []string{`"person":"{prisonPerson}"`, `"version":1`, `"created_by":"{prisonWorker}"`}},
	{name: "create at the office", as: pw, method: post, url: all("secretariat_contacts"),
		body:   `{"team":"{prisonTeam}","person":"{prisonPerson}","site":"{officeSite}","setting":"extra","contacted_at":"2026-11-19 10:00:00.000Z"}`,
		status: 200, want: []string{`"setting":"extra"`}},
	{name: "create extra-mural at a prison", as: pw, method: post, url: all("secretariat_contacts"),
		body:   `{"team":"{prisonTeam}","person":"{prisonPerson}","site":"{prisonSite}","setting":"extra","contacted_at":"2026-11-19 10:00:00.000Z"}`,
		status: 400, want: []string{`"site":{"code":"validation_site_kind"`}},
	{name: "create for a camp person", as: pw, method: post, url: all("secretariat_contacts"),
		body:   `{"team":"{prisonTeam}","person":"{campPerson}","site":"{prisonSite}","setting":"intra","contacted_at":"2026-11-19 10:00:00.000Z"}`,
		status: 400, want: []string{`"person":{"code":"validation_missing_rel_records"`}},
	{name: "create in the prison team", as: cw, method: post, url: all("secretariat_contacts"), body: newContact, status: 403},
	{name: "create in own team for a prison person", as: cw, method: post, url: all("secretariat_contacts"),
		body:   `{"team":"{campTeam}","person":"{prisonPerson}","site":"{prisonSite}","setting":"intra","contacted_at":"2026-11-19 10:00:00.000Z"}`,
		status: 400, want: []string{`"person":{"code":"validation_missing_rel_records"`}},
	{name: "create", as: anon, method: post, url: all("secretariat_contacts"), body: newContact, status: 400},
	{name: "update", as: pw, method: patch, url: one("secretariat_contacts", "{prisonContact}"), body: `{"next_steps":"Richiamare"}`, status: 200,
		want: []string{`"next_steps":"Richiamare"`, `"version":2`}},
	{name: "update the prison team's contact", as: cw, method: patch, url: one("secretariat_contacts", "{prisonContact}"), body: `{"notes":"X"}`, status: 404},
	{name: "move to the other team", as: pw, method: patch, url: one("secretariat_contacts", "{prisonContact}"), body: `{"team":"{campTeam}"}`, status: 403},
	{name: "point at a camp person", as: pw, method: patch, url: one("secretariat_contacts", "{prisonContact}"), body: `{"person":"{campPerson}"}`, status: 400,
		want: []string{`"person":{"code":"validation_missing_rel_records"`}},
	{name: "delete the prison team's contact", as: cw, method: del, url: one("secretariat_contacts", "{prisonContact}"), status: 404},
	{name: "delete", as: pw, method: del, url: one("secretariat_contacts", "{prisonContact}"), status: 204},
	{name: "delete", as: su, method: del, url: one("secretariat_contacts", "{prisonContact}"), status: 204},

	// referrals: members write them; the status follows the state machine,
	// workers only send and withdraw; every status change is kept.
	{name: "list", as: anon, method: get, url: list("referrals"), status: 200, want: []string{items("0")}},
	{name: "list own team", as: cw, method: get, url: list("referrals"), status: 200,
		want: []string{items("{campReferralCount}"), `"id":"{campReferrals*}"`}, notWant: []string{`"id":"{prisonReferrals*}"`}},
	{name: "list own team", as: pw, method: get, url: list("referrals"), status: 200,
		want: []string{items("{prisonReferralCount}"), `"id":"{prisonReferrals*}"`}, notWant: []string{`"id":"{campReferrals*}"`}},
	{name: "list", as: sv, method: get, url: list("referrals"), status: 200, want: []string{`"id":"{campReferrals*}"`, `"id":"{prisonReferrals*}"`}},
	{name: "view", as: pw, method: get, url: one("referrals", "{prisonReferral}"), status: 200, want: []string{`"id":"{prisonReferral}"`}},
	{name: "view the prison team's referral", as: cw, method: get, url: one("referrals", "{prisonReferral}"), status: 404},
	{name: "view", as: anon, method: get, url: one("referrals", "{prisonReferral}"), status: 404},
	{name: "create a draft", as: pw, method: post, url: all("referrals"), body: newReferral("draft"), status: 200, events: 1,
		want: []string{`"status":"draft"`, `"version":1`}},
	{name: "create as sent", as: pw, method: post, url: all("referrals"), body: newReferral("sent"), status: 200, events: 1,
		want: []string{`"status":"sent"`}},
	{name: "create as accepted", as: pw, method: post, url: all("referrals"), body: newReferral("accepted"), status: 400,
		want: []string{`"status":{"code":"validation_invalid_transition"`, `to \"accepted\"`}},
	{name: "create as accepted", as: sv, method: post, url: all("referrals"), body: newReferral("accepted"), status: 400,
		want: []string{`"status":{"code":"validation_invalid_transition"`}},
	{name: "create for a camp person", as: pw, method: post, url: all("referrals"),
		body:   `{"team":"{prisonTeam}","person":"{campPerson}","service":"{service}","reason":"Documenti","status":"draft"}`,
		status: 400, want: []string{`"person":{"code":"validation_missing_rel_records"`}},
	{name: "create from a camp visit", as: pw, method: post, url: all("referrals"),
		body:   `{"team":"{prisonTeam}","person":"{prisonPerson}","service":"{service}","reason":"Documenti","status":"draft","source_visit":"{campVisit}"}`,
		status: 400, want: []string{`"source_visit":{"code":"validation_missing_rel_records"`}},
	{name: "create in the prison team", as: cw, method: post, url: all("referrals"), body: newReferral("draft"), status: 403},
	{name: "create", as: anon, method: post, url: all("referrals"), body: newReferral("draft"), status: 400},
	{name: "send a draft", as: pw, method: patch, url: one("referrals", "{made}"), setup: referralIn("draft"), body: `{"status":"sent"}`, status: 200, events: 1,
		want: []string{`"status":"sent"`, `"version":2`}},
	{name: "cancel a draft", as: pw, method: patch, url: one("referrals", "{made}"), setup: referralIn("draft"), body: `{"status":"cancelled"}`, status: 200, events: 1,
		want: []string{`"status":"cancelled"`}},
	{name: "withdraw a sent referral", as: pw, method: patch, url: one("referrals", "{made}"), setup: referralIn("sent"), body: `{"status":"cancelled"}`, status: 200, events: 1,
		want: []string{`"status":"cancelled"`}},
	{name: "accept a sent referral", as: pw, method: patch, url: one("referrals", "{made}"), setup: referralIn("sent"), body: `{"status":"accepted"}`, status: 400,
		want: []string{`"status":{"code":"validation_invalid_transition"`, `from \"sent\" to \"accepted\"`}},
	{name: "start an accepted referral", as: pw, method: patch, url: one("referrals", "{made}"), setup: referralIn("accepted"), body: `{"status":"in_progress"}`, status: 400,
		want: []string{`from \"accepted\" to \"in_progress\"`}},
	{name: "complete a draft", as: pw, method: patch, url: one("referrals", "{made}"), setup: referralIn("draft"), body: `{"status":"completed"}`, status: 400,
		want: []string{`from \"draft\" to \"completed\"`}},
	{name: "edit an accepted referral's notes", as: pw, method: patch, url: one("referrals", "{made}"), setup: referralIn("accepted"), body: `{"notes":"Telefonato"}`, status: 200,
		want: []string{`"status":"accepted"`, `"notes":"Telefonato"`}},
	{name: "accept a sent referral", as: sv, method: patch, url: one("referrals", "{made}"), setup: referralIn("sent"), body: `{"status":"accepted"}`, status: 200, events: 1,
		want: []string{`"status":"accepted"`}},
	{name: "decline a sent referral", as: sv, method: patch, url: one("referrals", "{made}"), setup: referralIn("sent"), body: `{"status":"declined","outcome":"Nessun posto"}`, status: 200, events: 1,
		want: []string{`"status":"declined"`}},
	{name: "start an accepted referral", as: sv, method: patch, url: one("referrals", "{made}"), setup: referralIn("accepted"), body: `{"status":"in_progress"}`, status: 200, events: 1,
		want: []string{`"status":"in_progress"`}},
	{name: "complete a referral in progress", as: sv, method: patch, url: one("referrals", "{made}"), setup: referralIn("in_progress"), body: `{"status":"completed"}`, status: 200, events: 1,
		want: []string{`"status":"completed"`}},
	{name: "cancel an accepted referral", as: sv, method: patch, url: one("referrals", "{made}"), setup: referralIn("accepted"), body: `{"status":"cancelled"}`, status: 200, events: 1,
		want: []string{`"status":"cancelled"`}},
	{name: "reopen a completed referral", as: sv, method: patch, url: one("referrals", "{made}"), setup: referralIn("completed"), body: `{"status":"sent"}`, status: 400,
		want: []string{`from \"completed\" to \"sent\"`}},
	{name: "accept a draft", as: sv, method: patch, url: one("referrals", "{made}"), setup: referralIn("draft"), body: `{"status":"accepted"}`, status: 400,
		want: []string{`from \"draft\" to \"accepted\"`}},
	{name: "accept a declined referral", as: sv, method: patch, url: one("referrals", "{made}"), setup: referralIn("declined"), body: `{"status":"accepted"}`, status: 400,
		want: []string{`from \"declined\" to \"accepted\"`}},
	{name: "move to an unknown status", as: sv, method: patch, url: one("referrals", "{made}"), setup: referralIn("sent"), body: `{"status":"lost"}`, status: 400,
		want: []string{`"status":{"code":"validation_`, `lost`}},
	{name: "accept a sent referral", as: su, method: patch, url: one("referrals", "{made}"), setup: referralIn("sent"), body: `{"status":"accepted"}`, status: 200, events: 1,
		want: []string{`"status":"accepted"`}},
	{name: "withdraw the prison team's referral", as: cw, method: patch, url: one("referrals", "{made}"), setup: referralIn("sent"), body: `{"status":"cancelled"}`, status: 404},
	{name: "move a referral to the other team", as: pw, method: patch, url: one("referrals", "{made}"), setup: referralIn("draft"), body: `{"team":"{campTeam}"}`, status: 403},
	{name: "point a referral at a camp person", as: pw, method: patch, url: one("referrals", "{made}"), setup: referralIn("draft"), body: `{"person":"{campPerson}"}`, status: 400,
		want: []string{`"person":{"code":"validation_missing_rel_records"`}},
	{name: "delete the prison team's referral", as: cw, method: del, url: one("referrals", "{prisonReferral}"), status: 404},
	{name: "delete", as: anon, method: del, url: one("referrals", "{prisonReferral}"), status: 404},
	{name: "delete", as: pw, method: del, url: one("referrals", "{prisonReferral}"), status: 204},

	// referral_events: read by the team, written by the server only.
	{name: "list", as: anon, method: get, url: list("referral_events"), status: 200, want: []string{items("0")}},
	{name: "list own team", as: cw, method: get, url: list("referral_events"), status: 200,
		want: []string{items("{campEventCount}"), `"id":"{campEvents*}"`}, notWant: []string{`"id":"{prisonEvents*}"`}},
	{name: "list own team", as: pw, method: get, url: list("referral_events"), status: 200,
		want: []string{items("{prisonEventCount}"), `"id":"{prisonEvents*}"`}, notWant: []string{`"id":"{campEvents*}"`}},
	{name: "list", as: sv, method: get, url: list("referral_events"), status: 200, want: []string{items("{eventCount}")}},
	{name: "list", as: su, method: get, url: list("referral_events"), status: 200, want: []string{items("{eventCount}")}},
	{name: "view the prison team's event", as: cw, method: get, url: one("referral_events", "{prisonEvent}"), status: 404},
	{name: "view", as: pw, method: get, url: one("referral_events", "{prisonEvent}"), status: 200, want: []string{`"id":"{prisonEvent}"`}},
	{name: "create", as: pw, method: post, url: all("referral_events"), body: newEvent, status: 403},
	{name: "create", as: sv, method: post, url: all("referral_events"), body: newEvent, status: 403},
	{name: "create", as: su, method: post, url: all("referral_events"), body: newEvent, status: 200, want: []string{`"to_status":"accepted"`}},
	{name: "update", as: pw, method: patch, url: one("referral_events", "{prisonEvent}"), body: `{"to_status":"completed"}`, status: 403},
	{name: "update", as: sv, method: patch, url: one("referral_events", "{prisonEvent}"), body: `{"to_status":"completed"}`, status: 403},
	{name: "update", as: su, method: patch, url: one("referral_events", "{prisonEvent}"), body: `{"note":"Corretto"}`, status: 200, want: []string{`"note":"Corretto"`}},
	{name: "delete", as: pw, method: del, url: one("referral_events", "{prisonEvent}"), status: 403},
	{name: "delete", as: sv, method: del, url: one("referral_events", "{prisonEvent}"), status: 403},
	{name: "delete", as: su, method: del, url: one("referral_events", "{prisonEvent}"), status: 204},

	// devices: a user sees their own; a supervisor sees their teams'
	// devices and may revoke one, nothing else.
	{name: "list", as: anon, method: get, url: list("devices"), status: 200, want: []string{items("0")}},
	{name: "list own devices", as: cw, method: get, url: list("devices"), status: 200,
		want: []string{items("1"), `"id":"{campDevice}"`}, notWant: []string{`"id":"{prisonDevice}"`}},
	{name: "list own devices", as: pw, method: get, url: list("devices"), status: 200,
		want: []string{items("1"), `"id":"{prisonDevice}"`}, notWant: []string{`"id":"{campDevice}"`}},
	{name: "list the teams' devices", as: sv, method: get, url: list("devices"), status: 200,
		want: []string{items("2"), `"id":"{campDevice}"`, `"id":"{prisonDevice}"`}},
	{name: "list", as: su, method: get, url: list("devices"), status: 200, want: []string{items("2")}},
	{name: "view own device", as: cw, method: get, url: one("devices", "{campDevice}"), status: 200, want: []string{`"id":"{campDevice}"`}},
	{name: "view another worker's device", as: cw, method: get, url: one("devices", "{prisonDevice}"), status: 404},
	{name: "view a team member's device", as: sv, method: get, url: one("devices", "{prisonDevice}"), status: 200, want: []string{`"id":"{prisonDevice}"`}},
	{name: "view", as: anon, method: get, url: one("devices", "{campDevice}"), status: 404},
	{name: "create", as: cw, method: post, url: all("devices"), body: `{"user":"{campWorker}","name":"Tablet"}`, status: 403},
	{name: "create", as: sv, method: post, url: all("devices"), body: `{"user":"{campWorker}","name":"Tablet"}`, status: 403},
	{name: "create", as: su, method: post, url: all("devices"), body: `{"user":"{campWorker}","name":"Tablet"}`, status: 200, want: []string{`"name":"Tablet"`}},
	{name: "revoke own device", as: cw, method: patch, url: one("devices", "{campDevice}"), body: `{"revoked":true}`, status: 404},
	{name: "rename own device", as: cw, method: patch, url: one("devices", "{campDevice}"), body: `{"name":"Mio"}`, status: 404},
	{name: "revoke a worker's device", as: sv, method: patch, url: one("devices", "{campDevice}"), body: `{"revoked":true}`, status: 200, want: []string{`"revoked":true`}},
	{name: "rename a worker's device", as: sv, method: patch, url: one("devices", "{campDevice}"), body: `{"name":"Altro"}`, status: 404},
	{name: "revoke and move a cursor", as: sv, method: patch, url: one("devices", "{campDevice}"), body: `{"revoked":true,"last_cursor":"0"}`, status: 404},
	{name: "revoke and forge health", as: sv, method: patch, url: one("devices", "{campDevice}"), body: `{"revoked":true,"last_push":"2020-01-01 00:00:00.000Z","clock_skew_ms":5}`, status: 404},
	{name: "un-revoke a worker's device", as: sv, method: patch, url: one("devices", "{campDevice}"), body: `{"revoked":false}`, status: 404},
	{name: "update", as: su, method: patch, url: one("devices", "{campDevice}"), body: `{"name":"Rinominato"}`, status: 200, want: []string{`"name":"Rinominato"`}},
	{name: "delete own device", as: cw, method: del, url: one("devices", "{campDevice}"), status: 403},
	{name: "delete", as: sv, method: del, url: one("devices", "{campDevice}"), status: 403},
	{name: "delete", as: su, method: del, url: one("devices", "{campDevice}"), status: 204},
}

const (
	newUser    = `{"email":"nuova@example.org","password":"una-password-lunga","passwordConfirm":"una-password-lunga","name":"Nuova","role":"worker","teams":["{campTeam}"]}`
	newTeam    = `{"name":"Ufficio","kind":"office"}`
	newSite    = `{"name":"Nuovo insediamento","kind":"camp","municipio":"VI","team":"{campTeam}"}`
	newService = `{"name":"Sportello di prova","category":"other","active":true}`
	newVisit   = `{"team":"{campTeam}","site":"{campSite}","visited_at":"2026-11-19 10:00:00.000Z","persons_met":["{campPerson}"],"workers":["{campWorker}"],"households_met":3,"topics":["health","school"]}`
	newContact = `{"team":"{prisonTeam}","person":"{prisonPerson}","site":"{prisonSite}","setting":"intra","contacted_at":"2026-11-19 10:00:00.000Z","requests":["residence"]}`
	newEvent   = `{"referral":"{prisonReferral}","team":"{prisonTeam}","from_status":"sent","to_status":"accepted"}`
)

func newReferral(status string) string {
	return `{"team":"{prisonTeam}","person":"{prisonPerson}","service":"{service}","reason":"Documenti","status":"` + status + `"}`
}

// state is what the checks after a request compare with the state before it.
type state struct {
	count, events, seq int64
	target             string // JSON of the addressed record; "" when absent
}

func readState(t testing.TB, app core.App, collection, id string) state {
	t.Helper()
	var s state
	var err error
	if s.count, err = app.CountRecords(collection); err != nil {
		t.Fatalf("count %s: %v", collection, err)
	}
	if s.events, err = app.CountRecords(domain.ReferralEvents); err != nil {
		t.Fatalf("count referral_events: %v", err)
	}
	if s.seq, err = changelog.LastSeq(app); err != nil {
		t.Fatal(err)
	}
	if id != "" {
		if r, err := app.FindRecordById(collection, id); err == nil {
			b, _ := json.Marshal(r.FieldsData())
			s.target = string(b)
		}
	}
	return s
}

// target splits a records API path into its collection and record id.
func target(url string) (collection, id string) {
	path, _, _ := strings.Cut(url, "?")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	collection = parts[2]
	if len(parts) > 4 {
		id = parts[4]
	}
	return collection, id
}

// scenario turns a rule into an API scenario on a fresh copy of the demo
// data, with the checks that every write, refused or made, leaves behind
// exactly what it should.
func (r rule) scenario() *tests.ApiScenario {
	s := &tests.ApiScenario{
		Name:                  fmt.Sprintf("%s: %s %s", roleName[r.as], r.method, r.name),
		Method:                r.method,
		ExpectedStatus:        r.status,
		TestAppFactory:        func(t testing.TB) *tests.TestApp { return apptest.New(t).TestApp },
		DisableTestAppCleanup: true, // apptest.New removes the app when the test ends
	}
	var (
		before         state
		collection, id string
	)
	s.BeforeTestFunc = func(t testing.TB, app *tests.TestApp, _ *core.ServeEvent) {
		f := newFixture(t, app)
		if r.setup != nil {
			r.setup(t, app, f)
		}
		s.URL = f.expand(r.url)
		if r.body != "" {
			s.Body = strings.NewReader(f.expand(r.body))
		}
		if r.as != anon {
			s.Headers = map[string]string{"Authorization": apptest.Token(t, app, r.as)}
		}
		s.ExpectedContent = f.expandAll(r.want)
		if len(s.ExpectedContent) == 0 && r.status >= 400 {
			s.ExpectedContent = []string{fmt.Sprintf(`"status":%d`, r.status)}
		}
		s.NotExpectedContent = f.expandAll(r.notWant)
		collection, id = target(s.URL)
		before = readState(t, app, collection, id)
	}
	s.AfterTestFunc = func(t testing.TB, app *tests.TestApp, res *http.Response) {
		after := readState(t, app, collection, id)
		refused := res.StatusCode >= 400
		write := r.method != get && !refused
		switch {
		case !write:
			if after.count != before.count {
				t.Errorf("got %d %s records, want %d: nothing may be written", after.count, collection, before.count)
			}
			if after.target != before.target {
				t.Errorf("record changed, want it untouched:\ngot  %s\nwant %s", after.target, before.target)
			}
		case r.method == post:
			if after.count != before.count+1 {
				t.Errorf("got %d %s records after create, want %d", after.count, collection, before.count+1)
			}
		case r.method == patch:
			if after.target == before.target {
				t.Errorf("record unchanged after update: %s", after.target)
			}
		case r.method == del:
			if after.target != "" || after.count != before.count-1 {
				t.Errorf("got %d %s records (target present: %v) after delete, want %d and target gone",
					after.count, collection, after.target != "", before.count-1)
			}
		}
		if write && domain.IsLogged(collection) {
			if after.seq <= before.seq {
				t.Errorf("got change log seq %d after a write, want more than %d", after.seq, before.seq)
			}
		} else if after.seq != before.seq {
			t.Errorf("got change log seq %d, want %d: nothing may enter the log", after.seq, before.seq)
		}
		if collection == domain.Referrals && r.method != del && after.events-before.events != int64(r.events) {
			t.Errorf("got %d new referral_events rows, want %d", after.events-before.events, r.events)
		}
	}
	return s
}

func TestAccessRules(t *testing.T) {
	t.Parallel()
	byCollection := map[string][]rule{}
	var order []string
	for _, r := range rules {
		c, _ := target(r.url)
		if _, seen := byCollection[c]; !seen {
			order = append(order, c)
		}
		byCollection[c] = append(byCollection[c], r)
	}
	for _, c := range order {
		t.Run(c, func(t *testing.T) {
			t.Parallel()
			for _, r := range byCollection[c] {
				r.scenario().Test(t)
			}
		})
	}
}

// TestAccessRulesCoverEveryCollection keeps the table complete: every
// operation on every collection of the data model, and every role on every
// collection.
func TestAccessRulesCoverEveryCollection(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, r := range rules {
		c, id := target(r.url)
		op := map[string]string{get: "list", post: "create", patch: "update", del: "delete"}[r.method]
		if r.method == get && id != "" {
			op = "view"
		}
		seen[c+" "+op] = true
		seen[c+" "+roleName[r.as]] = true
	}
	collections := []string{
		domain.Users, domain.Teams, domain.Sites, domain.Services, domain.Persons, domain.CampVisits,
		domain.SecretariatContacts, domain.Referrals, domain.ReferralEvents, domain.Devices,
	}
	for _, c := range collections {
		for _, want := range []string{"list", "view", "create", "update", "delete"} {
			if !seen[c+" "+want] {
				t.Errorf("%s: got no rule for %s, want at least one", c, want)
			}
		}
		for _, role := range []string{anon, cw, pw, sv, su} {
			if !seen[c+" "+roleName[role]] {
				t.Errorf("%s: got no rule for the %s, want at least one", c, roleName[role])
			}
		}
	}
}

// TestReferralTransitions walks every pair of statuses through the records
// API as a worker and as a supervisor: allowed moves commit with one
// referral_events row naming both statuses, refused ones answer 400 naming
// both and change nothing.
func TestReferralTransitions(t *testing.T) {
	t.Parallel()
	supervisorMoves := map[[2]string]bool{
		{"draft", "sent"}: true, {"draft", "cancelled"}: true,
		{"sent", "accepted"}: true, {"sent", "declined"}: true, {"sent", "cancelled"}: true,
		{"accepted", "in_progress"}: true, {"accepted", "completed"}: true, {"accepted", "cancelled"}: true,
		{"in_progress", "completed"}: true, {"in_progress", "cancelled"}: true,
	}
	workerMoves := map[[2]string]bool{
		{"draft", "sent"}: true, {"draft", "cancelled"}: true, {"sent", "cancelled"}: true,
	}
	for _, role := range []struct {
		email string
		moves map[[2]string]bool
	}{{pw, workerMoves}, {sv, supervisorMoves}} {
		t.Run(roleName[role.email], func(t *testing.T) {
			t.Parallel()
			app := apptest.New(t)
			f := newFixture(t, app)
			h := apptest.Handler(t, app.TestApp)
			token := apptest.Token(t, app, role.email)
			actor := apptest.User(t, app, role.email).Id
			for _, from := range domain.ReferralStatuses {
				for _, to := range domain.ReferralStatuses {
					if from == to {
						continue
					}
					id := saveReferral(t, app, f.value("prisonTeam"), f.value("prisonPerson"), f.value("service"), from)
					events, _ := app.CountRecords(domain.ReferralEvents, dbx.HashExp{"referral": id})
					code, body := request(t, h, patch, one("referrals", id), token, `{"status":"`+to+`"}`)
					got, err := app.FindRecordById(domain.Referrals, id)
					if err != nil {
						t.Fatal(err)
					}
					after, _ := app.CountRecords(domain.ReferralEvents, dbx.HashExp{"referral": id})
					if role.moves[[2]string{from, to}] {
						if code != 200 || got.GetString("status") != to || after != events+1 {
							t.Errorf("%s -> %s: got %d, status %s, %d new events; want 200, %s, 1 new event (%s)",
								from, to, code, got.GetString("status"), after-events, to, body)
							continue
						}
						ev, err := app.FindFirstRecordByFilter(domain.ReferralEvents, "referral = {:id} && to_status = {:to}",
							dbx.Params{"id": id, "to": to})
						if err != nil || ev.GetString("from_status") != from || ev.GetString("actor") != actor {
							t.Errorf("%s -> %s: got event %v (err %v), want from %s by %s", from, to, ev, err, from, actor)
						}
						continue
					}
					named := strings.Contains(body, `from \"`+from+`\" to \"`+to+`\"`)
					if code != 400 || !named || got.GetString("status") != from || after != events {
						t.Errorf("%s -> %s: got %d, status %s, %d new events, body %s; want 400 naming both states, nothing changed",
							from, to, code, got.GetString("status"), after-events, body)
					}
				}
			}
		})
	}
}

func request(t testing.TB, h http.Handler, method, url, token, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}
