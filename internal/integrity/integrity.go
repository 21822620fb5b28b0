// Package integrity keeps field-work records consistent whatever path writes
// them: device-made ids, pseudonymous person codes, relations that never
// cross a team boundary, and the referral state machine with its history.
package integrity

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/changelog"
	"strada/internal/domain"
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
	switch tomb {
	case changelog.OpPurge:
		return validation.Errors{"id": validation.NewError("validation_record_erased", "This id belonged to an erased record.")}
	case changelog.OpDelete:
		return validation.Errors{"id": validation.NewError("validation_record_deleted", "This id belonged to a deleted record.")}
	}
	return e.Next()
}

// AssignPersonCode gives a new person a pseudonymous code when the client
// sent none. The code is taken from the random tail of the id, so devices
// make it offline without coordination; the unique index catches the rare
// collision, which the client resolves by choosing another code.
func AssignPersonCode(e *core.RecordEvent) error {
	if e.Record.GetString("code") == "" {
		tail := strings.ReplaceAll(e.Record.Id, "-", "")
		if len(tail) >= 8 {
			tail = tail[len(tail)-8:]
		}
		e.Record.Set("code", "P-"+strings.ToUpper(tail))
	}
	return e.Next()
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

// ValidateTeamScope refuses a field-work record whose relations point at a
// record of another team, naming the field. Bound to OnRecordValidate.
func ValidateTeamScope(e *core.RecordEvent) error {
	team := e.Record.GetString("team")
	errs := validation.Errors{}
	for _, rule := range relationRules[e.Record.Collection().Name] {
		ids := e.Record.GetStringSlice(rule.field)
		if len(ids) == 0 || team == "" {
			continue
		}
		bad, err := outsideTeam(e.App, rule, ids, team)
		if err != nil {
			return err
		}
		if len(bad) > 0 {
			errs[rule.field] = validation.NewError("validation_other_team",
				fmt.Sprintf("%s must belong to the record's team; not in it: %s", rule.field, strings.Join(bad, ", ")))
		}
	}
	if kind := requiredSiteKind(e.Record); kind != "" {
		if err := checkSiteKind(e.App, e.Record.GetString("site"), kind); err != nil && errs["site"] == nil {
			errs["site"] = err
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return e.Next()
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

// outsideTeam returns those ids whose record does not belong to team.
func outsideTeam(app core.App, rule relationRule, ids []string, team string) ([]string, error) {
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
	var bad []string
	for _, id := range ids {
		t, found := teamOf[id]
		if !found {
			continue // the relation field reports a missing record itself
		}
		if rule.teamColumn == "teams" {
			if !strings.Contains(t, `"`+team+`"`) {
				bad = append(bad, id)
			}
			continue
		}
		if t == team || (rule.sharedOK && t == "") {
			continue
		}
		bad = append(bad, id)
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
