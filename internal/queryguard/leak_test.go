package queryguard_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/dbutils"
	"github.com/pocketbase/pocketbase/tools/hook"

	"strada/internal/apptest"
	"strada/internal/domain"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// teamRecords are the collections whose records belong to one team: the
// ends of the probed paths.
var teamRecords = []string{
	domain.Persons, domain.CampVisits, domain.SecretariatContacts,
	domain.Referrals, domain.ReferralEvents, domain.SyncConflicts,
}

// maxHops is the longest relation path probed.
const maxHops = 3

// The values the hidden records hold in the first two states of a probe,
// and the literal each operator compares with. They are chosen so that, on
// PocketBase's "all" semantics, the states give different answers whenever
// hidden records take part in a query: != and !~ hold only without the
// probe, < and <= only with the empty value, > and >= only with the probe.
const (
	hiddenProbe = "qg-hidden-probe"
	hiddenOther = ""
)

var operators = []struct {
	op, literal string
}{
	{"=", hiddenProbe}, {"!=", hiddenProbe},
	{">", "qg-hidden"}, {">=", "qg-hidden"}, {"<", "qg-hidden"}, {"<=", "qg-hidden"},
	{"~", "hidden-probe"}, {"!~", "hidden-probe"},
	{"?=", hiddenProbe}, {"?!=", hiddenProbe},
	{"?>", "qg-hidden"}, {"?>=", "qg-hidden"}, {"?<", "qg-hidden"}, {"?<=", "qg-hidden"},
	{"?~", "hidden-probe"}, {"?!~", "hidden-probe"},
}

// hop is one step of a relation path: a relation field, or a back-relation
// collection_via_field, and the collection it reaches.
type hop struct {
	step string
	to   *core.Collection
}

// schema is the live schema as the probe generator reads it.
type schema struct {
	all  []*core.Collection
	byID map[string]*core.Collection
}

func loadSchema(t *testing.T, app core.App) schema {
	t.Helper()
	all, err := app.FindAllCollections()
	if err != nil {
		t.Fatalf("find collections: %v", err)
	}
	s := schema{all: all, byID: map[string]*core.Collection{}}
	for _, c := range all {
		s.byID[c.Id] = c
	}
	return s
}

// hops lists every step PocketBase's filter resolver takes from c: its
// relation fields and the back-relations of every relation field that
// points to c.
func (s schema) hops(c *core.Collection) []hop {
	var out []hop
	for _, f := range c.Fields {
		if rel, ok := f.(*core.RelationField); ok && !rel.Hidden {
			out = append(out, hop{rel.Name, s.byID[rel.CollectionId]})
		}
	}
	for _, x := range s.all {
		for _, f := range x.Fields {
			if rel, ok := f.(*core.RelationField); ok && !rel.Hidden && rel.CollectionId == c.Id {
				out = append(out, hop{x.Name + "_via_" + rel.Name, x})
			}
		}
	}
	return out
}

// paths calls emit with every relation path of 1 to maxHops steps from c.
func (s schema) paths(c *core.Collection, emit func([]hop)) {
	var walk func(at *core.Collection, prefix []hop)
	walk = func(at *core.Collection, prefix []hop) {
		if len(prefix) > 0 {
			emit(prefix)
		}
		if len(prefix) == maxHops {
			return
		}
		for _, h := range s.hops(at) {
			walk(h.to, append(slices.Clip(prefix), h))
		}
	}
	walk(c, nil)
}

// probeFields are the fields of c whose values the probes look for: one
// text field and one JSON field, since PocketBase resolves every field of
// a kind the same way. The text field is one no unique index covers, so
// that every hidden record can hold the probed value; never the id, which
// holds the records together.
func probeFields(c *core.Collection) []string {
	var text, js string
	for _, f := range c.Fields {
		if f.GetHidden() || f.GetName() == core.FieldNameId {
			continue
		}
		switch f.(type) {
		case *core.TextField:
			if text == "" && !unique(c, f.GetName()) {
				text = f.GetName()
			}
		case *core.JSONField:
			if js == "" {
				js = f.GetName()
			}
		}
	}
	var out []string
	for _, name := range []string{text, js} {
		if name != "" {
			out = append(out, name)
		}
	}
	return out
}

