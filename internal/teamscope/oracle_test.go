package teamscope_test

import (
	"net/http"
	"testing"

	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/domain"
)

// TestAnotherTeamsIdAnswersAsAMissingOne sends each request twice, once
// naming a record of another team and once an id that does not exist,
// and wants the two answers identical byte for byte (ids aside): no path
// tells a user that an id exists in a team they are not in.
func TestAnotherTeamsIdAnswersAsAMissingOne(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	campPerson := w.person(w.camp)

	// ask returns the answer to a request about id, with the ids it names
	// replaced.
	type ask func(w *world, a *account, id string) string
	restAsk := func(method string, path func(id string) string, body func(id string) map[string]any) ask {
		return func(w *world, a *account, id string) string {
			var b any
			if body != nil {
				b = body(id)
			}
			code, answer := w.call(a, method, path(id), b)
			return http.StatusText(code) + " " + anonymise(answer, id)
		}
	}
	pushAsk := func(m func(id string) mutation) ask {
		return func(w *world, a *account, id string) string {
			mut := m(id)
			mut.ID = newID()
			return anonymise(w.push(a, mut), id, mut.ID, mut.RecordID)
		}
	}
	referralFor := func(person string) map[string]any {
		return map[string]any{"team": w.camp, "person": person, "service": w.service, "reason": "Documenti", "status": "draft"}
	}
	visitMeeting := func(person string) map[string]any {
		return map[string]any{"team": w.camp, "site": campSite(t, w), "visited_at": "2026-11-19 10:00:00.000Z",
			"persons_met": []string{campPerson.Id, person}}
	}
	deletedReferral := func() string {
		r := w.referral(w.prison)
		if err := w.app.Delete(r); err != nil {
			t.Fatal(err)
		}
		return r.Id
	}

	cases := []struct {
		name  string
		as    string
		other func() string // an id of another team's record
		// missing is an id that does not exist; a new UUIDv7 when empty.
		missing string
		ask     ask
	}{
		{
			name: "push update of a person", as: campWorker, other: func() string { return w.person(w.prison).Id },
			ask: pushAsk(func(id string) mutation {
				return mutation{Collection: domain.Persons, RecordID: id, Op: "upsert", BaseVersion: 1, Fields: map[string]any{"notes": "x"}}
			}),
		},
		{
			name: "push move of a person into own team", as: campSupervisor, other: func() string { return w.person(w.prison).Id },
			ask: pushAsk(func(id string) mutation {
				return mutation{Collection: domain.Persons, RecordID: id, Op: "upsert", BaseVersion: 1, Fields: map[string]any{"team": w.camp}}
			}),
		},
		{
			name: "push delete of a referral", as: campWorker, other: func() string { return w.referral(w.prison).Id },
			ask: pushAsk(func(id string) mutation {
				return mutation{Collection: domain.Referrals, RecordID: id, Op: "delete", BaseVersion: 1}
			}),
		},
		{
			name: "push delete of a person", as: campSupervisor, other: func() string { return w.person(w.prison).Id },
			ask: pushAsk(func(id string) mutation {
				return mutation{Collection: domain.Persons, RecordID: id, Op: "delete", BaseVersion: 1}
			}),
		},
		{
			name: "push update of a deleted referral", as: campWorker, other: deletedReferral,
			ask: pushAsk(func(id string) mutation {
				return mutation{Collection: domain.Referrals, RecordID: id, Op: "upsert", BaseVersion: 1, Fields: map[string]any{"notes": "x"}}
			}),
		},
		{
			name: "push delete of a deleted referral", as: campWorker, other: deletedReferral,
			ask: pushAsk(func(id string) mutation {
				return mutation{Collection: domain.Referrals, RecordID: id, Op: "delete", BaseVersion: 1}
			}),
		},
		{
			name: "push referral for a person", as: campWorker, other: func() string { return w.person(w.prison).Id },
			ask: pushAsk(func(id string) mutation {
				return mutation{Collection: domain.Referrals, RecordID: newID(), Op: "upsert", Fields: referralFor(id)}
			}),
		},
		{
			name: "push visit meeting a person", as: campSupervisor, other: func() string { return w.person(w.prison).Id },
			ask: pushAsk(func(id string) mutation {
				return mutation{Collection: domain.CampVisits, RecordID: newID(), Op: "upsert", Fields: visitMeeting(id)}
			}),
		},
		{
			name: "push visit with a worker", as: campWorker, other: func() string { return apptest.User(t, w.app, apptest.PrisonWorker).Id },
			missing: "abcdefghijklmno", // the id format of users
			ask: pushAsk(func(id string) mutation {
				return mutation{Collection: domain.CampVisits, RecordID: newID(), Op: "upsert", Fields: map[string]any{
					"team": w.camp, "site": campSite(t, w), "visited_at": "2026-11-19 10:00:00.000Z", "workers": []string{id},
				}}
			}),
		},
		{
			name: "REST referral for a person", as: campWorker, other: func() string { return w.person(w.prison).Id },
			ask: restAsk(http.MethodPost, func(string) string { return "/api/collections/referrals/records" }, referralFor),
		},
		{
			name: "REST contact for a person", as: campSupervisor, other: func() string { return w.person(w.prison).Id },
			ask: restAsk(http.MethodPost, func(string) string { return "/api/collections/secretariat_contacts/records" },
				func(id string) map[string]any {
					return map[string]any{"team": w.camp, "person": id, "site": officeSite(t, w), "setting": "extra",
						"contacted_at": "2026-11-19 10:00:00.000Z"}
				}),
		},
		{
			name: "REST visit meeting a person", as: campWorker, other: func() string { return w.person(w.prison).Id },
			ask: restAsk(http.MethodPost, func(string) string { return "/api/collections/camp_visits/records" }, visitMeeting),
		},
		{
			name: "REST referral from a visit", as: campWorker, other: func() string { return prisonVisit(t, w) },
			ask: restAsk(http.MethodPost, func(string) string { return "/api/collections/referrals/records" },
				func(id string) map[string]any {
					b := referralFor(campPerson.Id)
					b["source_visit"] = id
					return b
				}),
		},
		{
			name: "REST update of a person", as: campWorker, other: func() string { return w.person(w.prison).Id },
			ask: restAsk(http.MethodPatch, func(id string) string { return "/api/collections/persons/records/" + id },
				func(string) map[string]any { return map[string]any{"notes": "x"} }),
		},
		{
			name: "REST delete of a referral", as: campWorker, other: func() string { return w.referral(w.prison).Id },
			ask: restAsk(http.MethodDelete, func(id string) string { return "/api/collections/referrals/records/" + id }, nil),
		},
		{
			name: "erasure by a supervisor of another team", as: campSupervisor, other: func() string { return w.person(w.prison).Id },
			ask: restAsk(http.MethodPost, func(id string) string { return "/api/persons/" + id + "/erase" },
				func(string) map[string]any { return map[string]any{"reason": "Richiesta"} }),
		},
		{
			name: "erasure by a worker of another team", as: campWorker, other: func() string { return w.person(w.prison).Id },
			ask: restAsk(http.MethodPost, func(id string) string { return "/api/persons/" + id + "/erase" },
				func(string) map[string]any { return map[string]any{"reason": "Richiesta"} }),
		},
	}
	for _, tc := range cases {
		a := w.as[tc.as]
		other := tc.other()
		missing := tc.missing
		if missing == "" {
			missing = newID()
		}
		gotOther := tc.ask(w, a, other)
		gotMissing := tc.ask(w, a, missing)
		if gotOther != gotMissing {
			t.Errorf("%s as %s: another team's id and a missing id answer differently:\ngot  %s\nwant %s",
				tc.name, tc.as, gotOther, gotMissing)
		}
	}
}

