package syncapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"strada/internal/changelog"
	"strada/internal/compress"
	"strada/internal/domain"
	"strada/internal/fieldpolicy"
	"strada/internal/httpbody"
	"strada/internal/teamscope"
)

// Rejection codes of the team policy. A record of a team the user may not
// read is answered as one that does not exist (CodeNotFound for a delete),
// never as CodeForbidden.
const (
	CodeForbidden = "forbidden"
	CodeNotFound  = "not_found"
)

type pushResponse struct {
	Results []Result `json:"results"`
}

// Push answers POST /api/sync/push: it applies the mutations in order in
// one transaction, each inside its own savepoint (or, on the bulk path,
// single statements) so that a rejected one leaves nothing behind and never
// blocks the next. What the mutations need to know (ledger, records,
// tombstones) is read once for the whole push. A server fault rolls the
// whole request back and answers 5xx.
func (a *API) Push(e *core.RequestEvent) error {
	body, err := compress.ReadBody(e.Response, e.Request, MaxPushBytes)
	switch {
	case errors.Is(err, httpbody.ErrTooLarge):
		return fail(e, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("A push body is at most %d bytes once decompressed.", MaxPushBytes))
	case errors.Is(err, compress.ErrUnsupportedEncoding):
		return fail(e, http.StatusUnsupportedMediaType, compress.CodeUnsupportedEncoding, "A push body is sent as it is, or with Content-Encoding gzip or zstd.")
	case errors.Is(err, compress.ErrCorrupt):
		return fail(e, http.StatusBadRequest, compress.CodeCorruptBody, "The push body does not decode in its Content-Encoding.")
	case err != nil:
		return fail(e, http.StatusBadRequest, "unreadable_body", "The request body could not be read.")
	}
	batch, err := DecodePush(body)
	if err != nil {
		var be *BatchError
		if errors.As(err, &be) {
			return fail(e, be.Status, be.Code, be.Message)
		}
		return err
	}
	device := deviceOf(e)
	p := pusher{user: e.Auth, device: device.Id, scope: scopeOf(e.Auth)}
	var results []Result
	err = e.App.RunInTransaction(func(tx core.App) (err error) {
		p.batch, err = newBatch(e.App, tx, changelog.Of(tx), batch.Mutations)
		if err != nil {
			return err
		}
		p.batch.created = a.BulkCreated
		defer func() {
			if closeErr := p.batch.close(); closeErr != nil {
				err = errors.Join(err, closeErr)
			}
		}()
		results = make([]Result, 0, len(batch.Mutations))
		for _, d := range batch.Mutations {
			r, err := p.apply(e.Request.Context(), tx, d)
			if err != nil {
				return err
			}
			results = append(results, r)
		}
		if err := touchDevice(tx, e, ""); err != nil {
			return err
		}
		return recordHealth(tx, e, syncPush)
	})
	if errors.Is(err, errDeviceRevoked) {
		return revokedAnswer(e)
	}
	if err != nil {
		a.logger.Error("sync push failed", "device", device.Id, "mutations", len(batch.Mutations), "error", err)
		return fail(e, http.StatusServiceUnavailable, "server_error", "The push could not be applied; nothing was written. Retry later.")
	}
	return e.JSON(http.StatusOK, pushResponse{Results: results})
}

type pusher struct {
	user   *core.Record
	device string
	scope  userScope
	batch  *batch
	// inSavepoint is set once the current mutation opened its savepoint.
	inSavepoint bool
}

// apply applies one mutation inside tx. The returned error is a server
// fault that aborts the whole push; a rejection is a Result.
func (p *pusher) apply(ctx context.Context, tx core.App, d DecodedMutation) (Result, error) {
	m := d.Mutation
	if d.Reject != nil {
		return Result{ID: m.ID, Status: StatusRejected, Error: d.Reject}, nil
	}
	if seen, found := p.batch.ledger[m.ID]; found {
		if seen.user != p.user.Id {
			return Result{ID: m.ID, Status: StatusRejected, Error: reject("mutation_id_taken", "id", "This mutation id was used by another user.")}, nil
		}
		first := seen.result
		first.FirstStatus = first.Status
		first.Status = StatusDuplicate
		return first, nil
	}

	p.inSavepoint = false
	res, journal, err := p.applyInSavepoint(ctx, tx, m)
	p.batch.touch(m.Collection, m.RecordID)
	if err != nil {
		if p.inSavepoint {
			if rollbackErr := savepoint(tx, "rollback"); rollbackErr != nil {
				return Result{}, errors.Join(err, rollbackErr)
			}
		}
		rej := rejectionOf(err)
		if rej == nil {
			return Result{}, fmt.Errorf("apply mutation %s: %w", m.ID, err)
		}
		res = Result{ID: m.ID, Status: StatusRejected, Error: rej}
		if rej.Code == "validation_invalid_transition" && journal != nil {
			if err := journal.save(tx); err != nil {
				return Result{}, err
			}
		}
	} else if p.inSavepoint {
		if err := savepoint(tx, "release"); err != nil {
			return Result{}, err
		}
	}
	if err := p.batch.storeLedger(m.ID, p.user.Id, p.device, res); err != nil {
		return Result{}, err
	}
	return res, nil
}