// probe is one request whose answer must not depend on hidden records.
type probe struct {
	base   string     // collection listed
	query  url.Values // filter, sort or expand
	final  string     // team collection whose hidden records it may reach
	field  string     // field of final it looks at; "" for an expand
	family string     // how it reaches final, for the report
	kind   string     // the operator, "sort" or "expand", for the report
}

func (p probe) String() string {
	return fmt.Sprintf("GET %s?%s", p.base, p.query.Encode())
}

func joinPath(prefix string, hops []hop) string {
	parts := []string{}
	if prefix != "" {
		parts = append(parts, prefix)
	}
	for _, h := range hops {
		parts = append(parts, h.step)
	}
	return strings.Join(parts, ".")
}

// generateProbes builds the probes from the live schema. From every
// collection with a list rule, every relation path of 1 to maxHops steps,
// back-relations included, that ends in a team collection: as an expand,
// and on each of its probe fields with every filter operator and as a sort.
// Paths that visit the same collections in the same order are probed once.
// Then the same fields through @collection from every such collection, and
// through the signed-in user's relations (@request.auth, which is the first
// step).
func generateProbes(s schema) []probe {
	var probes []probe
	addFieldProbes := func(base, path, final, field, family string) {
		ident := path + "." + field
		for _, o := range operators {
			probes = append(probes, probe{base: base, final: final, field: field, family: family, kind: o.op,
				query: url.Values{"filter": {fmt.Sprintf("%s %s %q", ident, o.op, o.literal)}}})
		}
		probes = append(probes, probe{base: base, final: final, field: field, family: family, kind: "sort",
			query: url.Values{"sort": {"-" + ident}}})
	}
	seen := map[string]bool{}
	visit := func(base, prefix, family string, hops []hop) {
		last := hops[len(hops)-1].to
		if !slices.Contains(teamRecords, last.Name) {
			return
		}
		sequence := prefix
		for _, h := range hops {
			sequence += ">" + h.to.Name
		}
		if seen[base+" "+sequence] {
			return
		}
		seen[base+" "+sequence] = true
		path := joinPath(prefix, hops)
		if prefix == "" {
			probes = append(probes, probe{base: base, final: last.Name, family: "expand", kind: "expand",
				query: url.Values{"expand": {path}}})
		}
		for _, field := range probeFields(last) {
			addFieldProbes(base, path, last.Name, field, family)
		}
	}
	for _, base := range s.all {
		if base.ListRule == nil {
			continue
		}
		s.paths(base, func(hops []hop) { visit(base.Name, "", "relation path", hops) })
		for _, name := range teamRecords {
			for _, field := range probeFields(s.collection(name)) {
				addFieldProbes(base.Name, "@collection."+name, name, field, "@collection")
			}
		}
	}
	s.paths(s.collection(domain.Users), func(hops []hop) {
		if len(hops) < maxHops {
			visit(domain.Teams, "@request.auth", "@request.auth", hops)
		}
	})
	return probes
}

func (s schema) collection(name string) *core.Collection {
	for _, c := range s.all {
		if c.Name == name {
			return c
		}
	}
	panic("no collection " + name)
}

// client sends requests to the in-process router as one user, each from
// its own address so that PocketBase's throttle of repeated empty filtered
// lists (per address) never delays an answer.
type client struct {
	h     http.Handler
	token string
	n     int
}

