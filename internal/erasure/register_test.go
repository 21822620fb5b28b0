package erasure_test

import (
	"archive/zip"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"
	"github.com/pocketbase/pocketbase/tools/archive"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/erasure"
	"strada/internal/storage"
	hooks "strada/pb_hooks"
)

// TestRestoreReappliesErasure backs the data up with PocketBase, erases a
// person, restores the backup into a fresh data directory and starts
// again with the same register: the person is erased again, devices get
// purge rows for them and their records, and another start changes
// nothing.
func TestRestoreReappliesErasure(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	register := filepath.Join(t.TempDir(), "register.jsonl")
	h, _ := serve(t, app, register)
	f := newFixture(t, app)
	team := apptest.Team(t, app, "prison_secretariat")
	if err := app.CreateBackup(context.Background(), "before.zip"); err != nil {
		t.Fatalf("backup: %v", err)
	}
	sup := apptest.Token(t, app, apptest.Supervisor)
	if rec := request(t, h, http.MethodPost, "/api/persons/"+f.person+"/erase", sup, map[string]string{"reason": "richiesta"}); rec.Code != http.StatusOK {
		t.Fatalf("erase: got %d %s, want 200", rec.Code, rec.Body)
	}

	// The restore: the backup's files in place of the data directory.
	restored := t.TempDir()
	if err := archive.Extract(filepath.Join(app.DataDir(), core.LocalBackupsDirName, "before.zip"), restored); err != nil {
		t.Fatalf("extract backup: %v", err)
	}
	again, err := tests.NewTestAppWithConfig(core.BaseAppConfig{DataDir: restored, EncryptionEnv: "pb_test_env", DBConnect: storage.Connect})
	if err != nil {
		t.Fatalf("open restored data: %v", err)
	}
	t.Cleanup(again.Cleanup)
	hooks.BindRecordHooks(again, changelog.New(domain.Reference))
	if _, err := again.FindRecordById(domain.Persons, f.person); err != nil {
		t.Fatalf("got no person in the backup (%v), want the backup to predate the erasure", err)
	}
	restoredSeq, err := changelog.LastSeq(again)
	if err != nil {
		t.Fatal(err)
	}

	_, reg := serve(t, again, register)

	for _, ref := range []changelog.Ref{
		{Collection: domain.Persons, RecordID: f.person},
		{Collection: domain.SecretariatContacts, RecordID: f.contact},
		{Collection: domain.Referrals, RecordID: f.referral},
	} {
		if _, err := again.FindRecordById(ref.Collection, ref.RecordID); err == nil {
			t.Errorf("%s/%s exists after the restart, want it erased again", ref.Collection, ref.RecordID)
		}
	}
	// What a device of the team pulls after its cursor.
	entries, err := changelog.SinceInScope(again, restoredSeq, changelog.Scope{Teams: []string{team}}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var purged []string
	for _, e := range entries {
		if e.Op == changelog.OpPurge {
			purged = append(purged, e.RecordID)
		}
	}
	for _, id := range []string{f.person, f.contact, f.deletedContact, f.referral} {
		if !slices.Contains(purged, id) {
			t.Errorf("got purge rows for %v, want one for %s", purged, id)
		}
	}
	audit, err := again.FindFirstRecordByData(domain.Erasures, "record_id", f.person)
	if err != nil || audit.GetString("reason") != erasure.ReapplyReason || !strings.HasPrefix(audit.GetString("erased_by"), "users/") {
		t.Fatalf("got audit %v (%v), want the re-applied erasure by the supervisor", audit, err)
	}
	if got := leftovers(t, again.DataDir(), f.secrets); len(got) > 0 {
		t.Errorf("got erased data on disk after the re-application: %v, want none", got)
	}

	// A second start finds nothing to do.
	last, err := changelog.LastSeq(again)
	if err != nil {
		t.Fatal(err)
	}
	n, err := erasure.Reconcile(context.Background(), again, reg)
	if err != nil || n != 0 {
		t.Fatalf("got %d re-applied (%v) on the second start, want 0", n, err)
	}
	if now, _ := changelog.LastSeq(again); now != last {
		t.Fatalf("got log %d -> %d on the second start, want unchanged", last, now)
	}
	if got := len(reg.Entries()); got != 1 {
		t.Fatalf("got %d register entries, want 1", got)
	}
}

// TestRegisterStaysOutOfBackups keeps the register at its default place in
// the data directory: a PocketBase backup leaves it out and a PocketBase
// restore leaves it where it is.
func TestRegisterStaysOutOfBackups(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	h, reg := serve(t, app, "")
	if want := filepath.Join(app.DataDir(), erasure.DefaultRegisterFile); reg.Path() != want {
		t.Fatalf("got register %s, want %s", reg.Path(), want)
	}
	f := newFixture(t, app)
	sup := apptest.Token(t, app, apptest.Supervisor)
	if rec := request(t, h, http.MethodPost, "/api/persons/"+f.person+"/erase", sup, map[string]string{"reason": "richiesta"}); rec.Code != http.StatusOK {
		t.Fatalf("erase: got %d %s, want 200", rec.Code, rec.Body)
	}
	if _, err := os.Stat(reg.Path()); err != nil {
		t.Fatalf("got no register file after an erasure: %v", err)
	}

	if err := app.CreateBackup(context.Background(), "after.zip"); err != nil {
		t.Fatalf("backup: %v", err)
	}
	z, err := zip.OpenReader(filepath.Join(app.DataDir(), core.LocalBackupsDirName, "after.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	var names []string
	for _, file := range z.File {
		names = append(names, file.Name)
	}
	if !slices.Contains(names, "data.db") || slices.Contains(names, erasure.DefaultRegisterFile) {
		t.Fatalf("got backup entries %v, want data.db without %s", names, erasure.DefaultRegisterFile)
	}

	restore := &core.BackupEvent{App: app, Name: "after.zip"}
	restore.Context = context.Background()
	err = app.OnBackupRestore().Trigger(restore, func(e *core.BackupEvent) error {
		if !slices.Contains(e.Exclude, erasure.DefaultRegisterFile) {
			t.Errorf("got restore exclusions %v, want %s among them", e.Exclude, erasure.DefaultRegisterFile)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenRegister(t *testing.T) {
	t.Parallel()
	good := `{"person":"019a0000-0000-7000-8000-000000000001","team":"t1","at":"2026-11-20T10:00:00Z","by":"users/u1"}`
	cases := []struct {
		name    string
		content string
		want    int
		wantErr bool
	}{
		{"no file", "", 0, false},
		{"one entry", good + "\n", 1, false},
		{"last line cut by a crash", good + "\n" + `{"person":"019a00`, 1, false},
		{"last entry without its newline", good, 1, false},
		{"unreadable line before the end", "not json\n" + good + "\n", 0, true},
		{"entry without a person", `{"team":"t1"}` + "\n" + good + "\n", 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "sub", "register.jsonl")
			if tc.content != "" {
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			reg, err := erasure.OpenRegister(path)
			if (err != nil) != tc.wantErr {
				t.Fatalf("got error %v, want error=%v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if got := len(reg.Entries()); got != tc.want {
				t.Fatalf("got %d entries, want %d", got, tc.want)
			}
			// An append after any of these leaves a register that reads
			// back whole, and a person already in it is not added twice.
			next := erasure.RegisterEntry{Person: "019a0000-0000-7000-8000-000000000002", Records: []string{"referrals/019a0000-0000-7000-8000-000000000003"}, At: time.Now().UTC(), By: "users/u1"}
			for range 2 {
				if err := reg.Append(next); err != nil {
					t.Fatalf("append: %v", err)
				}
			}
			back, err := erasure.OpenRegister(path)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			if got := len(back.Entries()); got != tc.want+1 {
				t.Fatalf("got %d entries after the append, want %d", got, tc.want+1)
			}
			if !back.Has("019a0000-0000-7000-8000-000000000003") || back.Has("019a0000-0000-7000-8000-000000000004") {
				t.Fatal("got Has wrong for a registered record and an unknown id")
			}
			if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("got register file %v (%v), want mode 0600", st, err)
			}
		})
	}
}

// TestReconcileCompletesRegister erases with no register in use (a
// register write that was lost): the next start adds the erasure from its
// audit row and applies nothing again.
func TestReconcileCompletesRegister(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	f := newFixture(t, app)
	if _, err := erasure.Erase(context.Background(), app, f.person, changelog.Actor{}, "_superusers/test", "richiesta"); err != nil {
		t.Fatalf("erase: %v", err)
	}
	reg, err := erasure.OpenRegister(filepath.Join(t.TempDir(), "register.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := erasure.Reconcile(context.Background(), app, reg)
	if err != nil || n != 0 {
		t.Fatalf("got %d re-applied (%v), want 0", n, err)
	}
	entries := reg.Entries()
	if len(entries) != 1 || entries[0].Person != f.person || entries[0].By != "_superusers/test" || entries[0].Team == "" {
		t.Fatalf("got register %+v, want the erasure of %s with its team and actor", entries, f.person)
	}
	var count int
	if err := app.DB().Select("count(*)").From(changelog.Table).
		Where(dbx.HashExp{"record_id": f.person}).Row(&count); err != nil || count != 1 {
		t.Fatalf("got %d log rows of the person (%v), want the one purge row", count, err)
	}
}
