package simulate_test

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"strada/internal/apptest"
	"strada/internal/demo"
	"strada/internal/events"
	"strada/internal/simulate"
	hooks "strada/pb_hooks"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// TestFieldDay runs a short field day against a real server (SQLite and
// the sync API in process, over HTTP): 0 lost, 0 duplicated, every device
// converged, the erasure on every device, the revoked device refused.
// The run must have met what it is about: dropped answers that were
// retried, concurrent edits that conflicted, an erasure and a revocation.
func TestFieldDay(t *testing.T) {
	app := apptest.New(t)
	hooks.BindSyncAPI(app, events.NewHub(app.Logger()))
	srv := apptest.Serve(t, app)

	cfg := simulate.DefaultConfig()
	cfg.URL = srv.URL
	cfg.AdminEmail, cfg.AdminPassword = apptest.Admin, demo.Password
	cfg.Devices, cfg.Workers, cfg.Rounds, cfg.Ops = 10, 4, 4, 2
	cfg.Offline, cfg.DropRequest, cfg.DropAnswer = 0.3, 0.1, 0.25
	cfg.Concurrency, cfg.BatchSize, cfg.PageSize = 8, 5, 50
	cfg.Seed = 2026
	var progress bytes.Buffer
	cfg.Progress = &progress

	sum, in, err := simulate.Execute(context.Background(), cfg)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	var text strings.Builder
	if err := sum.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + progress.String() + text.String())

	if !sum.OK() {
		t.Fatalf("got a failed run, want it passed:\n%s", text.String())
	}
	for _, c := range []struct {
		name string
		got  int
	}{
		{"lost mutations", sum.Lost}, {"duplicated mutations", sum.Duplicated}, {"diverged records", sum.Diverged},
		{"erasure leaks", sum.Erasure}, {"revocation leaks", sum.Revocation},
	} {
		if c.got != 0 {
			t.Errorf("got %d %s, want 0", c.got, c.name)
		}
	}
	for _, c := range []struct {
		name string
		got  int
	}{
		{"mutations", sum.Mutations}, {"answers dropped after the server applied them", sum.AnswersDropped},
		{"duplicate answers to retries", sum.DuplicateAnswers}, {"conflicts", sum.Conflicts},
		{"merges", sum.Merged}, {"erased persons", len(sum.ErasedPersons)},
		{"mutations discarded by the revocation", sum.Discarded},
		{"push requests", sum.Push.Requests}, {"pull requests", sum.Pull.Requests},
	} {
		if c.got == 0 {
			t.Errorf("got 0 %s: the run proved nothing about them", c.name)
		}
	}
	if sum.RevokedDevice == "" {
		t.Error("got no revoked device, want one")
	}
	if sum.BytesSent == 0 || sum.BytesReceived == 0 {
		t.Errorf("got %d bytes sent and %d received, want both counted", sum.BytesSent, sum.BytesReceived)
	}

	checkerCatches(t, in)

	// A second run against the same server reuses the simulated workers.
	cfg.Devices, cfg.Rounds, cfg.Seed = 4, 3, 7
	again, err := simulate.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if !again.OK() || again.Workers != cfg.Workers {
		text.Reset()
		_ = again.WriteText(&text)
		t.Fatalf("second run: got passed %v with %d workers, want passed with %d:\n%s", again.OK(), again.Workers, cfg.Workers, text.String())
	}
}

// checkerCatches feeds the checker the run's own input with one defect at
// a time, and requires it to find each one.
func checkerCatches(t *testing.T, in simulate.Input) {
	t.Helper()
	if rep := simulate.Check(in); !rep.OK() {
		t.Fatalf("the untouched input: got problems %v, want none", rep.Problems(5))
	}
	// An upsert answered as applied, of a record still on the server.
	var applied simulate.Answer
	var appliedKey simulate.Key
	mutations := map[string]simulate.Planned{}
	for _, m := range in.Mutations {
		mutations[m.ID] = m
	}
	for _, a := range in.Answers {
		m := mutations[a.ID]
		k := simulate.Key{Collection: m.Collection, ID: m.RecordID}
		if _, onServer := in.Final[k]; a.Status == "applied" && m.Op == "upsert" && onServer {
			applied, appliedKey = a, k
			break
		}
	}
	if applied.ID == "" {
		t.Fatal("no applied upsert of a record on the server in the run")
	}
	var discarded simulate.Planned
	for _, m := range in.Mutations {
		if m.Discarded {
			discarded = m
		}
	}
	var live int
	for i, d := range in.Devices {
		if !d.Revoked {
			live = i
			break
		}
	}
	withVersion := func(delta int) simulate.Input {
		out := in
		out.Final = maps.Clone(in.Final)
		r := maps.Clone(in.Final[appliedKey])
		r["version"] = r["version"].(float64) + float64(delta)
		out.Final[appliedKey] = r
		return out
	}
	withDevice := func(change func(*simulate.DeviceState)) simulate.Input {
		out := in
		out.Devices = slices.Clone(in.Devices)
		d := out.Devices[live]
		d.Records = maps.Clone(d.Records)
		change(&d)
		out.Devices[live] = d
		return out
	}
	for _, c := range []struct {
		name   string
		input  simulate.Input
		report func(simulate.Report) []string
	}{
		{"a mutation never answered", func() simulate.Input {
			out := in
			out.Answers = slices.DeleteFunc(slices.Clone(in.Answers), func(a simulate.Answer) bool { return a.ID == applied.ID })
			return out
		}(), func(r simulate.Report) []string { return r.Lost }},
		{"a save answered but missing on the server", withVersion(-1), func(r simulate.Report) []string { return r.Lost }},
		{"a record gone without a delete", func() simulate.Input {
			out := in
			out.Final = maps.Clone(in.Final)
			delete(out.Final, appliedKey)
			return out
		}(), func(r simulate.Report) []string { return r.Lost }},
		{"a mutation applied twice", func() simulate.Input {
			out := in
			out.Answers = append(slices.Clone(in.Answers), applied)
			return out
		}(), func(r simulate.Report) []string { return r.Duplicated }},
		{"a save applied twice on the server", withVersion(+1), func(r simulate.Report) []string { return r.Duplicated }},
		{"a device with a different value", withDevice(func(d *simulate.DeviceState) {
			r := maps.Clone(d.Records[appliedKey])
			r["notes"] = "valore diverso"
			d.Records[appliedKey] = r
		}), func(r simulate.Report) []string { return r.Diverged }},
		{"a device missing a record", withDevice(func(d *simulate.DeviceState) {
			delete(d.Records, appliedKey)
		}), func(r simulate.Report) []string { return r.Diverged }},
		{"an erased id left on a device", withDevice(func(d *simulate.DeviceState) {
			d.Dump = append(slices.Clone(d.Dump), []byte(in.Erased[0].ID)...)
		}), func(r simulate.Report) []string { return r.ErasureLeaks }},
		{"a discarded mutation of the revoked device applied", func() simulate.Input {
			out := in
			out.Answers = append(slices.Clone(in.Answers), simulate.Answer{ID: discarded.ID, Status: "applied"})
			return out
		}(), func(r simulate.Report) []string { return r.RevocationLeaks }},
	} {
		rep := simulate.Check(c.input)
		if len(c.report(rep)) == 0 || rep.OK() {
			t.Errorf("%s: the checker found nothing (problems %v), want it found", c.name, rep.Problems(3))
		}
	}
}