func firstOf(t testing.TB, w *world, collection, field, value string) *core.Record {
	t.Helper()
	r, err := w.app.FindFirstRecordByData(collection, field, value)
	if err != nil {
		t.Fatalf("find %s with %s %s: %v", collection, field, value, err)
	}
	return r
}

func campSite(t testing.TB, w *world) string { return firstOf(t, w, domain.Sites, "kind", "camp").Id }
func officeSite(t testing.TB, w *world) string {
	return firstOf(t, w, domain.Sites, "kind", "office").Id
}
func prisonVisit(t testing.TB, w *world) string {
	v := w.save(domain.CampVisits, map[string]any{"team": w.prison, "site": prisonCampSite(t, w), "visited_at": "2026-11-19 10:00:00.000Z"})
	return v.Id
}

// prisonCampSite is a camp site the prison team may use: a shared one,
// or one of the prison team's.
func prisonCampSite(t testing.TB, w *world) string {
	t.Helper()
	sites, err := w.app.FindAllRecords(domain.Sites)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sites {
		if s.GetString("kind") == "camp" && (s.GetString("team") == "" || s.GetString("team") == w.prison) {
			return s.Id
		}
	}
	c, err := w.app.FindCollectionByNameOrId(domain.Sites)
	if err != nil {
		t.Fatal(err)
	}
	s := core.NewRecord(c)
	s.Load(map[string]any{"name": "Campo condiviso", "kind": "camp", "municipio": "XV"})
	if err := w.app.Save(s); err != nil {
		t.Fatalf("save shared camp site: %v", err)
	}
	return s.Id
}
