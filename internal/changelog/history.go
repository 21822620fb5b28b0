package changelog

import (
	"cmp"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

// FieldChange is the last change of one field of a record.
type FieldChange struct {
	Version int
	Actor   Actor
	At      time.Time
}

// FieldChangesAfter returns, for each field of a record changed after
// version, the last change of it. It is how the server knows which version
// last changed each field, to tell a concurrent edit of the same field from
// one of another field.
//
// At most MaxHistory rows are read; when there are more, the history is
// reported as truncated and the caller must treat every field as changed
// by someone else (journaling rather than silently overwriting).
func FieldChangesAfter(app core.App, collection, recordID string, version int) (map[string]FieldChange, bool, error) {
	var rows []row
	err := app.NonconcurrentDB().Select("*").From(Table).
		Where(dbx.HashExp{"collection": collection, "record_id": recordID}).
		AndWhere(dbx.NewExp("version > {:v}", dbx.Params{"v": version})).
		AndWhere(dbx.In("op", string(OpCreate), string(OpUpdate))).
		OrderBy("seq ASC").Limit(MaxHistory + 1).All(&rows)
	if err != nil {
		return nil, false, fmt.Errorf("read history of %s/%s: %w", collection, recordID, err)
	}
	if len(rows) > MaxHistory {
		return nil, true, nil
	}
	out := map[string]FieldChange{}
	for _, r := range rows {
		e, err := r.entry()
		if err != nil {
			return nil, false, err
		}
		for _, f := range e.Fields {
			out[f] = FieldChange{Version: e.Version, Actor: e.Actor, At: e.At}
		}
	}
	return out, false, nil
}

// MaxHistory bounds the history read to merge one mutation, so that a push
// based on a very old version cannot hold the write lock for long.
const MaxHistory = 2000

// Tombstone returns the op (delete or purge) that removed a record, or ""
// when the log has none.
func Tombstone(app core.App, collection, recordID string) (Op, error) {
	var op string
	err := app.NonconcurrentDB().Select("op").From(Table).
		Where(dbx.HashExp{"collection": collection, "record_id": recordID}).
		AndWhere(dbx.In("op", string(OpDelete), string(OpPurge))).
		OrderBy("seq DESC").Limit(1).Row(&op)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read tombstone of %s/%s: %w", collection, recordID, err)
	}
	return Op(op), nil
}

// LastOf returns the latest row of a record, or an entry with Seq 0 when
// the log has none.
func LastOf(app core.App, collection, recordID string) (Entry, error) {
	var r row
	err := app.NonconcurrentDB().Select("*").From(Table).
		Where(dbx.HashExp{"collection": collection, "record_id": recordID}).
		OrderBy("seq DESC").Limit(1).One(&r)
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, nil
	}
	if err != nil {
		return Entry{}, fmt.Errorf("read last change of %s/%s: %w", collection, recordID, err)
	}
	return r.entry()
}

// Scrub removes every row of a record older than its purge row at keepSeq:
// after an erasure the log keeps only that the record was purged, by whom
// and when.
func Scrub(app core.App, collection, recordID string, keepSeq int64) error {
	_, err := app.NonconcurrentDB().Delete(Table, dbx.And(
		dbx.HashExp{"collection": collection, "record_id": recordID},
		dbx.NewExp("seq < {:keep}", dbx.Params{"keep": keepSeq}),
	)).Execute()
	if err != nil {
		return fmt.Errorf("scrub history of %s/%s: %w", collection, recordID, err)
	}
	return nil
}

// Ref names a record.
type Ref struct {
	Collection string `db:"collection"`
	RecordID   string `db:"record_id"`
}

// RecordsOfPerson returns every record whose rows name person (see
// [Entry.Person]), deleted records included, in order of first appearance.
func RecordsOfPerson(app core.App, person string) ([]Ref, error) {
	var refs []Ref
	err := app.NonconcurrentDB().Select("collection", "record_id").From(Table).
		Where(dbx.HashExp{"person": person}).
		GroupBy("collection", "record_id").OrderBy("min(seq) ASC").All(&refs)
	if err != nil {
		return nil, fmt.Errorf("read records of person %s: %w", person, err)
	}
	return refs, nil
}

// ForgetPerson clears person from every row that names it, so that after
// an erasure no row links a record to the erased person, and returns how
// many rows named it.
func ForgetPerson(app core.App, person string) (int64, error) {
	res, err := app.NonconcurrentDB().Update(Table, dbx.Params{"person": ""},
		dbx.HashExp{"person": person}).Execute()
	if err != nil {
		return 0, fmt.Errorf("clear person %s from the log: %w", person, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("clear person %s from the log: %w", person, err)
	}
	return n, nil
}

// Scope selects the rows a reader may see: those of its teams, and the
// rows without a team (reference data) when Global is set.
type Scope struct {
	Teams  []string
	Global bool
}

// SinceInScope returns up to limit entries of scope with a sequence greater
// than after, in sequence order. Each team is read along its own index
// range and the ranges are merged, so the cost depends on the scope's
// changes, not on how much else the log holds.
func SinceInScope(app core.App, after int64, scope Scope, limit int) ([]Entry, error) {
	teams := slices.Clone(scope.Teams)
	if scope.Global {
		teams = append(teams, "")
	}
	var all []row
	for _, team := range teams {
		var rows []row
		err := app.ConcurrentDB().Select("*").From(Table).
			Where(dbx.HashExp{"team": team}).
			AndWhere(dbx.NewExp("seq > {:after}", dbx.Params{"after": after})).
			OrderBy("seq ASC").Limit(int64(limit)).All(&rows)
		if err != nil {
			return nil, fmt.Errorf("read changes of team %q after %d: %w", team, after, err)
		}
		all = append(all, rows...)
	}
	slices.SortFunc(all, func(a, b row) int { return cmp.Compare(a.Seq, b.Seq) })
	if len(all) > limit {
		all = all[:limit]
	}
	out := make([]Entry, 0, len(all))
	for _, r := range all {
		e, err := r.entry()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Floor returns the lowest sequence the log still answers from: cursors
// below it must start again from a snapshot.
func Floor(app core.App) (int64, error) {
	var v string
	err := app.ConcurrentDB().Select("value").From("strada_state").
		Where(dbx.HashExp{"key": "log.floor"}).Row(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read log floor: %w", err)
	}
	var floor int64
	if err := json.Unmarshal([]byte(v), &floor); err != nil {
		return 0, fmt.Errorf("log floor %q: %w", v, err)
	}
	return floor, nil
}

// Compact removes the rows at or below seq, keeping the latest row of each
// record, and raises the floor to seq: cursors older than that get a reset.
func Compact(app core.App, seq int64) error {
	return app.RunInTransaction(func(tx core.App) error {
		_, err := tx.NonconcurrentDB().NewQuery(`
			DELETE FROM strada_changes WHERE seq <= {:seq} AND seq NOT IN (
				SELECT max(seq) FROM strada_changes GROUP BY collection, record_id
			)`).Bind(dbx.Params{"seq": seq}).Execute()
		if err != nil {
			return fmt.Errorf("compact change log to %d: %w", seq, err)
		}
		_, err = tx.NonconcurrentDB().NewQuery(`
			INSERT INTO strada_state (key, value) VALUES ('log.floor', {:v})
			ON CONFLICT(key) DO UPDATE SET value = excluded.value`).
			Bind(dbx.Params{"v": fmt.Sprint(seq)}).Execute()
		if err != nil {
			return fmt.Errorf("raise log floor to %d: %w", seq, err)
		}
		return nil
	})
}
