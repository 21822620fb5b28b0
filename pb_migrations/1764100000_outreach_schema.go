// Package migrations holds Strada's schema as Go migrations registered with
// PocketBase, so that `strada migrate up|down|history-sync` manages it.
package migrations

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"

	"strada/internal/domain"
	"strada/internal/teamscope"
)

// API rules come from the team policy (internal/teamscope): every
// collection it governs takes its rules from teamscope.RulesFor, and
// collections of other migrations that hold a team use these.
var (
	ruleMember     = teamscope.TeamRule(teamscope.Member)
	ruleSupervisor = teamscope.TeamRule(teamscope.Supervisor)
)

// uuidV7Pattern is the id format of field-work records: made on the device,
// time-ordered, lowercase.
const uuidV7Pattern = `^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`

func init() {
	m.Register(upOutreachSchema, downOutreachSchema)
}

func ptr(s string) *string { return &s }

func upOutreachSchema(app core.App) error {
	teams := core.NewBaseCollection(domain.Teams)
	teams.Fields.Add(
		&core.TextField{Name: "name", Required: true, Max: 200, Presentable: true},
		&core.SelectField{Name: "kind", Required: true, MaxSelect: 1, Values: domain.TeamKinds},
	)
	addTimestamps(teams)
	teams.AddIndex("idx_teams_name", true, "name", "")
	teamscope.RulesFor(teams.Name).Apply(teams)
	if err := app.Save(teams); err != nil {
		return fmt.Errorf("create teams: %w", err)
	}

	users, err := app.FindCollectionByNameOrId(domain.Users)
	if err != nil {
		return fmt.Errorf("find users: %w", err)
	}
	users.Fields.Add(
		&core.SelectField{Name: "role", Required: true, MaxSelect: 1, Values: domain.Roles},
		&core.RelationField{Name: "teams", CollectionId: teams.Id, MaxSelect: 50},
		&core.SelectField{Name: "locale", MaxSelect: 1, Values: domain.Locales},
	)
	// Users see themselves and the members of their teams; only superusers
	// create accounts or change roles and teams.
	teamscope.RulesFor(users.Name).Apply(users)
	users.PasswordAuth.Enabled = true
	if err := app.Save(users); err != nil {
		return fmt.Errorf("update users: %w", err)
	}

	sites := core.NewBaseCollection(domain.Sites)
	sites.Fields.Add(
		&core.TextField{Name: "name", Required: true, Max: 200, Presentable: true},
		&core.SelectField{Name: "kind", Required: true, MaxSelect: 1, Values: domain.SiteKinds},
		&core.TextField{Name: "municipio", Max: 20},
		&core.TextField{Name: "address", Max: 300},
		&core.RelationField{Name: "team", CollectionId: teams.Id, MaxSelect: 1},
	)
	addTimestamps(sites)
	sites.AddIndex("idx_sites_team", false, "team", "")
	teamscope.RulesFor(sites.Name).Apply(sites)
	if err := app.Save(sites); err != nil {
		return fmt.Errorf("create sites: %w", err)
	}

	services := core.NewBaseCollection(domain.Services)
	services.Fields.Add(
		&core.TextField{Name: "name", Required: true, Max: 300, Presentable: true},
		&core.TextField{Name: "organisation", Max: 300},
		&core.SelectField{Name: "category", Required: true, MaxSelect: 1, Values: domain.ServiceCategories},
		&core.TextField{Name: "address", Max: 300},
		&core.TextField{Name: "phone", Max: 100},
		&core.EmailField{Name: "email"},
		&core.TextField{Name: "hours", Max: 500},
		&core.TextField{Name: "languages", Max: 200},
		&core.TextField{Name: "notes", Max: 2000},
		&core.BoolField{Name: "active"},
	)
	addTimestamps(services)
	services.AddIndex("idx_services_name", true, "name", "")
	teamscope.RulesFor(services.Name).Apply(services)
	if err := app.Save(services); err != nil {
		return fmt.Errorf("create services: %w", err)
	}

	persons := newFieldWorkCollection(domain.Persons, teams.Id, users.Id)
	persons.Fields.Add(
		&core.TextField{Name: "code", Required: true, Max: 20, Pattern: `^[A-Z]-[0-9A-Z]{4,12}$`, Presentable: true},
		&core.TextField{Name: "given_name", Max: 100},
		&core.TextField{Name: "family_name", Max: 100},
		&core.NumberField{Name: "birth_year", OnlyInt: true, Min: floatPtr(1900), Max: floatPtr(2100)},
		&core.SelectField{Name: "gender", MaxSelect: 1, Values: domain.Genders},
		&core.TextField{Name: "nationality", Max: 100},
		&core.TextField{Name: "languages", Max: 200},
		&core.RelationField{Name: "site", CollectionId: sites.Id, MaxSelect: 1},
		&core.SelectField{Name: "consent", Required: true, MaxSelect: 1, Values: domain.ConsentKinds},
		&core.DateField{Name: "consent_date"},
		&core.TextField{Name: "notes", Max: 5000},
	)
	persons.AddIndex("idx_persons_code", true, "code", "")
	persons.AddIndex("idx_persons_team", false, "team", "")
	// A person is removed by erasure (POST /api/persons/{id}/erase), which
	// also removes every record about them and is audited; superusers keep
	// the plain delete for administration (the policy gives persons no
	// delete rule).
	if err := app.Save(persons); err != nil {
		return fmt.Errorf("create persons: %w", err)
	}

	visits := newFieldWorkCollection(domain.CampVisits, teams.Id, users.Id)
	visits.Fields.Add(
		&core.RelationField{Name: "site", Required: true, CollectionId: sites.Id, MaxSelect: 1},
		&core.DateField{Name: "visited_at", Required: true},
		&core.RelationField{Name: "workers", CollectionId: users.Id, MaxSelect: 20},
		&core.RelationField{Name: "persons_met", CollectionId: persons.Id, MaxSelect: 200},
		&core.NumberField{Name: "households_met", OnlyInt: true, Min: floatPtr(0), Max: floatPtr(1000)},
		&core.SelectField{Name: "topics", MaxSelect: len(domain.VisitTopics), Values: domain.VisitTopics},
		&core.TextField{Name: "needs", Max: 5000},
		&core.TextField{Name: "actions", Max: 5000},
		&core.DateField{Name: "follow_up_on"},
		&core.TextField{Name: "notes", Max: 5000},
	)
	visits.AddIndex("idx_camp_visits_team_visited", false, "team, visited_at", "")
	visits.AddIndex("idx_camp_visits_follow_up", false, "follow_up_on", "follow_up_on != ''")
	if err := app.Save(visits); err != nil {
		return fmt.Errorf("create camp_visits: %w", err)
	}

	contacts := newFieldWorkCollection(domain.SecretariatContacts, teams.Id, users.Id)
	contacts.Fields.Add(
		&core.RelationField{Name: "person", Required: true, CollectionId: persons.Id, MaxSelect: 1, CascadeDelete: true},
		&core.RelationField{Name: "site", Required: true, CollectionId: sites.Id, MaxSelect: 1},
		&core.SelectField{Name: "setting", Required: true, MaxSelect: 1, Values: domain.Settings},
		&core.DateField{Name: "contacted_at", Required: true},
		&core.SelectField{Name: "requests", MaxSelect: len(domain.ContactRequests), Values: domain.ContactRequests},
		&core.TextField{Name: "actions", Max: 5000},
		&core.TextField{Name: "next_steps", Max: 5000},
		&core.DateField{Name: "follow_up_on"},
		&core.TextField{Name: "notes", Max: 5000},
	)
	contacts.AddIndex("idx_secretariat_contacts_team_contacted", false, "team, contacted_at", "")
	contacts.AddIndex("idx_secretariat_contacts_person", false, "person", "")
	contacts.AddIndex("idx_secretariat_contacts_follow_up", false, "follow_up_on", "follow_up_on != ''")
	if err := app.Save(contacts); err != nil {
		return fmt.Errorf("create secretariat_contacts: %w", err)
	}

	referrals := newFieldWorkCollection(domain.Referrals, teams.Id, users.Id)
	referrals.Fields.Add(
		&core.RelationField{Name: "person", Required: true, CollectionId: persons.Id, MaxSelect: 1, CascadeDelete: true},
		&core.RelationField{Name: "service", Required: true, CollectionId: services.Id, MaxSelect: 1},
		&core.RelationField{Name: "source_visit", CollectionId: visits.Id, MaxSelect: 1},
		&core.RelationField{Name: "source_contact", CollectionId: contacts.Id, MaxSelect: 1},
		&core.TextField{Name: "reason", Required: true, Max: 2000},
		&core.SelectField{Name: "status", Required: true, MaxSelect: 1, Values: domain.ReferralStatuses},
		&core.DateField{Name: "due_on"},
		&core.TextField{Name: "outcome", Max: 5000},
		&core.TextField{Name: "notes", Max: 5000},
	)
	referrals.AddIndex("idx_referrals_team_status", false, "team, status", "")
	referrals.AddIndex("idx_referrals_person", false, "person", "")
	referrals.AddIndex("idx_referrals_due", false, "due_on", "due_on != ''")
	if err := app.Save(referrals); err != nil {
		return fmt.Errorf("create referrals: %w", err)
	}

	events := core.NewBaseCollection(domain.ReferralEvents)
	events.Fields.Add(
		&core.RelationField{Name: "referral", Required: true, CollectionId: referrals.Id, MaxSelect: 1, CascadeDelete: true},
		&core.RelationField{Name: "team", Required: true, CollectionId: teams.Id, MaxSelect: 1},
		&core.RelationField{Name: "actor", CollectionId: users.Id, MaxSelect: 1},
		&core.SelectField{Name: "from_status", MaxSelect: 1, Values: domain.ReferralStatuses},
		&core.SelectField{Name: "to_status", Required: true, MaxSelect: 1, Values: domain.ReferralStatuses},
		&core.TextField{Name: "note", Max: 2000},
		&core.NumberField{Name: "version", OnlyInt: true},
	)
	addTimestamps(events)
	events.AddIndex("idx_referral_events_referral", false, "referral, created", "")
	events.AddIndex("idx_referral_events_team", false, "team", "")
	// The history is written by the server only; members of the team read it.
	teamscope.RulesFor(events.Name).Apply(events)
	if err := app.Save(events); err != nil {
		return fmt.Errorf("create referral_events: %w", err)
	}

	devices := core.NewBaseCollection(domain.Devices)
	// A device may name itself with a UUID made at install time, so that a
	// registration retried after a lost answer finds the same device.
	deviceID := devices.Fields.GetByName("id").(*core.TextField)
	deviceID.Pattern = `^([a-z0-9]{15}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`
	deviceID.Max = 36
	devices.Fields.Add(
		&core.RelationField{Name: "user", Required: true, CollectionId: users.Id, MaxSelect: 1, CascadeDelete: true},
		&core.TextField{Name: "name", Required: true, Max: 100, Presentable: true},
		&core.TextField{Name: "platform", Max: 100},
		&core.TextField{Name: "app_version", Max: 50},
		&core.DateField{Name: "last_seen"},
		&core.TextField{Name: "last_cursor", Max: 200},
		&core.NumberField{Name: "pending", OnlyInt: true, Min: floatPtr(0)},
		&core.BoolField{Name: "revoked"},
	)
	addTimestamps(devices)
	devices.AddIndex("idx_devices_user", false, "user", "")
	// A user sees their own devices; a supervisor sees the devices of the
	// members of their teams and may revoke one (never un-revoke), and
	// nothing else.
	teamscope.RulesFor(devices.Name).Apply(devices)
	if err := app.Save(devices); err != nil {
		return fmt.Errorf("create devices: %w", err)
	}
	return nil
}

