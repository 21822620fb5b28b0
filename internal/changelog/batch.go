package changelog

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

// Batch writes the change rows of many creates inside one transaction with
// one statement prepared once, for a writer (the sync push's bulk path) that
// writes the records itself instead of through app.Save and its record
// hooks. A row written by a Batch is the row OnCreateExecute writes for the
// same record: same version, authorship, changed fields, team, site,
// person and actor. Readers are woken once the transaction commits.
type Batch struct {
	l        *Log
	tx       core.App
	insert   *dbx.Query
	signaled bool
}

const insertSQL = `INSERT INTO ` + Table + ` (collection, record_id, op, version, team, site, fields, actor_user, actor_device, mutation_id, at, person)
	VALUES ({:collection}, {:record_id}, {:op}, {:version}, {:team}, {:site}, {:fields}, {:actor_user}, {:actor_device}, {:mutation_id}, {:at}, {:person})`

// NewBatch prepares a Batch on tx, which must be a transaction. Close it
// before the transaction ends.
func (l *Log) NewBatch(tx core.App) (*Batch, error) {
	if tx.TxInfo() == nil {
		return nil, fmt.Errorf("change log batch: not in a transaction")
	}
	q := tx.NonconcurrentDB().NewQuery(insertSQL).Prepare()
	if q.LastError != nil {
		return nil, fmt.Errorf("prepare change log insert: %w", q.LastError)
	}
	return &Batch{l: l, tx: tx, insert: q}, nil
}

// Close releases the prepared statement.
func (b *Batch) Close() error {
	if err := b.insert.Close(); err != nil {
		return fmt.Errorf("close change log insert: %w", err)
	}
	return nil
}

// StampCreate sets what the change log sets on a record before it is first
// written: version 1 for a versioned collection, and created_by and
// updated_by when the actor carried by ctx is a users account.
func (b *Batch) StampCreate(ctx context.Context, rec *core.Record) {
	if b.l.isVersioned(rec.Collection()) {
		rec.Set("version", 1)
	}
	actor := ActorFrom(ctx)
	if actor.User != "" && rec.Collection().Fields.GetByName("updated_by") != nil && b.l.isUser(b.tx, actor.User) {
		rec.Set("created_by", actor.User)
		rec.Set("updated_by", actor.User)
	}
}

// LogCreate appends the create row of rec, written in the batch's
// transaction after StampCreate, and returns its sequence and version.
func (b *Batch) LogCreate(ctx context.Context, rec *core.Record) (int64, int, error) {
	version := 0
	if b.l.isVersioned(rec.Collection()) {
		version = 1
	}
	entry, err := b.l.entryOf(b.tx, rec, OpCreate, version, setFields(rec), ActorFrom(ctx))
	if err != nil {
		return 0, 0, err
	}
	fields, err := json.Marshal(nonNil(entry.Fields))
	if err != nil {
		return 0, 0, fmt.Errorf("encode changed fields: %w", err)
	}
	res, err := b.insert.Bind(entry.params(fields)).Execute()
	if err != nil {
		return 0, 0, fmt.Errorf("append change create %s/%s: %w", entry.Collection, entry.RecordID, err)
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return 0, 0, fmt.Errorf("append change: read seq: %w", err)
	}
	if !b.signaled {
		b.signaled = true
		b.tx.TxInfo().OnComplete(func(txErr error) error {
			if txErr == nil {
				b.l.signal()
			}
			return nil
		})
	}
	return seq, version, nil
}
