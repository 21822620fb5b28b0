package syncapi_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/accesslog"
	"strada/internal/apptest"
	"strada/internal/domain"
	"strada/internal/syncclient"
)

type accessRow struct {
	Person     string `db:"person"`
	Team       string `db:"team"`
	Collection string `db:"collection"`
	Record     string `db:"record"`
	User       string `db:"user"`
	Device     string `db:"device"`
	Action     string `db:"action"`
	ClientID   string `db:"client_id"`
	ClientTime string `db:"client_time"`
}

func (e *env) accessRows(where dbx.Expression) []accessRow {
	e.t.Helper()
	var out []accessRow
	if err := e.app.DB().Select("*").From(accesslog.Collection).Where(where).OrderBy("rowid").All(&out); err != nil {
		e.t.Fatalf("read access log: %v", err)
	}
	return out
}

// subjectRecords returns the "collection/id" of every person, contact and
// referral of team.
func (e *env) subjectRecords(team string) []string {
	e.t.Helper()
	var out []string
	for _, c := range accesslog.Subjects() {
		var ids []string
		if err := e.app.DB().Select("id").From(c).Where(dbxTeam(team)).Column(&ids); err != nil {
			e.t.Fatal(err)
		}
		for _, id := range ids {
			out = append(out, c+"/"+id)
		}
	}
	slices.Sort(out)
	return out
}

