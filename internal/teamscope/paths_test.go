package teamscope_test

import (
	"fmt"
	"net/http"
	"testing"

	"strada/internal/domain"
	"strada/internal/teamscope"
)

// operation is one thing a user does to a record of a team, as each path
// does it. rest and push return whether the path allowed it; push is nil
// where the sync API has no such operation, policy where the decision is
// not the team policy's (a relation stays inside its record's team,
// whoever makes it).
type operation struct {
	rest   func(w *world, a *account, team, to string) bool
	push   func(w *world, a *account, team, to string) bool
	policy func(s teamscope.Subject, team, to string) bool
}

// allowed reads a records API or erasure answer: 2xx allows, 4xx refuses.
func allowed(t testing.TB, what string, code int, body []byte) bool {
	t.Helper()
	if code >= 500 {
		t.Fatalf("%s: got %d %s, want an answer", what, code, body)
	}
	return code < 300
}

// applied reads a push result: applied, merged or conflict allows,
// rejected refuses.
func applied(t testing.TB, what string, result []byte) bool {
	t.Helper()
	switch s := pushStatus(t, result); s {
	case "applied", "merged", "conflict":
		return true
	case "rejected":
		return false
	default:
		t.Fatalf("%s: got status %q in %s, want applied or rejected", what, s, result)
		return false
	}
}

var operations = map[string]operation{
	"read": {
		rest: func(w *world, a *account, team, _ string) bool {
			p := w.person(team)
			code, body := w.call(a, http.MethodGet, "/api/collections/persons/records/"+p.Id, nil)
			return allowed(w.t, "view", code, body)
		},
		push: func(w *world, a *account, team, _ string) bool {
			p := w.person(team)
			return w.pulled(a, domain.Persons)[p.Id]
		},
		policy: func(s teamscope.Subject, team, _ string) bool { return s.Allows(domain.Persons, teamscope.Read, team) },
	},
	"create": {
		rest: func(w *world, a *account, team, _ string) bool {
			code, body := w.call(a, http.MethodPost, "/api/collections/persons/records",
				map[string]any{"id": newID(), "team": team, "consent": "verbal"})
			return allowed(w.t, "create", code, body)
		},
		push: func(w *world, a *account, team, _ string) bool {
			return applied(w.t, "create", w.push(a, mutation{Collection: domain.Persons, RecordID: newID(), Op: "upsert",
				Fields: map[string]any{"team": team, "consent": "verbal"}}))
		},
		policy: func(s teamscope.Subject, team, _ string) bool {
			return s.Allows(domain.Persons, teamscope.Create, team)
		},
	},
	"update": {
		rest: func(w *world, a *account, team, _ string) bool {
			p := w.person(team)
			code, body := w.call(a, http.MethodPatch, "/api/collections/persons/records/"+p.Id, map[string]any{"notes": "Rivisto"})
			return allowed(w.t, "update", code, body)
		},
		push: func(w *world, a *account, team, _ string) bool {
			p := w.person(team)
			return applied(w.t, "update", w.push(a, mutation{Collection: domain.Persons, RecordID: p.Id, Op: "upsert", BaseVersion: 1,
				Fields: map[string]any{"notes": "Rivisto"}}))
		},
		policy: func(s teamscope.Subject, team, _ string) bool {
			return s.Allows(domain.Persons, teamscope.Update, team)
		},
	},
	"move": {
		rest: func(w *world, a *account, team, to string) bool {
			p := w.person(team)
			code, body := w.call(a, http.MethodPatch, "/api/collections/persons/records/"+p.Id, map[string]any{"team": to})
			return allowed(w.t, "move", code, body)
		},
		push: func(w *world, a *account, team, to string) bool {
			p := w.person(team)
			return applied(w.t, "move", w.push(a, mutation{Collection: domain.Persons, RecordID: p.Id, Op: "upsert", BaseVersion: 1,
				Fields: map[string]any{"team": to}}))
		},
		policy: func(s teamscope.Subject, team, to string) bool { return s.AllowsMove(domain.Persons, team, to) },
	},
	"delete": {
		rest: func(w *world, a *account, team, _ string) bool {
			r := w.referral(team)
			code, body := w.call(a, http.MethodDelete, "/api/collections/referrals/records/"+r.Id, nil)
			return allowed(w.t, "delete", code, body)
		},
		push: func(w *world, a *account, team, _ string) bool {
			r := w.referral(team)
			return applied(w.t, "delete", w.push(a, mutation{Collection: domain.Referrals, RecordID: r.Id, Op: "delete", BaseVersion: 1}))
		},
		policy: func(s teamscope.Subject, team, _ string) bool {
			return s.Allows(domain.Referrals, teamscope.Delete, team)
		},
	},
	// relate makes a referral of the camp team for a person of team.
	"relate": {
		rest: func(w *world, a *account, team, _ string) bool {
			p := w.person(team)
			code, body := w.call(a, http.MethodPost, "/api/collections/referrals/records", map[string]any{
				"id": newID(), "team": w.camp, "person": p.Id, "service": w.service, "reason": "Documenti", "status": "draft",
			})
			return allowed(w.t, "relate", code, body)
		},
		push: func(w *world, a *account, team, _ string) bool {
			p := w.person(team)
			return applied(w.t, "relate", w.push(a, mutation{Collection: domain.Referrals, RecordID: newID(), Op: "upsert",
				Fields: map[string]any{"team": w.camp, "person": p.Id, "service": w.service, "reason": "Documenti", "status": "draft"}}))
		},
	},
	"erase": {
		rest: func(w *world, a *account, team, _ string) bool {
			p := w.person(team)
			code, body := w.call(a, http.MethodPost, "/api/persons/"+p.Id+"/erase", map[string]any{"reason": "Richiesta"})
			return allowed(w.t, "erase", code, body)
		},
		policy: func(s teamscope.Subject, team, _ string) bool { return s.Allows(domain.Persons, teamscope.Erase, team) },
	},
	"resolve": {
		rest: func(w *world, a *account, team, _ string) bool {
			c := w.conflict(team)
			code, body := w.call(a, http.MethodPatch, "/api/collections/sync_conflicts/records/"+c.Id,
				map[string]any{"resolution": "keep_current"})
			return allowed(w.t, "resolve", code, body)
		},
		policy: func(s teamscope.Subject, team, _ string) bool {
			return s.Allows(domain.SyncConflicts, teamscope.Resolve, team)
		},
	},
}

