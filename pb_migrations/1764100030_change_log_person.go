package migrations

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"

	"strada/internal/domain"
)

// The change log learns which person each row is about, so that erasing a
// person also purges the rows of their records deleted before the erasure.
// The column is read by the erasure only and never published; an erasure
// empties it. Rows of records that still exist are filled in here.
func init() {
	m.Register(func(app core.App) error {
		_, err := app.DB().NewQuery(fmt.Sprintf(`
			ALTER TABLE strada_changes ADD COLUMN person TEXT NOT NULL DEFAULT '';
			CREATE INDEX idx_strada_changes_person ON strada_changes (person) WHERE person != '';
			UPDATE strada_changes SET person = record_id
				WHERE collection = '%[1]s' AND op != 'purge';
			UPDATE strada_changes SET person = coalesce(
				(SELECT c.person FROM %[2]s c WHERE c.id = strada_changes.record_id), '')
				WHERE collection = '%[2]s';
			UPDATE strada_changes SET person = coalesce(
				(SELECT r.person FROM %[3]s r WHERE r.id = strada_changes.record_id), '')
				WHERE collection = '%[3]s';
			UPDATE strada_changes SET person = coalesce(
				(SELECT r.person FROM %[4]s ev JOIN %[3]s r ON r.id = ev.referral
					WHERE ev.id = strada_changes.record_id), '')
				WHERE collection = '%[4]s';
		`, domain.Persons, domain.SecretariatContacts, domain.Referrals, domain.ReferralEvents)).Execute()
		if err != nil {
			return fmt.Errorf("add person to the change log: %w", err)
		}
		return nil
	}, func(app core.App) error {
		_, err := app.DB().NewQuery(`
			DROP INDEX IF EXISTS idx_strada_changes_person;
			ALTER TABLE strada_changes DROP COLUMN person;
		`).Execute()
		if err != nil {
			return fmt.Errorf("drop person from the change log: %w", err)
		}
		return nil
	})
}
