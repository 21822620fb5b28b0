// Package erasure erases a person: the person and every record about them
// are deleted, their history is scrubbed from the change log leaving only
// purge rows, and an audit row keeps who erased, when and why, never the
// erased data. Devices delete their copies, pending edits included, when
// they pull the purge rows, however long they were offline. A register
// outside the database keeps every erasure, so that one undone by a
// restore from an older backup is applied again when the server starts.
package erasure

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/httpbody"
	"strada/internal/storage"
	"strada/internal/teamscope"
)

// Summary is what an erasure did.
type Summary struct {
	Person        string `json:"person"`
	Records       int    `json:"records"`
	VisitsUpdated int    `json:"visitsUpdated"`
	Seq           int64  `json:"seq"`
	AlreadyErased bool   `json:"alreadyErased,omitempty"`
}

// ErrNotFound means the database holds nothing of the person: no record,
// no history, no journal entry.
var ErrNotFound = errors.New("person not found")

type target struct{ collection, id string }

// Erase erases person id on behalf of actor; erasedBy names the account in
// the audit row (a users or superusers id). Records of the person deleted
// before the erasure lose their history too. Once the erasure commits it
// is written to the register (see [Use]) and synced to disk, the request
// log forgets the erased ids, and the write-ahead logs are checkpointed so
// that no file keeps the erased rows. It must not run inside a
// transaction.
func Erase(ctx context.Context, app core.App, personID string, actor changelog.Actor, erasedBy, reason string) (Summary, error) {
	return erase(ctx, app, personID, nil, actor, erasedBy, reason)
}

