// Package integrity keeps field-work records consistent whatever path writes
// them: device-made ids, pseudonymous person codes, relations that never
// cross a team boundary, and the referral state machine with its history.
package integrity

import (
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/list"

	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/teamscope"
)

// AssignID gives a new field-work record a UUIDv7 id when the client sent
// none. Bound to OnRecordCreate.
func AssignID(e *core.RecordEvent) error {
	if e.Record.Id == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("make record id: %w", err)
		}
		e.Record.Id = id.String()
		return e.Next()
	}
	// An id is never used twice: devices may still hold edits of a deleted
	// or erased record under it.
	tomb, err := changelog.Tombstone(e.App, e.Record.Collection().Name, e.Record.Id)
	if err != nil {
		return err
	}
	if err := ReusedID(tomb); err != nil {
		return err
	}
	return e.Next()
}

// ReusedID is the validation error of a new record under an id whose last
// change was tomb: a delete or an erasure refuses it; nil otherwise.
func ReusedID(tomb changelog.Op) error {
	switch tomb {
	case changelog.OpPurge:
		return validation.Errors{"id": validation.NewError("validation_record_erased", "This id belonged to an erased record.")}
	case changelog.OpDelete:
		return validation.Errors{"id": validation.NewError("validation_record_deleted", "This id belonged to a deleted record.")}
	}
	return nil
}

// Person codes are "P-" and the tail of the person's id, codeTailMin
// characters long, lengthened by codeTailStep up to codeTailMax while a
// person of the same team has the code.
const (
	codePrefix   = "P-"
	codeTailMin  = 8
	codeTailMax  = 12
	codeTailStep = 2
)

// AssignPersonCode gives a new person a pseudonymous code when the client
// sent none. The code is taken from the random tail of the id, so devices
// make it offline without coordination; codes are unique within a team
// only, and a code already used in the person's team is lengthened until it
// is free. The team's unique index catches a concurrent collision, which
// the client resolves by choosing another code.
func AssignPersonCode(e *core.RecordEvent) error {
	if e.Record.GetString("code") == "" {
		code, err := freeCode(e.App, e.Record.GetString("team"), e.Record.Id)
		if err != nil {
			return err
		}
		e.Record.Set("code", code)
	}
	return e.Next()
}

// freeCode returns the shortest code made from id that no person of team
// has; the shortest one when all are taken, which validation then refuses.
func freeCode(app core.App, team, id string) (string, error) {
	tail := strings.ToUpper(strings.ReplaceAll(id, "-", ""))
	var candidates []string
	for n := codeTailMin; n <= codeTailMax && n <= len(tail); n += codeTailStep {
		candidates = append(candidates, codePrefix+tail[len(tail)-n:])
	}
	if len(candidates) == 0 {
		return codePrefix + tail, nil
	}
	var taken []string
	err := app.NonconcurrentDB().Select("code").From(domain.Persons).
		Where(dbx.HashExp{"team": team}).AndWhere(dbx.In("code", toAny(candidates)...)).
		Column(&taken)
	if err != nil {
		return "", fmt.Errorf("read person codes of team %s: %w", team, err)
	}
	for _, c := range candidates {
		if !slices.Contains(taken, c) {
			return c, nil
		}
	}
	return candidates[0], nil
}

// relationRule names a relation field of a field-work collection and how
// the related record's team is found.
type relationRule struct {
	field      string
	collection string
	// teamColumn is the column of the related record holding its team; for
	// users it is their multiple "teams" relation.
	teamColumn string
	// sharedOK lets a related record without a team (shared by all teams).
	sharedOK bool
}

var relationRules = map[string][]relationRule{
	domain.Persons: {
		{field: "site", collection: domain.Sites, teamColumn: "team", sharedOK: true},
	},
	domain.CampVisits: {
		{field: "site", collection: domain.Sites, teamColumn: "team", sharedOK: true},
		{field: "workers", collection: domain.Users, teamColumn: "teams"},
		{field: "persons_met", collection: domain.Persons, teamColumn: "team"},
	},
	domain.SecretariatContacts: {
		{field: "person", collection: domain.Persons, teamColumn: "team"},
		{field: "site", collection: domain.Sites, teamColumn: "team", sharedOK: true},
	},
	domain.Referrals: {
		{field: "person", collection: domain.Persons, teamColumn: "team"},
		{field: "source_visit", collection: domain.CampVisits, teamColumn: "team"},
		{field: "source_contact", collection: domain.SecretariatContacts, teamColumn: "team"},
	},
}

// Validation codes of the team scope; a relation to a record of another
// team that the actor may read, or to a site of another team, is refused
// with [teamscope.CodeOtherTeam].
const (
	// CodeMissingRecords is PocketBase's answer to a relation to ids that
	// do not exist. A relation to records the actor may not read is
	// answered the same, with the same message, so that no answer tells
	// an id of another team from an id that does not exist.
	CodeMissingRecords = "validation_missing_rel_records"
	// CodeNotUnique refuses a person code already used in the team.
	CodeNotUnique = "validation_not_unique"
)

