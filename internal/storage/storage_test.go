package storage_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"strada/internal/apptest"
	"strada/internal/storage"
)

func TestMain(m *testing.M) { apptest.Main(m) }

const secret = "Sbarbaglia-Zanfretta-riservato"

// openDB opens a database at path with connect and writes a table of notes.
func openDB(t testing.TB, connect core.DBConnectFunc, path string) *dbx.DB {
	t.Helper()
	db, err := connect(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	db.DB().SetMaxOpenConns(1)
	if _, err := db.NewQuery(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`).Execute(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.NewQuery(`CREATE INDEX idx_notes_body ON notes (body)`).Execute(); err != nil {
		t.Fatal(err)
	}
	return db
}

func checkpoint(t testing.TB, db *dbx.DB) {
	t.Helper()
	if _, err := db.NewQuery("PRAGMA wal_checkpoint(TRUNCATE)").Execute(); err != nil {
		t.Fatal(err)
	}
}

// onDisk reports which files of the database at path hold s.
func onDisk(t testing.TB, path, s string) []string {
	t.Helper()
	var found []string
	for _, suffix := range []string{"", "-wal", "-shm"} {
		data, err := os.ReadFile(path + suffix)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(s)) {
			found = append(found, filepath.Base(path+suffix))
		}
	}
	return found
}

// TestDeletedRowsLeaveNoBytes writes a row (and an index entry) holding a
// distinctive string among others, overwrites it in one database and
// deletes it in another, checkpoints, and reads the files: with Connect
// the string is gone; with PocketBase's default connection it stays in
// free space, which is what Connect exists to prevent.
func TestDeletedRowsLeaveNoBytes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		connect   core.DBConnectFunc
		remove    string
		wantClean bool
	}{
		{"secure delete, row deleted", storage.Connect, "DELETE FROM notes WHERE body = {:s}", true},
		{"secure delete, row overwritten", storage.Connect, "UPDATE notes SET body = 'altro' WHERE body = {:s}", true},
		{"default connection, row deleted", core.DefaultDBConnect, "DELETE FROM notes WHERE body = {:s}", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "data.db")
			db := openDB(t, tc.connect, path)
			for i := range 50 {
				body := fmt.Sprintf("nota %d %s", i, strings.Repeat("x", 200))
				if i == 25 {
					body = secret
				}
				if _, err := db.Insert("notes", dbx.Params{"body": body}).Execute(); err != nil {
					t.Fatal(err)
				}
			}
			checkpoint(t, db)
			if got := onDisk(t, path, secret); len(got) == 0 {
				t.Fatal("got the string in no file before the delete, want it written")
			}
			if _, err := db.NewQuery(tc.remove).Bind(dbx.Params{"s": secret}).Execute(); err != nil {
				t.Fatal(err)
			}
			checkpoint(t, db)
			got := onDisk(t, path, secret)
			if clean := len(got) == 0; clean != tc.wantClean {
				t.Fatalf("got the string in %v after the delete, want clean=%v", got, tc.wantClean)
			}
		})
	}
}

func TestConnectTurnsOnSecureDelete(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	for _, db := range []struct {
		name string
		b    dbx.Builder
	}{
		{"data.db concurrent", app.ConcurrentDB()}, {"data.db nonconcurrent", app.NonconcurrentDB()},
		{"auxiliary.db concurrent", app.AuxConcurrentDB()}, {"auxiliary.db nonconcurrent", app.AuxNonconcurrentDB()},
	} {
		var on int
		if err := db.b.NewQuery("PRAGMA secure_delete").Row(&on); err != nil {
			t.Fatalf("%s: %v", db.name, err)
		}
		if on != 1 {
			t.Errorf("%s: got secure_delete %d, want 1", db.name, on)
		}
	}
}

func TestCheckpointTruncatesWAL(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	if _, err := app.NonconcurrentDB().Insert(storage.StateTable, dbx.Params{"key": "test.wal", "value": secret}).Execute(); err != nil {
		t.Fatal(err)
	}
	wal := filepath.Join(app.DataDir(), "data.db-wal")
	if st, err := os.Stat(wal); err != nil || st.Size() == 0 {
		t.Fatalf("got WAL %v %v before the checkpoint, want frames in it", st, err)
	}
	if err := storage.Checkpoint(app); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	for _, name := range []string{"data.db-wal", "auxiliary.db-wal"} {
		st, err := os.Stat(filepath.Join(app.DataDir(), name))
		if err == nil && st.Size() != 0 {
			t.Errorf("got %s of %d bytes after the checkpoint, want 0", name, st.Size())
		}
	}
	err := app.RunInTransaction(func(tx core.App) error { return storage.Checkpoint(tx) })
	if err == nil {
		t.Fatal("got a checkpoint inside a transaction, want an error")
	}
}

// TestVacuumOnce opens a database written with PocketBase's default
// connection, whose free space still holds a deleted row, and rewrites it
// once.
func TestVacuumOnce(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	old, err := tests.NewTestAppWithConfig(core.BaseAppConfig{DataDir: src, EncryptionEnv: "pb_test_env", DBConnect: core.DefaultDBConnect})
	if err != nil {
		t.Fatal(err)
	}
	db := old.NonconcurrentDB()
	if _, err := db.NewQuery(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`).Execute(); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		body := fmt.Sprintf("nota %d %s", i, strings.Repeat("x", 200))
		if i == 7 {
			body = secret
		}
		if _, err := db.Insert("notes", dbx.Params{"body": body}).Execute(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.NewQuery("DELETE FROM notes WHERE body = {:s}").Bind(dbx.Params{"s": secret}).Execute(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.NewQuery("PRAGMA wal_checkpoint(TRUNCATE)").Execute(); err != nil {
		t.Fatal(err)
	}
	dir := old.DataDir()
	old.ResetBootstrapState()
	if got := onDisk(t, filepath.Join(dir, "data.db"), secret); len(got) == 0 {
		t.Fatal("got a clean database before the vacuum, want the deleted row in free space")
	}

	app, err := tests.NewTestAppWithConfig(core.BaseAppConfig{DataDir: dir, EncryptionEnv: "pb_test_env", DBConnect: storage.Connect})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Cleanup)
	old.Cleanup()
	for i, want := range []bool{true, false} {
		ran, err := storage.VacuumOnce(app)
		if err != nil {
			t.Fatalf("vacuum %d: %v", i, err)
		}
		if ran != want {
			t.Fatalf("vacuum %d: got ran=%v, want %v", i, ran, want)
		}
	}
	if got := onDisk(t, filepath.Join(app.DataDir(), "data.db"), secret); len(got) != 0 {
		t.Fatalf("got the deleted row in %v after the vacuum, want none", got)
	}
}

// BenchmarkWrite measures what secure_delete costs a write: insert, update
// and delete of a 1 KiB row, with Connect and with PocketBase's default.
func BenchmarkWrite(b *testing.B) {
	for _, bc := range []struct {
		name    string
		connect core.DBConnectFunc
	}{{"secure_delete", storage.Connect}, {"default", core.DefaultDBConnect}} {
		b.Run(bc.name, func(b *testing.B) {
			db := openDB(b, bc.connect, filepath.Join(b.TempDir(), "data.db"))
			body := strings.Repeat("n", 1024)
			for i := range 1000 {
				if _, err := db.Insert("notes", dbx.Params{"id": i, "body": body}).Execute(); err != nil {
					b.Fatal(err)
				}
			}
			for i := 0; b.Loop(); i++ {
				id := 1000 + i
				if _, err := db.Insert("notes", dbx.Params{"id": id, "body": body}).Execute(); err != nil {
					b.Fatal(err)
				}
				if _, err := db.Update("notes", dbx.Params{"body": body + "u"}, dbx.HashExp{"id": id}).Execute(); err != nil {
					b.Fatal(err)
				}
				if _, err := db.Delete("notes", dbx.HashExp{"id": id - 1000}).Execute(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
