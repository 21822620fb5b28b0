package syncapi

import (
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/teamscope"
)

// Change is one record's state in a pull page.
type Change struct {
	Collection string         `json:"collection"`
	ID         string         `json:"id"`
	Op         string         `json:"op"`
	Version    int            `json:"version"`
	Record     map[string]any `json:"record"`
}

// Pull ops.
const (
	PullUpsert = "upsert"
	PullDelete = "delete"
	PullPurge  = "purge"
)

// PullResponse is a page of changes.
type PullResponse struct {
	Changes []Change `json:"changes"`
	Cursor  string   `json:"cursor"`
	// Seq is the change log position the cursor stands for; a device keeps
	// its optimistic copy of a pushed record until Seq reaches the seq of
	// its mutation.
	Seq     int64 `json:"seq"`
	HasMore bool  `json:"hasMore"`
	Reset   bool  `json:"reset"`
	// Snapshot is true while the pages come from a snapshot.
	Snapshot bool `json:"snapshot"`
	// Users are the id and name of the users who share a team with the
	// caller, on every page but a reset (see pull_users.go).
	Users []Colleague `json:"users,omitempty"`
	// Policy is what the server asks of the device (policy.go), on every
	// page but a reset.
	Policy *DevicePolicy `json:"policy,omitempty"`
}

// snapshotOrder is the order of collections in a snapshot: reference data
// first, then people, then what refers to them.
var snapshotOrder = []string{
	domain.Teams, domain.Sites, domain.Services, domain.Persons,
	domain.CampVisits, domain.SecretariatContacts, domain.Referrals, domain.ReferralEvents,
}

// Pull answers GET /api/sync/pull.
func (a *API) Pull(e *core.RequestEvent) error {
	limit := DefaultLimit
	if s := e.Request.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPullLimit {
			return e.JSON(http.StatusBadRequest, Error{Status: 400, Code: "invalid_limit", Field: "limit",
				Message: "limit must be a whole number from 1 to 1000."})
		}
		limit = n
	}
	scope := scopeOf(e.Auth)
	var cur Cursor
	if s := e.Request.URL.Query().Get("cursor"); s == "" {
		seq, err := changelog.LastSeq(e.App)
		if err != nil {
			return e.InternalServerError("", err)
		}
		cur = Cursor{Seq: seq, Scope: scope.fingerprint, User: e.Auth.Id, Snap: true}
	} else {
		var err error
		cur, err = a.cursors.decode(e.App, s)
		if errors.Is(err, errBadCursor) {
			return e.JSON(http.StatusBadRequest, Error{Status: 400, Code: "invalid_cursor", Field: "cursor",
				Message: "The cursor was not made by this server. Start again with an empty cursor."})
		}
		if err != nil {
			return e.InternalServerError("", err)
		}
		if cur.Hint {
			return e.JSON(http.StatusBadRequest, Error{Status: 400, Code: "hint_cursor", Field: "cursor",
				Message: "This cursor comes from a stream hint; pull from the cursor of your last pull."})
		}
	}
	resp, err := a.page(e.App, e.Auth.Id, scope, cur, limit)
	if err == nil && !resp.Reset {
		resp.Users, err = teamColleagues(e.App, scope)
		resp.Policy = a.policy()
	}
	if err != nil {
		return e.InternalServerError("", err)
	}
	if err := touchDevice(e.App, e, resp.Cursor); errors.Is(err, errDeviceRevoked) {
		return revokedAnswer(e)
	} else if err != nil {
		return e.InternalServerError("", err)
	}
	if err := recordHealth(e.App, e, syncPull); err != nil {
		return e.InternalServerError("", err)
	}
	if err := logDownloads(e, resp.Changes); err != nil {
		return e.InternalServerError("", err)
	}
	return e.JSON(http.StatusOK, resp)
}

func (a *API) page(app core.App, userID string, scope userScope, cur Cursor, limit int) (PullResponse, error) {
	if cur.User != userID || cur.Scope != scope.fingerprint {
		return PullResponse{Reset: true, HasMore: true, Changes: []Change{}}, nil
	}
	if stale, err := staleCursor(app, cur); err != nil || stale {
		return PullResponse{Reset: true, HasMore: true, Changes: []Change{}}, err
	}
	var resp PullResponse
	var err error
	if cur.Snap {
		resp, cur, err = snapshotPage(app, scope, cur, limit)
	} else {
		resp, cur, err = logPage(app, scope, cur, limit)
	}
	if err != nil {
		return PullResponse{}, err
	}
	cur.Tag, _, err = changelog.RowTag(app, cur.Seq)
	if err != nil {
		return PullResponse{}, err
	}
	resp.Cursor, err = a.cursors.encode(app, cur)
	if err != nil {
		return PullResponse{}, err
	}
	resp.Seq = cur.Seq
	return resp, nil
}

// staleCursor reports whether a cursor no longer points into this log: it
// is older than what the log keeps, beyond its end, or at a row that is not
// the one it was made at (the database was restored from a backup).
func staleCursor(app core.App, cur Cursor) (bool, error) {
	floor, err := changelog.Floor(app)
	if err != nil {
		return false, err
	}
	if !cur.Snap && cur.Seq < floor {
		return true, nil
	}
	last, err := changelog.LastSeq(app)
	if err != nil {
		return false, err
	}
	if cur.Seq > last {
		return true, nil
	}
	tag, found, err := changelog.RowTag(app, cur.Seq)
	if err != nil {
		return false, err
	}
	return found && cur.Tag != "" && tag != cur.Tag, nil
}