// erase is Erase that also purges the known records (from the register)
// whose history the log still has.
func erase(ctx context.Context, app core.App, personID string, known []changelog.Ref, actor changelog.Actor, erasedBy, reason string) (Summary, error) {
	if app.TxInfo() != nil {
		return Summary{}, errors.New("erase inside a transaction")
	}
	sum := Summary{Person: personID}
	var team string
	var targets []target
	err := app.RunInTransaction(func(tx core.App) error {
		targets = nil
		person, err := tx.FindRecordById(domain.Persons, personID)
		if errors.Is(err, sql.ErrNoRows) {
			person = nil
		} else if err != nil {
			return fmt.Errorf("read person %s: %w", personID, err)
		}
		purgeCtx := changelog.WithPurge(changelog.WithActor(ctx, actor))

		if person != nil {
			team = person.GetString("team")
			for _, c := range []string{domain.Referrals, domain.SecretariatContacts} {
				records, err := tx.FindAllRecords(c, dbx.HashExp{"person": personID})
				if err != nil {
					return fmt.Errorf("find %s of person: %w", c, err)
				}
				for _, r := range records {
					if c == domain.Referrals {
						evs, err := tx.FindAllRecords(domain.ReferralEvents, dbx.HashExp{"referral": r.Id})
						if err != nil {
							return fmt.Errorf("find referral history: %w", err)
						}
						for _, ev := range evs {
							targets = append(targets, target{domain.ReferralEvents, ev.Id})
							if err := tx.DeleteWithContext(purgeCtx, ev); err != nil {
								return fmt.Errorf("erase referral history %s: %w", ev.Id, err)
							}
						}
					}
					targets = append(targets, target{c, r.Id})
					if err := tx.DeleteWithContext(purgeCtx, r); err != nil {
						return fmt.Errorf("erase %s %s: %w", c, r.Id, err)
					}
				}
			}

			// Visits are about a household, not one person: the person leaves
			// the list of persons met and the visit stays.
			visits, err := tx.FindAllRecords(domain.CampVisits,
				dbx.NewExp("EXISTS (SELECT 1 FROM json_each(persons_met) WHERE value = {:p})", dbx.Params{"p": personID}))
			if err != nil {
				return fmt.Errorf("find visits of person: %w", err)
			}
			for _, v := range visits {
				met := slices.DeleteFunc(v.GetStringSlice("persons_met"), func(s string) bool { return s == personID })
				v.Set("persons_met", met)
				if err := tx.SaveWithContext(changelog.WithActor(ctx, actor), v); err != nil {
					return fmt.Errorf("remove person from visit %s: %w", v.Id, err)
				}
				sum.VisitsUpdated++
			}

			targets = append(targets, target{domain.Persons, personID})
			if err := tx.DeleteWithContext(purgeCtx, person); err != nil {
				return fmt.Errorf("erase person %s: %w", personID, err)
			}
		}

		// Records deleted before the erasure (and, without its record, the
		// person deleted before): their log rows still tell of them. Each
		// gets a purge row, as the records erased above did.
		earlier, err := changelog.RecordsOfPerson(tx, personID)
		if err != nil {
			return err
		}
		earlier = append(earlier, changelog.Ref{Collection: domain.Persons, RecordID: personID})
		earlier = append(earlier, known...)
		for _, ref := range earlier {
			if slices.Contains(targets, target{ref.Collection, ref.RecordID}) || !domain.IsLogged(ref.Collection) {
				continue
			}
			last, err := changelog.LastOf(tx, ref.Collection, ref.RecordID)
			if err != nil {
				return err
			}
			if last.Seq == 0 || last.Op == changelog.OpPurge {
				continue
			}
			// A record that exists is about someone else now: it stays.
			if _, err := tx.FindRecordById(ref.Collection, ref.RecordID); err == nil {
				continue
			} else if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("read %s/%s: %w", ref.Collection, ref.RecordID, err)
			}
			_, err = changelog.Insert(tx, changelog.Entry{
				Collection: ref.Collection, RecordID: ref.RecordID, Op: changelog.OpPurge,
				Version: last.Version + 1, Team: last.Team, Site: last.Site, Actor: actor,
			})
			if err != nil {
				return err
			}
			if ref.Collection == domain.Persons && team == "" {
				team = last.Team
			}
			targets = append(targets, target{ref.Collection, ref.RecordID})
		}

		for _, t := range targets {
			last, err := changelog.LastOf(tx, t.collection, t.id)
			if err != nil {
				return err
			}
			if err := changelog.Scrub(tx, t.collection, t.id, last.Seq); err != nil {
				return err
			}
			if t.collection == domain.Persons {
				sum.Seq = last.Seq
			}
			// The conflict journal holds field values: it goes too.
			if _, err := tx.NonconcurrentDB().Delete(domain.SyncConflicts,
				dbx.HashExp{"collection": t.collection, "record_id": t.id}).Execute(); err != nil {
				return fmt.Errorf("erase journal of %s/%s: %w", t.collection, t.id, err)
			}
		}
		// And whatever was journaled about the person on records since
		// deleted.
		res, err := tx.NonconcurrentDB().Delete(domain.SyncConflicts,
			dbx.HashExp{"person": personID}).Execute()
		if err != nil {
			return fmt.Errorf("erase journal of person: %w", err)
		}
		journaled, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("erase journal of person: %w", err)
		}
		forgotten, err := changelog.ForgetPerson(tx, personID)
		if err != nil {
			return err
		}
		if len(targets) == 0 && journaled == 0 && forgotten == 0 {
			return ErrNotFound
		}
		sum.Records = len(targets)

		audit, err := tx.FindCachedCollectionByNameOrId(domain.Erasures)
		if err != nil {
			return fmt.Errorf("find erasures: %w", err)
		}
		row := core.NewRecord(audit)
		row.Set("collection", domain.Persons)
		row.Set("record_id", personID)
		row.Set("team", team)
		row.Set("reason", reason)
		row.Set("erased_by", erasedBy)
		row.Set("records", sum.Records)
		row.Set("seq", sum.Seq)
		if err := tx.Save(row); err != nil {
			return fmt.Errorf("write erasure audit: %w", err)
		}
		return nil
	})
	if err != nil {
		return Summary{}, err
	}
	return sum, afterErasure(app, personID, team, erasedBy, targets)
}