// TestPullLogsDownloads pulls a snapshot and then a change: every person,
// contact and referral sent to the device leaves one download row naming
// the user, the device, the team and the person; nothing else does.
func TestPullLogsDownloads(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	prison := e.team("prison_secretariat")
	c := e.device(apptest.PrisonWorker)
	c.PageSize = 7 // many pages, some mixing collections
	if err := c.Pull(context.Background()); err != nil {
		t.Fatal(err)
	}
	user := apptest.User(t, e.app, apptest.PrisonWorker).Id
	rows := e.accessRows(nil)
	var got []string
	for _, r := range rows {
		got = append(got, r.Collection+"/"+r.Record)
		if r.Action != accesslog.ActionDownload || r.User != user || r.Device != c.DeviceID || r.Team != prison {
			t.Errorf("got row %+v, want a download by %s on %s in team %s", r, user, c.DeviceID, prison)
		}
		want := r.Record
		if r.Collection != domain.Persons {
			want = e.record(r.Collection, r.Record).GetString("person")
		}
		if r.Person != want {
			t.Errorf("got person %s for %s/%s, want %s", r.Person, r.Collection, r.Record, want)
		}
	}
	slices.Sort(got)
	if want := e.subjectRecords(prison); !slices.Equal(got, want) {
		t.Fatalf("got %d download rows, want one for each of the team's %d persons, contacts and referrals:\ngot  %v\nwant %v",
			len(got), len(want), got, want)
	}

	// A change of one person, and a camp visit (not a subject), from the
	// log: one more row, for the person.
	var personID string
	if err := e.app.DB().Select("id").From(domain.Persons).Where(dbxTeam(prison)).Limit(1).Row(&personID); err != nil {
		t.Fatal(err)
	}
	person := e.record(domain.Persons, personID)
	person.Set("languages", "romeno")
	if err := e.app.Save(person); err != nil {
		t.Fatal(err)
	}
	if err := c.Pull(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := e.accessRows(nil)
	if len(after) != len(rows)+1 || after[len(after)-1].Record != person.Id {
		t.Fatalf("got %d rows after pulling one change, want %d, the last for %s", len(after), len(rows)+1, person.Id)
	}

	// A pull that sends nothing logs nothing.
	if err := c.Pull(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(e.accessRows(nil)); n != len(after) {
		t.Fatalf("got %d rows after an empty pull, want %d", n, len(after))
	}
}

type accessReport struct {
	ID         string `json:"id"`
	Collection string `json:"collection"`
	RecordID   string `json:"recordId"`
	At         string `json:"at"`
}

// TestReportAccess sends the card opens a device recorded: opens of the
// user's records are logged once each, however often they are sent;
// opens of records the user cannot see are dropped with the same answer;
// a report with one bad open is refused whole.
func TestReportAccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	camp, prison := e.team("camp_outreach"), e.team("prison_secretariat")
	c := e.device(apptest.CampWorker)
	var campPerson, prisonPerson string
	if err := e.app.DB().Select("id").From(domain.Persons).Where(dbxTeam(camp)).Limit(1).Row(&campPerson); err != nil {
		t.Fatal(err)
	}
	if err := e.app.DB().Select("id").From(domain.Persons).Where(dbxTeam(prison)).Limit(1).Row(&prisonPerson); err != nil {
		t.Fatal(err)
	}
	open := func(collection, id string) accessReport {
		return accessReport{ID: uuid.NewString(), Collection: collection, RecordID: id, At: "2026-11-19T09:30:00+01:00"}
	}
	own, other, gone := open(domain.Persons, campPerson), open(domain.Persons, prisonPerson), open(domain.Persons, newID())

	for range 2 {
		var out struct {
			Received int `json:"received"`
		}
		if err := e.post(c, "/api/sync/access", map[string]any{"opens": []accessReport{own, other, gone}}, &out); err != nil {
			t.Fatalf("report: %v", err)
		}
		if out.Received != 3 {
			t.Errorf("got received %d, want 3", out.Received)
		}
	}
	rows := e.accessRows(nil)
	want := accessRow{Person: campPerson, Team: camp, Collection: domain.Persons, Record: campPerson,
		User: apptest.User(t, e.app, apptest.CampWorker).Id, Device: c.DeviceID, Action: accesslog.ActionOpen,
		ClientID: own.ID, ClientTime: "2026-11-19 08:30:00.000Z"}
	if len(rows) != 1 || rows[0] != want {
		t.Fatalf("got rows %+v, want only %+v", rows, want)
	}

	bad := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"no opens", map[string]any{}, 400, "missing_opens"},
		{"unknown key", `{"opens":[],"extra":1}`, 400, "malformed_json"},
		{"id not a uuid", map[string]any{"opens": []accessReport{open(domain.Persons, campPerson), {ID: "x", Collection: domain.Persons, RecordID: campPerson, At: own.At}}}, 400, "invalid_open"},
		{"camp visits are not cards", map[string]any{"opens": []accessReport{open(domain.CampVisits, newID())}}, 400, "invalid_open"},
		{"record id not a uuidv7", map[string]any{"opens": []accessReport{open(domain.Persons, "abc")}}, 400, "invalid_open"},
		{"no time", map[string]any{"opens": []accessReport{{ID: uuid.NewString(), Collection: domain.Persons, RecordID: campPerson}}}, 400, "invalid_open"},
		{"too many", map[string]any{"opens": slices.Repeat([]accessReport{open(domain.Persons, campPerson)}, 501)}, 413, "too_many_opens"},
	}
	for _, tc := range bad {
		err := e.post(c, "/api/sync/access", tc.body, nil)
		apiErr, ok := err.(*syncclient.APIError)
		if !ok || apiErr.Status != tc.status || apiErr.Code != tc.code {
			t.Errorf("%s: got %v, want %d %s", tc.name, err, tc.status, tc.code)
		}
	}
	if n := len(e.accessRows(nil)); n != 1 {
		t.Errorf("got %d rows after refused reports, want 1", n)
	}

	signedOut := &syncclient.Client{DeviceID: c.DeviceID}
	if err := e.post(signedOut, "/api/sync/access", map[string]any{"opens": []accessReport{open(domain.Persons, campPerson)}}, nil); !isStatus(err, 401) {
		t.Errorf("signed out: got %v, want 401", err)
	}
}

// BenchmarkPullPersons measures a snapshot of 20,000 persons in pages of
// 1,000: each page also writes its 1,000 download rows.
// go test ./internal/syncapi -run '^$' -bench BenchmarkPullPersons -benchtime 5x -count 5
func BenchmarkPullPersons(b *testing.B) {
	const n = 20_000
	e := newEnv(b)
	camp := e.team("camp_outreach")
	site := e.siteOf("camp")
	err := e.app.RunInTransaction(func(tx core.App) error {
		for i := range n {
			now := time.Now().UTC().Format("2006-01-02 15:04:05.000Z")
			_, err := tx.NonconcurrentDB().Insert(domain.Persons, dbx.Params{
				"id": newID(), "code": fmt.Sprintf("B-%06d", i), "team": camp, "site": site, "consent": "verbal",
				"given_name": "Nome", "family_name": "Cognome", "notes": "note", "version": 1, "created": now, "updated": now,
			}).Execute()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	c := e.device(apptest.CampWorker)
	c.HTTP = benchHTTP
	c.PageSize = 1000
	b.ResetTimer()
	for range b.N {
		c.Store = syncclient.NewMemoryStore()
		if err := c.Pull(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "persons/s")
}