// begin opens the mutation's savepoint before its first write through
// app.Save or app.Delete, whose hooks write several rows. A mutation
// rejected before it writes anything needs none, nor does a create on the
// bulk path, which writes with single statements that SQLite undoes on
// their own when they fail (see batch.create).
func (p *pusher) begin(tx core.App) error {
	if p.inSavepoint {
		return nil
	}
	if err := savepoint(tx, "begin"); err != nil {
		return err
	}
	p.inSavepoint = true
	return nil
}

func savepoint(tx core.App, action string) error {
	var q string
	switch action {
	case "begin":
		q = "SAVEPOINT strada_mutation"
	case "rollback":
		q = "ROLLBACK TO strada_mutation; RELEASE strada_mutation"
	default:
		q = "RELEASE strada_mutation"
	}
	if _, err := tx.NonconcurrentDB().NewQuery(q).Execute(); err != nil {
		return fmt.Errorf("savepoint %s: %w", action, err)
	}
	return nil
}

// rejectedErr is a rejection found by the sync layer itself.
type rejectedErr struct{ *ResultError }

func (r rejectedErr) Error() string { return r.Message }

// applyInSavepoint does the work of one mutation. On a rejected referral
// transition it also returns the journal entry to keep after the rollback.
func (p *pusher) applyInSavepoint(ctx context.Context, tx core.App, m Mutation) (Result, *conflictEntry, error) {
	collection, err := tx.FindCachedCollectionByNameOrId(m.Collection)
	if err != nil {
		return Result{}, nil, fmt.Errorf("find collection %s: %w", m.Collection, err)
	}
	actor := changelog.Actor{User: p.user.Id, Device: p.device, Mutation: m.ID}
	rcpt := &changelog.Receipt{RecordID: m.RecordID}
	ctx = changelog.WithReceipt(changelog.WithActor(ctx, actor), rcpt)

	existing, err := p.batch.record(collection, m.RecordID)
	if err != nil {
		return Result{}, nil, err
	}
	// A record the user may not read is answered as if it did not exist,
	// so that no answer tells another team's id from an unused one.
	if existing != nil && !p.scope.who.Allows(m.Collection, teamscope.Read, existing.GetString("team")) {
		existing = nil
	}

	if m.Op == OpDelete {
		return p.applyDelete(ctx, tx, m, existing, rcpt)
	}

	values, rej := convertFields(collection, m.Fields)
	if rej != nil {
		return Result{}, nil, rejectedErr{rej}
	}

	if existing == nil {
		// A create under the id of a deleted or erased record is refused
		// by the record hooks (integrity.AssignID), on every write path.
		if m.BaseVersion > 0 {
			tomb, err := p.tombstone(tx, m.Collection, m.RecordID)
			if err != nil {
				return Result{}, nil, err
			}
			switch tomb {
			case changelog.OpPurge:
				return Result{}, nil, rejectedErr{reject("record_erased", "recordId", "The record was erased.")}
			case changelog.OpDelete:
				return Result{}, nil, rejectedErr{reject("record_deleted", "recordId", "The record was deleted.")}
			}
			return Result{}, nil, rejectedErr{reject("future_base_version", "baseVersion", "The record does not exist at version %d.", m.BaseVersion)}
		}
		team, _ := values["team"].(string)
		if !p.scope.who.Allows(m.Collection, teamscope.Create, team) {
			return Result{}, nil, rejectedErr{reject(CodeForbidden, "team", "team must be one of your teams.")}
		}
		rec := core.NewRecord(collection)
		rec.Id = m.RecordID
		for name, v := range values {
			rec.Set(name, v)
		}
		if p.batch.canBulkCreate(collection) {
			if err := p.batch.create(ctx, rec, rcpt); err != nil {
				return Result{}, nil, err
			}
			return p.result(tx, m, rcpt, StatusApplied, nil, nil)
		}
		if err := p.begin(tx); err != nil {
			return Result{}, nil, err
		}
		if err := tx.SaveWithContext(ctx, rec); err != nil {
			return Result{}, transitionJournal(m, rec, p, err), err
		}
		return p.result(tx, m, rcpt, StatusApplied, nil, nil)
	}

	if !p.scope.who.Allows(m.Collection, teamscope.Update, existing.GetString("team")) {
		return Result{}, nil, rejectedErr{reject(CodeForbidden, "recordId", "You may not change this record.")}
	}
	current := existing.GetInt("version")
	if m.BaseVersion > current {
		return Result{}, nil, rejectedErr{reject("future_base_version", "baseVersion", "baseVersion %d is ahead of the record's version %d.", m.BaseVersion, current)}
	}
	if team, ok := values["team"].(string); ok && !p.scope.who.AllowsMove(m.Collection, existing.GetString("team"), team) {
		return Result{}, nil, rejectedErr{reject(CodeForbidden, "team", "team must be one of your teams.")}
	}

	concurrent, truncated, err := changelog.FieldChangesAfter(tx, m.Collection, m.RecordID, m.BaseVersion)
	if err != nil {
		return Result{}, nil, err
	}
	if truncated {
		// Too long a history to tell who changed what: every field of the
		// mutation counts as changed by someone else.
		concurrent = map[string]changelog.FieldChange{}
		for name := range values {
			concurrent[name] = changelog.FieldChange{Version: current}
		}
	}
	var conflicts []conflictEntry
	var conflictFields, mergedFields []string
	for name, v := range values {
		fc, changed := concurrent[name]
		if !changed || fc.Actor.Device == p.device {
			continue
		}
		if sameJSON(existing.Get(name), v) {
			continue
		}
		conflictFields = append(conflictFields, name)
		conflicts = append(conflicts, conflictEntry{
			collection: m.Collection, recordID: m.RecordID, field: name, kind: "same_field",
			team: existing.GetString("team"), person: personOf(m.Collection, existing), kept: v, overwritten: existing.Get(name),
			keptBy: p.user.Id, keptDevice: p.device, keptMutation: m.ID, keptAt: time.Now().UTC(),
			overwrittenBy: fc.Actor.User, overwrittenDevice: fc.Actor.Device, overwrittenAt: fc.At,
			baseVersion: m.BaseVersion,
		})
	}
	for name, fc := range concurrent {
		if _, mine := values[name]; !mine && fc.Actor.Device != p.device {
			mergedFields = append(mergedFields, name)
		}
	}
	sort.Strings(conflictFields)
	sort.Strings(mergedFields)

	for name, v := range values {
		existing.Set(name, v)
	}
	if err := p.begin(tx); err != nil {
		return Result{}, nil, err
	}
	if err := tx.SaveWithContext(ctx, existing); err != nil {
		return Result{}, transitionJournal(m, existing, p, err), err
	}
	for i := range conflicts {
		conflicts[i].version = existing.GetInt("version")
		if err := conflicts[i].save(tx); err != nil {
			return Result{}, nil, err
		}
	}
	status := StatusApplied
	switch {
	case len(conflictFields) > 0:
		status = StatusConflict
	case len(mergedFields) > 0:
		status = StatusMerged
	}
	return p.result(tx, m, rcpt, status, conflictFields, mergedFields)
}

