package authzmatrix_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"strada/internal/accesslog"
	"strada/internal/apptest"
	"strada/internal/demo"
	"strada/internal/domain"
	"strada/internal/events"
	hooks "strada/pb_hooks"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// Team keys of the matrix; a cell's team is one of them, or "" for a
// request that names no team.
const (
	camp   = "camp"
	prison = "prison"
)

var teamKeys = []string{camp, prison}

// account is who makes a request.
type account struct {
	key        string
	email      string
	teams      []string // team keys
	supervisor bool
	superuser  bool
	// worker is the team whose fixture worker this account is.
	worker string
}

// The accounts of the matrix. The demo has a supervisor of both teams; the
// supervisor of the camp team alone is made by the matrix.
const campSupervisorEmail = "supervisora.campi@example.org"

var accounts = []account{
	{key: "signed out"},
	{key: "camp worker", email: apptest.CampWorker, teams: []string{camp}, worker: camp},
	{key: "prison worker", email: apptest.PrisonWorker, teams: []string{prison}, worker: prison},
	{key: "camp supervisor", email: campSupervisorEmail, teams: []string{camp}, supervisor: true},
	{key: "supervisor of both", email: apptest.Supervisor, teams: []string{camp, prison}, supervisor: true},
	{key: "superuser", email: apptest.Admin, superuser: true},
}

func (a account) user() bool                  { return a.email != "" && !a.superuser }
func (a account) member(team string) bool     { return slices.Contains(a.teams, team) }
func (a account) supervises(team string) bool { return a.supervisor && a.member(team) }

// server is the whole of Strada as `serve` wires it, on a copy of the demo
// data, with the fixtures of the matrix.
type server struct {
	t      *testing.T
	app    *tests.TestApp
	url    string
	routes []string

	team    map[string]string            // team key -> id
	fixture map[string]map[string]string // collection -> team key -> id of a record carrying its marker
	campOf  map[string]string            // team key -> a camp site of the team
	office  map[string]string            // team key -> an office site of the team
	service string
	device  map[string]string // account key -> its registered sync device

	seq        int
	leaks      map[string][]string // account and state -> tokens the account must never receive
	stateQuery string
	spares     map[string]string // collection/team -> a record to remove
}

// marker is the distinctive value a fixture of collection in team carries.
func marker(collection, team string) string { return "zq-" + collection + "-" + team + "-mark" }

// unique returns a value used once in the whole matrix.
func (s *server) unique(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%d", prefix, s.seq)
}

