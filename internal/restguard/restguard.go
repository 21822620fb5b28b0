// Package restguard holds every request to Strada's standards on body size
// and, for field-work collections, PocketBase's record API: refusal of
// unknown, server-managed and mistyped fields, of text with control
// characters, of lists longer than the field holds and of writes into a
// team the user is not in, each with an error naming the field; and it
// tells the change log who acted.
package restguard

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"
	"github.com/pocketbase/pocketbase/tools/types"

	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/fieldpolicy"
	"strada/internal/httpbody"
	"strada/internal/teamscope"
)

// MaxBodyBytes is the largest request body accepted on any route.
const MaxBodyBytes = httpbody.MaxBytes

// BackupUploadPath is the one route exempt from MaxBodyBytes: a superuser
// uploading a backup archive, under PocketBase's own (unlimited) limit.
const BackupUploadPath = "/api/backups/upload"

// LimitBody is a router middleware: a request body larger than
// MaxBodyBytes is answered 413 before any handler parses it, whatever the
// route (sign-in, batch, realtime, records, sync, erasure); only a
// superuser's backup upload is exempt. A record write to a field-work
// collection is then checked by [CheckRequest] before any rule runs.
func LimitBody(e *core.RequestEvent) error {
	if !hasBody(e.Request) || (e.Request.URL.Path == BackupUploadPath && e.HasSuperuserAuth()) {
		return e.Next()
	}
	buf, err := httpbody.Read(e.Response, e.Request, MaxBodyBytes)
	if errors.Is(err, httpbody.ErrTooLarge) {
		return tooLarge(e)
	}
	if err != nil {
		return e.BadRequestError("Failed to read the request body.", err)
	}
	e.Request.Body = &router.RereadableReadCloser{ReadCloser: io.NopCloser(bytes.NewReader(buf))}

	target, ok := recordWriteTarget(e.Request)
	if !ok || e.Request.Method == http.MethodDelete {
		return e.Next()
	}
	// The records API takes a collection's name in any case, or its id.
	c, err := e.App.FindCachedCollectionByNameOrId(target)
	if err != nil || !domain.IsFieldWork(c.Name) {
		return e.Next()
	}
	if err := CheckRequest(e, c.Name); err != nil {
		return err
	}
	return e.Next()
}

// hasBody reports whether r may carry a body: a declared length, or an
// unknown one (chunked).
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// tooLarge answers 413 in a body that is both a PocketBase error and a
// sync error ({"status", "code", "message", "data"}), so that every client
// reads it.
func tooLarge(e *core.RequestEvent) error {
	return e.JSON(http.StatusRequestEntityTooLarge, map[string]any{
		"status":  http.StatusRequestEntityTooLarge,
		"code":    httpbody.CodeTooLarge,
		"message": fmt.Sprintf("The request body is larger than %d bytes.", MaxBodyBytes),
		"data":    map[string]any{},
	})
}

// recordWriteTarget returns the collection of a record create, update or
// delete request of the records API.
func recordWriteTarget(r *http.Request) (string, bool) {
	switch r.Method {
	case http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete:
	default:
		return "", false
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 4 || parts[0] != "api" || parts[1] != "collections" || parts[3] != "records" {
		return "", false
	}
	return parts[2], true
}

// CheckRequest validates the body of a record write to a field-work
// collection. It is called by [LimitBody] for REST requests and by the
// record request hooks for every other route (the batch API).
func CheckRequest(e *core.RequestEvent, collectionName string) error {
	collection, err := e.App.FindCachedCollectionByNameOrId(collectionName)
	if err != nil {
		return e.NotFoundError("Missing collection context.", err)
	}
	info, err := e.RequestInfo()
	if err != nil {
		return e.BadRequestError("Failed to read the submitted data.", err)
	}
	superuser := info.HasSuperuserAuth()
	errs := validation.Errors{}
	for key, value := range info.Body {
		name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(key, "+"), "+"), "-")
		field := collection.Fields.GetByName(name)
		switch {
		case field == nil:
			errs[key] = validation.NewError("validation_unknown_field", fmt.Sprintf("%q is not a field of %s.", key, collection.Name))
		case !superuser && domain.IsServerManaged(name):
			errs[key] = validation.NewError("validation_server_managed", fmt.Sprintf("%q is set by the server and cannot be written.", key))
		default:
			if want := expectedType(field, value); want != "" {
				errs[key] = validation.NewError("validation_invalid_type", fmt.Sprintf("%q must be %s.", key, want))
			} else if pe := policyError(field, value); pe != nil {
				errs[key] = validation.NewError(pe.Code, fmt.Sprintf("%q %s.", key, pe.Message))
			}
		}
	}
	if len(errs) > 0 {
		return e.BadRequestError("The request has fields that cannot be written.", errs)
	}
	if superuser || info.Auth == nil {
		return nil // rules refuse anonymous writes
	}
	if team, ok := info.Body["team"]; ok {
		teamID, _ := team.(string)
		action := teamscope.Move // the rule checks the record's current team
		if e.Request.Method == http.MethodPost {
			action = teamscope.Create
		}
		if !teamscope.Of(info.Auth).Allows(collection.Name, action, teamID) {
			return e.ForbiddenError("You can only write records of your own teams.", validation.Errors{
				"team": validation.NewError(teamscope.CodeOtherTeam, "team must be one of your teams"),
			})
		}
	}
	return nil
}

