package syncapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/integrity"
)

// bulkCreatable are the collections whose new records the push writes on
// its bulk path: their create runs no record hook but the ids check
// (integrity.AssignID, answered here from the batch's tombstones), the
// validation hooks (run here through app.Validate: team scope, relations,
// site kinds and PocketBase's own field rules), the change log's
// (changelog.Batch writes the same row) and the dashboard rollups'
// (API.BulkCreated). Persons (their code is assigned
// by a hook) and referrals (their history is written by a hook) take
// app.Save. A collection that gains a create hook of its own must leave
// this set, or the hook's work must be done here too.
var bulkCreatable = map[string]bool{
	domain.CampVisits:          true,
	domain.SecretariatContacts: true,
}

// batch is what one push looks up and prepares once for all its mutations:
// the ledger entries of its mutation ids, the records it names, the
// tombstones of the ids it creates, and the statements it repeats.
type batch struct {
	app core.App // outside the transaction: the app of after-commit hooks
	tx  core.App
	log *changelog.Batch // nil: no change log attached, every write takes app.Save

	ledger     map[string]ledgerEntry
	existing   map[string]*core.Record // by collection/id, as the push found them
	tombstones map[string]changelog.Op // by collection/id: the last delete or purge
	touched    map[string]bool         // by collection/id: written by this push, read again

	created func(tx core.App, rec *core.Record) error // API.BulkCreated

	ledgerInsert *dbx.Query
	inserts      map[string]*dbx.Query // record insert by collection
	columns      map[string][]string
}

type ledgerEntry struct {
	result Result
	user   string
}

func refKey(collection, id string) string { return collection + "/" + id }

// newBatch looks up, in one query per kind (and per collection for
// records), everything the mutations of a push need to know before they
// apply, and prepares the ledger insert.
func newBatch(app, tx core.App, log *changelog.Log, muts []DecodedMutation) (*batch, error) {
	b := &batch{
		app: app, tx: tx, ledger: map[string]ledgerEntry{}, existing: map[string]*core.Record{},
		tombstones: map[string]changelog.Op{}, touched: map[string]bool{}, inserts: map[string]*dbx.Query{}, columns: map[string][]string{},
	}
	var ids []any
	byCollection := map[string][]string{}
	for _, d := range muts {
		if d.Reject != nil {
			continue
		}
		ids = append(ids, d.Mutation.ID)
		byCollection[d.Mutation.Collection] = append(byCollection[d.Mutation.Collection], d.Mutation.RecordID)
	}
	if len(ids) > 0 {
		var rows []struct {
			ID     string `db:"id"`
			User   string `db:"user_id"`
			Result string `db:"result"`
		}
		err := tx.NonconcurrentDB().Select("id", "user_id", "result").From("strada_mutations").
			Where(dbx.In("id", ids...)).All(&rows)
		if err != nil {
			return nil, fmt.Errorf("read mutation ledger: %w", err)
		}
		for _, r := range rows {
			var res Result
			if err := json.Unmarshal([]byte(r.Result), &res); err != nil {
				return nil, fmt.Errorf("decode ledger result %s: %w", r.ID, err)
			}
			b.ledger[r.ID] = ledgerEntry{result: res, user: r.User}
		}
	}
	for name, rids := range byCollection {
		recs, err := tx.FindRecordsByIds(name, rids)
		if err != nil {
			return nil, fmt.Errorf("read %s records of the push: %w", name, err)
		}
		for _, r := range recs {
			b.existing[refKey(name, r.Id)] = r
		}
	}
	for name, rids := range byCollection {
		var rows []struct {
			RecordID string `db:"record_id"`
			Op       string `db:"op"`
		}
		// The last delete or purge of each id, as changelog.Tombstone reads
		// it one record at a time, along the (collection, record_id) index.
		err := tx.NonconcurrentDB().Select("record_id", "op").From(changelog.Table).
			Where(dbx.HashExp{"collection": name}).
			AndWhere(dbx.In("record_id", toAny(rids)...)).
			AndWhere(dbx.In("op", string(changelog.OpDelete), string(changelog.OpPurge))).
			OrderBy("seq ASC").All(&rows)
		if err != nil {
			return nil, fmt.Errorf("read tombstones of the push's %s: %w", name, err)
		}
		for _, r := range rows {
			b.tombstones[refKey(name, r.RecordID)] = changelog.Op(r.Op)
		}
	}
	b.ledgerInsert = tx.NonconcurrentDB().NewQuery(`INSERT INTO strada_mutations (id, user_id, device_id, result, at)
		VALUES ({:id}, {:user_id}, {:device_id}, {:result}, {:at})`).Prepare()
	if err := b.ledgerInsert.LastError; err != nil {
		return nil, fmt.Errorf("prepare ledger insert: %w", err)
	}
	if log != nil {
		lb, err := log.NewBatch(tx)
		if err != nil {
			b.close()
			return nil, err
		}
		b.log = lb
	}
	return b, nil
}

