// Package teamscope is Strada's team access policy, stated once: who may
// read, create, change, move, delete, erase and resolve what, in which team.
//
// One table decides, per collection and action, what a user must be in the
// record's team. The Go paths that bypass PocketBase's API rules (sync push,
// pull and live hints, erasure, the conflict journal, the record hooks) ask
// it through [Subject]; the API rules of every collection are rendered from
// the same table by [RulesFor], so the records API and the sync API decide
// alike.
package teamscope

import (
	"slices"

	"github.com/pocketbase/pocketbase/core"

	"strada/internal/domain"
)

// Action is something a user does to a record of a team.
type Action string

// Actions.
const (
	// Read covers list, view, pull and live hints.
	Read   Action = "read"
	Create Action = "create"
	Update Action = "update"
	// Move gives a record a new team; it is asked of the new team, and the
	// record's current team must allow Update.
	Move   Action = "move"
	Delete Action = "delete"
	// Erase erases a person and every record about them.
	Erase Action = "erase"
	// Resolve resolves an entry of the conflict journal.
	Resolve Action = "resolve"
	// Revoke revokes a device of a member of the team.
	Revoke Action = "revoke"
)

// CodeOtherTeam is the validation code of a write into, or a relation to,
// a team the policy keeps the user out of.
const CodeOtherTeam = "validation_other_team"

// Need is what a user must be in a team to take an action there.
type Need int

// Needs, from the strictest.
const (
	// Nobody: superusers only.
	Nobody Need = iota
	// SignedIn: any signed-in users account, whatever its teams.
	SignedIn
	// Member of the team.
	Member
	// Supervisor: a member of the team with the supervisor role.
	Supervisor
)

// fieldWork is the policy of records made in the field: the team's members
// do everything with them.
var fieldWork = map[Action]Need{Read: Member, Create: Member, Update: Member, Move: Member, Delete: Member}

// policy is the table: for each collection, the need of each action; an
// action missing from a collection's row is for superusers only.
var policy = map[string]map[Action]Need{
	domain.Teams:    {Read: SignedIn},
	domain.Sites:    {Read: SignedIn},
	domain.Services: {Read: SignedIn},
	// A user is read by the members of any of their teams, and by
	// themself.
	domain.Users: {Read: Member},
	// A person leaves only by erasure, which a supervisor orders.
	domain.Persons:             {Read: Member, Create: Member, Update: Member, Move: Member, Erase: Supervisor},
	domain.CampVisits:          fieldWork,
	domain.SecretariatContacts: fieldWork,
	domain.Referrals:           fieldWork,
	// The referral history is written by the server.
	domain.ReferralEvents: {Read: Member},
	domain.SyncConflicts:  {Read: Member, Resolve: Member},
	domain.Erasures:       {Read: Supervisor},
	// A device belongs to a user: its owner reads it; a supervisor of any
	// of the owner's teams reads and revokes it.
	domain.Devices: {Read: Supervisor, Revoke: Supervisor},
}

// NeedOf returns what a user must be in a team to take action a on a
// record of collection there.
func NeedOf(collection string, a Action) Need {
	return policy[collection][a]
}

// Governed lists the collections whose API rules come from the policy.
func Governed() []string {
	out := make([]string, 0, len(policy))
	for name := range policy {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Subject is who asks: a users account with its role and teams, a
// superuser, or nobody (signed out, or another kind of account).
type Subject struct {
	ID        string
	Role      string
	Teams     []string
	Superuser bool
}

// Of returns the subject of an authenticated record; nil is nobody.
func Of(auth *core.Record) Subject {
	switch {
	case auth == nil:
		return Subject{}
	case auth.IsSuperuser():
		return Subject{ID: auth.Id, Superuser: true}
	case auth.Collection().Name == domain.Users:
		return Subject{ID: auth.Id, Role: auth.GetString("role"), Teams: auth.GetStringSlice("teams")}
	}
	return Subject{}
}

// Server is the subject of changes made by server code and superusers
// without a request: it may do everything.
var Server = Subject{Superuser: true}

// user reports whether s is a signed-in users account.
func (s Subject) user() bool { return !s.Superuser && s.ID != "" }

// meets reports whether s meets need n in team.
func (s Subject) meets(n Need, team string) bool {
	switch n {
	case SignedIn:
		return true
	case Member:
		return team != "" && slices.Contains(s.Teams, team)
	case Supervisor:
		return team != "" && slices.Contains(s.Teams, team) && s.Role == domain.RoleSupervisor
	}
	return false
}

// Allows reports whether s may take action a on a record of collection
// that belongs to team.
func (s Subject) Allows(collection string, a Action, team string) bool {
	if s.Superuser {
		return true
	}
	return s.user() && s.meets(NeedOf(collection, a), team)
}

// AllowsAny reports whether s may take action a on a record of collection
// that belongs to several teams at once, in at least one of them: a user
// (their teams), a device (its owner's teams).
func (s Subject) AllowsAny(collection string, a Action, teams []string) bool {
	if s.Superuser {
		return true
	}
	for _, team := range teams {
		if s.Allows(collection, a, team) {
			return true
		}
	}
	return false
}

// AllowsMove reports whether s may change the team of a record of
// collection from one team to another (or keep it, when they are equal).
func (s Subject) AllowsMove(collection, from, to string) bool {
	return s.Allows(collection, Update, from) && (from == to || s.Allows(collection, Move, to))
}

// SeesUser reports whether s may read the users account id, which
// belongs to teams.
func (s Subject) SeesUser(id string, teams []string) bool {
	return (s.user() && s.ID == id) || s.AllowsAny(domain.Users, Read, teams)
}

// TeamsAllowing returns those of s's teams in which s may take action a on
// at least one of collections: the scope of pulls and live hints.
func (s Subject) TeamsAllowing(a Action, collections ...string) []string {
	var out []string
	for _, team := range s.Teams {
		for _, c := range collections {
			if s.Allows(c, a, team) {
				out = append(out, team)
				break
			}
		}
	}
	return out
}