func newServer(t *testing.T) *server {
	t.Helper()
	app := apptest.NewUnbound(t)
	cfg := &hooks.Config{
		Stream:       events.DefaultStreamOptions,
		WebClient:    fstest.MapFS{"index.html": &fstest.MapFile{Data: []byte("<!doctype html><title>Strada</title>")}},
		MetricsToken: metricsToken,
	}
	rt := hooks.Register(app, cfg)
	t.Cleanup(rt.Stop)
	r, err := apis.NewRouter(app)
	if err != nil {
		t.Fatalf("new router: %v", err)
	}
	se := &core.ServeEvent{App: app, Router: r}
	if err := app.OnServe().Trigger(se, func(e *core.ServeEvent) error { return nil }); err != nil {
		t.Fatalf("serve hooks: %v", err)
	}
	var routes []string
	walkRoutes(reflect.ValueOf(r.RouterGroup), "", &routes)
	mux, err := r.BuildMux()
	if err != nil {
		t.Fatalf("build mux: %v", err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	// Rate limits are a policy of their own, tested where they are set:
	// the matrix sends more requests from one address than they allow.
	// The batch API is enabled so that its path is proved too.
	settings, err := app.Settings().Clone()
	if err != nil {
		t.Fatal(err)
	}
	settings.RateLimits.Enabled = false
	settings.Batch.Enabled = true
	settings.Batch.MaxRequests = 20
	settings.Batch.Timeout = 10
	if err := app.Save(settings); err != nil {
		t.Fatalf("save settings: %v", err)
	}

	s := &server{
		t: t, app: app, url: srv.URL, routes: routes,
		team: map[string]string{}, fixture: map[string]map[string]string{},
		campOf: map[string]string{}, office: map[string]string{}, device: map[string]string{},
		leaks: map[string][]string{}, spares: map[string]string{},
	}
	s.team[camp] = apptest.Team(t, app, "camp_outreach")
	s.team[prison] = apptest.Team(t, app, "prison_secretariat")
	s.setup()
	return s
}

// walkRoutes lists the routes of a PocketBase router group and its
// subgroups as "METHOD /path". The router keeps them unexported; reflection
// reads them without changing anything.
func walkRoutes(v reflect.Value, prefix string, out *[]string) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	if m := v.FieldByName("Method"); m.IsValid() {
		route := prefix + v.FieldByName("Path").String()
		if m.String() != "" {
			route = m.String() + " " + route
		}
		*out = append(*out, route)
		return
	}
	prefix += v.FieldByName("Prefix").String()
	children := v.FieldByName("children")
	for i := range children.Len() {
		walkRoutes(children.Index(i), prefix, out)
	}
}

const metricsToken = "matrix-metrics-token-0123456789abcdef0123456789"

// save saves a record of collection as the server.
func (s *server) save(collection string, fields map[string]any) *core.Record {
	s.t.Helper()
	c, err := s.app.FindCollectionByNameOrId(collection)
	if err != nil {
		s.t.Fatalf("find %s: %v", collection, err)
	}
	r := core.NewRecord(c)
	r.Load(fields)
	if pw, ok := fields["password"].(string); ok {
		r.SetPassword(pw)
	}
	if err := s.app.Save(r); err != nil {
		s.t.Fatalf("save %s %v: %v", collection, fields, err)
	}
	return r
}

const password = "matrice-password-2026"

func (s *server) setup() {
	t := s.t
	s.save(domain.Users, map[string]any{
		"email": campSupervisorEmail, "password": demo.Password, "name": "Supervisora Campi",
		"role": domain.RoleSupervisor, "teams": []string{s.team[camp]}, "verified": true,
	})
	services, err := s.app.FindAllRecords(domain.Services, dbx.HashExp{"active": true})
	if err != nil || len(services) == 0 {
		t.Fatalf("find an active service: %v", err)
	}
	s.service = services[0].Id
	for _, team := range teamKeys {
		s.campOf[team] = s.save(domain.Sites, map[string]any{"name": "Campo " + team, "kind": "camp", "team": s.team[team]}).Id
		s.office[team] = s.save(domain.Sites, map[string]any{"name": "Ufficio " + team, "kind": "office", "team": s.team[team]}).Id
	}
	for _, team := range teamKeys {
		s.fix(domain.Users, team, apptest.User(t, s.app, map[string]string{camp: apptest.CampWorker, prison: apptest.PrisonWorker}[team]).Id)
		s.fix(domain.Persons, team, s.fresh(domain.Persons, team))
		for _, c := range []string{domain.CampVisits, domain.SecretariatContacts, domain.Referrals} {
			s.fix(c, team, s.fresh(c, team))
		}
		for _, c := range []string{domain.ReferralEvents, domain.SyncConflicts, domain.Erasures, accesslog.Collection, domain.Devices} {
			s.fix(c, team, s.fresh(c, team))
		}
	}
	devices, err := s.app.FindCollectionByNameOrId(domain.Devices)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accounts {
		if !a.user() {
			continue
		}
		d := core.NewRecord(devices)
		d.Load(map[string]any{"user": apptest.User(t, s.app, a.email).Id, "name": "Tablet " + a.key})
		if err := s.app.Save(d); err != nil {
			t.Fatalf("save device: %v", err)
		}
		s.device[a.key] = d.Id
	}
}

func (s *server) fix(collection, team, id string) {
	if s.fixture[collection] == nil {
		s.fixture[collection] = map[string]string{}
	}
	s.fixture[collection][team] = id
}

const someDay = "2026-11-19 10:00:00.000Z"

// fresh makes a new record of collection in team (reference data and
// accounts ignore team) carrying the collection's marker, and returns its
// id.
func (s *server) fresh(collection, team string) string {
	s.t.Helper()
	T := s.team[team]
	m := marker(collection, team)
	switch collection {
	case domain.Persons:
		return s.save(collection, map[string]any{"team": T, "consent": "verbal", "notes": m}).Id
	case domain.CampVisits:
		return s.save(collection, map[string]any{"team": T, "site": s.campOf[team], "visited_at": someDay, "needs": m}).Id
	case domain.SecretariatContacts:
		return s.save(collection, map[string]any{"team": T, "person": s.fixture[domain.Persons][team],
			"site": s.office[team], "setting": "extra", "contacted_at": someDay, "notes": m}).Id
	case domain.Referrals:
		return s.save(collection, map[string]any{"team": T, "person": s.fixture[domain.Persons][team],
			"service": s.service, "reason": "Matrice", "status": domain.StatusDraft, "notes": m}).Id
	case domain.ReferralEvents:
		return s.save(collection, map[string]any{"referral": s.fixture[domain.Referrals][team], "team": T,
			"to_status": domain.StatusSent, "note": m}).Id
	case domain.SyncConflicts:
		return s.save(collection, map[string]any{"collection": domain.Persons, "record_id": s.fixture[domain.Persons][team],
			"person": s.fixture[domain.Persons][team], "field": "languages", "kind": "same_field", "team": T,
			"kept_value": m, "overwritten_value": "italiano"}).Id
	case domain.Erasures:
		return s.save(collection, map[string]any{"collection": domain.Persons, "record_id": uuid.Must(uuid.NewV7()).String(),
			"team": T, "reason": m, "erased_by": "matrix", "records": 1}).Id
	case accesslog.Collection:
		record := s.unique("r")
		err := accesslog.Write(s.app, accesslog.Reader{User: "matrix"}, accesslog.ActionView,
			[]accesslog.Entry{{Person: m, Team: T, Collection: domain.Persons, Record: record}})
		if err != nil {
			s.t.Fatalf("write access log: %v", err)
		}
		var id string
		if err := s.app.DB().Select("id").From(collection).Where(dbx.HashExp{"record": record}).Row(&id); err != nil {
			s.t.Fatalf("find access log row: %v", err)
		}
		return id
	case domain.Devices:
		return s.save(collection, map[string]any{"user": s.fixture[domain.Users][team], "name": m}).Id
	case domain.Users:
		return s.save(collection, map[string]any{"email": s.unique("matrice") + "@example.org", "password": password,
			"name": s.unique("Utente zq") + "q", "role": domain.RoleWorker, "teams": []string{T}}).Id
	case domain.Teams:
		return s.save(collection, map[string]any{"name": s.unique("Squadra "), "kind": "office"}).Id
	case domain.Sites:
		return s.save(collection, map[string]any{"name": s.unique("Sito "), "kind": "camp"}).Id
	case domain.Services:
		return s.save(collection, map[string]any{"name": s.unique("Servizio "), "category": "other", "active": true}).Id
	case core.CollectionNameSuperusers:
		return s.save(collection, map[string]any{"email": s.unique("root") + "@example.org", "password": password}).Id
	}
	// Collections the matrix never fills: an id that names nothing.
	return "zqnone" + s.unique("")
}

// spare returns a record of collection in team made for requests that
// remove it: the same one until a request has removed it.
func (s *server) spare(collection, team string) string {
	s.t.Helper()
	key := collection + "/" + team
	if id := s.spares[key]; id != "" && s.exists(collection, id) {
		return id
	}
	id := s.fresh(collection, team)
	s.spares[key] = id
	return id
}

// token is a fresh auth token of a: a revocation in an earlier cell may
// have invalidated the previous ones.
func (s *server) token(a account) string {
	if a.email == "" {
		return ""
	}
	return apptest.Token(s.t, s.app, a.email)
}

// request is one HTTP request of a cell.
type request struct {
	method, path, body string
	header             map[string]string
	// anonymous sends no account token whatever the cell's account.
	anonymous bool
	// stream reads a Server-Sent Events answer up to its first event.
	stream bool
}

// send makes the request as a and returns the status and the body (for a
// stream, its first event).
func (s *server) send(a account, r request) (int, string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // a guard against a hang, not a measure
	defer cancel()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, s.url+r.path, body)
	if err != nil {
		s.t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tok := s.token(a); tok != "" && !r.anonymous {
		req.Header.Set("Authorization", tok)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer res.Body.Close()
	if r.stream && res.StatusCode == http.StatusOK {
		ev, err := readEvent(bufio.NewReader(res.Body))
		if err != nil {
			s.t.Fatalf("%s %s: read first event: %v", r.method, r.path, err)
		}
		return res.StatusCode, ev
	}
	data, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatalf("%s %s: read body: %v", r.method, r.path, err)
	}
	return res.StatusCode, string(data)
}

// readEvent reads one Server-Sent Event, its lines as sent.
func readEvent(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return b.String(), err
		}
		if strings.TrimRight(line, "\r\n") == "" {
			if b.Len() > 0 {
				return b.String(), nil
			}
			continue
		}
		b.WriteString(line)
	}
}