// afterErasure makes a committed erasure last and leave nothing on disk:
// the register entry (synced before the erasure answers), the request log
// rows that name the erased ids, and the write-ahead logs that still hold
// the erased rows' pages.
func afterErasure(app core.App, personID, team, erasedBy string, targets []target) error {
	ids := []string{personID}
	var records []string
	for _, t := range targets {
		if t.collection != domain.Persons {
			ids = append(ids, t.id)
			records = append(records, t.collection+"/"+t.id)
		}
	}
	if reg := registerOf(app); reg != nil {
		err := reg.Append(RegisterEntry{Person: personID, Team: team, Records: records, At: time.Now().UTC(), By: erasedBy})
		if err != nil {
			app.Logger().Error("Erasure committed but not registered", "person", personID, "error", err.Error())
			return fmt.Errorf("%w: %w", ErrNotRegistered, err)
		}
	}
	if _, err := storage.RedactRequestLog(app, ids); err != nil {
		app.Logger().Error("Erased ids left in the request log", "person", personID, "error", err.Error())
	}
	if err := storage.Checkpoint(app); err != nil {
		// The daily checkpoint and the next erasure truncate the logs.
		app.Logger().Error("Write-ahead log not truncated after an erasure", "person", personID, "error", err.Error())
	}
	return nil
}

type eraseRequest struct {
	Reason string `json:"reason"`
}

// HandleErase answers POST /api/persons/{id}/erase for a supervisor of the
// person's team or a superuser. Erasing an erased person again answers
// with the first erasure, so a retry after a lost answer is safe.
func HandleErase(e *core.RequestEvent) error {
	if e.Auth == nil {
		return e.UnauthorizedError("Sign in to erase a person.", nil)
	}
	id := e.Request.PathValue("id")
	body, err := httpbody.Read(e.Response, e.Request, 16<<10)
	if errors.Is(err, httpbody.ErrTooLarge) {
		return e.Error(http.StatusRequestEntityTooLarge, "The request body is too large.", nil)
	}
	if err != nil {
		return e.BadRequestError("Failed to read the request body.", err)
	}
	var req eraseRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return e.BadRequestError("The request body is not valid JSON with a reason.", err)
	}
	req.Reason = strings.TrimSpace(req.Reason)
	if req.Reason == "" || len([]rune(req.Reason)) > 500 {
		return e.BadRequestError("A reason is required (at most 500 characters).", validation.Errors{
			"reason": validation.NewError("validation_required", "A reason is required (at most 500 characters)."),
		})
	}

	superuser := e.Auth.IsSuperuser()
	who := teamscope.Of(e.Auth)
	person, err := e.App.FindRecordById(domain.Persons, id)
	// A person of a team the user may not read is answered as one that
	// does not exist.
	if err != nil || !who.Allows(domain.Persons, teamscope.Read, person.GetString("team")) {
		prior, priorErr := e.App.FindFirstRecordByFilter(domain.Erasures, "collection = {:c} && record_id = {:id}",
			dbx.Params{"c": domain.Persons, "id": id})
		if priorErr == nil && who.Allows(domain.Persons, teamscope.Erase, prior.GetString("team")) {
			return e.JSON(http.StatusOK, Summary{Person: id, Records: prior.GetInt("records"), Seq: int64(prior.GetInt("seq")), AlreadyErased: true})
		}
		return e.NotFoundError("There is no such person.", nil)
	}
	if !who.Allows(domain.Persons, teamscope.Erase, person.GetString("team")) {
		return e.ForbiddenError("Only a supervisor of the person's team erases a person.", nil)
	}
	actor := changelog.Actor{}
	if !superuser {
		actor.User = e.Auth.Id
	}
	sum, err := Erase(e.Request.Context(), e.App, id, actor, e.Auth.Collection().Name+"/"+e.Auth.Id, req.Reason)
	if errors.Is(err, ErrNotFound) {
		return e.NotFoundError("There is no such person.", nil)
	}
	if errors.Is(err, ErrNotRegistered) {
		return e.InternalServerError("The person was erased, but the erasure register could not be written; it is completed when the server starts again.", err)
	}
	if err != nil {
		return e.InternalServerError("The erasure failed; nothing was erased.", err)
	}
	return e.JSON(http.StatusOK, sum)
}
