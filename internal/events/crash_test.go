package events_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/demo"
	"strada/internal/domain"
	"strada/internal/events"
	"strada/internal/natsbus"
	hooks "strada/pb_hooks"
)

// The crash test runs a Strada node (PocketBase on a data directory, the
// embedded NATS server on a store directory, the relay and writers) in a
// child process: this test binary run again with helperEnv set.
const (
	helperEnv     = "STRADA_EVENTS_HELPER"
	helperData    = "STRADA_EVENTS_HELPER_DATA"
	helperStore   = "STRADA_EVENTS_HELPER_STORE"
	helperJournal = "STRADA_EVENTS_HELPER_JOURNAL"
	helperReady   = "strada-helper-ready"
	helperDrained = "strada-helper-drained"
)

var errRolledBack = errors.New("rolled back on purpose")

// openApp opens (and on first use creates) a PocketBase app on dataDir
// with Strada's schema and record hooks.
func openApp(dataDir string) (*core.BaseApp, *changelog.Log, error) {
	app := core.NewBaseApp(core.BaseAppConfig{DataDir: dataDir})
	if err := app.Bootstrap(); err != nil {
		return nil, nil, fmt.Errorf("bootstrap: %w", err)
	}
	if err := app.RunAllMigrations(); err != nil {
		return nil, nil, fmt.Errorf("migrate: %w", err)
	}
	log := changelog.New(domain.Reference)
	hooks.BindRecordHooks(app, log)
	return app, log, nil
}

// TestHelperProcess is the child process of TestCommittedWritesSurviveKill;
// it does nothing in a normal test run.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("child process of TestCommittedWritesSurviveKill")
	}
	if err := runHelper(mode); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
}

func runHelper(mode string) error {
	// Bounded even if the parent never kills it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	app, log, err := openApp(os.Getenv(helperData))
	if err != nil {
		return err
	}
	defer app.ResetBootstrapState()
	if _, err := demo.Seed(app, apptest.Now); err != nil {
		return err
	}
	bus, err := natsbus.Start(natsbus.Config{StoreDir: os.Getenv(helperStore), Name: "crash-helper"}, quiet)
	if err != nil {
		return err
	}
	defer bus.Close()
	relay := events.NewRelay(app, log, bus.JS, events.DefaultStreamOptions, quiet)
	markAtStart, err := relay.HighWaterMark()
	if err != nil {
		return err
	}
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		relay.Run(relayCtx)
	}()
	defer func() {
		stopRelay()
		<-relayDone
	}()

	switch mode {
	case "write":
		journal, err := os.OpenFile(os.Getenv(helperJournal), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		defer journal.Close()
		team, err := app.FindFirstRecordByData(domain.Teams, "kind", "camp_outreach")
		if err != nil {
			return err
		}
		service, err := app.FindFirstRecordByFilter(domain.Services, "active = true")
		if err != nil {
			return err
		}
		j := &crashJournal{f: journal}
		errs := make(chan error, 3)
		var started sync.WaitGroup
		for w := range 3 {
			started.Add(1)
			go func() { errs <- crashWriter(ctx, app, j, team.Id, service.Id, w, started.Done) }()
		}
		// Ready once every writer has rolled back one transaction and
		// committed one write, so each round journals both kinds
		// however early the kill comes.
		ready := make(chan struct{})
		go func() { started.Wait(); close(ready) }()
		select {
		case <-ready:
		case err := <-errs:
			return err
		}
		fmt.Println(helperReady)
		// Runs until killed; a writer error ends it early, and the
		// parent sees the exit.
		select {
		case err := <-errs:
			return err
		case <-ctx.Done():
			return errors.New("not killed within a minute")
		}
	case "drain":
		for {
			last, err := changelog.LastSeq(app)
			if err != nil {
				return err
			}
			hwm, err := relay.HighWaterMark()
			if err != nil {
				return err
			}
			// Drained, and after the relay has checked the stream.
			if st := relay.Stats(); hwm == last && st.StreamReady {
				fmt.Printf("%s last=%d markAtStart=%d streamAtStart=%d published=%d\n",
					helperDrained, last, markAtStart, st.ReconciledFrom, st.Published)
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("not drained: mark %d, last change %d", hwm, last)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return fmt.Errorf("unknown helper mode %q", mode)
}

// crashJournal records, after each commit, what was committed, and before
// each transaction that is rolled back, the id it tried to write.
type crashJournal struct {
	mu sync.Mutex
	f  *os.File
}

func (j *crashJournal) line(format string, args ...any) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	_, err := fmt.Fprintf(j.f, format+"\n", args...)
	return err
}

func crashWriter(ctx context.Context, app core.App, j *crashJournal, team, service string, w int, started func()) error {
	persons, err := app.FindCachedCollectionByNameOrId(domain.Persons)
	if err != nil {
		return err
	}
	referrals, err := app.FindCachedCollectionByNameOrId(domain.Referrals)
	if err != nil {
		return err
	}
	commit := func(r *core.Record) error {
		if err := app.Save(r); err != nil {
			return err
		}
		return j.line("c %s %s %d", r.Collection().Name, r.Id, r.GetInt("version"))
	}
	var last *core.Record
	for i := 1; ctx.Err() == nil; i++ {
		if i == 3 {
			started()
		}
		switch {
		case i%10 == 1:
			id := uuid.Must(uuid.NewV7()).String()
			if err := j.line("r %s", id); err != nil {
				return err
			}
			err := app.RunInTransaction(func(tx core.App) error {
				p := core.NewRecord(persons)
				p.Load(map[string]any{"id": id, "team": team, "consent": "verbal"})
				if err := tx.Save(p); err != nil {
					return err
				}
				return errRolledBack
			})
			if !errors.Is(err, errRolledBack) {
				return fmt.Errorf("rolled-back transaction: got %v, want %v", err, errRolledBack)
			}
		case i%7 == 0 && last != nil:
			r := core.NewRecord(referrals)
			r.Load(map[string]any{"team": team, "person": last.Id, "service": service, "reason": "r", "status": domain.StatusSent})
			if err := commit(r); err != nil {
				return err
			}
		case i%3 == 0 && last != nil:
			last.Set("notes", fmt.Sprintf("writer %d step %d", w, i))
			if err := commit(last); err != nil {
				return err
			}
		default:
			last = core.NewRecord(persons)
			last.Load(map[string]any{"team": team, "consent": "verbal"})
			if err := commit(last); err != nil {
				return err
			}
		}
	}
	return nil
}

// helper is one run of the child process.
type helper struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr bytes.Buffer
}

func startHelper(t *testing.T, mode, data, store, journal string) *helper {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	h := &helper{lines: make(chan string, 16)}
	h.cmd = exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.timeout=80s")
	h.cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperData+"="+data, helperStore+"="+store, helperJournal+"="+journal)
	h.cmd.Stderr = &h.stderr
	out, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("start helper: %v", err)
	}
	go func() {
		defer close(h.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
	}()
	return h
}