func downOutreachSchema(app core.App) error {
	for _, name := range []string{
		domain.Devices, domain.ReferralEvents, domain.Referrals, domain.SecretariatContacts,
		domain.CampVisits, domain.Persons, domain.Services, domain.Sites,
	} {
		c, err := app.FindCollectionByNameOrId(name)
		if err != nil {
			return fmt.Errorf("find %s: %w", name, err)
		}
		if err := app.Delete(c); err != nil {
			return fmt.Errorf("delete %s: %w", name, err)
		}
	}
	users, err := app.FindCollectionByNameOrId(domain.Users)
	if err != nil {
		return fmt.Errorf("find users: %w", err)
	}
	// PocketBase's own rules of the users collection: the ones above name
	// the fields removed here.
	users.ListRule = ptr("id = @request.auth.id")
	users.ViewRule = ptr("id = @request.auth.id")
	users.CreateRule = ptr("")
	users.UpdateRule = ptr("id = @request.auth.id")
	users.DeleteRule = ptr("id = @request.auth.id")
	users.Fields.RemoveByName("role")
	users.Fields.RemoveByName("teams")
	users.Fields.RemoveByName("locale")
	if err := app.Save(users); err != nil {
		return fmt.Errorf("restore users: %w", err)
	}
	teams, err := app.FindCollectionByNameOrId(domain.Teams)
	if err != nil {
		return fmt.Errorf("find teams: %w", err)
	}
	return app.Delete(teams)
}

