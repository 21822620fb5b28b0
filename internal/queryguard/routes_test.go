package queryguard_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/subscriptions"

	"strada/internal/apptest"
	"strada/internal/demo"
	"strada/internal/domain"
	"strada/internal/queryguard"
)

// answer is a decoded JSON answer.
type answer struct {
	status int
	raw    string
	body   any
}

func (c *client) send(t *testing.T, method, target, body string) answer {
	t.Helper()
	status, raw := c.do(method, target, body)
	a := answer{status: status, raw: raw}
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &a.body); err != nil {
			t.Fatalf("%s %s: answer %d is not JSON: %v: %.300s", method, target, status, err, raw)
		}
	}
	return a
}

// path follows keys (object keys or list indexes) into a decoded answer.
func path(v any, keys ...string) any {
	for _, k := range keys {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func items(a answer) []map[string]any {
	var out []map[string]any
	list, _ := path(a.body, "items").([]any)
	for _, it := range list {
		m, _ := it.(map[string]any)
		out = append(out, m)
	}
	return out
}

// refusal checks a 400 of the guard: the code under the data keys, and a
// message naming the identifier.
func refusal(t *testing.T, name string, a answer, code, mentions string, keys ...string) {
	t.Helper()
	if a.status != http.StatusBadRequest {
		t.Errorf("%s: got %d %.300s, want 400", name, a.status, a.raw)
		return
	}
	if got := path(a.body, append(append([]string{"data"}, keys...), "code")...); got != code {
		t.Errorf("%s: got data %v, want code %s under %v", name, path(a.body, "data"), code, keys)
	}
	if msg, _ := path(a.body, append(append([]string{"data"}, keys...), "message")...).(string); !strings.Contains(msg, mentions) {
		t.Errorf("%s: message %q does not name %s", name, msg, mentions)
	}
}

type fixture struct {
	app                  *apptest.App
	campTeam, prisonTeam string
	campPerson           *core.Record
	camp, prison, sup    *client
	admin, anonymous     *client
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	app := apptest.New(t)
	h := apptest.Handler(t, app)
	f := &fixture{
		app:        app,
		campTeam:   apptest.Team(t, app, "camp_outreach"),
		prisonTeam: apptest.Team(t, app, "prison_secretariat"),
		camp:       &client{h: h, token: apptest.Token(t, app, apptest.CampWorker)},
		prison:     &client{h: h, token: apptest.Token(t, app, apptest.PrisonWorker)},
		sup:        &client{h: h, token: apptest.Token(t, app, apptest.Supervisor)},
		admin:      &client{h: h, token: apptest.Token(t, app, apptest.Admin)},
		anonymous:  &client{h: h},
	}
	persons, err := app.FindAllRecords(domain.Persons, dbx.HashExp{"team": f.campTeam})
	if err != nil || len(persons) == 0 {
		t.Fatalf("find camp persons: got %d, err %v", len(persons), err)
	}
	f.campPerson = persons[0]
	return f
}

func (f *fixture) count(t *testing.T, collection string, where dbx.Expression) int {
	t.Helper()
	n, err := f.app.CountRecords(collection, where)
	if err != nil {
		t.Fatalf("count %s: %v", collection, err)
	}
	return int(n)
}

func records(collection string, query string) string {
	return "/api/collections/" + collection + "/records?" + query
}

func q(pairs ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		v.Add(pairs[i], pairs[i+1])
	}
	return v.Encode()
}

// TestLegitimateQueriesKeepWorking: filters and sorts on a collection's own
// fields, forward expands and output fields give the rows the rules allow;
// superusers keep PocketBase's full filter grammar.
func TestLegitimateQueriesKeepWorking(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	campPersons := f.count(t, domain.Persons, dbx.HashExp{"team": f.campTeam})
	campVisits := f.count(t, domain.CampVisits, dbx.HashExp{"team": f.campTeam})
	allPersons := f.count(t, domain.Persons, nil)

	t.Run("own-field filter", func(t *testing.T) {
		a := f.camp.send(t, "GET", records(domain.Persons, q("perPage", "500",
			"filter", fmt.Sprintf(`team = "%s" && created > "2026-01-01" && given_name:lower != "" && code ~ "P-"`, f.campTeam))), "")
		if a.status != 200 || len(items(a)) != campPersons {
			t.Fatalf("got %d with %d items, want 200 with the %d camp persons: %.300s", a.status, len(items(a)), campPersons, a.raw)
		}
		for _, it := range items(a) {
			if it["team"] != f.campTeam {
				t.Errorf("got a person of team %v, want only %s", it["team"], f.campTeam)
			}
		}
	})
	t.Run("filter through a rule keeps to the user's team", func(t *testing.T) {
		a := f.camp.send(t, "GET", records(domain.Persons, q("perPage", "500", "filter", `code != ""`)), "")
		if a.status != 200 || len(items(a)) != campPersons {
			t.Fatalf("got %d with %d items, want 200 with %d", a.status, len(items(a)), campPersons)
		}
	})
	t.Run("sort by -created", func(t *testing.T) {
		a := f.camp.send(t, "GET", records(domain.CampVisits, q("perPage", "500", "sort", "-created,-visited_at")), "")
		list := items(a)
		if a.status != 200 || len(list) != campVisits {
			t.Fatalf("got %d with %d items, want 200 with the %d camp visits", a.status, len(list), campVisits)
		}
		for i := 1; i < len(list); i++ {
			prev, cur := list[i-1]["created"].(string), list[i]["created"].(string)
			if cur > prev {
				t.Fatalf("item %d created %s after item %d created %s: not sorted descending", i, cur, i-1, prev)
			}
		}
	})
	t.Run("multi-valued own fields", func(t *testing.T) {
		a := f.camp.send(t, "GET", records(domain.Users, q("filter", fmt.Sprintf(`teams:each ?= "%s" && teams:length >= 1`, f.campTeam))), "")
		var ids []string
		for _, it := range items(a) {
			ids = append(ids, fmt.Sprint(it["id"]))
		}
		want := []string{apptest.User(t, f.app, apptest.CampWorker).Id, apptest.User(t, f.app, apptest.Supervisor).Id}
		slices.Sort(ids)
		slices.Sort(want)
		if a.status != 200 || !slices.Equal(ids, want) {
			t.Fatalf("got %d %v, want 200 with the camp worker and the supervisor %v", a.status, ids, want)
		}
	})
	t.Run("expand of the team's own relations", func(t *testing.T) {
		a := f.camp.send(t, "GET", records(domain.CampVisits, q("perPage", "500", "expand", "site.team,persons_met,workers")), "")
		if a.status != 200 || len(items(a)) != campVisits {
			t.Fatalf("got %d with %d items, want 200 with %d: %.300s", a.status, len(items(a)), campVisits, a.raw)
		}
		for _, it := range items(a) {
			if path(it, "expand", "site", "id") != it["site"] || path(it, "expand", "site", "expand", "team", "id") == nil {
				t.Errorf("visit %v: site not expanded with its team: %v", it["id"], it["expand"])
			}
			met, _ := it["persons_met"].([]any)
			got, _ := path(it, "expand", "persons_met").([]any)
			if len(got) != len(met) {
				t.Errorf("visit %v: got %d persons expanded, want the %d met", it["id"], len(got), len(met))
			}
		}
	})
	t.Run("view with expand and fields", func(t *testing.T) {
		a := f.camp.send(t, "GET", "/api/collections/persons/records/"+f.campPerson.Id+"?"+q("expand", "site", "fields", "id,code,expand.site.name"), "")
		if a.status != 200 || path(a.body, "id") != f.campPerson.Id || path(a.body, "expand", "site", "name") == nil || path(a.body, "notes") != nil {
			t.Fatalf("got %d %.300s, want 200 with id, code and the site's name only", a.status, a.raw)
		}
	})
	t.Run("superuser keeps relation filters and back-relation expands", func(t *testing.T) {
		a := f.admin.send(t, "GET", records(domain.Persons, q("perPage", "500",
			"filter", `referrals_via_person.status ?!= "" || team.name != ""`, "sort", "-site.name", "expand", "referrals_via_person")), "")
		if a.status != 200 || len(items(a)) != allPersons {
			t.Fatalf("got %d with %d items, want 200 with all %d persons: %.300s", a.status, len(items(a)), allPersons, a.raw)
		}
		expanded := 0
		for _, it := range items(a) {
			if path(it, "expand", "referrals_via_person") != nil {
				expanded++
			}
		}
		if expanded == 0 {
			t.Errorf("got no person with referrals expanded, want some")
		}
	})
}

// TestRefusedOnEveryRoute: a relation path in filter, sort or expand is
// answered 400 naming it, for every non-superuser, on the records API (list,
// view, create), the auth routes and the batch API, and a refused create
// writes nothing.
func TestRefusedOnEveryRoute(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	sup := apptest.User(t, f.app, apptest.Supervisor)
	camp := apptest.User(t, f.app, apptest.CampWorker)
	campSite, err := f.app.FindFirstRecordByData(domain.Sites, "kind", "camp")
	if err != nil {
		t.Fatal(err)
	}
	visit := fmt.Sprintf(`{"team":%q,"site":%q,"visited_at":"2026-11-19 10:00:00.000Z"}`, f.campTeam, campSite.Id)
	login := fmt.Sprintf(`{"identity":%q,"password":%q}`, apptest.CampWorker, demo.Password)

	cases := []struct {
		name, method, target, body string
		as                         *client
		code, mentions             string
		keys                       []string
	}{
		{"users through teams to prison persons", "GET", records(domain.Users,
			q("filter", fmt.Sprintf(`id = "%s" && teams.persons_via_team.family_name != "Rossi"`, sup.Id))), "",
			f.camp, queryguard.CodeIdentifier, "teams.persons_via_team.family_name", []string{"filter"}},
		{"services through referrals to persons", "GET", records(domain.Services,
			q("filter", `referrals_via_service.person.given_name !~ "A%"`)), "",
			f.camp, queryguard.CodeIdentifier, "referrals_via_service.person.given_name", []string{"filter"}},
		{"teams to contact notes", "GET", records(domain.Teams, q("filter", `secretariat_contacts_via_team.notes != "x"`)), "",
			f.camp, queryguard.CodeIdentifier, "secretariat_contacts_via_team.notes", []string{"filter"}},
		{"teams to conflict values", "GET", records(domain.Teams, q("filter", `sync_conflicts_via_team.overwritten_value != "x"`)), "",
			f.camp, queryguard.CodeIdentifier, "sync_conflicts_via_team.overwritten_value", []string{"filter"}},
		{"sites sorted by their persons", "GET", records(domain.Sites, q("sort", "persons_via_site.family_name")), "",
			f.camp, queryguard.CodeIdentifier, "persons_via_site.family_name", []string{"sort"}},
		{"another collection", "GET", records(domain.Persons, q("filter", `@collection.persons.family_name = "Rossi"`)), "",
			f.camp, queryguard.CodeIdentifier, "@collection.persons.family_name", []string{"filter"}},
		{"the user's relations", "GET", records(domain.Teams, q("filter", `@request.auth.teams.persons_via_team.notes != ""`)), "",
			f.camp, queryguard.CodeIdentifier, "@request.auth.teams.persons_via_team.notes", []string{"filter"}},
		{"supervisor", "GET", records(domain.Persons, q("filter", `site.persons_via_site.notes != ""`)), "",
			f.sup, queryguard.CodeIdentifier, "site.persons_via_site.notes", []string{"filter"}},
		{"anonymous", "GET", records(domain.Sites, q("filter", `persons_via_site.family_name != "x"`)), "",
			f.anonymous, queryguard.CodeIdentifier, "persons_via_site.family_name", []string{"filter"}},
		{"collection by id", "GET", "/api/collections/" + f.campPerson.Collection().Id + "/records?" + q("filter", `site.name != ""`), "",
			f.camp, queryguard.CodeIdentifier, "site.name", []string{"filter"}},
		{"second filter value", "GET", records(domain.Persons, "filter=code%21%3D%22%22&filter=site.name%21%3D%22%22"), "",
			f.camp, queryguard.CodeIdentifier, "site.name", []string{"filter"}},
		{"list with a back-relation expand", "GET", records(domain.Sites, q("expand", "persons_via_site")), "",
			f.camp, queryguard.CodeExpand, "persons_via_site", []string{"expand"}},
		{"view with a back-relation expand", "GET", "/api/collections/persons/records/" + f.campPerson.Id + "?" + q("expand", "site.persons_via_site"), "",
			f.camp, queryguard.CodeExpand, "persons_via_site", []string{"expand"}},
		{"create answering with a back-relation expand", "POST", records(domain.CampVisits, q("expand", "site.camp_visits_via_site")), visit,
			f.camp, queryguard.CodeExpand, "camp_visits_via_site", []string{"expand"}},
		{"auth-refresh", "POST", "/api/collections/users/auth-refresh?" + q("expand", "teams.persons_via_team"), "",
			f.camp, queryguard.CodeExpand, "persons_via_team", []string{"expand"}},
		{"auth-with-password", "POST", "/api/collections/users/auth-with-password?" + q("expand", "devices_via_user"), login,
			f.anonymous, queryguard.CodeExpand, "devices_via_user", []string{"expand"}},
		{"batch create", "POST", "/api/batch", `{"requests":[{"method":"POST","url":` +
			jsonString(records(domain.CampVisits, q("expand", "team.persons_via_team"))) + `,"body":` + visit + `}]}`,
			f.camp, queryguard.CodeExpand, "persons_via_team", []string{"requests", "0", "expand"}},
		{"batch update", "POST", "/api/batch", `{"requests":[{"method":"PATCH","url":` +
			jsonString("/api/collections/users/records/"+camp.Id+"?"+q("expand", "teams.persons_via_team")) + `,"body":{"locale":"en"}}]}`,
			f.camp, queryguard.CodeExpand, "persons_via_team", []string{"requests", "0", "expand"}},
	}
	settings, err := f.app.Settings().Clone()
	if err != nil {
		t.Fatal(err)
	}
	settings.Batch.Enabled = true
	if err := f.app.Save(settings); err != nil {
		t.Fatalf("enable batch: %v", err)
	}
	visits := f.count(t, domain.CampVisits, nil)
	for _, tc := range cases {
		a := tc.as.send(t, tc.method, tc.target, tc.body)
		refusal(t, tc.name, a, tc.code, tc.mentions, tc.keys...)
	}

	// The same routes with a forward expand answer as PocketBase does.
	a := f.camp.send(t, "POST", "/api/collections/users/auth-refresh?"+q("expand", "teams"), "")
	if a.status != 200 || path(a.body, "record", "expand", "teams", "0", "id") == nil {
		t.Errorf("auth-refresh with expand=teams: got %d %.300s, want 200 with the teams", a.status, a.raw)
	}
	a = f.camp.send(t, "POST", "/api/batch", `{"requests":[{"method":"PATCH","url":`+
		jsonString("/api/collections/users/records/"+camp.Id+"?"+q("expand", "teams"))+`,"body":{"locale":"en"}}]}`)
	if a.status != 200 || path(a.body, "0", "body", "expand", "teams", "0", "id") == nil {
		t.Errorf("batch update with expand=teams: got %d %.300s, want 200 with the teams", a.status, a.raw)
	}
	if got := f.count(t, domain.CampVisits, nil); got != visits {
		t.Errorf("got %d camp visits after the refused creates, want %d", got, visits)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestRealtimeSubscriptions: a subscription's options are held to the same
// policy; a refused subscription request registers nothing, an accepted one
// delivers changes with its expand.
func TestRealtimeSubscriptions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	topic := func(collection string, query map[string]any) string {
		raw, err := json.Marshal(map[string]any{"query": query})
		if err != nil {
			t.Fatal(err)
		}
		return collection + "/*?options=" + url.QueryEscape(string(raw))
	}
	subscribe := func(as *client, topics ...string) (answer, subscriptions.Client) {
		t.Helper()
		sc := subscriptions.NewDefaultClient()
		f.app.SubscriptionsBroker().Register(sc)
		t.Cleanup(func() { f.app.SubscriptionsBroker().Unregister(sc.Id()) })
		body, err := json.Marshal(map[string]any{"clientId": sc.Id(), "subscriptions": topics})
		if err != nil {
			t.Fatal(err)
		}
		status, raw := as.do("POST", "/api/realtime", string(body))
		a := answer{status: status, raw: raw}
		if raw != "" {
			if err := json.Unmarshal([]byte(raw), &a.body); err != nil {
				t.Fatalf("realtime answer %d: %v: %s", status, err, raw)
			}
		}
		return a, sc
	}

	refused := []struct {
		name     string
		topic    string
		key      string
		code     string
		mentions string
	}{
		{"filter through a back-relation", topic(domain.Sites, map[string]any{"filter": `persons_via_site.family_name != "x"`}),
			"filter", queryguard.CodeIdentifier, "persons_via_site.family_name"},
		{"filter on users through teams", topic(domain.Users, map[string]any{"filter": `teams.secretariat_contacts_via_team.notes !~ "a"`}),
			"filter", queryguard.CodeIdentifier, "teams.secretariat_contacts_via_team.notes"},
		{"expand through a back-relation", topic(domain.Persons, map[string]any{"expand": "site.persons_via_site"}),
			"expand", queryguard.CodeExpand, "persons_via_site"},
		{"filter that is not text", topic(domain.Persons, map[string]any{"filter": 5}),
			"filter", queryguard.CodeOptions, "text"},
		{"options that are not JSON", domain.Persons + "/*?options=" + url.QueryEscape(`{"query":`),
			"options", queryguard.CodeOptions, "JSON"},
	}
	for _, tc := range refused {
		ok := topic(domain.Persons, map[string]any{"filter": `code != ""`})
		a, sc := subscribe(f.camp, ok, tc.topic)
		refusal(t, tc.name, a, tc.code, tc.mentions, "subscriptions", "1", tc.key)
		if subs := sc.Subscriptions(); len(subs) != 0 {
			t.Errorf("%s: got subscriptions %v after a refused request, want none", tc.name, subs)
		}
		// Gone before any change is broadcast: nobody reads its channel.
		f.app.SubscriptionsBroker().Unregister(sc.Id())
	}

	// A superuser's subscription keeps PocketBase's grammar.
	a, sc := subscribe(f.admin, topic(domain.Sites, map[string]any{"filter": `persons_via_site.family_name != "x"`}))
	if a.status != http.StatusNoContent {
		t.Errorf("superuser subscription: got %d %s, want 204", a.status, a.raw)
	}
	f.app.SubscriptionsBroker().Unregister(sc.Id())

	// An accepted subscription delivers a change of the team's person, with
	// the expand it asked for.
	a, sc = subscribe(f.camp, topic(domain.Persons, map[string]any{"filter": `code != "" && team = "` + f.campTeam + `"`, "expand": "site"}))
	if a.status != http.StatusNoContent || len(sc.Subscriptions()) != 1 {
		t.Fatalf("accepted subscription: got %d %s with %d subscriptions, want 204 with 1", a.status, a.raw, len(sc.Subscriptions()))
	}
	f.campPerson.Set("notes", "changed for the subscription")
	if err := f.app.Save(f.campPerson); err != nil {
		t.Fatalf("save person: %v", err)
	}
	select {
	case msg := <-sc.Channel():
		var data struct {
			Action string         `json:"action"`
			Record map[string]any `json:"record"`
		}
		if err := json.Unmarshal(msg.Data, &data); err != nil {
			t.Fatalf("message: %v", err)
		}
		if data.Action != "update" || data.Record["id"] != f.campPerson.Id || path(data.Record, "expand", "site", "id") != f.campPerson.GetString("site") {
			t.Errorf("got message %s, want the update of %s with its site expanded", msg.Data, f.campPerson.Id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("got no message for the subscribed change")
	}
}
