package syncapi

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"strada/internal/accesslog"
)

// Limits of an access report.
const (
	MaxAccessReports   = 500
	maxAccessBodyBytes = 128 << 10
)

// logDownloads writes one access log row per person, contact or referral
// that a pull page sends to the device, in one statement.
func logDownloads(e *core.RequestEvent, changes []Change) error {
	var entries []accesslog.Entry
	for _, c := range changes {
		if c.Op != PullUpsert || !accesslog.IsSubject(c.Collection) {
			continue
		}
		rec := c.Record
		if en, ok := accesslog.EntryOfData(c.Collection, c.ID, func(f string) any { return rec[f] }); ok {
			entries = append(entries, en)
		}
	}
	if len(entries) == 0 {
		return nil
	}
	who := accesslog.Reader{User: e.Auth.Id}
	if d := deviceOf(e); d != nil {
		who.Device = d.Id
	}
	if err := accesslog.Write(e.App, who, accesslog.ActionDownload, entries); err != nil {
		return fmt.Errorf("log downloads: %w", err)
	}
	return nil
}

// AccessReport is one card opened on a device, as the device reports it.
type AccessReport struct {
	// ID is made by the device once per open; a report sent again with
	// the same id is logged once.
	ID         string `json:"id"`
	Collection string `json:"collection"`
	RecordID   string `json:"recordId"`
	// At is when the card was opened, by the device's clock (RFC 3339).
	At string `json:"at"`
}

type accessRequest struct {
	Opens []AccessReport `json:"opens"`
}

type accessResponse struct {
	Received int `json:"received"`
}

// ReportAccess answers POST /api/sync/access: the device reports the
// person cards (persons, contacts, referrals) opened on it, offline or
// not. Each open of a record that is in the user's teams becomes an
// access log row; opens of records the user cannot see (erased, moved,
// never theirs) are dropped, and the answer is the same either way. A
// request with one malformed report is refused whole and logs nothing.
func (a *API) ReportAccess(e *core.RequestEvent) error {
	var req accessRequest
	if er := decodeStrict(e, maxAccessBodyBytes, &req); er != nil {
		return answer(e, er)
	}
	if req.Opens == nil {
		return fail(e, http.StatusBadRequest, "missing_opens", `The body needs an "opens" array.`)
	}
	if len(req.Opens) > MaxAccessReports {
		return fail(e, http.StatusRequestEntityTooLarge, "too_many_opens",
			fmt.Sprintf("A report carries at most %d opens; this one has %d.", MaxAccessReports, len(req.Opens)))
	}
	ids := map[string][]string{}
	times := make([]string, len(req.Opens))
	for i, o := range req.Opens {
		if er := checkAccessReport(i, o); er != nil {
			return answer(e, er)
		}
		at, _ := time.Parse(time.RFC3339Nano, o.At)
		dt, err := types.ParseDateTime(at.UTC())
		if err != nil {
			return e.InternalServerError("", err)
		}
		times[i] = dt.String()
		ids[o.Collection] = append(ids[o.Collection], o.RecordID)
	}
	teams := e.Auth.GetStringSlice("teams")
	visible := map[recordKey]accesslog.Entry{}
	for collection, list := range ids {
		records, err := e.App.FindRecordsByIds(collection, list)
		if err != nil {
			return e.InternalServerError("", fmt.Errorf("find reported %s: %w", collection, err))
		}
		for _, r := range records {
			if en, ok := accesslog.EntryOf(r); ok && slices.Contains(teams, en.Team) {
				visible[recordKey{collection, r.Id}] = en
			}
		}
	}
	var entries []accesslog.Entry
	for i, o := range req.Opens {
		en, ok := visible[recordKey{o.Collection, o.RecordID}]
		if !ok {
			continue
		}
		en.ClientID, en.ClientTime = o.ID, times[i]
		entries = append(entries, en)
	}
	who := accesslog.Reader{User: e.Auth.Id, Device: deviceOf(e).Id}
	if err := accesslog.Write(e.App, who, accesslog.ActionOpen, entries); err != nil {
		return e.InternalServerError("", err)
	}
	if err := touchDevice(e.App, e, ""); errors.Is(err, errDeviceRevoked) {
		return revokedAnswer(e)
	} else if err != nil {
		return e.InternalServerError("", err)
	}
	return e.JSON(http.StatusOK, accessResponse{Received: len(req.Opens)})
}

func checkAccessReport(i int, o AccessReport) *Error {
	bad := func(field, msg string) *Error {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_open",
			Field: fmt.Sprintf("opens[%d].%s", i, field), Message: msg}
	}
	if u, err := uuid.Parse(o.ID); err != nil || u.String() != o.ID {
		return bad("id", "id must be a lowercase UUID.")
	}
	if !accesslog.IsSubject(o.Collection) {
		return bad("collection", "collection must be one of "+fmt.Sprint(accesslog.Subjects())+".")
	}
	if !uuidV7.MatchString(o.RecordID) {
		return bad("recordId", "recordId must be a lowercase UUIDv7.")
	}
	if _, err := time.Parse(time.RFC3339Nano, o.At); err != nil {
		return bad("at", "at must be an RFC 3339 time.")
	}
	return nil
}
