package accesslog_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/subscriptions"
	"github.com/pocketbase/pocketbase/tools/types"

	"strada/internal/accesslog"
	"strada/internal/apptest"
	"strada/internal/domain"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// logRow is a person_access row as the tests read it.
type logRow struct {
	ID         string `db:"id" json:"id"`
	Person     string `db:"person" json:"person"`
	Team       string `db:"team" json:"team"`
	Collection string `db:"collection" json:"collection"`
	Record     string `db:"record" json:"record"`
	User       string `db:"user" json:"user"`
	Superuser  string `db:"superuser" json:"superuser"`
	Device     string `db:"device" json:"device"`
	Action     string `db:"action" json:"action"`
	ClientID   string `db:"client_id" json:"client_id"`
	ClientTime string `db:"client_time" json:"client_time"`
	At         string `db:"at" json:"at"`
}

func rows(t testing.TB, app core.App) []logRow {
	t.Helper()
	var out []logRow
	if err := app.DB().Select("*").From(accesslog.Collection).OrderBy("rowid").All(&out); err != nil {
		t.Fatalf("read access log: %v", err)
	}
	return out
}

func clearLog(t testing.TB, app core.App) {
	t.Helper()
	if _, err := app.DB().NewQuery("DELETE FROM " + accesslog.Collection).Execute(); err != nil {
		t.Fatalf("clear access log: %v", err)
	}
}

