package teamscope_test

import (
	"slices"
	"testing"

	"strada/internal/domain"
	"strada/internal/teamscope"
)

var (
	worker     = teamscope.Subject{ID: "w", Role: domain.RoleWorker, Teams: []string{"camp"}}
	supervisor = teamscope.Subject{ID: "s", Role: domain.RoleSupervisor, Teams: []string{"camp"}}
	both       = teamscope.Subject{ID: "b", Role: domain.RoleSupervisor, Teams: []string{"camp", "prison"}}
	superuser  = teamscope.Subject{ID: "su", Superuser: true}
	nobody     = teamscope.Subject{}
)

func TestAllows(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		who        teamscope.Subject
		collection string
		action     teamscope.Action
		team       string
		want       bool
	}{
		{"worker reads own team's person", worker, domain.Persons, teamscope.Read, "camp", true},
		{"worker reads other team's person", worker, domain.Persons, teamscope.Read, "prison", false},
		{"worker creates in own team", worker, domain.CampVisits, teamscope.Create, "camp", true},
		{"worker creates in other team", worker, domain.CampVisits, teamscope.Create, "prison", false},
		{"worker updates own team's referral", worker, domain.Referrals, teamscope.Update, "camp", true},
		{"worker deletes own team's contact", worker, domain.SecretariatContacts, teamscope.Delete, "camp", true},
		{"worker deletes other team's contact", worker, domain.SecretariatContacts, teamscope.Delete, "prison", false},
		{"worker deletes own team's person", worker, domain.Persons, teamscope.Delete, "camp", false},
		{"supervisor deletes own team's person", supervisor, domain.Persons, teamscope.Delete, "camp", false},
		{"superuser deletes a person", superuser, domain.Persons, teamscope.Delete, "camp", true},
		{"worker erases own team's person", worker, domain.Persons, teamscope.Erase, "camp", false},
		{"supervisor erases own team's person", supervisor, domain.Persons, teamscope.Erase, "camp", true},
		{"supervisor erases other team's person", supervisor, domain.Persons, teamscope.Erase, "prison", false},
		{"worker resolves own team's conflict", worker, domain.SyncConflicts, teamscope.Resolve, "camp", true},
		{"worker resolves other team's conflict", worker, domain.SyncConflicts, teamscope.Resolve, "prison", false},
		{"worker reads the erasure audit", worker, domain.Erasures, teamscope.Read, "camp", false},
		{"supervisor reads the erasure audit", supervisor, domain.Erasures, teamscope.Read, "camp", true},
		{"worker writes referral history", worker, domain.ReferralEvents, teamscope.Create, "camp", false},
		{"worker reads a site of another team", worker, domain.Sites, teamscope.Read, "prison", true},
		{"worker reads a shared site", worker, domain.Sites, teamscope.Read, "", true},
		{"supervisor writes a site", supervisor, domain.Sites, teamscope.Update, "camp", false},
		{"worker revokes a device", worker, domain.Devices, teamscope.Revoke, "camp", false},
		{"supervisor revokes a team member's device", supervisor, domain.Devices, teamscope.Revoke, "camp", true},
		{"signed out reads a site", nobody, domain.Sites, teamscope.Read, "", false},
		{"signed out reads a person", nobody, domain.Persons, teamscope.Read, "camp", false},
		{"worker reads a record without a team", worker, domain.Persons, teamscope.Read, "", false},
		{"unknown collection", both, "prisoners", teamscope.Read, "camp", false},
	}
	for _, tc := range cases {
		if got := tc.who.Allows(tc.collection, tc.action, tc.team); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestAllowsMove(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		who      teamscope.Subject
		from, to string
		want     bool
	}{
		{"worker keeps the team", worker, "camp", "camp", true},
		{"worker moves out of own team", worker, "camp", "prison", false},
		{"worker takes a record into own team", worker, "prison", "camp", false},
		{"supervisor of both moves between them", both, "camp", "prison", true},
		{"superuser moves anywhere", superuser, "camp", "prison", true},
	}
	for _, tc := range cases {
		if got := tc.who.AllowsMove(domain.Persons, tc.from, tc.to); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestUsersDevicesAndScope(t *testing.T) {
	t.Parallel()
	if !worker.SeesUser("w", nil) {
		t.Error("worker does not see themself, want them to")
	}
	if !worker.SeesUser("x", []string{"prison", "camp"}) || worker.SeesUser("x", []string{"prison"}) {
		t.Error("worker sees users by their teams wrongly: want a teammate seen, another team's user not")
	}
	if !supervisor.AllowsAny(domain.Devices, teamscope.Revoke, []string{"prison", "camp"}) ||
		supervisor.AllowsAny(domain.Devices, teamscope.Revoke, []string{"prison"}) ||
		worker.AllowsAny(domain.Devices, teamscope.Revoke, []string{"camp"}) {
		t.Error("device revocation wrongly decided: want a supervisor of one of the owner's teams only")
	}
	if got := both.TeamsAllowing(teamscope.Read, domain.Logged...); !slices.Equal(got, []string{"camp", "prison"}) {
		t.Errorf("got read scope %v, want [camp prison]", got)
	}
	if got := supervisor.TeamsAllowing(teamscope.Erase, domain.Persons); !slices.Equal(got, []string{"camp"}) {
		t.Errorf("got erase scope %v, want [camp]", got)
	}
	if got := worker.TeamsAllowing(teamscope.Erase, domain.Persons); len(got) != 0 {
		t.Errorf("got erase scope %v for a worker, want none", got)
	}
}

// The rules a database created before the policy holds; the policy renders
// them unchanged for the collections they covered.
const (
	signedIn = `@request.auth.collectionName = "users"`
	member   = signedIn + ` && @request.auth.teams.id ?= team`
	stay     = ` && (@request.body.team:isset = false || @request.body.team = team ||` +
		` (@collection.users:mover.id ?= @request.auth.id && @collection.users:mover.teams.id ?= @request.body.team))`
)

func TestRulesFor(t *testing.T) {
	t.Parallel()
	rule := func(s string) *string { return &s }
	fieldWork := teamscope.Rules{List: rule(member), View: rule(member), Create: rule(member), Update: rule(member + stay), Delete: rule(member)}
	reference := teamscope.Rules{List: rule(signedIn), View: rule(signedIn)}
	cases := []struct {
		collection string
		want       teamscope.Rules
	}{
		{domain.Teams, reference},
		{domain.Sites, reference},
		{domain.Services, reference},
		{domain.CampVisits, fieldWork},
		{domain.SecretariatContacts, fieldWork},
		{domain.Referrals, fieldWork},
		{domain.Persons, teamscope.Rules{List: rule(member), View: rule(member), Create: rule(member), Update: rule(member + stay)}},
		{domain.ReferralEvents, teamscope.Rules{List: rule(member), View: rule(member)}},
		{domain.Erasures, teamscope.Rules{
			List: rule(member + ` && @request.auth.role = "supervisor"`),
			View: rule(member + ` && @request.auth.role = "supervisor"`),
		}},
		{domain.SyncConflicts, teamscope.Rules{
			List: rule(member), View: rule(member),
			Update: rule(member + ` && resolved_at = "" && @request.body.resolution:isset = true`),
		}},
		{domain.Users, teamscope.Rules{
			List:   rule(`id = @request.auth.id || (` + signedIn + ` && teams.id ?= @request.auth.teams.id)`),
			View:   rule(`id = @request.auth.id || (` + signedIn + ` && teams.id ?= @request.auth.teams.id)`),
			Update: rule(`id = @request.auth.id && @request.body.role:isset = false && @request.body.teams:isset = false`),
		}},
		{"prisoners", teamscope.Rules{}},
	}
	for _, tc := range cases {
		got := teamscope.RulesFor(tc.collection)
		for _, op := range []struct {
			name      string
			got, want *string
		}{
			{"list", got.List, tc.want.List}, {"view", got.View, tc.want.View}, {"create", got.Create, tc.want.Create},
			{"update", got.Update, tc.want.Update}, {"delete", got.Delete, tc.want.Delete},
		} {
			if show(op.got) != show(op.want) {
				t.Errorf("%s %s rule:\ngot  %s\nwant %s", tc.collection, op.name, show(op.got), show(op.want))
			}
		}
	}
}

// TestRulesFollowTheTable keeps the rules and the Go decisions on one
// table: an action nobody but superusers may take has no rule, and every
// other action of a governed collection has one.
func TestRulesFollowTheTable(t *testing.T) {
	t.Parallel()
	type check struct {
		op     string
		rule   *string
		action teamscope.Action
	}
	for _, c := range teamscope.Governed() {
		r := teamscope.RulesFor(c)
		checks := []check{
			{"list", r.List, teamscope.Read}, {"view", r.View, teamscope.Read},
			{"create", r.Create, teamscope.Create}, {"delete", r.Delete, teamscope.Delete},
		}
		switch c {
		case domain.SyncConflicts:
			checks = append(checks, check{"update", r.Update, teamscope.Resolve})
		case domain.Devices:
			checks = append(checks, check{"update", r.Update, teamscope.Revoke})
		case domain.Users: // self-service, outside the team table
		default:
			checks = append(checks, check{"update", r.Update, teamscope.Update})
		}
		for _, ch := range checks {
			nobodyNeed := teamscope.NeedOf(c, ch.action) == teamscope.Nobody
			if nobodyNeed != (ch.rule == nil) {
				t.Errorf("%s %s: got rule %s, want a rule exactly when the policy lets users %s", c, ch.op, show(ch.rule), ch.action)
			}
		}
	}
}

func show(s *string) string {
	if s == nil {
		return "<superusers only>"
	}
	return *s
}