// expectedType returns what a value of field must be when value is not one,
// or "" when it is. PocketBase casts a mistyped value silently (a number
// field given "many" stores 0, a date field given "next week" stores
// nothing); such a value is refused here instead. Strings stand for numbers,
// booleans and dates as they arrive in form-data bodies.
func expectedType(field core.Field, value any) string {
	if value == nil {
		return "" // clears the field
	}
	switch field.(type) {
	case *core.NumberField:
		switch v := value.(type) {
		case float64:
			return ""
		case string:
			if _, err := strconv.ParseFloat(v, 64); err == nil || v == "" {
				return ""
			}
		}
		return "a number"
	case *core.BoolField:
		switch v := value.(type) {
		case bool:
			return ""
		case string:
			if _, err := strconv.ParseBool(v); err == nil || v == "" {
				return ""
			}
		case float64:
			if v == 0 || v == 1 {
				return ""
			}
		}
		return "true or false"
	case *core.DateField:
		switch v := value.(type) {
		case types.DateTime:
			return ""
		case string:
			if d, _ := types.ParseDateTime(v); v == "" || !d.IsZero() {
				return ""
			}
		}
		return "a date such as 2026-11-20 or 2026-11-20 10:00:00.000Z"
	case *core.SelectField, *core.RelationField:
		switch v := value.(type) {
		case string, []string:
			return ""
		case []any:
			for _, item := range v {
				if _, ok := item.(string); !ok {
					return "a text value or a list of text values"
				}
			}
			return ""
		}
		return "a text value or a list of text values"
	case *core.TextField, *core.EmailField, *core.URLField, *core.EditorField:
		switch value.(type) {
		case string, float64, bool:
			return ""
		}
		return "a text value"
	}
	return ""
}

// policyError applies [fieldpolicy] to a value of the expected type: text
// without control characters, lists no longer than the field holds.
func policyError(field core.Field, value any) *fieldpolicy.Error {
	var err error
	switch field.(type) {
	case *core.TextField, *core.EmailField, *core.URLField, *core.EditorField:
		if s, ok := value.(string); ok {
			err = fieldpolicy.Text(s)
		}
	case *core.SelectField, *core.RelationField:
		switch v := value.(type) {
		case []string:
			err = fieldpolicy.Values(field, len(v))
		case []any:
			err = fieldpolicy.Values(field, len(v))
		}
	}
	var pe *fieldpolicy.Error
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

// OnRecordWriteRequest is bound to the create and update request hooks of
// field-work collections: it repeats [CheckRequest] for routes that bypass
// the router middleware and records the actor for the change log.
func OnRecordWriteRequest(e *core.RecordRequestEvent) error {
	if err := CheckRequest(e.RequestEvent, e.Collection.Name); err != nil {
		return err
	}
	WithActor(e.RequestEvent)
	return e.Next()
}

// OnRecordActorRequest is bound to the request hooks that need no body
// checks (deletes, reference data written by superusers) to record the actor.
func OnRecordActorRequest(e *core.RecordRequestEvent) error {
	WithActor(e.RequestEvent)
	return e.Next()
}

// WithActor makes the saves of this request carry its authenticated user to
// the change log.
func WithActor(e *core.RequestEvent) {
	if e.Auth == nil {
		return
	}
	e.App = changelog.AppWithActor(e.App, changelog.Actor{User: e.Auth.Id})
}
