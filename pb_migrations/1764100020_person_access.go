package migrations

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"

	"strada/internal/accesslog"
	"strada/internal/domain"
)

func init() {
	m.Register(upPersonAccess, downPersonAccess)
}

// upPersonAccess creates the access log of person data. It holds opaque
// ids only: the person and the record as text, not relations, so that an
// erasure leaves the rows (who read an id, when) without anything that
// re-identifies the person, and a deleted account leaves its reads logged.
func upPersonAccess(app core.App) error {
	teams, err := app.FindCollectionByNameOrId(domain.Teams)
	if err != nil {
		return fmt.Errorf("find teams: %w", err)
	}
	c := core.NewBaseCollection(accesslog.Collection)
	c.Fields.Add(
		&core.TextField{Name: "person", Required: true, Max: 36},
		&core.RelationField{Name: "team", Required: true, CollectionId: teams.Id, MaxSelect: 1},
		&core.SelectField{Name: "collection", Required: true, MaxSelect: 1, Values: accesslog.Subjects()},
		&core.TextField{Name: "record", Required: true, Max: 36},
		&core.TextField{Name: "user", Max: 36},
		&core.TextField{Name: "superuser", Max: 36},
		&core.TextField{Name: "device", Max: 36},
		&core.SelectField{Name: "action", Required: true, MaxSelect: 1, Values: accesslog.Actions},
		&core.TextField{Name: "client_id", Max: 36},
		&core.DateField{Name: "client_time"},
		&core.AutodateField{Name: "at", OnCreate: true},
	)
	// Supervisors read their team's rows by time and a person's rows; the
	// nightly pruning finds the oldest rows first in rowid order and needs
	// no index of its own, which keeps each logged read cheap.
	c.AddIndex("idx_person_access_team_at", false, "team, at", "")
	c.AddIndex("idx_person_access_person", false, "person, at", "")
	c.AddIndex("idx_person_access_client_id", true, "client_id", "client_id != ''")
	// The supervisors of the team read it; only the server writes it (the
	// request hooks refuse writes to superusers too).
	c.ListRule = ptr(ruleSupervisor)
	c.ViewRule = ptr(ruleSupervisor)
	if err := app.Save(c); err != nil {
		return fmt.Errorf("create %s: %w", accesslog.Collection, err)
	}
	return nil
}

func downPersonAccess(app core.App) error {
	c, err := app.FindCollectionByNameOrId(accesslog.Collection)
	if err != nil {
		return fmt.Errorf("find %s: %w", accesslog.Collection, err)
	}
	if err := app.Delete(c); err != nil {
		return fmt.Errorf("delete %s: %w", accesslog.Collection, err)
	}
	return nil
}