// close releases the prepared statements.
func (b *batch) close() error {
	var errs []error
	if err := b.ledgerInsert.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close ledger insert: %w", err))
	}
	for name, q := range b.inserts {
		if err := q.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s insert: %w", name, err))
		}
	}
	if b.log != nil {
		if err := b.log.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("close push statements: %v", errs)
	}
	return nil
}

// record returns the committed record a mutation names, or nil when there
// is none: as the push found it, or read again once the push wrote it.
func (b *batch) record(collection *core.Collection, id string) (*core.Record, error) {
	key := refKey(collection.Name, id)
	if !b.touched[key] {
		return b.existing[key], nil
	}
	r, err := b.tx.FindRecordById(collection, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s/%s: %w", collection.Name, id, err)
	}
	return r, nil
}

// tombstone returns the op (delete or purge) that removed a record, or ""
// when the log has none.
func (b *batch) tombstone(collection, id string) (changelog.Op, error) {
	key := refKey(collection, id)
	if !b.touched[key] {
		return b.tombstones[key], nil
	}
	return changelog.Tombstone(b.tx, collection, id)
}

// touch marks a record as written by the push: later mutations of it read
// it again.
func (b *batch) touch(collection, id string) { b.touched[refKey(collection, id)] = true }

// storeLedger records the first result of a mutation id.
func (b *batch) storeLedger(id, user, device string, r Result) error {
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode result %s: %w", id, err)
	}
	_, err = b.ledgerInsert.Bind(dbx.Params{
		"id": id, "user_id": user, "device_id": device, "result": string(body),
		"at": time.Now().UTC().Format(time.RFC3339Nano),
	}).Execute()
	if err != nil {
		return fmt.Errorf("record mutation %s: %w", id, err)
	}
	b.ledger[id] = ledgerEntry{result: r, user: user}
	return nil
}

// canBulkCreate reports whether a new record of c is written on the bulk
// path: a collection of bulkCreatable whose fields are all plain values
// (no files, passwords or other fields whose write does work of its own).
func (b *batch) canBulkCreate(c *core.Collection) bool {
	if b.log == nil || !bulkCreatable[c.Name] {
		return false
	}
	for _, f := range c.Fields {
		switch f.(type) {
		case *core.TextField, *core.NumberField, *core.BoolField, *core.DateField, *core.SelectField,
			*core.RelationField, *core.JSONField, *core.AutodateField, *core.EmailField, *core.URLField, *core.EditorField:
		default:
			return false
		}
	}
	return true
}

