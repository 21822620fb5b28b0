// Package changelog keeps the change log: one row per committed change to a
// logged collection, written in the same SQLite transaction as the record,
// numbered by a sequence that only grows in commit order. It is the source of
// the event stream and of every sync cursor.
package changelog

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

// Op is the kind of change a log row records.
type Op string

// The operations of the log.
const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
	OpPurge  Op = "purge"
)

// Table is the SQL table of the log.
const Table = "strada_changes"

// Entry is one row of the change log. It holds identifiers and field names
// only, never field values: it is what leaves the database as an event.
type Entry struct {
	Seq        int64     `json:"seq"`
	Collection string    `json:"collection"`
	RecordID   string    `json:"recordId"`
	Op         Op        `json:"op"`
	Version    int       `json:"version"`
	Team       string    `json:"team,omitempty"`
	Site       string    `json:"site,omitempty"`
	Fields     []string  `json:"fields,omitempty"`
	Actor      Actor     `json:"actor"`
	At         time.Time `json:"at"`
	// Person is the person the record is about, kept so that an erasure
	// finds the person's records deleted before it. It never leaves the
	// database: it is not part of the event.
	Person string `json:"-"`
}

// Log writes and reads the change log and tells waiting readers when new
// rows have committed.
type Log struct {
	// Global lists the collections whose rows are visible to every
	// signed-in user: their entries carry no team.
	global map[string]bool

	mu      sync.Mutex
	waiters chan struct{}

	// users holds the ids found to be users records (not superusers), so
	// that authorship costs no query after an actor's first write.
	users sync.Map

	// personOf names the person a record is about; nil leaves rows
	// without one.
	personOf func(app core.App, rec *core.Record) (string, error)

	// versioned names the collections whose records carry a version the
	// log manages; nil: every collection with a "version" field.
	versioned map[string]bool
}

// SetVersioned names the collections whose "version" field the log sets
// (the committed version + 1). Another collection may have a field of that
// name for its own use, such as the history of a referral recording the
// referral's version. Call it before the hooks run.
func (l *Log) SetVersioned(collections ...string) {
	l.versioned = make(map[string]bool, len(collections))
	for _, c := range collections {
		l.versioned[c] = true
	}
}

func (l *Log) isVersioned(c *core.Collection) bool {
	if l.versioned != nil {
		return l.versioned[c.Name]
	}
	return c.Fields.GetByName("version") != nil
}

// SetPersonOf sets how the log learns the person a record is about (see
// [Entry.Person]). Call it before the hooks run.
func (l *Log) SetPersonOf(fn func(app core.App, rec *core.Record) (string, error)) {
	l.personOf = fn
}

// New returns a Log. globalCollections are those readable by every user.
func New(globalCollections []string) *Log {
	g := make(map[string]bool, len(globalCollections))
	for _, c := range globalCollections {
		g[c] = true
	}
	return &Log{global: g, waiters: make(chan struct{})}
}

// storeKey is where Attach keeps the log in the app's store.
const storeKey = "strada.changelog"

// Attach makes l the change log of app, as [Of] finds it: a writer that
// writes records without app.Save (the sync push's bulk path) logs them
// through it. BindRecordHooks attaches the log whose hooks it binds.
func (l *Log) Attach(app core.App) { app.Store().Set(storeKey, l) }

// Of returns the change log attached to app, or nil when none is.
func Of(app core.App) *Log {
	l, _ := app.Store().Get(storeKey).(*Log)
	return l
}

// Committed returns a channel that is closed the next time a transaction
// that wrote to the log commits.
func (l *Log) Committed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waiters
}

func (l *Log) signal() {
	l.mu.Lock()
	close(l.waiters)
	l.waiters = make(chan struct{})
	l.mu.Unlock()
}

// OnCreateExecute is bound to OnRecordCreateExecute of the logged
// collections: it sets the record's version and authorship and appends a
// create row, committing both together.
func (l *Log) OnCreateExecute(e *core.RecordEvent) error {
	return l.execute(e, OpCreate)
}

