package teamscope

import (
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/domain"
)

// Rules are the API rules of a collection as PocketBase keeps them; a nil
// rule lets superusers only.
type Rules struct {
	List, View, Create, Update, Delete *string
}

// Apply sets r as the API rules of c.
func (r Rules) Apply(c *core.Collection) {
	c.ListRule = r.List
	c.ViewRule = r.View
	c.CreateRule = r.Create
	c.UpdateRule = r.Update
	c.DeleteRule = r.Delete
}

// Fragments of the rules.
const (
	// ruleSignedIn admits a signed-in users account.
	ruleSignedIn = `@request.auth.collectionName = "users"`
	ruleRole     = `@request.auth.role = "` + domain.RoleSupervisor + `"`
	// ruleMover finds the new team of a move through its own join (the
	// "mover" alias): conditions on the same @request.auth.teams path share
	// one joined row, so that path cannot match both the old and the new
	// team of a move between two of the user's teams.
	ruleMover = `@collection.users:mover.id ?= @request.auth.id && @collection.users:mover.teams.id ?= @request.body.team`
	// ruleUnresolved lets a journal entry be resolved once, by choosing a
	// resolution; the rest of it is written by the server.
	ruleUnresolved = `resolved_at = "" && @request.body.resolution:isset = true`
	// ruleRevokeOnly lets a device be revoked (never un-revoked) and
	// nothing else of it be written.
	ruleRevokeOnly = `@request.body.revoked = true` +
		` && @request.body.user:isset = false && @request.body.name:isset = false && @request.body.platform:isset = false` +
		` && @request.body.app_version:isset = false && @request.body.last_seen:isset = false` +
		` && @request.body.last_cursor:isset = false && @request.body.pending:isset = false` +
		` && @request.body.last_push:isset = false && @request.body.last_pull:isset = false` +
		` && @request.body.storage:isset = false && @request.body.clock_skew_ms:isset = false`
	// ruleSelfService lets users edit their own account but not their role
	// or teams.
	ruleSelfService = `id = @request.auth.id && @request.body.role:isset = false && @request.body.teams:isset = false`
)

// teamRef says where a rule finds the team of a record: its own "team"
// relation, or the teams of a user it belongs to (a multiple relation).
type teamRef struct {
	path  string
	multi bool
}

var (
	ownTeam    = teamRef{path: "team"}
	userTeams  = teamRef{path: "teams.id", multi: true}
	ownerTeams = teamRef{path: "user.teams.id", multi: true}
)

func (r teamRef) member() string {
	if r.multi {
		return r.path + ` ?= @request.auth.teams.id`
	}
	return `@request.auth.teams.id ?= ` + r.path
}

// render returns the rule admitting exactly the users accounts that meet n
// in the record's team; nil for Nobody.
func render(n Need, ref teamRef) *string {
	var rule string
	switch n {
	case SignedIn:
		rule = ruleSignedIn
	case Member:
		rule = ruleSignedIn + ` && ` + ref.member()
	case Supervisor:
		rule = ruleSignedIn + ` && ` + ref.member() + ` && ` + ruleRole
	default:
		return nil
	}
	return &rule
}

// and appends conditions to a rule; a nil rule stays nil.
func and(rule *string, conds ...string) *string {
	if rule == nil {
		return nil
	}
	out := *rule
	for _, c := range conds {
		if c != "" {
			out += ` && ` + c
		}
	}
	return &out
}

// or admits whoever one of the rules admits; nil rules admit nobody.
func or(a string, b *string) *string {
	if b == nil {
		return &a
	}
	out := a + ` || (` + *b + `)`
	return &out
}

// stayInTeam is the condition of an update on a team move: no new team, the
// same team, or a new team that meets the Move need.
func stayInTeam(n Need) string {
	switch n {
	case SignedIn:
		return "" // any team
	case Member:
		return `(@request.body.team:isset = false || @request.body.team = team || (` + ruleMover + `))`
	case Supervisor:
		return `(@request.body.team:isset = false || @request.body.team = team || (` + ruleMover + ` && ` + ruleRole + `))`
	}
	return `(@request.body.team:isset = false || @request.body.team = team)`
}

// RulesFor returns the API rules of collection rendered from the policy.
// A collection the policy does not know is for superusers only.
func RulesFor(collection string) Rules {
	need := func(a Action) Need { return NeedOf(collection, a) }
	switch collection {
	case domain.Users:
		read := or(`id = @request.auth.id`, render(need(Read), userTeams))
		self := ruleSelfService
		return Rules{List: read, View: read, Update: &self}
	case domain.Devices:
		read := or(`user = @request.auth.id`, render(need(Read), ownerTeams))
		return Rules{List: read, View: read, Update: and(render(need(Revoke), ownerTeams), ruleRevokeOnly)}
	case domain.SyncConflicts:
		read := render(need(Read), ownTeam)
		return Rules{List: read, View: read, Update: and(render(need(Resolve), ownTeam), ruleUnresolved)}
	}
	read := render(need(Read), ownTeam)
	return Rules{
		List:   read,
		View:   read,
		Create: render(need(Create), ownTeam),
		Update: and(render(need(Update), ownTeam), stayInTeam(need(Move))),
		Delete: render(need(Delete), ownTeam),
	}
}

// TeamRule returns the rule admitting the users accounts that meet n in the
// team of a record with a "team" relation, for collections outside the
// policy's table that follow it; "" for Nobody.
func TeamRule(n Need) string {
	if r := render(n, ownTeam); r != nil {
		return *r
	}
	return ""
}