func get(t testing.TB, h http.Handler, url, token string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// key is what a row says was read, and how.
type key struct{ action, collection, record, person string }

func keysOf(rs []logRow) []key {
	out := make([]key, len(rs))
	for i, r := range rs {
		out[i] = key{r.Action, r.Collection, r.Record, r.Person}
	}
	slices.SortFunc(out, func(a, b key) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	return out
}

func records(t testing.TB, app core.App, collection, team string) []*core.Record {
	t.Helper()
	rs, err := app.FindAllRecords(collection, dbx.HashExp{"team": team})
	if err != nil || len(rs) == 0 {
		t.Fatalf("find %s of team %s: got %d, err %v", collection, team, len(rs), err)
	}
	return rs
}

func keysFor(action string, rs []*core.Record) []key {
	var out []key
	for _, r := range rs {
		person := r.Id
		if r.Collection().Name != domain.Persons {
			person = r.GetString("person")
		}
		out = append(out, key{action, r.Collection().Name, r.Id, person})
	}
	return out
}

// TestRESTReadsAreLogged reads persons, contacts and referrals through the
// records API in every way it returns them and checks the rows each read
// leaves: one per record returned, naming the reader, the team, the person
// and the record, and nothing else.
func TestRESTReadsAreLogged(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	h := apptest.Handler(t, app)
	camp := apptest.Team(t, app, "camp_outreach")
	prison := apptest.Team(t, app, "prison_secretariat")
	campPersons := records(t, app, domain.Persons, camp)
	prisonPersons := records(t, app, domain.Persons, prison)
	contacts := records(t, app, domain.SecretariatContacts, prison)
	referrals := records(t, app, domain.Referrals, prison)
	var referredPersons []*core.Record
	for _, p := range prisonPersons {
		if slices.ContainsFunc(referrals, func(r *core.Record) bool { return r.GetString("person") == p.Id }) {
			referredPersons = append(referredPersons, p)
		}
	}
	campWorker := apptest.User(t, app, apptest.CampWorker).Id
	prisonWorker := apptest.User(t, app, apptest.PrisonWorker).Id
	admin, err := app.FindAuthRecordByEmail(core.CollectionNameSuperusers, apptest.Admin)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name      string
		as        string
		url       string
		status    int
		user      string
		superuser string
		team      string
		want      []key
	}{
		{name: "view of a person", as: apptest.CampWorker, url: "/api/collections/persons/records/" + campPersons[0].Id,
			status: 200, user: campWorker, team: camp, want: keysFor(accesslog.ActionView, campPersons[:1])},
		{name: "list of persons", as: apptest.CampWorker, url: "/api/collections/persons/records?perPage=500",
			status: 200, user: campWorker, team: camp, want: keysFor(accesslog.ActionList, campPersons)},
		{name: "search of persons", as: apptest.PrisonWorker,
			url:    "/api/collections/persons/records?filter=" + urlQuery(`code = "`+prisonPersons[1].GetString("code")+`"`),
			status: 200, user: prisonWorker, team: prison, want: keysFor(accesslog.ActionList, prisonPersons[1:2])},
		{name: "list of contacts", as: apptest.PrisonWorker, url: "/api/collections/secretariat_contacts/records?perPage=500",
			status: 200, user: prisonWorker, team: prison, want: keysFor(accesslog.ActionList, contacts)},
		{name: "view of a referral", as: apptest.PrisonWorker, url: "/api/collections/referrals/records/" + referrals[0].Id,
			status: 200, user: prisonWorker, team: prison, want: keysFor(accesslog.ActionView, referrals[:1])},
		{name: "referrals with their persons expanded", as: apptest.PrisonWorker,
			url:    "/api/collections/referrals/records?perPage=500&expand=person",
			status: 200, user: prisonWorker, team: prison,
			want: append(keysFor(accesslog.ActionList, referrals), keysFor(accesslog.ActionExpand, referredPersons)...)},
		{name: "list by a superuser", as: apptest.Admin, url: "/api/collections/persons/records?perPage=500",
			status: 200, superuser: admin.Id, team: camp + "|" + prison,
			want: keysFor(accesslog.ActionList, append(slices.Clone(campPersons), prisonPersons...))},
		{name: "view of another team's person", as: apptest.CampWorker,
			url: "/api/collections/persons/records/" + prisonPersons[0].Id, status: 404},
		{name: "list signed out", as: "", url: "/api/collections/persons/records", status: 200},
		{name: "camp visits are not logged", as: apptest.CampWorker, url: "/api/collections/camp_visits/records", status: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearLog(t, app)
			token := ""
			if tc.as != "" {
				token = apptest.Token(t, app, tc.as)
			}
			code, body := get(t, h, tc.url, token)
			if code != tc.status {
				t.Fatalf("got status %d, want %d: %s", code, tc.status, body)
			}
			got := rows(t, app)
			want := slices.Clone(tc.want)
			slices.SortFunc(want, func(a, b key) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
			if g := keysOf(got); !slices.Equal(g, want) {
				t.Fatalf("got rows\n%v\nwant\n%v", g, want)
			}
			for _, r := range got {
				if r.User != tc.user || r.Superuser != tc.superuser || r.Device != "" {
					t.Errorf("got reader user %q superuser %q device %q, want %q %q and no device", r.User, r.Superuser, r.Device, tc.user, tc.superuser)
				}
				if !slices.Contains(strings.Split(tc.team, "|"), r.Team) {
					t.Errorf("got team %q, want %q", r.Team, tc.team)
				}
				if r.At == "" || r.ID == "" {
					t.Errorf("got row %+v, want an id and a time", r)
				}
				assertNoPersonalData(t, app, r)
			}
		})
	}
}

func urlQuery(s string) string {
	return strings.NewReplacer(" ", "%20", `"`, "%22", "=", "%3D").Replace(s)
}

// assertNoPersonalData fails when a row holds any value of the person's
// record other than the ids it names.
func assertNoPersonalData(t testing.TB, app core.App, r logRow) {
	t.Helper()
	p, err := app.FindRecordById(domain.Persons, r.Person)
	if err != nil {
		t.Fatalf("row names person %s, which does not exist: %v", r.Person, err)
	}
	b, _ := json.Marshal(r)
	for _, f := range []string{"code", "given_name", "family_name", "nationality", "languages", "notes"} {
		if v := p.GetString(f); v != "" && strings.Contains(string(b), v) {
			t.Errorf("row %s holds the person's %s %q", b, f, v)
		}
	}
}

// TestRealtimeMessagesAreLogged subscribes a supervisor to persons through
// PocketBase's realtime broker: a person saved by a worker reaches the
// subscriber and leaves a realtime row naming the supervisor.
func TestRealtimeMessagesAreLogged(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	apptest.Handler(t, app) // binds PocketBase's realtime broadcasts
	camp := apptest.Team(t, app, "camp_outreach")
	sv := apptest.User(t, app, apptest.Supervisor)
	client := subscriptions.NewDefaultClient()
	client.Set(apis.RealtimeClientAuthKey, sv)
	client.Subscribe(domain.Persons)
	app.SubscriptionsBroker().Register(client)
	defer app.SubscriptionsBroker().Unregister(client.Id())

	person := records(t, app, domain.Persons, camp)[0]
	person.Set("languages", "romanes")
	saved := make(chan error, 1)
	go func() { saved <- app.Save(person) }()
	msg := <-client.Channel()
	if err := <-saved; err != nil {
		t.Fatalf("save person: %v", err)
	}
	if !strings.Contains(string(msg.Data), person.Id) {
		t.Fatalf("got message %s, want the person %s", msg.Data, person.Id)
	}
	got := rows(t, app)
	want := []key{{accesslog.ActionRealtime, domain.Persons, person.Id, person.Id}}
	if !slices.Equal(keysOf(got), want) || got[0].User != sv.Id || got[0].Team != camp {
		t.Fatalf("got rows %+v, want %v by %s in team %s", got, want, sv.Id, camp)
	}
}

// TestUnloggedReadIsRefused makes the log unwritable: a view, a list and an
// expansion of persons then send no person's data.
func TestUnloggedReadIsRefused(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	h := apptest.Handler(t, app)
	camp := apptest.Team(t, app, "camp_outreach")
	prison := apptest.Team(t, app, "prison_secretariat")
	person := records(t, app, domain.Persons, camp)[0]
	referral := records(t, app, domain.Referrals, prison)[0]
	referred, err := app.FindRecordById(domain.Persons, referral.GetString("person"))
	if err != nil {
		t.Fatal(err)
	}
	// A trigger that refuses every insert stands for a full disk or a
	// broken table.
	if _, err := app.DB().NewQuery(`CREATE TRIGGER refuse_access_log BEFORE INSERT ON ` + accesslog.Collection +
		` BEGIN SELECT RAISE(ABORT, 'access log unavailable'); END`).Execute(); err != nil {
		t.Fatal(err)
	}
	token := apptest.Token(t, app, apptest.Supervisor)
	for _, tc := range []struct {
		url    string
		status int
		secret string
	}{
		{"/api/collections/persons/records/" + person.Id, 500, person.GetString("code")},
		{"/api/collections/persons/records", 500, person.GetString("code")},
		{"/api/collections/camp_visits/records?expand=persons_met", 200, `"expand"`},
		{"/api/collections/secretariat_contacts/records/" + referral.GetString("source_contact"), 500, referral.GetString("source_contact")},
		{"/api/collections/referrals/records/" + referral.Id + "?expand=person", 500, referred.GetString("code")},
	} {
		code, body := get(t, h, tc.url, token)
		if code != tc.status || strings.Contains(body, tc.secret) {
			t.Errorf("%s: got %d with %q in the body: %s; want %d without it", tc.url, code, tc.secret, body, tc.status)
		}
	}
}

// TestPrune deletes the rows older than the cutoff, several batches of
// them, and keeps the newer ones.
func TestPrune(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	camp := apptest.Team(t, app, "camp_outreach")
	person := records(t, app, domain.Persons, camp)[0]
	en, _ := accesslog.EntryOf(person)
	const old, recent, batch = 23, 7, 5
	if err := accesslog.Write(app, accesslog.Reader{User: "u"}, accesslog.ActionView, slices.Repeat([]accesslog.Entry{en}, old)); err != nil {
		t.Fatal(err)
	}
	twoYears := types.NowDateTime().AddDate(-2, 0, 0).String()
	if _, err := app.DB().Update(accesslog.Collection, dbx.Params{"at": twoYears}, nil).Execute(); err != nil {
		t.Fatal(err)
	}
	if err := accesslog.Write(app, accesslog.Reader{User: "u"}, accesslog.ActionView, slices.Repeat([]accesslog.Entry{en}, recent)); err != nil {
		t.Fatal(err)
	}
	n, err := accesslog.PruneInBatches(app, time.Now().Add(-accesslog.DefaultRetention), batch)
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	if n != old {
		t.Errorf("got %d rows pruned, want %d", n, old)
	}
	if got := len(rows(t, app)); got != recent {
		t.Errorf("got %d rows left, want %d", got, recent)
	}
}

// TestSchedulePrune checks the nightly job: it is scheduled with the
// retention given, prunes when it runs, and is not scheduled when the
// retention keeps every row.
func TestSchedulePrune(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	person := records(t, app, domain.Persons, apptest.Team(t, app, "camp_outreach"))[0]
	en, _ := accesslog.EntryOf(person)
	if err := accesslog.Write(app, accesslog.Reader{User: "u"}, accesslog.ActionView, []accesslog.Entry{en, en}); err != nil {
		t.Fatal(err)
	}
	if _, err := app.DB().Update(accesslog.Collection, dbx.Params{"at": types.NowDateTime().AddDate(0, 0, -40).String()},
		dbx.NewExp("rowid = (SELECT min(rowid) FROM "+accesslog.Collection+")")).Execute(); err != nil {
		t.Fatal(err)
	}

	accesslog.SchedulePrune(app, 30*24*time.Hour)
	var job func()
	for _, j := range app.Cron().Jobs() {
		if j.Id() == accesslog.PruneJob {
			if j.Expression() != accesslog.PruneSchedule {
				t.Errorf("got schedule %q, want %q", j.Expression(), accesslog.PruneSchedule)
			}
			job = j.Run
		}
	}
	if job == nil {
		t.Fatalf("got no job %s among %d, want it scheduled", accesslog.PruneJob, app.Cron().Total())
	}
	job()
	if got := len(rows(t, app)); got != 1 {
		t.Errorf("got %d rows after the job ran, want 1 (the row within 30 days)", got)
	}

	accesslog.SchedulePrune(app, 0)
	for _, j := range app.Cron().Jobs() {
		if j.Id() == accesslog.PruneJob {
			t.Errorf("got job %s with a retention of 0, want none", accesslog.PruneJob)
		}
	}
}

// TestWriteIsIdempotentByClientID writes the same device report twice: it
// is logged once.
func TestWriteIsIdempotentByClientID(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	person := records(t, app, domain.Persons, apptest.Team(t, app, "camp_outreach"))[0]
	en, _ := accesslog.EntryOf(person)
	en.ClientID, en.ClientTime = "0b7e7f7e-4c7a-4a57-9f59-3c7e1d0a5b11", "2026-11-19 09:00:00.000Z"
	for range 2 {
		if err := accesslog.Write(app, accesslog.Reader{User: "u", Device: "d"}, accesslog.ActionOpen, []accesslog.Entry{en}); err != nil {
			t.Fatal(err)
		}
	}
	got := rows(t, app)
	if len(got) != 1 || got[0].ClientID != en.ClientID || got[0].ClientTime != en.ClientTime || got[0].Device != "d" {
		t.Fatalf("got rows %+v, want one with client id %s at %s from device d", got, en.ClientID, en.ClientTime)
	}
	if err := accesslog.Write(app, accesslog.Reader{}, "peek", []accesslog.Entry{en}); err == nil {
		t.Errorf("got no error for an unknown action, want one")
	}
}
