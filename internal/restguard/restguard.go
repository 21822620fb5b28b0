// Package restguard holds PocketBase's record API to Strada's standards for
// field-work collections: a body size limit, refusal of unknown and
// server-managed fields and of writes into a team the user is not in, each
// with an error naming the field; and it tells the change log who acted.
package restguard

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"

	"strada/internal/changelog"
	"strada/internal/domain"
)

// MaxBodyBytes is the largest record write body accepted for a field-work
// collection.
const MaxBodyBytes int64 = 1 << 20

// LimitBody is a router middleware: a record write to a field-work
// collection larger than MaxBodyBytes is answered 413 before it is parsed,
// and the rest of the request is checked by [CheckBody] before any rule runs.
func LimitBody(e *core.RequestEvent) error {
	collection, ok := recordWriteTarget(e.Request)
	if !ok || !domain.IsFieldWork(collection) {
		return e.Next()
	}
	if e.Request.ContentLength > MaxBodyBytes {
		return tooLarge(e)
	}
	if e.Request.Body != nil && e.Request.Method != http.MethodDelete {
		buf, err := io.ReadAll(io.LimitReader(e.Request.Body, MaxBodyBytes+1))
		if err != nil {
			return e.BadRequestError("Failed to read the request body.", err)
		}
		if int64(len(buf)) > MaxBodyBytes {
			return tooLarge(e)
		}
		e.Request.Body = &router.RereadableReadCloser{ReadCloser: io.NopCloser(bytes.NewReader(buf))}
		if err := CheckRequest(e, collection); err != nil {
			return err
		}
	}
	return e.Next()
}

func tooLarge(e *core.RequestEvent) error {
	return e.Error(http.StatusRequestEntityTooLarge,
		fmt.Sprintf("The request body is larger than %d bytes.", MaxBodyBytes), nil)
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
	for key := range info.Body {
		name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(key, "+"), "+"), "-")
		switch {
		case collection.Fields.GetByName(name) == nil:
			errs[key] = validation.NewError("validation_unknown_field", fmt.Sprintf("%q is not a field of %s.", key, collection.Name))
		case !superuser && domain.IsServerManaged(name):
			errs[key] = validation.NewError("validation_server_managed", fmt.Sprintf("%q is set by the server and cannot be written.", key))
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
		if !slices.Contains(info.Auth.GetStringSlice("teams"), teamID) {
			return e.ForbiddenError("You can only write records of your own teams.", validation.Errors{
				"team": validation.NewError("validation_other_team", "team must be one of your teams"),
			})
		}
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
