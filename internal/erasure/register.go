package erasure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/changelog"
	"strada/internal/domain"
)

// DefaultRegisterFile is the register's file in the data directory when no
// other path is configured.
const DefaultRegisterFile = "erasure_register.jsonl"

// StoreKeyRegister is the key of the app store under which [Erase] finds
// the register it writes to.
const StoreKeyRegister = "strada.erasureRegister"

// ReapplyReason is the reason in the audit row of an erasure applied again
// from the register.
const ReapplyReason = "re-applied from the erasure register after a restore"

// ErrNotRegistered means an erasure committed but could not be written to
// the register; the register is completed from the audit rows when the
// server starts again.
var ErrNotRegistered = errors.New("erasure not written to the register")

// RegisterEntry is one erasure in the register. It holds identifiers, the
// team, the time and the account that erased: never a name, a note or the
// reason.
type RegisterEntry struct {
	Person string `json:"person"`
	Team   string `json:"team,omitempty"`
	// Records are the other records erased with the person, as
	// collection/id.
	Records []string  `json:"records,omitempty"`
	At      time.Time `json:"at"`
	By      string    `json:"by"`
}

// Register is the erasure register: an append-only file of the erasures
// made, kept outside what a restore replaces, so that a database restored
// from a backup older than an erasure has it applied again. Each entry is
// a JSON line, written and synced to disk before the erasure answers.
type Register struct {
	mu      sync.RWMutex
	path    string
	entries []RegisterEntry
	persons map[string]bool
	ids     map[string]bool // persons and their records
	// tornAt is where a partial last line starts (-1: none), cut away
	// before the next append; newline is set when the last entry lacks
	// its newline.
	tornAt  int64
	newline bool
}

// OpenRegister reads the register at path, creating its directory when
// missing. A last line cut short by a crash is ignored (it was never
// acknowledged) and cut away by the next append; any other unreadable line
// is an error.
func OpenRegister(path string) (*Register, error) {
	r := &Register{tornAt: -1}
	if err := r.load(path); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Register) load(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create erasure register directory: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read erasure register: %w", err)
	}
	var entries []RegisterEntry
	tornAt := int64(-1)
	newline := false
	lines := bytes.SplitAfter(data, []byte("\n"))
	offset := int64(0)
	for i, raw := range lines {
		start := offset
		offset += int64(len(raw))
		line := bytes.TrimSpace(raw)
		if len(line) == 0 {
			continue
		}
		last := i == len(lines)-1 && !bytes.HasSuffix(raw, []byte("\n"))
		var e RegisterEntry
		if err := json.Unmarshal(line, &e); err != nil || e.Person == "" {
			if last {
				tornAt = start
				continue
			}
			return fmt.Errorf("erasure register %s line %d is not an erasure", path, i+1)
		}
		newline = last
		entries = append(entries, e)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.path = path
	r.entries = nil
	r.persons = map[string]bool{}
	r.ids = map[string]bool{}
	r.tornAt = tornAt
	r.newline = newline
	for _, e := range entries {
		r.remember(e)
	}
	return nil
}

func (r *Register) remember(e RegisterEntry) {
	r.entries = append(r.entries, e)
	r.persons[e.Person] = true
	r.ids[e.Person] = true
	for _, rec := range e.Records {
		if _, id, ok := strings.Cut(rec, "/"); ok {
			r.ids[id] = true
		}
	}
}

// Path returns the register's file; empty until it is opened.
func (r *Register) Path() string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.path
}

// Entries returns the erasures in the register, oldest first.
func (r *Register) Entries() []RegisterEntry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]RegisterEntry(nil), r.entries...)
}

// Has reports whether id is an erased person or one of their erased
// records.
func (r *Register) Has(id string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.ids[id]
}

// Append adds an erasure and syncs the file before returning. A person
// already in the register is not added again.
func (r *Register) Append(e RegisterEntry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode register entry: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.path == "" {
		return errors.New("erasure register not opened")
	}
	if r.persons[e.Person] {
		return nil
	}
	_, statErr := os.Stat(r.path)
	created := errors.Is(statErr, os.ErrNotExist)
	if r.tornAt >= 0 {
		if err := os.Truncate(r.path, r.tornAt); err != nil {
			return fmt.Errorf("cut partial line of erasure register: %w", err)
		}
	}
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open erasure register: %w", err)
	}
	if r.newline {
		line = append([]byte("\n"), line...)
	}
	line = append(line, '\n')
	if _, err := f.Write(line); err != nil {
		f.Close()
		return fmt.Errorf("write erasure register: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync erasure register: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close erasure register: %w", err)
	}
	if created {
		if err := syncDir(filepath.Dir(r.path)); err != nil {
			return err
		}
	}
	r.tornAt, r.newline = -1, false
	r.remember(e)
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open erasure register directory: %w", err)
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return fmt.Errorf("sync erasure register directory: %w", err)
	}
	return d.Close()
}