// newFieldWorkCollection returns a collection for records made in the field:
// a device-made UUIDv7 id, a team scope, a server-managed version and
// authorship, and the policy's rules.
func newFieldWorkCollection(name, teamsID, usersID string) *core.Collection {
	c := core.NewBaseCollection(name)
	id := c.Fields.GetByName("id").(*core.TextField)
	id.Pattern = uuidV7Pattern
	id.Min = 36
	id.Max = 36
	id.AutogeneratePattern = "" // set from a UUIDv7 by the server when absent
	c.Fields.Add(
		&core.RelationField{Name: "team", Required: true, CollectionId: teamsID, MaxSelect: 1},
		&core.NumberField{Name: "version", OnlyInt: true, Min: floatPtr(0)},
		&core.RelationField{Name: "created_by", CollectionId: usersID, MaxSelect: 1},
		&core.RelationField{Name: "updated_by", CollectionId: usersID, MaxSelect: 1},
	)
	addTimestamps(c)
	// PocketBase checks a new custom-format id against the existing ones
	// case-insensitively; this index answers that check without a scan.
	c.AddIndex("idx_"+name+"_id_nocase", true, "id COLLATE NOCASE", "")
	teamscope.RulesFor(name).Apply(c)
	return c
}

func addTimestamps(c *core.Collection) {
	c.Fields.Add(
		&core.AutodateField{Name: "created", OnCreate: true},
		&core.AutodateField{Name: "updated", OnCreate: true, OnUpdate: true},
	)
}

func floatPtr(f float64) *float64 { return &f }