// OnUpdateExecute is bound to OnRecordUpdateExecute of the logged
// collections.
func (l *Log) OnUpdateExecute(e *core.RecordEvent) error {
	return l.execute(e, OpUpdate)
}

// OnDeleteExecute is bound to OnRecordDeleteExecute of the logged
// collections: the delete is kept in the log as a tombstone.
func (l *Log) OnDeleteExecute(e *core.RecordEvent) error {
	if purging(e.Context) {
		return l.execute(e, OpPurge)
	}
	return l.execute(e, OpDelete)
}

func (l *Log) execute(e *core.RecordEvent, op Op) error {
	outer := e.App
	defer func() { e.App = outer }()
	return outer.RunInTransaction(func(tx core.App) error {
		e.App = tx
		actor := ActorFrom(e.Context)
		rec := e.Record
		versioned := l.isVersioned(rec.Collection())

		// The committed row, read under the write lock: the base of the
		// version and of the changed fields, whatever the caller loaded.
		var committed *core.Record
		if !rec.IsNew() {
			var err error
			committed, err = committedRecord(tx, rec, versioned)
			if err != nil {
				return err
			}
		}
		version := 0
		if versioned {
			if committed != nil {
				version = committed.GetInt("version")
			}
			version++
			if op != OpDelete && op != OpPurge {
				rec.Set("version", version)
			}
		}
		if (op == OpCreate || op == OpUpdate) && actor.User != "" && rec.Collection().Fields.GetByName("updated_by") != nil {
			if l.isUser(tx, actor.User) {
				if op == OpCreate {
					rec.Set("created_by", actor.User)
				}
				rec.Set("updated_by", actor.User)
			}
		}

		var fields []string
		switch op {
		case OpCreate:
			fields = setFields(rec)
		case OpUpdate:
			fields = ChangedFields(committed, rec)
		}

		if err := e.Next(); err != nil {
			return err
		}

		entry, err := l.entryOf(tx, rec, op, version, fields, actor)
		if err != nil {
			return err
		}
		// A record moving to another team leaves its old team's scope: the
		// old team's readers get a row telling them so.
		if op == OpUpdate && committed != nil && entry.Team != "" {
			if old := committed.GetString("team"); old != "" && old != entry.Team {
				moved := entry
				moved.Team = old
				moved.Fields = []string{"team"}
				if _, err := l.Append(tx, moved); err != nil {
					return err
				}
			}
		}
		seq, err := l.Append(tx, entry)
		if err != nil {
			return err
		}
		if r := receiptFor(e.Context, entry.RecordID); r != nil {
			r.Seq, r.Version = seq, entry.Version
		}
		return nil
	})
}

// entryOf is the change row of a write of rec: its collection, id, team
// (none for reference data), site, the person it is about (none on a
// purge) and who made it.
func (l *Log) entryOf(tx core.App, rec *core.Record, op Op, version int, fields []string, actor Actor) (Entry, error) {
	entry := Entry{
		Collection: rec.Collection().Name,
		RecordID:   rec.Id,
		Op:         op,
		Version:    version,
		Fields:     fields,
		Actor:      actor,
		At:         time.Now().UTC(),
	}
	if !l.global[entry.Collection] {
		entry.Team = rec.GetString("team")
	}
	if rec.Collection().Fields.GetByName("site") != nil {
		entry.Site = rec.GetString("site")
	}
	// A purge row keeps nothing that links the record to its person.
	if l.personOf != nil && op != OpPurge {
		person, err := l.personOf(tx, rec)
		if err != nil {
			return Entry{}, fmt.Errorf("person of %s/%s: %w", entry.Collection, entry.RecordID, err)
		}
		entry.Person = person
	}
	return entry, nil
}

// Append writes entry to the log within app's transaction (or on its own)
// and returns its sequence number. Readers are signalled once it commits.
func (l *Log) Append(app core.App, entry Entry) (int64, error) {
	seq, err := Insert(app, entry)
	if err != nil {
		return 0, err
	}
	if info := app.TxInfo(); info != nil {
		info.OnComplete(func(txErr error) error {
			if txErr == nil {
				l.signal()
			}
			return nil
		})
	} else {
		l.signal()
	}
	return seq, nil
}