// inScope reports whether the team policy lets the scope's user read rec.
func inScope(collection string, rec *core.Record, scope userScope) bool {
	return scope.who.Allows(collection, teamscope.Read, rec.GetString("team"))
}

// snapshotPage sends the current state of the scope's records in id order,
// collection by collection. The cursor's Seq is the log position read
// before the snapshot began: whatever commits during the snapshot is
// delivered again from the log afterwards, so nothing is missed.
func snapshotPage(app core.App, scope userScope, cur Cursor, limit int) (PullResponse, Cursor, error) {
	resp := PullResponse{Changes: []Change{}, Snapshot: true}
	for cur.Collection < len(snapshotOrder) && len(resp.Changes) < limit {
		name := snapshotOrder[cur.Collection]
		q := app.RecordQuery(name).
			AndWhere(dbx.NewExp("id > {:after}", dbx.Params{"after": cur.After})).
			OrderBy("id ASC").Limit(int64(limit - len(resp.Changes)))
		if teamscope.NeedOf(name, teamscope.Read) != teamscope.SignedIn {
			teams := scope.who.TeamsAllowing(teamscope.Read, name)
			if len(teams) == 0 {
				cur.Collection++
				cur.After = ""
				continue
			}
			q = q.AndWhere(dbx.In("team", toAny(teams)...))
		}
		var records []*core.Record
		if err := q.All(&records); err != nil {
			return resp, cur, err
		}
		for _, r := range records {
			resp.Changes = append(resp.Changes, upsertOf(name, r))
			cur.After = r.Id
		}
		if len(resp.Changes) < limit {
			cur.Collection++
			cur.After = ""
		}
	}
	if cur.Collection >= len(snapshotOrder) {
		cur.Snap, cur.Collection, cur.After = false, 0, ""
		more, err := changelog.SinceInScope(app, cur.Seq, changelog.Scope{Teams: scope.teams, Global: true}, 1)
		if err != nil {
			return resp, cur, err
		}
		resp.HasMore = len(more) > 0
		return resp, cur, nil
	}
	resp.HasMore = true
	return resp, cur, nil
}

type recordKey struct{ collection, id string }

// logPage sends the records changed after the cursor, each once, in its
// current state; a record deleted, erased or moved out of the scope is
// sent as delete or purge.
func logPage(app core.App, scope userScope, cur Cursor, limit int) (PullResponse, Cursor, error) {
	resp := PullResponse{Changes: []Change{}}
	entries, err := changelog.SinceInScope(app, cur.Seq, changelog.Scope{Teams: scope.teams, Global: true}, limit)
	if err != nil {
		return resp, cur, err
	}
	if len(entries) == 0 {
		return resp, cur, nil
	}
	last := map[recordKey]changelog.Entry{}
	ids := map[string][]string{}
	for _, en := range entries {
		k := recordKey{en.Collection, en.RecordID}
		if _, seen := last[k]; !seen {
			ids[en.Collection] = append(ids[en.Collection], en.RecordID)
		}
		last[k] = en
	}
	current := map[recordKey]*core.Record{}
	for collection, list := range ids {
		records, err := app.FindRecordsByIds(collection, list)
		if err != nil {
			return resp, cur, err
		}
		for _, r := range records {
			current[recordKey{collection, r.Id}] = r
		}
	}
	ordered := make([]changelog.Entry, 0, len(last))
	for _, en := range last {
		ordered = append(ordered, en)
	}
	slices.SortFunc(ordered, func(a, b changelog.Entry) int { return int(a.Seq - b.Seq) })
	for _, en := range ordered {
		k := recordKey{en.Collection, en.RecordID}
		rec := current[k]
		switch {
		case en.Op == changelog.OpPurge:
			resp.Changes = append(resp.Changes, Change{Collection: en.Collection, ID: en.RecordID, Op: PullPurge, Version: en.Version})
		case rec == nil:
			resp.Changes = append(resp.Changes, Change{Collection: en.Collection, ID: en.RecordID, Op: PullDelete, Version: en.Version})
		case !inScope(en.Collection, rec, scope):
			resp.Changes = append(resp.Changes, Change{Collection: en.Collection, ID: en.RecordID, Op: PullDelete, Version: rec.GetInt("version")})
		default:
			resp.Changes = append(resp.Changes, upsertOf(en.Collection, rec))
		}
	}
	cur.Seq = entries[len(entries)-1].Seq
	resp.HasMore = len(entries) == limit
	return resp, cur, nil
}

func upsertOf(collection string, r *core.Record) Change {
	return Change{Collection: collection, ID: r.Id, Op: PullUpsert, Version: r.GetInt("version"), Record: Export(r)}
}

// Export is the record as devices receive it: every field but hidden ones.
func Export(r *core.Record) map[string]any {
	out := map[string]any{}
	for _, f := range r.Collection().Fields {
		if f.GetHidden() {
			continue
		}
		out[f.GetName()] = r.Get(f.GetName())
	}
	return out
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
