package migrations

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"

	"strada/internal/domain"
)

// Conflict resolutions a person may choose.
var conflictResolutions = []string{"keep_current", "restore_overwritten"}

func init() {
	m.Register(upSync, downSync)
}

func upSync(app core.App) error {
	// The mutation ledger: the first result of every mutation id, so that a
	// retried push returns it instead of applying twice. Results only, never
	// the mutation's fields.
	_, err := app.DB().NewQuery(`
		CREATE TABLE strada_mutations (
			id         TEXT PRIMARY KEY NOT NULL,
			user_id    TEXT NOT NULL,
			device_id  TEXT NOT NULL,
			result     TEXT NOT NULL,
			at         TEXT NOT NULL
		);
		CREATE INDEX idx_strada_mutations_device ON strada_mutations (device_id, at);
	`).Execute()
	if err != nil {
		return fmt.Errorf("create strada_mutations: %w", err)
	}

	teams, err := app.FindCollectionByNameOrId(domain.Teams)
	if err != nil {
		return err
	}
	users, err := app.FindCollectionByNameOrId(domain.Users)
	if err != nil {
		return err
	}

	conflicts := core.NewBaseCollection(domain.SyncConflicts)
	conflicts.Fields.Add(
		&core.TextField{Name: "collection", Required: true, Max: 50},
		&core.TextField{Name: "record_id", Required: true, Max: 36},
		&core.TextField{Name: "field", Required: true, Max: 50},
		// The person the record is about, so that erasing them erases the
		// values journaled about them, whatever became of the record.
		&core.TextField{Name: "person", Max: 36},
		&core.SelectField{Name: "kind", Required: true, MaxSelect: 1, Values: []string{"same_field", "delete_over_edit", "rejected_transition"}},
		&core.RelationField{Name: "team", Required: true, CollectionId: teams.Id, MaxSelect: 1},
		&core.JSONField{Name: "kept_value", MaxSize: 1 << 16},
		&core.JSONField{Name: "overwritten_value", MaxSize: 1 << 16},
		&core.RelationField{Name: "kept_by", CollectionId: users.Id, MaxSelect: 1},
		&core.TextField{Name: "kept_device", Max: 36},
		&core.TextField{Name: "kept_mutation", Max: 36},
		&core.DateField{Name: "kept_at"},
		&core.RelationField{Name: "overwritten_by", CollectionId: users.Id, MaxSelect: 1},
		&core.TextField{Name: "overwritten_device", Max: 36},
		&core.DateField{Name: "overwritten_at"},
		&core.NumberField{Name: "base_version", OnlyInt: true},
		&core.NumberField{Name: "version", OnlyInt: true},
		&core.SelectField{Name: "resolution", MaxSelect: 1, Values: conflictResolutions},
		&core.TextField{Name: "resolution_note", Max: 1000},
		&core.RelationField{Name: "resolved_by", CollectionId: users.Id, MaxSelect: 1},
		&core.DateField{Name: "resolved_at"},
	)
	addTimestamps(conflicts)
	conflicts.AddIndex("idx_sync_conflicts_team_open", false, "team, resolved_at", "")
	conflicts.AddIndex("idx_sync_conflicts_record", false, "collection, record_id", "")
	conflicts.AddIndex("idx_sync_conflicts_person", false, "person", "person != ''")
	// The record's team reads the journal and resolves an entry by choosing a
	// resolution; everything else in it is written by the server.
	conflicts.ListRule = ptr(ruleMember)
	conflicts.ViewRule = ptr(ruleMember)
	conflicts.UpdateRule = ptr(ruleMember + ` && resolved_at = "" && @request.body.resolution:isset = true`)
	if err := app.Save(conflicts); err != nil {
		return fmt.Errorf("create sync_conflicts: %w", err)
	}

	erasures := core.NewBaseCollection(domain.Erasures)
	erasures.Fields.Add(
		&core.TextField{Name: "collection", Required: true, Max: 50},
		&core.TextField{Name: "record_id", Required: true, Max: 36},
		&core.RelationField{Name: "team", CollectionId: teams.Id, MaxSelect: 1},
		&core.TextField{Name: "reason", Required: true, Max: 500},
		&core.TextField{Name: "erased_by", Required: true, Max: 50},
		&core.NumberField{Name: "records", OnlyInt: true},
		&core.NumberField{Name: "seq", OnlyInt: true},
	)
	addTimestamps(erasures)
	erasures.AddIndex("idx_erasures_team", false, "team, created", "")
	erasures.ListRule = ptr(ruleSupervisor)
	erasures.ViewRule = ptr(ruleSupervisor)
	if err := app.Save(erasures); err != nil {
		return fmt.Errorf("create erasures: %w", err)
	}
	return nil
}

func downSync(app core.App) error {
	for _, name := range []string{domain.Erasures, domain.SyncConflicts} {
		c, err := app.FindCollectionByNameOrId(name)
		if err != nil {
			return err
		}
		if err := app.Delete(c); err != nil {
			return fmt.Errorf("delete %s: %w", name, err)
		}
	}
	_, err := app.DB().NewQuery(`DROP TABLE IF EXISTS strada_mutations`).Execute()
	return err
}
