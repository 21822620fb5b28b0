// Package storage keeps what Strada deletes off the disk. Its SQLite
// connections overwrite deleted content instead of leaving it in free
// space (secure_delete), a checkpoint empties the write-ahead logs into the
// databases and truncates them, a one-time VACUUM rewrites databases
// written before, and PocketBase's request log never stores query strings,
// error details or the ids of erased records.
package storage

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

// pragmas are PocketBase's own (core.DefaultDBConnect) with secure_delete:
// every deleted or overwritten row, index entry and freed page is zeroed on
// disk, so an erased person's data is not left in free space.
const pragmas = "?_pragma=busy_timeout(10000)" +
	"&_pragma=journal_mode(WAL)" +
	"&_pragma=journal_size_limit(200000000)" +
	"&_pragma=synchronous(NORMAL)" +
	"&_pragma=foreign_keys(ON)" +
	"&_pragma=temp_store(MEMORY)" +
	"&_pragma=cache_size(-32000)" +
	"&_pragma=secure_delete(ON)"

// Connect opens the SQLite database at dbPath as PocketBase does, with
// secure_delete on. It is the DBConnect of the app (data.db and
// auxiliary.db) and of the test apps.
func Connect(dbPath string) (*dbx.DB, error) {
	db, err := dbx.Open("sqlite", dbPath+pragmas)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dbPath, err)
	}
	return db, nil
}

// ErrCheckpointBusy means a reader kept a checkpoint from truncating a
// write-ahead log: old page images stay in it until a later checkpoint.
var ErrCheckpointBusy = errors.New("checkpoint incomplete: a reader holds the write-ahead log")

// Checkpoint copies the write-ahead logs of data.db and auxiliary.db into
// the databases and truncates them to zero bytes, so that the page images
// of deleted rows no longer exist in any file. It waits for running
// transactions (up to the busy timeout) and must not be called inside one.
func Checkpoint(app core.App) error {
	if app.TxInfo() != nil {
		return errors.New("checkpoint inside a transaction")
	}
	for _, db := range []struct {
		name string
		b    dbx.Builder
	}{{"data.db", app.NonconcurrentDB()}, {"auxiliary.db", app.AuxNonconcurrentDB()}} {
		var busy, frames, done int
		if err := db.b.NewQuery("PRAGMA wal_checkpoint(TRUNCATE)").Row(&busy, &frames, &done); err != nil {
			return fmt.Errorf("checkpoint %s: %w", db.name, err)
		}
		if busy != 0 {
			return fmt.Errorf("checkpoint %s: %w", db.name, ErrCheckpointBusy)
		}
	}
	return nil
}

// Bind binds the request log's rule (see [BindRequestLog]) and, when serve
// starts, brings older request log rows under it and rewrites databases
// written before secure_delete (see [VacuumOnce]).
func Bind(app core.App, erased func(id string) bool) {
	BindRequestLog(app, erased)
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		n, err := ScrubRequestLog(se.App)
		if err != nil {
			return err
		}
		if n > 0 {
			se.App.Logger().Info("Removed query strings from the request log", "rows", n)
		}
		ran, err := VacuumOnce(se.App)
		if err != nil {
			return err
		}
		if ran {
			se.App.Logger().Info("Rewrote the databases with secure delete on")
		}
		return se.Next()
	})
}

// StateTable is the table of the server's own state in data.db.
const StateTable = "strada_state"

// VacuumedKey is the key in [StateTable] recording that data.db and
// auxiliary.db were rewritten with secure_delete on.
const VacuumedKey = "storage.vacuumed"

// VacuumOnce rewrites data.db and auxiliary.db with VACUUM unless this
// database already was: content deleted before secure_delete was on (an
// older version, a restored backup) is then gone from free space too. It
// reports whether it ran. The marker lives in data.db, so a database
// restored from a backup that predates it is rewritten again.
func VacuumOnce(app core.App) (bool, error) {
	var at string
	err := app.NonconcurrentDB().Select("value").From(StateTable).
		Where(dbx.HashExp{"key": VacuumedKey}).Row(&at)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("read %s: %w", VacuumedKey, err)
	}
	if _, err := app.NonconcurrentDB().NewQuery("VACUUM").Execute(); err != nil {
		return false, fmt.Errorf("vacuum data.db: %w", err)
	}
	if _, err := app.AuxNonconcurrentDB().NewQuery("VACUUM").Execute(); err != nil {
		return false, fmt.Errorf("vacuum auxiliary.db: %w", err)
	}
	_, err = app.NonconcurrentDB().Insert(StateTable, dbx.Params{
		"key": VacuumedKey, "value": time.Now().UTC().Format(time.RFC3339),
	}).Execute()
	if err != nil {
		return false, fmt.Errorf("record %s: %w", VacuumedKey, err)
	}
	if err := Checkpoint(app); err != nil {
		return true, err
	}
	return true, nil
}