// Use makes r the register that erasures made through app write to.
func Use(app core.App, r *Register) {
	app.Store().Set(StoreKeyRegister, r)
}

func registerOf(app core.App) *Register {
	r, _ := app.Store().Get(StoreKeyRegister).(*Register)
	return r
}

// BindRegister keeps app's erasures in a register. When serve starts it
// opens the register at path() (empty: [DefaultRegisterFile] in the data
// directory) and reconciles it with the database (see [Reconcile]);
// PocketBase backups leave a register inside the data directory out, and a
// PocketBase restore leaves it in place. The returned register is empty
// until serve starts.
func BindRegister(app core.App, path func() string) *Register {
	r := &Register{tornAt: -1}
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		p := path()
		if p == "" {
			p = filepath.Join(se.App.DataDir(), DefaultRegisterFile)
		}
		if err := r.load(p); err != nil {
			return err
		}
		Use(se.App, r)
		n, err := Reconcile(context.Background(), se.App, r)
		if err != nil {
			return err
		}
		if n > 0 {
			se.App.Logger().Warn("Re-applied erasures from the register", "erasures", n, "register", p)
		}
		return se.Next()
	})
	exclude := func(e *core.BackupEvent) error {
		if entry := rootEntry(e.App.DataDir(), r.Path()); entry != "" {
			e.Exclude = append(e.Exclude, entry)
		}
		return e.Next()
	}
	app.OnBackupCreate().BindFunc(exclude)
	app.OnBackupRestore().BindFunc(exclude)
	return r
}

// rootEntry returns the entry of dataDir that holds path, or "" when path
// is outside it.
func rootEntry(dataDir, path string) string {
	if path == "" {
		return ""
	}
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return ""
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	rel, err := filepath.Rel(dir, abs)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return ""
	}
	first, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
	return first
}

// Reconcile makes the database and the register agree and returns how
// many erasures it applied again. Every audit row missing from the
// register is added to it (an erasure whose register write was lost);
// every registered erasure whose person, records or history exist again in
// the database (restored from a backup older than the erasure) is applied
// again through [Erase]'s own path. Running it twice changes nothing.
func Reconcile(ctx context.Context, app core.App, r *Register) (int, error) {
	audits, err := app.FindAllRecords(domain.Erasures, dbx.HashExp{"collection": domain.Persons})
	if err != nil {
		return 0, fmt.Errorf("read erasure audit: %w", err)
	}
	for _, a := range audits {
		err := r.Append(RegisterEntry{
			Person: a.GetString("record_id"), Team: a.GetString("team"),
			At: a.GetDateTime("created").Time().UTC(), By: a.GetString("erased_by"),
		})
		if err != nil {
			return 0, err
		}
	}
	n := 0
	for _, e := range r.Entries() {
		known := make([]changelog.Ref, 0, len(e.Records))
		for _, rec := range e.Records {
			if c, id, ok := strings.Cut(rec, "/"); ok {
				known = append(known, changelog.Ref{Collection: c, RecordID: id})
			}
		}
		present, err := present(app, e.Person, known)
		if err != nil {
			return n, err
		}
		if !present {
			continue
		}
		_, err = erase(ctx, app, e.Person, known, changelog.Actor{}, e.By, ReapplyReason)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("re-apply erasure of %s: %w", e.Person, err)
		}
		n++
	}
	return n, nil
}

// present reports whether anything of an erased person is in the database
// again: their record, a log row naming them, a journal entry about them,
// or history of their records that is not a purge.
func present(app core.App, person string, known []changelog.Ref) (bool, error) {
	if _, err := app.FindRecordById(domain.Persons, person); err == nil {
		return true, nil
	}
	refs, err := changelog.RecordsOfPerson(app, person)
	if err != nil {
		return false, err
	}
	if len(refs) > 0 {
		return true, nil
	}
	n, err := app.CountRecords(domain.SyncConflicts, dbx.HashExp{"person": person})
	if err != nil {
		return false, fmt.Errorf("count journal of %s: %w", person, err)
	}
	if n > 0 {
		return true, nil
	}
	for _, ref := range append([]changelog.Ref{{Collection: domain.Persons, RecordID: person}}, known...) {
		last, err := changelog.LastOf(app, ref.Collection, ref.RecordID)
		if err != nil {
			return false, err
		}
		if last.Seq > 0 && last.Op != changelog.OpPurge {
			return true, nil
		}
	}
	return false, nil
}
