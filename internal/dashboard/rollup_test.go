package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/changelog"
	"strada/internal/dashboard"
	"strada/internal/dashboard/rollup"
	"strada/internal/domain"
	"strada/internal/erasure"
)

func snapshot(t *testing.T, app core.App) map[string][]string {
	t.Helper()
	rows, err := rollup.Rows(app)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// checkRecount recounts the rollups from the records and the change log
// and fails if the rows the hooks and triggers kept differ.
func checkRecount(t *testing.T, app core.App, when string) {
	t.Helper()
	kept := snapshot(t, app)
	if err := rollup.Rebuild(app); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	recounted := snapshot(t, app)
	for table, want := range recounted {
		got := kept[table]
		if !slices.Equal(got, want) {
			var missing, extra []string
			for _, r := range want {
				if !slices.Contains(got, r) {
					missing = append(missing, r)
				}
			}
			for _, r := range got {
				if !slices.Contains(want, r) {
					extra = append(extra, r)
				}
			}
			t.Errorf("%s: %s kept by the hooks differs from a recount:\nkept, not recounted: %v\nrecounted, not kept: %v", when, table, extra, missing)
		}
	}
	if len(recounted[rollup.Counts]) == 0 || len(recounted[rollup.Seen]) == 0 || len(recounted[rollup.Lag]) == 0 {
		t.Fatalf("%s: the recount is empty: the world does not exercise it", when)
	}
}

func TestRollupsEqualARecountAfterEveryWritePath(t *testing.T) {
	w := newWorld(t, 7)
	app := w.e.app
	checkRecount(t, app, "after the world")
	if err := rollup.Rebuild(app); err != nil {
		t.Fatal(err)
	}
	checkRecount(t, app, "after a second rebuild")

	team0, team2 := w.teams[0], w.teams[2]
	worker := w.workers[team0][0]
	sup := w.supervisorOf(team0)
	as := func(user string) core.App { return changelog.AppWithActor(app, changelog.Actor{User: user}) }
	find := func(collection, id string) *core.Record {
		t.Helper()
		r, err := app.FindRecordById(collection, id)
		if err != nil {
			t.Fatalf("find %s %s: %v", collection, id, err)
		}
		return r
	}
	save := func(a core.App, r *core.Record) {
		t.Helper()
		if err := a.Save(r); err != nil {
			t.Fatalf("save %s %s: %v", r.Collection().Name, r.Id, err)
		}
	}
	sitesOf := func(team, kind string) []string {
		var out []string
		for _, s := range w.sites {
			if s.team == team && s.kind == kind {
				out = append(out, s.id)
			}
		}
		return out
	}
	personsOf := func(team string) []gPerson {
		var out []gPerson
		for _, p := range w.persons {
			if p.team == team {
				out = append(out, p)
			}
		}
		return out
	}
	steps := []struct {
		name string
		do   func()
	}{
		{"create a visit, a person, a contact and a referral in Go", func() {
			ps := personsOf(team0)
			w.save(worker, domain.CampVisits, map[string]any{"team": team0, "site": sitesOf(team0, "camp")[0],
				"visited_at": pbTime(w.now.Add(-time.Hour)), "persons_met": []string{ps[0].id, ps[1].id},
				"households_met": 3, "topics": []string{"health", "documents"}})
			p := w.save(worker, domain.Persons, map[string]any{"team": team2, "site": sitesOf(team2, "prison")[0], "consent": "verbal"})
			w.save(w.workers[team2][0], domain.SecretariatContacts, map[string]any{"team": team2, "site": sitesOf(team2, "prison")[0],
				"person": p.Id, "setting": "intra", "contacted_at": pbTime(w.now.Add(-2 * time.Hour)), "requests": []string{"identity_documents"}})
			w.save(w.workers[team2][0], domain.Referrals, map[string]any{"team": team2, "person": p.Id, "service": w.refs[0].service,
				"reason": "motivo", "status": domain.StatusDraft})
		}},
		{"move a visit to another camp, day, topics and persons met", func() {
			v := find(domain.CampVisits, w.visits[0].id)
			ps := personsOf(v.GetString("team"))
			v.Set("site", sitesOf(v.GetString("team"), "camp")[len(sitesOf(v.GetString("team"), "camp"))-1])
			v.Set("visited_at", pbTime(w.now.AddDate(0, 0, -40)))
			v.Set("topics", []string{"housing"})
			v.Set("persons_met", []string{ps[2].id})
			v.Set("households_met", 7)
			save(as(worker), v)
		}},
		{"move a visit to another team", func() {
			v := find(domain.CampVisits, w.visits[1].id)
			other := team2
			if v.GetString("team") == team2 {
				other = team0
			}
			v.Set("team", other)
			v.Set("site", sitesOf(other, "camp")[0])
			v.Set("persons_met", []string{})
			v.Set("workers", []string{w.workers[other][0]})
			save(as(w.supervisorOf(other)), v)
		}},
		{"move a person to another site", func() {
			for _, r := range w.refs {
				p := find(domain.Persons, r.person)
				sites := append(sitesOf(p.GetString("team"), "office"), sitesOf(p.GetString("team"), "prison")...)
				for _, s := range sites {
					if s != p.GetString("site") {
						p.Set("site", s)
						break
					}
				}
				save(as(sup), p)
				return
			}
		}},
		{"move referrals through their states", func() {
			for _, g := range w.refs {
				r := find(domain.Referrals, g.id)
				next := map[string]string{domain.StatusDraft: domain.StatusSent, domain.StatusSent: domain.StatusAccepted,
					domain.StatusAccepted: domain.StatusCompleted}[r.GetString("status")]
				if next == "" {
					continue
				}
				r.Set("status", next)
				save(as(w.supervisorOf(r.GetString("team"))), r)
			}
		}},
		{"change a contact's person, setting and requests", func() {
			c := find(domain.SecretariatContacts, w.contacts[0].id)
			ps := personsOf(c.GetString("team"))
			c.Set("person", ps[len(ps)-1].id)
			c.Set("setting", "extra")
			c.Set("site", sitesOf(c.GetString("team"), "office")[0])
			c.Set("requests", []string{"work_training", "housing_on_release"})
			save(as(worker), c)
		}},
		{"delete a visit, a contact and a referral", func() {
			for _, r := range []*core.Record{find(domain.CampVisits, w.visits[2].id), find(domain.SecretariatContacts, w.contacts[1].id),
				find(domain.Referrals, w.refs[4].id)} {
				if err := as(sup).Delete(r); err != nil {
					t.Fatalf("delete %s: %v", r.Id, err)
				}
			}
		}},
		{"write through the records API", func() {
			ps := personsOf(team0)
			body := map[string]any{"team": team0, "site": sitesOf(team0, "camp")[1], "visited_at": pbTime(w.now.Add(-30 * time.Minute)),
				"persons_met": []string{ps[3].id}, "households_met": 2, "topics": []string{"school"}}
			code, answer := send(t, w, tokenOf(t, w.workerA), http.MethodPost, "/api/collections/"+domain.CampVisits+"/records", body)
			if code != http.StatusOK {
				t.Fatalf("REST create: got %d %s, want 200", code, answer)
			}
			var created struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(answer, &created); err != nil {
				t.Fatal(err)
			}
			code, answer = send(t, w, tokenOf(t, w.workerA), http.MethodPatch, "/api/collections/"+domain.CampVisits+"/records/"+created.ID,
				map[string]any{"topics": []string{"school", "health"}, "households_met": 4})
			if code != http.StatusOK {
				t.Fatalf("REST update: got %d %s, want 200", code, answer)
			}
		}},
		{"erase a person", func() {
			// The person with the most records about them.
			var person string
			if err := app.DB().NewQuery(`SELECT person FROM (SELECT person FROM referrals UNION ALL SELECT person FROM secretariat_contacts
				UNION ALL SELECT m.value FROM camp_visits v, json_each(v.persons_met) m) GROUP BY person ORDER BY count(*) DESC LIMIT 1`).Row(&person); err != nil {
				t.Fatal(err)
			}
			if _, err := erasure.Erase(context.Background(), app, person, changelog.Actor{User: sup}, sup, "test"); err != nil {
				t.Fatalf("erase: %v", err)
			}
			var left int
			if err := app.DB().NewQuery(`SELECT (SELECT count(*) FROM ` + rollup.Seen + ` WHERE person = {:p}) +
				(SELECT count(*) FROM ` + rollup.VisitPersons + ` WHERE person = {:p})`).Bind(dbx.Params{"p": person}).Row(&left); err != nil {
				t.Fatal(err)
			}
			if left != 0 {
				t.Errorf("erased person: got %d rollup rows naming them, want 0", left)
			}
		}},
		{"delete a person as a superuser", func() {
			p := find(domain.Persons, personsOf(team2)[0].id)
			if err := app.Delete(p); err != nil {
				t.Fatalf("delete person: %v", err)
			}
		}},
	}
	for _, s := range steps {
		s.do()
		checkRecount(t, app, "after "+s.name)
	}

	// The summary from the rollups equals the one counted from the
	// records, for every filter.
	token := tokenOf(t, w.supA)
	for _, q := range []string{"period=week", "period=month", "period=today", "period=month&team=" + w.teams[1],
		"period=month&worker=" + w.workerA.Id, "period=month&site=" + sitesOf(team0, "camp")[0]} {
		w.e.dash.Direct = false
		counted := w.e.summary(token, q)
		w.e.dash.Direct = true
		direct := w.e.summary(token, q)
		w.e.dash.Direct = false
		for name, pair := range map[string][2]any{
			"activity": {counted.Activity, direct.Activity}, "caseload": {counted.Caseload, direct.Caseload},
			"referrals": {counted.Referrals, direct.Referrals}, "offline lag": {roundLag(counted.OfflineLag), roundLag(direct.OfflineLag)},
		} {
			if got, want := fmt.Sprint(pair[0]), fmt.Sprint(pair[1]); got != want {
				t.Errorf("%s %s: got from the rollups %s, want as counted from the records %s", q, name, got, want)
			}
		}
	}
}

func roundLag(days []dashboard.LagDay) []dashboard.LagDay {
	out := slices.Clone(days)
	for i := range out {
		out[i].AvgSeconds = math.Round(out[i].AvgSeconds*1000) / 1000
		out[i].MaxSeconds = math.Round(out[i].MaxSeconds*1000) / 1000
	}
	return out
}

// send sends a JSON request as the account with token.
func send(t *testing.T, w *world, token, method, path string, body any) (int, []byte) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", token)
	rec := httptest.NewRecorder()
	w.e.handler.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}