// state fingerprints the data a refused request must leave as it was: the
// number and the latest update of the records of every collection, and the
// change log. The access log (which reads write) and the devices' activity
// columns are not part of it.
func (s *server) state() string {
	s.t.Helper()
	if s.stateQuery == "" {
		collections, err := s.app.FindAllCollections()
		if err != nil {
			s.t.Fatal(err)
		}
		parts := []string{"SELECT 'changes' AS name, count(*) AS n, coalesce(max(seq), 0) AS latest FROM strada_changes"}
		for _, c := range collections {
			if c.Name == accesslog.Collection || c.IsView() {
				continue
			}
			latest := "''"
			if c.Fields.GetByName("updated") != nil {
				latest = "coalesce(max([[updated]]), '')"
			}
			parts = append(parts, fmt.Sprintf("SELECT '%s', count(*), %s FROM [[%s]]", c.Name, latest, c.Name))
		}
		s.stateQuery = strings.Join(parts, " UNION ALL ")
	}
	var rows []struct {
		Name   string `db:"name"`
		N      int    `db:"n"`
		Latest string `db:"latest"`
	}
	if err := s.app.DB().NewQuery(s.stateQuery).All(&rows); err != nil {
		s.t.Fatalf("fingerprint the data: %v", err)
	}
	parts := make([]string, len(rows))
	for i, r := range rows {
		parts[i] = fmt.Sprintf("%s:%d:%s", r.Name, r.N, r.Latest)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// teamScoped are the collections whose records belong to a team.
var teamScoped = []string{
	domain.Persons, domain.CampVisits, domain.SecretariatContacts, domain.Referrals,
	domain.ReferralEvents, domain.SyncConflicts, domain.Erasures, accesslog.Collection,
}

// leakTokens returns what a must never receive, whatever it asks: the
// markers of every fixture its policy keeps from it; the ids of every record
// of a team it is not in; the id, e-mail and name of every user it shares
// no team with; for a signed-out caller also the teams. A superuser may
// receive everything.
func (s *server) leakTokens(a account) []string {
	s.t.Helper()
	if a.superuser {
		return nil
	}
	var out []string
	for collection, byTeam := range s.fixture {
		p := policyOf(collection)
		if p == nil {
			continue
		}
		for team := range byTeam {
			if p.read(a, team) != ok {
				out = append(out, marker(collection, team))
			}
		}
	}
	var others []any
	for _, team := range teamKeys {
		if !a.member(team) {
			others = append(others, s.team[team])
		}
	}
	if len(others) > 0 {
		for _, c := range teamScoped {
			var ids []string
			if err := s.app.DB().Select("id").From(c).Where(dbx.In("team", others...)).Column(&ids); err != nil {
				s.t.Fatalf("ids of %s: %v", c, err)
			}
			out = append(out, ids...)
		}
	}
	users, err := s.app.FindAllRecords(domain.Users)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, u := range users {
		shared := false
		for _, team := range a.teams {
			shared = shared || slices.Contains(u.GetStringSlice("teams"), s.team[team])
		}
		if !shared {
			out = append(out, u.Id, u.Email())
			if n := u.GetString("name"); n != "" {
				out = append(out, n)
			}
		}
	}
	if !a.user() {
		for _, team := range teamKeys {
			out = append(out, s.team[team])
		}
	}
	return out
}

// leaksFor caches leakTokens until the state changes.
func (s *server) leaksFor(a account, state string) []string {
	key := a.key + "|" + state
	if v, ok := s.leaks[key]; ok {
		return v
	}
	v := s.leakTokens(a)
	s.leaks[key] = v
	return v
}