// await returns the first output line starting with prefix.
func (h *helper) await(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-h.lines:
			if !ok {
				err := h.cmd.Wait()
				t.Fatalf("helper ended (%v) before %q; stderr:\n%s", err, prefix, h.stderr.String())
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-timer.C:
			t.Fatalf("helper: no %q within %s", prefix, timeout)
		}
	}
}

// wait reads the rest of the output and waits for the process to end.
func (h *helper) wait() error {
	for range h.lines {
	}
	return h.cmd.Wait()
}

// TestCommittedWritesSurviveKill kills a writing Strada node with SIGKILL
// at random moments, several times, then starts it once more to drain:
// every committed write is in the stream exactly once, in order, and no
// write of a rolled-back transaction is in the log or the stream.
func TestCommittedWritesSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	t.Parallel()
	dir := t.TempDir()
	data, store, journal := filepath.Join(dir, "pb_data"), filepath.Join(dir, "nats"), filepath.Join(dir, "journal")
	seed := uint64(time.Now().UnixNano())
	rnd := rand.New(rand.NewPCG(seed, 3))
	t.Logf("kill times from seed %d", seed)

	const rounds = 6
	for round := range rounds {
		h := startHelper(t, "write", data, store, journal)
		h.await(t, helperReady, 60*time.Second)
		time.Sleep(time.Duration(rnd.IntN(600)) * time.Millisecond)
		if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("round %d: kill: %v", round, err)
		}
		err := h.wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: got exit %v, want killed by SIGKILL; stderr:\n%s", round, err, h.stderr.String())
		}
	}
	h := startHelper(t, "drain", data, store, journal)
	t.Logf("drain: %s", h.await(t, helperDrained, 60*time.Second))
	if err := h.wait(); err != nil {
		t.Fatalf("drain helper: %v; stderr:\n%s", err, h.stderr.String())
	}

	committed, rolledBack := readJournal(t, journal)
	if len(committed) < rounds || len(rolledBack) == 0 {
		t.Fatalf("got %d committed and %d rolled-back writes in the journal, want at least %d and 1", len(committed), len(rolledBack), rounds)
	}
	t.Logf("%d committed writes, %d rolled-back transactions", len(committed), len(rolledBack))

	app, _, err := openApp(data)
	if err != nil {
		t.Fatal(err)
	}
	defer app.ResetBootstrapState()
	entries := allEntries(t, app)
	bus, err := natsbus.Start(natsbus.Config{StoreDir: store, Name: "crash-check"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	msgs := readStream(t, bus.JS)
	assertStreamIsLog(t, app, msgs, entries)

	logged := make(map[string]bool, len(entries))
	byRecord := make(map[string]bool, len(entries))
	for _, e := range entries {
		logged[e.Collection+" "+e.RecordID+" "+strconv.Itoa(e.Version)] = true
		byRecord[e.RecordID] = true
	}
	for _, c := range committed {
		if !logged[c] {
			t.Fatalf("committed write %q is not in the change log", c)
		}
	}
	for _, id := range rolledBack {
		if byRecord[id] {
			t.Fatalf("rolled-back record %s is in the change log", id)
		}
		if _, err := app.FindRecordById(domain.Persons, id); err == nil {
			t.Fatalf("rolled-back record %s exists", id)
		}
		for _, m := range msgs {
			if bytes.Contains(m.Body, []byte(id)) {
				t.Fatalf("rolled-back record %s is in message %d", id, m.Event.Seq)
			}
		}
	}
}

// readJournal returns the committed writes ("collection id version") and
// the ids of rolled-back transactions; a last line cut by the kill is
// ignored.
func readJournal(t *testing.T, path string) (committed, rolledBack []string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	text = text[:max(strings.LastIndexByte(text, '\n'), 0)]
	for line := range strings.SplitSeq(text, "\n") {
		kind, rest, _ := strings.Cut(line, " ")
		switch kind {
		case "c":
			committed = append(committed, rest)
		case "r":
			rolledBack = append(rolledBack, rest)
		case "":
		default:
			t.Fatalf("journal line %q", line)
		}
	}
	return committed, rolledBack
}