func (p *pusher) applyDelete(ctx context.Context, tx core.App, m Mutation, existing *core.Record, rcpt *changelog.Receipt) (Result, *conflictEntry, error) {
	if existing == nil {
		tomb, err := p.tombstone(tx, m.Collection, m.RecordID)
		if err != nil {
			return Result{}, nil, err
		}
		if tomb == "" {
			return Result{}, nil, rejectedErr{reject(CodeNotFound, "recordId", "There is no such record.")}
		}
		// Already gone: deleting again changes nothing and converges.
		return p.result(tx, m, rcpt, StatusApplied, nil, nil)
	}
	if !p.scope.who.Allows(m.Collection, teamscope.Delete, existing.GetString("team")) {
		if m.Collection == domain.Persons {
			return Result{}, nil, rejectedErr{reject("use_erasure", "recordId", "A person is removed by erasure (POST /api/persons/{id}/erase), by a supervisor.")}
		}
		return Result{}, nil, rejectedErr{reject(CodeForbidden, "recordId", "You may not delete this record.")}
	}
	current := existing.GetInt("version")
	if m.BaseVersion > current {
		return Result{}, nil, rejectedErr{reject("future_base_version", "baseVersion", "baseVersion %d is ahead of the record's version %d.", m.BaseVersion, current)}
	}
	concurrent, truncated, err := changelog.FieldChangesAfter(tx, m.Collection, m.RecordID, m.BaseVersion)
	if err != nil {
		return Result{}, nil, err
	}
	if truncated {
		concurrent = map[string]changelog.FieldChange{"*": {Version: current}}
	}
	var others []string
	var last changelog.FieldChange
	for name, fc := range concurrent {
		if fc.Actor.Device != p.device {
			others = append(others, name)
			if fc.Version > last.Version {
				last = fc
			}
		}
	}
	sort.Strings(others)
	// The delete wins; edits made meanwhile by others are journaled so that
	// a person can see what went with the record.
	var journal *conflictEntry
	if len(others) > 0 {
		snapshot := map[string]any{}
		for _, name := range others {
			snapshot[name] = existing.Get(name)
		}
		if truncated {
			snapshot = Export(existing)
		}
		journal = &conflictEntry{
			collection: m.Collection, recordID: m.RecordID, field: "*", kind: "delete_over_edit",
			team: existing.GetString("team"), person: personOf(m.Collection, existing), kept: nil, overwritten: snapshot,
			keptBy: p.user.Id, keptDevice: p.device, keptMutation: m.ID, keptAt: time.Now().UTC(),
			overwrittenBy: last.Actor.User, overwrittenDevice: last.Actor.Device, overwrittenAt: last.At,
			baseVersion: m.BaseVersion, version: current + 1,
		}
	}
	if err := p.begin(tx); err != nil {
		return Result{}, nil, err
	}
	if err := tx.DeleteWithContext(ctx, existing); err != nil {
		return Result{}, nil, err
	}
	if journal != nil {
		if err := journal.save(tx); err != nil {
			return Result{}, nil, err
		}
		return p.result(tx, m, rcpt, StatusConflict, []string{"*"}, nil)
	}
	return p.result(tx, m, rcpt, StatusApplied, nil, nil)
}