// params are the column values of entry's row, with its changed fields
// encoded as fields.
func (entry Entry) params(fields []byte) dbx.Params {
	return dbx.Params{
		"collection":   entry.Collection,
		"record_id":    entry.RecordID,
		"op":           string(entry.Op),
		"version":      entry.Version,
		"team":         entry.Team,
		"site":         entry.Site,
		"fields":       string(fields),
		"actor_user":   entry.Actor.User,
		"actor_device": entry.Actor.Device,
		"mutation_id":  entry.Actor.Mutation,
		"at":           entry.At.Format(time.RFC3339Nano),
		"person":       entry.Person,
	}
}

// Insert writes entry to the log within app's transaction (or on its own)
// and returns its sequence number, without waking readers: they find the
// row at their next read (the relay reads at least once a second).
func Insert(app core.App, entry Entry) (int64, error) {
	fields, err := json.Marshal(nonNil(entry.Fields))
	if err != nil {
		return 0, fmt.Errorf("encode changed fields: %w", err)
	}
	if entry.At.IsZero() {
		entry.At = time.Now().UTC()
	}
	res, err := app.NonconcurrentDB().Insert(Table, entry.params(fields)).Execute()
	if err != nil {
		return 0, fmt.Errorf("append change %s %s/%s: %w", entry.Op, entry.Collection, entry.RecordID, err)
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("append change: read seq: %w", err)
	}
	return seq, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// committedRecord returns rec as committed. Every logged write raises a
// versioned record's version, so when the copy the caller loaded has the
// committed version it is the committed row and only the version is read;
// otherwise the whole row is.
func committedRecord(tx core.App, rec *core.Record, versioned bool) (*core.Record, error) {
	if versioned {
		var v int
		err := tx.NonconcurrentDB().Select("version").From(rec.Collection().Name).
			Where(dbx.HashExp{"id": rec.Id}).Row(&v)
		if err != nil {
			return nil, fmt.Errorf("read committed version of %s/%s: %w", rec.Collection().Name, rec.Id, err)
		}
		if original := rec.Original(); original.Id == rec.Id && original.GetInt("version") == v {
			return original, nil
		}
	}
	committed, err := tx.FindRecordById(rec.Collection(), rec.Id)
	if err != nil {
		return nil, fmt.Errorf("read committed %s/%s: %w", rec.Collection().Name, rec.Id, err)
	}
	return committed, nil
}

// isUser reports whether id is a users record, as opposed to a superuser
// or an id of no account. An account's id is never given to another, so a
// positive answer is kept.
func (l *Log) isUser(app core.App, id string) bool {
	if _, ok := l.users.Load(id); ok {
		return true
	}
	var n int
	err := app.NonconcurrentDB().Select("count(*)").From("users").Where(dbx.HashExp{"id": id}).Row(&n)
	if err != nil || n == 0 {
		return false
	}
	l.users.Store(id, struct{}{})
	return true
}

// untracked are fields whose change is a consequence of another change, not
// one of its own.
var untracked = map[string]bool{
	"id": true, "version": true, "created": true, "updated": true,
	"created_by": true, "updated_by": true,
}

// ChangedFields returns the names of the fields whose values differ between
// before and after, in collection order.
func ChangedFields(before, after *core.Record) []string {
	var out []string
	for _, f := range after.Collection().Fields {
		name := f.GetName()
		if untracked[name] {
			continue
		}
		if !sameValue(before.Get(name), after.Get(name)) {
			out = append(out, name)
		}
	}
	return out
}

func setFields(rec *core.Record) []string {
	var out []string
	for _, f := range rec.Collection().Fields {
		name := f.GetName()
		if untracked[name] {
			continue
		}
		if !isZero(rec.Get(name)) {
			out = append(out, name)
		}
	}
	return out
}

func sameValue(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

func isZero(v any) bool {
	j, err := json.Marshal(v)
	if err != nil {
		return false
	}
	switch string(j) {
	case `""`, `0`, `false`, `[]`, `null`, `{}`:
		return true
	}
	return false
}