// create writes a new record of a bulkCreatable collection as app.Save
// with Strada's hooks would, with set-based lookups and prepared
// statements: the id is refused when it belonged to a deleted or erased
// record (integrity.AssignID), the record is validated by the same
// validation hooks and field rules, stamped and logged by the change log,
// and PocketBase's after-create hooks run once the push commits. The error
// is a validation error (a rejection) or a server fault. It needs no
// savepoint: nothing is written before the record's insert, a statement
// SQLite undoes by itself when it fails, and a failure after it is a
// serverFault.
func (b *batch) create(ctx context.Context, rec *core.Record, rcpt *changelog.Receipt) error {
	c := rec.Collection()
	tomb, err := b.tombstone(c.Name, rec.Id)
	if err != nil {
		return err
	}
	if err := integrity.ReusedID(tomb); err != nil {
		return err
	}
	b.log.StampCreate(ctx, rec)
	if err := b.tx.ValidateWithContext(ctx, rec); err != nil {
		return err
	}
	now := types.NowDateTime()
	for _, f := range c.Fields {
		if af, ok := f.(*core.AutodateField); ok && (af.OnCreate || af.OnUpdate) {
			rec.SetRaw(af.Name, now)
		}
	}
	data, err := rec.DBExport(b.tx)
	if err != nil {
		return fmt.Errorf("export %s/%s: %w", c.Name, rec.Id, err)
	}
	insert, columns, err := b.insertOf(c)
	if err != nil {
		return err
	}
	params := make(dbx.Params, len(columns))
	for i, col := range columns {
		params["p"+strconv.Itoa(i)] = data[col]
	}
	if _, err := insert.Bind(params).Execute(); err != nil {
		return fmt.Errorf("insert %s/%s: %w", c.Name, rec.Id, err)
	}
	rec.MarkAsNotNew()
	// No savepoint holds this mutation: once the record is written, any
	// failure aborts the whole push, so that no record stays without its
	// change row.
	seq, version, err := b.log.LogCreate(ctx, rec)
	if err != nil {
		return serverFault{err}
	}
	rcpt.Seq, rcpt.Version = seq, version
	if b.created != nil {
		if err := b.created(b.tx, rec); err != nil {
			return serverFault{fmt.Errorf("after insert of %s/%s: %w", c.Name, rec.Id, err)}
		}
	}
	// As app.Save inside a transaction: the after-create hooks run when
	// it completes, with its outcome.
	app := b.app
	event := &core.ModelEvent{Type: core.ModelEventTypeCreate, Context: ctx}
	event.Model = rec
	event.App = app
	b.tx.TxInfo().OnComplete(func(txErr error) error {
		if txErr != nil {
			rec.MarkAsNew()
			return app.OnModelAfterCreateError().Trigger(&core.ModelErrorEvent{ModelEvent: *event, Error: txErr})
		}
		return app.OnModelAfterCreateSuccess().Trigger(event)
	})
	return nil
}

// serverFault is an error that aborts the whole push, never answered as a
// rejection of one mutation.
type serverFault struct{ err error }

func (s serverFault) Error() string { return s.err.Error() }
func (s serverFault) Unwrap() error { return s.err }

// insertOf returns the prepared insert of a record of c, with every
// column of the collection.
func (b *batch) insertOf(c *core.Collection) (*dbx.Query, []string, error) {
	if q, ok := b.inserts[c.Name]; ok {
		return q, b.columns[c.Name], nil
	}
	db := b.tx.NonconcurrentDB()
	columns := make([]string, 0, len(c.Fields))
	quoted := make([]string, 0, len(c.Fields))
	holders := make([]string, 0, len(c.Fields))
	for i, f := range c.Fields {
		columns = append(columns, f.GetName())
		quoted = append(quoted, db.QuoteSimpleColumnName(f.GetName()))
		holders = append(holders, "{:p"+strconv.Itoa(i)+"}")
	}
	sql := "INSERT INTO " + db.QuoteSimpleTableName(c.Name) + " (" + strings.Join(quoted, ", ") + ") VALUES (" + strings.Join(holders, ", ") + ")"
	q := db.NewQuery(sql).Prepare()
	if q.LastError != nil {
		return nil, nil, fmt.Errorf("prepare %s insert: %w", c.Name, q.LastError)
	}
	b.inserts[c.Name] = q
	b.columns[c.Name] = columns
	return q, columns, nil
}
