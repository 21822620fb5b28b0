package syncapi

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/teamscope"
)

// conflictEntry is a row of the conflict journal: the value a concurrent
// write kept, the value it overwrote, and who wrote each.
type conflictEntry struct {
	collection, recordID, field, kind, team string
	person                                  string
	kept, overwritten                       any
	keptBy, keptDevice, keptMutation        string
	keptAt                                  time.Time
	overwrittenBy, overwrittenDevice        string
	overwrittenAt                           time.Time
	baseVersion, version                    int
}

func (c *conflictEntry) save(tx core.App) error {
	collection, err := tx.FindCachedCollectionByNameOrId(domain.SyncConflicts)
	if err != nil {
		return fmt.Errorf("find sync_conflicts: %w", err)
	}
	r := core.NewRecord(collection)
	r.Set("collection", c.collection)
	r.Set("record_id", c.recordID)
	r.Set("field", c.field)
	r.Set("kind", c.kind)
	r.Set("team", c.team)
	r.Set("person", c.person)
	r.Set("kept_value", c.kept)
	r.Set("overwritten_value", c.overwritten)
	r.Set("kept_by", userOrEmpty(tx, c.keptBy))
	r.Set("kept_device", c.keptDevice)
	r.Set("kept_mutation", c.keptMutation)
	r.Set("kept_at", c.keptAt)
	r.Set("overwritten_by", userOrEmpty(tx, c.overwrittenBy))
	r.Set("overwritten_device", c.overwrittenDevice)
	if !c.overwrittenAt.IsZero() {
		r.Set("overwritten_at", c.overwrittenAt)
	}
	r.Set("base_version", c.baseVersion)
	r.Set("version", c.version)
	if err := tx.Save(r); err != nil {
		return fmt.Errorf("journal conflict on %s/%s.%s: %w", c.collection, c.recordID, c.field, err)
	}
	return nil
}

// personOf is the person a record is about: itself for a person, its
// person for a contact or a referral, none for a visit (about a household).
func personOf(collection string, r *core.Record) string {
	switch collection {
	case domain.Persons:
		return r.Id
	case domain.SecretariatContacts, domain.Referrals:
		return r.GetString("person")
	}
	return ""
}

func userOrEmpty(app core.App, id string) string {
	if id == "" {
		return ""
	}
	if _, err := app.FindRecordById(domain.Users, id); err != nil {
		return "" // a superuser or server code
	}
	return id
}

// ResolveConflictRequest is bound to the update request hook of
// sync_conflicts: a member of the record's team resolves an entry by
// keeping the current value or restoring the overwritten one, which is
// written back to the record as a new change in the same transaction.
func ResolveConflictRequest(e *core.RecordRequestEvent) error {
	info, err := e.RequestInfo()
	if err != nil {
		return e.BadRequestError("Failed to read the submitted data.", err)
	}
	for key := range info.Body {
		if key != "resolution" && key != "resolution_note" {
			return e.BadRequestError("Only resolution and resolution_note can be written.", validation.Errors{
				key: validation.NewError("validation_server_managed", "This field is written by the server."),
			})
		}
	}
	entry := e.Record
	who := teamscope.Of(e.Auth)
	if !who.Allows(domain.SyncConflicts, teamscope.Resolve, entry.GetString("team")) {
		return e.NotFoundError("", nil) // as the API rules answer
	}
	resolution := entry.GetString("resolution")
	if resolution == "" {
		return e.BadRequestError("Choose a resolution.", validation.Errors{
			"resolution": validation.NewError("validation_required", "keep_current or restore_overwritten"),
		})
	}
	var actor changelog.Actor
	if e.Auth != nil && e.Auth.Collection().Name == domain.Users {
		actor.User = e.Auth.Id
		entry.Set("resolved_by", e.Auth.Id)
	}
	entry.Set("resolved_at", time.Now().UTC())
	if resolution != "restore_overwritten" {
		return e.Next()
	}
	if entry.GetString("kind") == "delete_over_edit" {
		return e.BadRequestError("A deleted record cannot be restored; keep the current state.", validation.Errors{
			"resolution": validation.NewError("validation_not_restorable", "The record was deleted."),
		})
	}
	return e.App.RunInTransaction(func(tx core.App) error {
		collection := entry.GetString("collection")
		rec, err := tx.FindRecordById(collection, entry.GetString("record_id"))
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read %s/%s: %w", collection, entry.GetString("record_id"), err)
		}
		// A record moved to a team the user may not read is gone for them.
		if err != nil || !who.Allows(collection, teamscope.Read, rec.GetString("team")) {
			return e.Error(http.StatusConflict, "The record no longer exists.", nil)
		}
		// The record may have moved since: restore only within the team
		// the entry was journaled for, and only for who may change it there.
		team := rec.GetString("team")
		if team != entry.GetString("team") {
			return e.ForbiddenError("The record now belongs to another team; it cannot be restored from here.", nil)
		}
		if !who.Allows(collection, teamscope.Update, team) {
			return e.ForbiddenError("You may not change this record.", nil)
		}
		var value any
		if raw, ok := entry.Get("overwritten_value").(types.JSONRaw); ok && len(raw) > 0 {
			if err := json.Unmarshal(raw, &value); err != nil {
				return fmt.Errorf("decode overwritten value: %w", err)
			}
		}
		rec.Set(entry.GetString("field"), value)
		if err := tx.SaveWithContext(changelog.WithActor(e.Request.Context(), actor), rec); err != nil {
			return e.BadRequestError("The overwritten value cannot be restored.", err)
		}
		e.App = tx
		return e.Next()
	})
}