// missingRecordsMessage is PocketBase's message for CodeMissingRecords.
const missingRecordsMessage = "Failed to find all relation records with the provided ids"

// ValidatePriority binds [ValidateTeamScope] after every other validation
// handler and right before PocketBase's own field validation (priority
// 99), whose errors it joins: a relation to a record the actor may not
// read then gets exactly the errors a relation to a missing id gets.
const ValidatePriority = 98

// ValidateTeamScope refuses a field-work record whose relations point at a
// record of another team, or a person whose code another person of the
// team has, naming the field. A related record the actor may not read is
// reported as missing, as PocketBase reports an id that does not exist.
// Bound to OnRecordValidate with [ValidatePriority].
func ValidateTeamScope(e *core.RecordEvent) error {
	err := e.Next()
	fieldErrs := validation.Errors{}
	if err != nil && !errors.As(err, &fieldErrs) {
		return err
	}
	own, scopeErr := teamScopeErrors(e)
	if scopeErr != nil {
		return scopeErr
	}
	if len(own) == 0 {
		return err
	}
	joined := validation.Errors{}
	for field, fe := range fieldErrs {
		joined[field] = fe
	}
	for field, fe := range own {
		if _, reported := joined[field]; !reported {
			joined[field] = fe
		}
	}
	return joined
}

// teamScopeErrors returns the team scope's errors of the record, by field.
func teamScopeErrors(e *core.RecordEvent) (validation.Errors, error) {
	team := e.Record.GetString("team")
	errs := validation.Errors{}
	var actor *teamscope.Subject
	for _, rule := range relationRules[e.Record.Collection().Name] {
		ids := e.Record.GetStringSlice(rule.field)
		if len(ids) == 0 || team == "" {
			continue
		}
		bad, err := outsideTeam(e.App, rule, ids, team)
		if err != nil {
			return nil, err
		}
		if len(bad) == 0 {
			continue
		}
		if actor == nil {
			s, err := actorSubject(e.App, changelog.ActorFrom(e.Context))
			if err != nil {
				return nil, err
			}
			actor = &s
		}
		var seen []string
		hidden := false
		for _, r := range bad {
			if !rule.visible(*actor, r) {
				hidden = true
				break
			}
			seen = append(seen, r.id)
		}
		if hidden {
			errs[rule.field] = validation.NewError(CodeMissingRecords, missingRecordsMessage)
			continue
		}
		errs[rule.field] = validation.NewError(teamscope.CodeOtherTeam,
			fmt.Sprintf("%s must belong to the record's team; not in it: %s", rule.field, strings.Join(seen, ", ")))
	}
	if kind := requiredSiteKind(e.Record); kind != "" && errs["site"] == nil {
		if err := checkSiteKind(e.App, e.Record.GetString("site"), kind); err != nil {
			errs["site"] = err
		}
	}
	if e.Record.Collection().Name == domain.Persons {
		taken, err := codeTaken(e.App, e.Record)
		if err != nil {
			return nil, err
		}
		if taken {
			errs["code"] = validation.NewError(CodeNotUnique, "Another person of this team has this code; choose another.")
		}
	}
	return errs, nil
}

// codeTaken reports whether another person of r's team has r's code.
func codeTaken(app core.App, r *core.Record) (bool, error) {
	code, team := r.GetString("code"), r.GetString("team")
	if code == "" || team == "" {
		return false, nil
	}
	var n int
	err := app.NonconcurrentDB().Select("count(*)").From(domain.Persons).
		Where(dbx.HashExp{"team": team, "code": code}).
		AndWhere(dbx.Not(dbx.HashExp{"id": r.Id})).
		Row(&n)
	if err != nil {
		return false, fmt.Errorf("check person code in team %s: %w", team, err)
	}
	return n > 0, nil
}

// actorSubject is who the policy judges a change by: the users account
// behind it, or the server (superusers, server code), which sees every
// team.
func actorSubject(app core.App, a changelog.Actor) (teamscope.Subject, error) {
	if a.User == "" {
		return teamscope.Server, nil
	}
	user, err := app.FindRecordById(domain.Users, a.User)
	if errors.Is(err, sql.ErrNoRows) {
		return teamscope.Server, nil // a superuser
	}
	if err != nil {
		return teamscope.Subject{}, fmt.Errorf("read actor %s: %w", a.User, err)
	}
	return teamscope.Of(user), nil
}

// requiredSiteKind is the kind of site a record must be at: camp visits at a
// camp, intra-mural contacts in a prison, extra-mural ones at the office.
func requiredSiteKind(r *core.Record) string {
	switch r.Collection().Name {
	case domain.CampVisits:
		return "camp"
	case domain.SecretariatContacts:
		if r.GetString("setting") == "extra" {
			return "office"
		}
		return "prison"
	}
	return ""
}