func (c *client) do(method, target, body string) (int, string) {
	c.n++
	var req *http.Request
	if body == "" {
		req = httptest.NewRequest(method, target, nil)
	} else {
		req = httptest.NewRequest(method, target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	}
	req.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:40000", c.n>>16&255, c.n>>8&255, c.n&255)
	if c.token != "" {
		req.Header.Set("Authorization", c.token)
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func (c *client) list(p probe) string {
	q := url.Values{"perPage": {"500"}}
	for k, v := range p.query {
		q[k] = v
	}
	code, body := c.do(http.MethodGet, "/api/collections/"+p.base+"/records?"+q.Encode(), "")
	return fmt.Sprintf("%d %s", code, body)
}

// hiddenWorld makes sure every team collection has records of the prison
// team, which the camp worker cannot view, linked to records the camp
// worker can: the demo data has no prison camp visits and no conflicts.
func hiddenWorld(t *testing.T, app core.App) (campTeam, prisonTeam string) {
	t.Helper()
	campTeam = apptest.Team(t, app, "camp_outreach")
	prisonTeam = apptest.Team(t, app, "prison_secretariat")
	supervisor := apptest.User(t, app, apptest.Supervisor)
	prisonPersons, err := app.FindAllRecords(domain.Persons, dbx.HashExp{"team": prisonTeam})
	if err != nil || len(prisonPersons) == 0 {
		t.Fatalf("find prison persons: got %d, err %v", len(prisonPersons), err)
	}
	campSites, err := app.FindAllRecords(domain.Sites, dbx.HashExp{"kind": "camp"})
	if err != nil || len(campSites) == 0 {
		t.Fatalf("find camp sites: got %d, err %v", len(campSites), err)
	}
	insert := func(collection string, fields map[string]any) {
		t.Helper()
		c, err := app.FindCollectionByNameOrId(collection)
		if err != nil {
			t.Fatalf("find %s: %v", collection, err)
		}
		r := core.NewRecord(c)
		for k, v := range fields {
			r.Set(k, v)
		}
		// Records no write path would accept (a prison team's visit at a
		// camp), stored as they are: only what the reader learns matters.
		if err := app.SaveNoValidate(r); err != nil {
			t.Fatalf("save hidden %s: %v", collection, err)
		}
	}
	insert(domain.CampVisits, map[string]any{
		"team": prisonTeam, "site": campSites[0].Id, "visited_at": apptest.Now,
		"workers": []string{supervisor.Id}, "persons_met": []string{prisonPersons[0].Id},
		"created_by": supervisor.Id, "updated_by": supervisor.Id,
		"needs": "x", "actions": "x", "notes": "x",
	})
	insert(domain.SyncConflicts, map[string]any{
		"collection": domain.Persons, "record_id": prisonPersons[0].Id, "field": "notes",
		"person": prisonPersons[0].Id, "kind": "same_field", "team": prisonTeam,
		"kept_value": "x", "overwritten_value": "x",
		"kept_by": supervisor.Id, "overwritten_by": supervisor.Id,
		"kept_device": "x", "kept_mutation": "x", "overwritten_device": "x",
		"resolution_note": "x",
	})
	for _, name := range teamRecords {
		n, err := app.CountRecords(name, dbx.Not(dbx.HashExp{"team": campTeam}))
		if err != nil || n == 0 {
			t.Fatalf("hidden %s records: got %d, err %v; want some", name, n, err)
		}
	}
	return campTeam, prisonTeam
}

// setHidden gives the fields of every record of collection outside
// campTeam the value v, straight in the database: no hook, no log, nothing
// else moves.
func setHidden(t *testing.T, app core.App, collection string, fields []string, campTeam, v string) {
	t.Helper()
	c, err := app.FindCachedCollectionByNameOrId(collection)
	if err != nil {
		t.Fatalf("find %s: %v", collection, err)
	}
	values := dbx.Params{}
	for _, name := range fields {
		values[name] = v
		if _, ok := c.Fields.GetByName(name).(*core.JSONField); ok {
			raw, _ := json.Marshal(v)
			values[name] = string(raw)
		}
	}
	_, err = app.NonconcurrentDB().Update(collection, values, dbx.Not(dbx.HashExp{"team": campTeam})).Execute()
	if err != nil {
		t.Fatalf("set hidden %s %v: %v", collection, fields, err)
	}
}

// unique reports whether a unique index of c covers field.
func unique(c *core.Collection, field string) bool {
	for _, raw := range c.Indexes {
		idx := dbutils.ParseIndex(raw)
		if !idx.Unique {
			continue
		}
		for _, col := range idx.Columns {
			if strings.EqualFold(col.Name, field) {
				return true
			}
		}
	}
	return false
}

// withoutHidden runs fn while the records of collection outside campTeam
// are out of the table, and puts them back afterwards.
func withoutHidden(t *testing.T, app core.App, collection, campTeam string, fn func()) {
	t.Helper()
	db := app.NonconcurrentDB()
	const keep = "queryguard_hidden_rows"
	exec := func(sql string, params dbx.Params) {
		t.Helper()
		if _, err := db.NewQuery(sql).Bind(params).Execute(); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	team := dbx.Params{"team": campTeam}
	exec("CREATE TABLE "+keep+" AS SELECT * FROM "+collection+" WHERE team != {:team}", team)
	exec("DELETE FROM "+collection+" WHERE team != {:team}", team)
	defer func() {
		exec("INSERT INTO "+collection+" SELECT * FROM "+keep, nil)
		exec("DROP TABLE "+keep, nil)
	}()
	fn()
}

// around returns the status and the part of two answers where they first
// differ.
func around(a, b string) (string, string) {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	cut := func(s string) string {
		from, to := max(i-80, 0), min(i+80, len(s))
		return fmt.Sprintf("%.3s ...%s...", s, s[from:to])
	}
	return cut(a), cut(b)
}

// handlerAs returns the app's handler with every request signed in as the
// user with email. A middleware ahead of PocketBase's token loader sets the
// user's record, which PocketBase then takes as already loaded: the token
// still travels, but the tens of thousands of probes skip a database read
// that is the same for each of them.
func handlerAs(t *testing.T, app core.App, email string) *client {
	t.Helper()
	user := apptest.User(t, app, email)
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.Bind(&hook.Handler[*core.RequestEvent]{
			Priority: apis.DefaultLoadAuthTokenMiddlewarePriority - 1,
			Func: func(e *core.RequestEvent) error {
				e.Auth = user.Fresh()
				return e.Next()
			},
		})
		return se.Next()
	})
	return &client{h: apptest.Handler(t, app), token: apptest.Token(t, app, email)}
}

// TestNoAnswerDependsOnHiddenRecords asks, as a camp worker, every generated
// probe in three states of the prison team's records of the probed
// collection: holding the probed value in the probe fields, holding another
// value, and gone. The three answers, status and body, must be the same.
func TestNoAnswerDependsOnHiddenRecords(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	campTeam, _ := hiddenWorld(t, app)
	probes := generateProbes(loadSchema(t, app))
	c := handlerAs(t, app, apptest.CampWorker)

	byFinal := map[string][]int{}
	families := map[string]int{}
	for i, p := range probes {
		byFinal[p.final] = append(byFinal[p.final], i)
		families[p.family]++
	}
	t.Logf("%d probes: %v", len(probes), families)

	start := time.Now()
	leaks := map[string]int{}
	leaking := map[int]bool{}
	check := func(i int, state, got, want string) {
		if got == want {
			return
		}
		p := probes[i]
		leaks[p.family]++
		leaking[i] = true
		if leaks[p.family] <= 3 {
			g, w := around(got, want)
			t.Errorf("%s: the answer changes when the hidden %s records %s\n got: %s\nwant: %s",
				p, p.final, state, g, w)
		}
	}
	for _, final := range teamRecords {
		collection, err := app.FindCachedCollectionByNameOrId(final)
		if err != nil {
			t.Fatalf("find %s: %v", final, err)
		}
		fields := probeFields(collection)
		ids := byFinal[final]
		first := make(map[int]string, len(ids))
		setHidden(t, app, final, fields, campTeam, hiddenProbe)
		for _, i := range ids {
			first[i] = c.list(probes[i])
		}
		setHidden(t, app, final, fields, campTeam, hiddenOther)
		for _, i := range ids {
			check(i, fmt.Sprintf("hold %q instead of %q in %v", hiddenOther, hiddenProbe, fields), c.list(probes[i]), first[i])
		}
		setHidden(t, app, final, fields, campTeam, hiddenProbe)
		withoutHidden(t, app, final, campTeam, func() {
			for _, i := range ids {
				check(i, "are gone", c.list(probes[i]), first[i])
			}
		})
	}
	t.Logf("%d requests in %v", c.n, time.Since(start).Round(time.Millisecond))
	for family, n := range leaks {
		t.Errorf("%d answers of %s probes depend on records the camp worker cannot view", n, family)
	}
	if len(leaking) > 0 {
		kinds := map[string]int{}
		for i := range leaking {
			kinds[probes[i].kind]++
		}
		t.Errorf("%d of %d probes leak, by operator: %v", len(leaking), len(probes), kinds)
	}
}
