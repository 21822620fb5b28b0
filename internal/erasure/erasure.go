// Package erasure erases a person: the person and every record about them
// are deleted, their history is scrubbed from the change log leaving only
// purge rows, and an audit row keeps who erased, when and why, never the
// erased data. Devices delete their copies, pending edits included, when
// they pull the purge rows, however long they were offline.
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

	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/httpbody"
)

// Summary is what an erasure did.
type Summary struct {
	Person        string `json:"person"`
	Records       int    `json:"records"`
	VisitsUpdated int    `json:"visitsUpdated"`
	Seq           int64  `json:"seq"`
	AlreadyErased bool   `json:"alreadyErased,omitempty"`
}

// ErrNotFound means there is no such person and never was.
var ErrNotFound = errors.New("person not found")

type target struct{ collection, id string }

// Erase erases person id on behalf of actor; erasedBy names the account in
// the audit row (a users or superusers id).
func Erase(ctx context.Context, app core.App, personID string, actor changelog.Actor, erasedBy, reason string) (Summary, error) {
	sum := Summary{Person: personID}
	err := app.RunInTransaction(func(tx core.App) error {
		person, err := tx.FindRecordById(domain.Persons, personID)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read person %s: %w", personID, err)
		}
		team := person.GetString("team")
		purgeCtx := changelog.WithPurge(changelog.WithActor(ctx, actor))

		var targets []target
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
		if _, err := tx.NonconcurrentDB().Delete(domain.SyncConflicts,
			dbx.HashExp{"person": personID}).Execute(); err != nil {
			return fmt.Errorf("erase journal of person: %w", err)
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
	return sum, nil
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
	person, err := e.App.FindRecordById(domain.Persons, id)
	if err != nil {
		prior, priorErr := e.App.FindFirstRecordByFilter(domain.Erasures, "collection = {:c} && record_id = {:id}",
			dbx.Params{"c": domain.Persons, "id": id})
		if priorErr == nil && (superuser || isSupervisorOf(e.Auth, prior.GetString("team"))) {
			return e.JSON(http.StatusOK, Summary{Person: id, Records: prior.GetInt("records"), Seq: int64(prior.GetInt("seq")), AlreadyErased: true})
		}
		return e.NotFoundError("There is no such person.", nil)
	}
	if !superuser && !isSupervisorOf(e.Auth, person.GetString("team")) {
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
	if err != nil {
		return e.InternalServerError("The erasure failed; nothing was erased.", err)
	}
	return e.JSON(http.StatusOK, sum)
}

func isSupervisorOf(user *core.Record, team string) bool {
	return user.Collection().Name == domain.Users &&
		user.GetString("role") == domain.RoleSupervisor &&
		slices.Contains(user.GetStringSlice("teams"), team)
}
