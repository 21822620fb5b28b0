package migrations

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"

	"strada/internal/changelog"
	"strada/internal/domain"
)

// The supervisor dashboard: what a device reports of its health, and the
// indexes its aggregates read (internal/dashboard, docs/dashboard.md).
func init() {
	m.Register(upDashboard, downDashboard)
}

// deviceStorageModes are the values of devices.storage: whether the
// browser granted persistent storage (navigator.storage.persist()).
var deviceStorageModes = []string{"persisted", "best_effort"}

// dashboardDeviceFields are the device fields the sync API sets from a
// push or pull.
var dashboardDeviceFields = []string{"last_push", "last_pull", "storage", "clock_skew_ms"}

// dashboardIndexes are the indexes of the dashboard's queries, by
// collection: name, columns and partial condition.
var dashboardIndexes = []struct {
	collection, name, columns, where string
}{
	// The latest visit of each camp closes the follow-ups of earlier ones.
	{domain.CampVisits, "idx_camp_visits_team_site_visited", "team, site, visited_at", ""},
	// Follow-ups due, and the later contact with the same person that
	// closes one.
	{domain.SecretariatContacts, "idx_secretariat_contacts_team_follow_up", "team, follow_up_on", "follow_up_on != ''"},
	{domain.SecretariatContacts, "idx_secretariat_contacts_person_contacted", "person, contacted_at", ""},
	// The pipeline by status and service, overdue referrals, new ones.
	{domain.Referrals, "idx_referrals_team_status_service", "team, status, service", ""},
	{domain.Referrals, "idx_referrals_team_status_due", "team, status, due_on", ""},
	{domain.Referrals, "idx_referrals_team_created", "team, created", ""},
	// Outcomes in a period and when a referral was last sent.
	{domain.ReferralEvents, "idx_referral_events_team_to_created", "team, to_status, created", ""},
	{domain.ReferralEvents, "idx_referral_events_referral_to", "referral, to_status, created", ""},
	// New persons of a week.
	{domain.Persons, "idx_persons_team_created", "team, created", ""},
}

func upDashboard(app core.App) error {
	devices, err := app.FindCollectionByNameOrId(domain.Devices)
	if err != nil {
		return fmt.Errorf("find devices: %w", err)
	}
	devices.Fields.Add(
		&core.DateField{Name: "last_push"},
		&core.DateField{Name: "last_pull"},
		&core.SelectField{Name: "storage", MaxSelect: 1, Values: deviceStorageModes},
		// The device's clock minus the server's, in milliseconds, at its
		// last push or pull.
		&core.NumberField{Name: "clock_skew_ms", OnlyInt: true},
	)
	if err := app.Save(devices); err != nil {
		return fmt.Errorf("add device health fields: %w", err)
	}
	for _, ix := range dashboardIndexes {
		c, err := app.FindCollectionByNameOrId(ix.collection)
		if err != nil {
			return fmt.Errorf("find %s: %w", ix.collection, err)
		}
		c.AddIndex(ix.name, false, ix.columns, ix.where)
		if err := app.Save(c); err != nil {
			return fmt.Errorf("add index %s: %w", ix.name, err)
		}
	}
	// The change log by team and commit time: the offline lag of a period
	// and the activity feed.
	if _, err := app.DB().NewQuery(`CREATE INDEX idx_strada_changes_team_at ON ` + changelog.Table + ` (team, at)`).Execute(); err != nil {
		return fmt.Errorf("add change log index: %w", err)
	}
	return nil
}

func downDashboard(app core.App) error {
	if _, err := app.DB().NewQuery(`DROP INDEX IF EXISTS idx_strada_changes_team_at`).Execute(); err != nil {
		return fmt.Errorf("drop change log index: %w", err)
	}
	for i := len(dashboardIndexes) - 1; i >= 0; i-- {
		ix := dashboardIndexes[i]
		c, err := app.FindCollectionByNameOrId(ix.collection)
		if err != nil {
			return fmt.Errorf("find %s: %w", ix.collection, err)
		}
		c.RemoveIndex(ix.name)
		if err := app.Save(c); err != nil {
			return fmt.Errorf("drop index %s: %w", ix.name, err)
		}
	}
	devices, err := app.FindCollectionByNameOrId(domain.Devices)
	if err != nil {
		return fmt.Errorf("find devices: %w", err)
	}
	for _, name := range dashboardDeviceFields {
		devices.Fields.RemoveByName(name)
	}
	if err := app.Save(devices); err != nil {
		return fmt.Errorf("remove device health fields: %w", err)
	}
	return nil
}