// tombstone tells how a record that is gone ended, deleted or erased, when
// it was in a team the user may read; for a record of another team it is
// "", as for an id never used.
func (p *pusher) tombstone(tx core.App, collection, id string) (changelog.Op, error) {
	last, err := changelog.LastOf(tx, collection, id)
	if err != nil {
		return "", err
	}
	if last.Op != changelog.OpDelete && last.Op != changelog.OpPurge {
		return "", nil
	}
	if !p.scope.who.Allows(collection, teamscope.Read, last.Team) {
		return "", nil
	}
	return last.Op, nil
}

// result answers a mutation that took effect with the position of its
// change row; a delete of a record already gone answers with its tombstone.
func (p *pusher) result(tx core.App, m Mutation, rcpt *changelog.Receipt, status string, conflicts, merged []string) (Result, *conflictEntry, error) {
	if rcpt.Seq == 0 {
		last, err := changelog.LastOf(tx, m.Collection, m.RecordID)
		if err != nil {
			return Result{}, nil, err
		}
		rcpt.Seq, rcpt.Version = last.Seq, last.Version
	}
	return Result{ID: m.ID, Status: status, Version: rcpt.Version, Seq: rcpt.Seq, Conflicts: conflicts, Merged: merged}, nil, nil
}

// transitionJournal prepares the journal entry of a referral status change
// the state machine refused, kept after the mutation is rolled back.
func transitionJournal(m Mutation, rec *core.Record, p *pusher, err error) *conflictEntry {
	if m.Collection != domain.Referrals || !isTransitionError(err) {
		return nil
	}
	from := ""
	if !rec.IsNew() {
		from = rec.Original().GetString("status")
	}
	return &conflictEntry{
		collection: m.Collection, recordID: m.RecordID, field: "status", kind: "rejected_transition",
		team: rec.GetString("team"), person: rec.GetString("person"), kept: from, overwritten: rec.GetString("status"),
		keptAt: time.Now().UTC(), overwrittenBy: p.user.Id, overwrittenDevice: p.device,
		overwrittenAt: time.Now().UTC(), keptMutation: m.ID, baseVersion: m.BaseVersion,
		version: rec.Original().GetInt("version"),
	}
}