// TestOnePolicyEveryPath runs one allow/deny table through the records
// API (and the erasure endpoint), through the sync API and through the Go
// policy, and wants the same decision from each.
func TestOnePolicyEveryPath(t *testing.T) {
	t.Parallel()
	const camp, prison = "camp", "prison"
	table := []struct {
		as, op   string
		team, to string
		want     bool
	}{
		{as: campWorker, op: "read", team: camp, want: true},
		{as: campWorker, op: "read", team: prison, want: false},
		{as: campSupervisor, op: "read", team: camp, want: true},
		{as: campSupervisor, op: "read", team: prison, want: false},
		{as: bothSupervisor, op: "read", team: prison, want: true},

		{as: campWorker, op: "create", team: camp, want: true},
		{as: campWorker, op: "create", team: prison, want: false},
		{as: campSupervisor, op: "create", team: camp, want: true},
		{as: campSupervisor, op: "create", team: prison, want: false},

		{as: campWorker, op: "update", team: camp, want: true},
		{as: campWorker, op: "update", team: prison, want: false},
		{as: campSupervisor, op: "update", team: camp, want: true},
		{as: campSupervisor, op: "update", team: prison, want: false},

		{as: campWorker, op: "move", team: camp, to: prison, want: false},
		{as: campWorker, op: "move", team: prison, to: camp, want: false},
		{as: campSupervisor, op: "move", team: camp, to: prison, want: false},
		{as: campSupervisor, op: "move", team: prison, to: camp, want: false},
		{as: bothSupervisor, op: "move", team: camp, to: prison, want: true},
		{as: bothSupervisor, op: "move", team: prison, to: camp, want: true},

		{as: campWorker, op: "delete", team: camp, want: true},
		{as: campWorker, op: "delete", team: prison, want: false},
		{as: campSupervisor, op: "delete", team: camp, want: true},
		{as: campSupervisor, op: "delete", team: prison, want: false},

		{as: campWorker, op: "relate", team: camp, want: true},
		{as: campWorker, op: "relate", team: prison, want: false},
		{as: campSupervisor, op: "relate", team: camp, want: true},
		{as: campSupervisor, op: "relate", team: prison, want: false},
		{as: bothSupervisor, op: "relate", team: prison, want: false},

		{as: campWorker, op: "erase", team: camp, want: false},
		{as: campWorker, op: "erase", team: prison, want: false},
		{as: campSupervisor, op: "erase", team: camp, want: true},
		{as: campSupervisor, op: "erase", team: prison, want: false},
		{as: bothSupervisor, op: "erase", team: prison, want: true},

		{as: campWorker, op: "resolve", team: camp, want: true},
		{as: campWorker, op: "resolve", team: prison, want: false},
		{as: campSupervisor, op: "resolve", team: camp, want: true},
		{as: campSupervisor, op: "resolve", team: prison, want: false},
	}
	w := newWorld(t)
	teamID := map[string]string{camp: w.camp, prison: w.prison}
	for _, row := range table {
		name := fmt.Sprintf("%s %s %s", row.as, row.op, row.team)
		if row.to != "" {
			name += " to " + row.to
		}
		op := operations[row.op]
		a := w.as[row.as]
		team, to := teamID[row.team], teamID[row.to]
		if got := op.rest(w, a, team, to); got != row.want {
			t.Errorf("%s through REST: got allowed %v, want %v", name, got, row.want)
		}
		if op.push != nil {
			if got := op.push(w, a, team, to); got != row.want {
				t.Errorf("%s through sync: got allowed %v, want %v", name, got, row.want)
			}
		}
		if op.policy != nil {
			if got := op.policy(teamscope.Of(a.user), team, to); got != row.want {
				t.Errorf("%s by the policy: got allowed %v, want %v", name, got, row.want)
			}
		}
	}
}