func checkSiteKind(app core.App, siteID, kind string) error {
	if siteID == "" {
		return nil
	}
	var got string
	err := app.NonconcurrentDB().Select("kind").From(domain.Sites).Where(dbx.HashExp{"id": siteID}).Row(&got)
	if err != nil {
		return nil // the relation field reports a missing site itself
	}
	if got != kind {
		return validation.NewError("validation_site_kind", fmt.Sprintf("site must be a %s", kind))
	}
	return nil
}

// related is a record a relation points at, with its team or, for a
// user, their teams.
type related struct {
	id    string
	teams []string
}

// visible reports whether subject may read the related record.
func (rule relationRule) visible(subject teamscope.Subject, r related) bool {
	if rule.collection == domain.Users {
		return subject.SeesUser(r.id, r.teams)
	}
	return subject.AllowsAny(rule.collection, teamscope.Read, r.teams)
}

// outsideTeam returns the related records among ids that do not belong to
// team.
func outsideTeam(app core.App, rule relationRule, ids []string, team string) ([]related, error) {
	type teamRow struct {
		ID   string `db:"id"`
		Team string `db:"t"`
	}
	var rows []teamRow
	err := app.NonconcurrentDB().
		Select("id", "[["+rule.teamColumn+"]] AS t").
		From(rule.collection).
		Where(dbx.In("id", toAny(ids)...)).
		All(&rows)
	if err != nil {
		return nil, fmt.Errorf("check team of %s: %w", rule.field, err)
	}
	teamOf := make(map[string]string, len(rows))
	for _, r := range rows {
		teamOf[r.ID] = r.Team
	}
	var bad []related
	for _, id := range ids {
		t, found := teamOf[id]
		if !found {
			continue // the relation field reports a missing record itself
		}
		if rule.teamColumn == "teams" {
			teams := list.ToUniqueStringSlice(t)
			if !slices.Contains(teams, team) {
				bad = append(bad, related{id: id, teams: teams})
			}
			continue
		}
		if t == team || (rule.sharedOK && t == "") {
			continue
		}
		bad = append(bad, related{id: id, teams: []string{t}})
	}
	return bad, nil
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// ValidateReferralStatus enforces the referral state machine for the actor
// of the change. Bound to OnRecordValidate of referrals.
func ValidateReferralStatus(e *core.RecordEvent) error {
	if _, _, err := checkTransition(e); err != nil {
		return err
	}
	return e.Next()
}

// checkTransition checks the referral's status change against the committed
// status and the actor's role, and returns both statuses.
func checkTransition(e *core.RecordEvent) (from, to string, err error) {
	to = e.Record.GetString("status")
	if !e.Record.IsNew() {
		committed, err := e.App.FindRecordById(domain.Referrals, e.Record.Id)
		if err != nil {
			return "", "", fmt.Errorf("read referral %s: %w", e.Record.Id, err)
		}
		from = committed.GetString("status")
	}
	role, err := actorRole(e.App, changelog.ActorFrom(e.Context))
	if err != nil {
		return "", "", err
	}
	if err := domain.CheckReferralTransition(role, from, to); err != nil {
		var te *domain.TransitionError
		if errors.As(err, &te) {
			return "", "", validation.Errors{"status": validation.NewError("validation_invalid_transition", err.Error())}
		}
		return "", "", err
	}
	return from, to, nil
}

// actorRole is the role of the user behind a change; changes made without a
// users account (superusers, server code) act as a supervisor.
func actorRole(app core.App, a changelog.Actor) (string, error) {
	if a.User == "" {
		return domain.RoleSupervisor, nil
	}
	user, err := app.FindRecordById(domain.Users, a.User)
	if err != nil {
		return domain.RoleSupervisor, nil // a superuser
	}
	return user.GetString("role"), nil
}

// RecordReferralHistory appends a referral_events row whenever a referral is
// created or its status changes, in the same transaction. Bound to
// OnRecordCreateExecute and OnRecordUpdateExecute of referrals, inside the
// change log's transaction.
func RecordReferralHistory(e *core.RecordEvent) error {
	// Checked again under the write lock: a concurrent change may have moved
	// the referral since validation.
	from, to, err := checkTransition(e)
	if err != nil {
		return err
	}
	isNew := e.Record.IsNew()
	if err := e.Next(); err != nil {
		return err
	}
	if !isNew && from == to {
		return nil
	}
	events, err := e.App.FindCachedCollectionByNameOrId(domain.ReferralEvents)
	if err != nil {
		return fmt.Errorf("find referral_events: %w", err)
	}
	ev := core.NewRecord(events)
	ev.Set("referral", e.Record.Id)
	ev.Set("team", e.Record.GetString("team"))
	actor := changelog.ActorFrom(e.Context)
	if actor.User != "" {
		if _, err := e.App.FindRecordById(domain.Users, actor.User); err == nil {
			ev.Set("actor", actor.User)
		}
	}
	ev.Set("from_status", from)
	ev.Set("to_status", to)
	ev.Set("version", e.Record.GetInt("version"))
	if err := e.App.SaveWithContext(e.Context, ev); err != nil {
		return fmt.Errorf("record referral %s status %s -> %s: %w", e.Record.Id, from, to, err)
	}
	return nil
}