func isTransitionError(err error) bool {
	var verrs validation.Errors
	if !errors.As(err, &verrs) {
		return false
	}
	var ve validation.Error
	return errors.As(verrs["status"], &ve) && ve.Code() == "validation_invalid_transition"
}

// rejectionOf turns an error from applying a mutation into its rejection,
// or nil when the error is a server fault.
func rejectionOf(err error) *ResultError {
	var sf serverFault
	if errors.As(err, &sf) {
		return nil
	}
	var rj rejectedErr
	if errors.As(err, &rj) {
		return rj.ResultError
	}
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		names := make([]string, 0, len(verrs))
		for name := range verrs {
			names = append(names, name)
		}
		sort.Strings(names)
		if len(names) == 0 {
			return reject("invalid", "", "The record is not valid.")
		}
		name := names[0]
		code := "invalid_value"
		var ve validation.Error
		if errors.As(verrs[name], &ve) {
			code = ve.Code()
		}
		switch code {
		case "validation_record_deleted":
			return reject("record_deleted", "recordId", "The record was deleted.")
		case "validation_record_erased":
			return reject("record_erased", "recordId", "The record was erased.")
		}
		return reject(code, name, "%s: %v", name, verrs[name])
	}
	msg := err.Error()
	if i := strings.Index(msg, "UNIQUE constraint failed: "); i >= 0 {
		field := msg[i+len("UNIQUE constraint failed: "):]
		if _, col, ok := strings.Cut(field, "."); ok {
			field = strings.Fields(col)[0]
		}
		return reject("not_unique", field, "%s is already used by another record.", field)
	}
	return nil
}

// convertFields checks each field of a mutation against the collection and
// converts its JSON value strictly: a value of the wrong type is refused,
// never coerced.
func convertFields(c *core.Collection, fields map[string]json.RawMessage) (map[string]any, *ResultError) {
	out := make(map[string]any, len(fields))
	for name, raw := range fields {
		f := c.Fields.GetByName(name)
		if f == nil || f.GetSystem() || f.GetHidden() {
			return nil, reject("unknown_field", name, "%q is not a field of %s.", name, c.Name)
		}
		v, err := convertValue(f, raw)
		if err != nil {
			code := "invalid_type"
			var pe *fieldpolicy.Error
			if errors.As(err, &pe) {
				code = pe.Code
			}
			return nil, reject(code, name, "%s: %v", name, err)
		}
		out[name] = v
	}
	return out, nil
}

func convertValue(f core.Field, raw json.RawMessage) (any, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	switch f := f.(type) {
	case *core.TextField, *core.EmailField, *core.URLField, *core.EditorField:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, errors.New("must be a string")
		}
		if err := fieldpolicy.Text(s); err != nil {
			return nil, err
		}
		return s, nil
	case *core.NumberField:
		var n float64
		if err := json.Unmarshal(raw, &n); err != nil {
			return nil, errors.New("must be a number")
		}
		return n, nil
	case *core.BoolField:
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, errors.New("must be true or false")
		}
		return b, nil
	case *core.DateField:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, errors.New("must be a date string")
		}
		if s == "" {
			return "", nil
		}
		if dt, err := types.ParseDateTime(s); err != nil || dt.IsZero() {
			return nil, errors.New("must be an RFC 3339 date or date-time")
		}
		return s, nil
	case *core.SelectField:
		return stringOrList(f, raw, f.IsMultiple())
	case *core.RelationField:
		return stringOrList(f, raw, f.IsMultiple())
	case *core.JSONField:
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, errors.New("must be JSON")
		}
		return v, nil
	}
	return nil, errors.New("cannot be written by devices")
}

// stringOrList decodes the value of a select or relation field; a list is
// bounded by the field's maximum before any of its values is looked up.
func stringOrList(f core.Field, raw json.RawMessage, multiple bool) (any, error) {
	if multiple {
		var list []string
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, errors.New("must be a list of strings")
		}
		if err := fieldpolicy.Values(f, len(list)); err != nil {
			return nil, err
		}
		return list, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, errors.New("must be a string")
	}
	return s, nil
}

func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
