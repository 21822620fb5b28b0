package queryguard

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
)

// refusedMessage is the message of every 400 answer of the guard; the data
// names the parameter, the identifier and why.
const refusedMessage = "The query options cannot be used."

// Middleware is a router middleware for every route under
// /api/collections/{collection}/: the records API (list, view, and the
// records that create and update answer with) and the auth routes (which
// answer with the expanded auth record). A request that is not a
// superuser's and whose filter, sort or expand [Check] refuses is answered
// 400 before PocketBase reads anything.
func Middleware(e *core.RequestEvent) error {
	if e.HasSuperuserAuth() {
		return e.Next()
	}
	if err := checkTarget(e.App, e.Request.URL.Path, e.Request.URL.Query()); err != nil {
		return e.BadRequestError(refusedMessage, err)
	}
	return e.Next()
}

// OnBatchRequest is bound to the batch API's request hook: the requests of a
// batch skip the router middlewares, and create, update and upsert answer
// with the record expanded as their URL asks.
func OnBatchRequest(e *core.BatchRequestEvent) error {
	if e.HasSuperuserAuth() {
		return e.Next()
	}
	errs := validation.Errors{}
	for i, r := range e.Batch {
		u, err := url.Parse(r.URL)
		if err != nil {
			continue // PocketBase refuses the request
		}
		if err := checkTarget(e.App, u.Path, u.Query()); err != nil {
			errs[strconv.Itoa(i)] = err
		}
	}
	if len(errs) > 0 {
		return e.BadRequestError(refusedMessage, validation.Errors{"requests": errs})
	}
	return e.Next()
}

// OnRealtimeSubscribe is bound to the realtime subscribe request hook. A
// subscription topic is a collection (its name or id), a slash and a record
// id or "*", with the options as PocketBase reads them:
// `persons/*?options={"query":{"filter":"..."}}`. PocketBase evaluates the
// filter for every change it broadcasts and expands each record it sends, so
// a subscription is held to the same policy as a list request, and refused
// as a whole with 400 naming the subscription by its position.
func OnRealtimeSubscribe(e *core.RealtimeSubscribeRequestEvent) error {
	if e.HasSuperuserAuth() {
		return e.Next()
	}
	errs := validation.Errors{}
	for i, topic := range e.Subscriptions {
		if err := checkSubscription(e.App, topic); err != nil {
			errs[strconv.Itoa(i)] = err
		}
	}
	if len(errs) > 0 {
		return e.BadRequestError(refusedMessage, validation.Errors{"subscriptions": errs})
	}
	return e.Next()
}

func checkSubscription(app core.App, topic string) error {
	u, err := url.Parse(topic)
	if err != nil {
		return nil // PocketBase keeps such a topic without options
	}
	query := url.Values{}
	for _, raw := range u.Query()["options"] {
		var options struct {
			Query map[string]any `json:"query"`
		}
		if err := json.Unmarshal([]byte(raw), &options); err != nil {
			return validation.Errors{"options": validation.NewError(CodeOptions,
				fmt.Sprintf("The subscription options are not valid JSON: %v.", err))}
		}
		for _, key := range []string{ParamFilter, ParamSort, ParamExpand} {
			v, ok := options.Query[key]
			if !ok || v == nil {
				continue
			}
			s, ok := v.(string)
			if !ok {
				return validation.Errors{key: validation.NewError(CodeOptions,
					fmt.Sprintf("The subscription's %s must be text.", key))}
			}
			query.Add(key, s)
		}
	}
	if !hasOptions(query) {
		return nil
	}
	name, _, _ := strings.Cut(u.Path, "/")
	c, err := app.FindCachedCollectionByNameOrId(name)
	if err != nil {
		return nil // not a collection: PocketBase broadcasts no record to it
	}
	return Check(app, c, query)
}

// checkTarget applies [Check] to a request for path when path is under
// /api/collections/{collection}/ and names an existing collection.
func checkTarget(app core.App, path string, query url.Values) error {
	name, ok := collectionInPath(path)
	if !ok || !hasOptions(query) {
		return nil
	}
	c, err := app.FindCachedCollectionByNameOrId(name)
	if err != nil {
		return nil // PocketBase answers 404
	}
	return Check(app, c, query)
}

// collectionInPath returns the {collection} of a path under
// /api/collections/{collection}/.
func collectionInPath(path string) (string, bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) < 4 || parts[0] != "api" || parts[1] != "collections" || parts[2] == "" {
		return "", false
	}
	return parts[2], true
}

func hasOptions(query url.Values) bool {
	return len(query[ParamFilter]) > 0 || len(query[ParamSort]) > 0 || len(query[ParamExpand]) > 0
}
