package changelog

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

type row struct {
	Seq         int64  `db:"seq"`
	Collection  string `db:"collection"`
	RecordID    string `db:"record_id"`
	Op          string `db:"op"`
	Version     int    `db:"version"`
	Team        string `db:"team"`
	Site        string `db:"site"`
	Fields      string `db:"fields"`
	ActorUser   string `db:"actor_user"`
	ActorDevice string `db:"actor_device"`
	MutationID  string `db:"mutation_id"`
	At          string `db:"at"`
	Person      string `db:"person"`
}

func (r row) entry() (Entry, error) {
	e := Entry{
		Seq:        r.Seq,
		Collection: r.Collection,
		RecordID:   r.RecordID,
		Op:         Op(r.Op),
		Version:    r.Version,
		Team:       r.Team,
		Site:       r.Site,
		Actor:      Actor{User: r.ActorUser, Device: r.ActorDevice, Mutation: r.MutationID},
		Person:     r.Person,
	}
	if err := json.Unmarshal([]byte(r.Fields), &e.Fields); err != nil {
		return e, fmt.Errorf("decode fields of change %d: %w", r.Seq, err)
	}
	at, err := time.Parse(time.RFC3339Nano, r.At)
	if err != nil {
		return e, fmt.Errorf("decode time of change %d: %w", r.Seq, err)
	}
	e.At = at
	return e, nil
}

// Since returns up to limit entries with a sequence greater than after, in
// sequence order.
func Since(app core.App, after int64, limit int) ([]Entry, error) {
	var rows []row
	err := app.ConcurrentDB().Select("*").From(Table).
		Where(dbx.NewExp("seq > {:after}", dbx.Params{"after": after})).
		OrderBy("seq ASC").Limit(int64(limit)).All(&rows)
	if err != nil {
		return nil, fmt.Errorf("read changes after %d: %w", after, err)
	}
	out := make([]Entry, 0, len(rows))
	for _, r := range rows {
		e, err := r.entry()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Get returns the row at seq, and whether the log holds one.
func Get(app core.App, seq int64) (Entry, bool, error) {
	var r row
	err := app.ConcurrentDB().Select("*").From(Table).Where(dbx.HashExp{"seq": seq}).One(&r)
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("read change %d: %w", seq, err)
	}
	e, err := r.entry()
	return e, err == nil, err
}

// LastSeq returns the highest committed sequence, or 0 for an empty log.
func LastSeq(app core.App) (int64, error) {
	var seq int64
	err := app.ConcurrentDB().Select("coalesce(max(seq), 0)").From(Table).Row(&seq)
	if err != nil {
		return 0, fmt.Errorf("read last change seq: %w", err)
	}
	return seq, nil
}

// Count returns the number of rows with a sequence greater than after.
func Count(app core.App, after int64) (int64, error) {
	var n int64
	err := app.ConcurrentDB().Select("count(*)").From(Table).
		Where(dbx.NewExp("seq > {:after}", dbx.Params{"after": after})).Row(&n)
	if err != nil {
		return 0, fmt.Errorf("count changes after %d: %w", after, err)
	}
	return n, nil
}
