package simulate

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// Latency is the distribution of one kind of request's round trips, as
// the devices measured them.
type Latency struct {
	Requests int     `json:"requests"`
	P50ms    float64 `json:"p50Ms"`
	P99ms    float64 `json:"p99Ms"`
}

// Summary is the outcome of a run, printed by `strada simulate` (as JSON
// with --json).
type Summary struct {
	Devices  int    `json:"devices"`
	Workers  int    `json:"workers"`
	Rounds   int    `json:"rounds"`
	Seed     uint64 `json:"seed"`
	Duration string `json:"duration"`
	// SnapshotSeconds is the time of every device's first sync, SyncSeconds
	// the time devices spent syncing after it (rounds and final sync).
	SnapshotSeconds float64 `json:"snapshotSeconds"`
	SyncSeconds     float64 `json:"syncSeconds"`

	Mutations          int            `json:"mutations"`
	Applied            int            `json:"applied"`
	Merged             int            `json:"merged"`
	Conflicts          int            `json:"conflicts"`
	Rejected           int            `json:"rejected"`
	RejectedBy         map[string]int `json:"rejectedBy"`
	DuplicateAnswers   int            `json:"duplicateAnswers"`
	Discarded          int            `json:"discardedByRevocation"`
	MutationsPerSecond float64        `json:"mutationsPerSecond"`

	Push     Latency `json:"push"`
	Pull     Latency `json:"pull"`
	Register Latency `json:"register"`

	BytesSent     int64 `json:"bytesSent"`
	BytesReceived int64 `json:"bytesReceived"`

	AnswersDropped int            `json:"answersDropped"`
	RequestsFailed int            `json:"requestsFailed"`
	RateLimited    int            `json:"rateLimited"`
	SyncOutcomes   map[string]int `json:"syncOutcomes"`

	ErasedPersons []string `json:"erasedPersons"`
	ErasedRecords int      `json:"erasedRecords"`
	RevokedDevice string   `json:"revokedDevice"`

	Lost       int      `json:"lost"`
	Duplicated int      `json:"duplicated"`
	Diverged   int      `json:"diverged"`
	Erasure    int      `json:"erasureLeaks"`
	Revocation int      `json:"revocationLeaks"`
	Converged  bool     `json:"converged"`
	Problems   []string `json:"problems"`
	Warnings   []string `json:"warnings"`
}

// OK reports whether the run passed: nothing lost or duplicated, every
// device converged, the erasure and the revocation complete, and nothing
// unexpected on the way.
func (s Summary) OK() bool {
	return s.Lost == 0 && s.Duplicated == 0 && s.Converged && s.Erasure == 0 &&
		s.Revocation == 0 && len(s.Warnings) == 0
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return float64(sorted[i].Microseconds()) / 1000
}

func latencyOf(d []time.Duration) Latency {
	s := slices.Clone(d)
	slices.Sort(s)
	return Latency{Requests: len(s), P50ms: percentile(s, 0.50), P99ms: percentile(s, 0.99)}
}

func (r *run) summary(rep Report, took time.Duration) Summary {
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	answered := rep.Applied + rep.Merged + rep.Conflicts + rep.Rejected
	s := Summary{
		Devices: r.cfg.Devices, Workers: len(r.workers), Rounds: r.cfg.Rounds, Seed: r.cfg.Seed,
		Duration:        took.Round(time.Millisecond).String(),
		SnapshotSeconds: round3(r.snapshotTime.Seconds()), SyncSeconds: round3(r.syncTime.Seconds()),
		Mutations: rep.Made, Applied: rep.Applied, Merged: rep.Merged, Conflicts: rep.Conflicts,
		Rejected: rep.Rejected, RejectedBy: rep.RejectedBy, DuplicateAnswers: rep.DuplicateAnswers,
		Discarded: rep.Discarded,
		Push:      latencyOf(r.rec.latencies[kindPush]), Pull: latencyOf(r.rec.latencies[kindPull]),
		Register:  latencyOf(r.rec.latencies[kindRegister]),
		BytesSent: r.wire.sent.Load(), BytesReceived: r.wire.received.Load(),
		AnswersDropped: r.rec.dropped, RequestsFailed: r.rec.failed, RateLimited: r.rec.refused,
		SyncOutcomes:  r.outcomes,
		ErasedPersons: r.erasedPersons, ErasedRecords: len(r.erased), RevokedDevice: r.revokedDevice,
		Lost: len(rep.Lost), Duplicated: len(rep.Duplicated), Diverged: len(rep.Diverged),
		Erasure: len(rep.ErasureLeaks), Revocation: len(rep.RevocationLeaks),
		Converged: len(rep.Diverged) == 0, Problems: rep.Problems(10), Warnings: r.warnings,
	}
	if r.warned > len(r.warnings) {
		s.Warnings = append(s.Warnings, fmt.Sprintf("%d more warnings", r.warned-len(r.warnings)))
	}
	if r.syncTime > 0 {
		s.MutationsPerSecond = round3(float64(answered) / r.syncTime.Seconds())
	}
	return s
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// WriteJSON writes the summary as one JSON document.
func (s Summary) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

// WriteText writes the summary for a person.
func (s Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	verdict := "PASSED"
	if !s.OK() {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "Field day simulation %s: %d devices, %d workers, %d rounds, seed %d, %s\n",
		verdict, s.Devices, s.Workers, s.Rounds, s.Seed, s.Duration)
	fmt.Fprintf(&b, "  first sync of every device  %.1f s\n", s.SnapshotSeconds)
	fmt.Fprintf(&b, "  mutations     %d made: %d applied, %d merged, %d conflicts, %d rejected%s, %d discarded by the revocation\n",
		s.Mutations, s.Applied, s.Merged, s.Conflicts, s.Rejected, codes(s.RejectedBy), s.Discarded)
	fmt.Fprintf(&b, "  throughput    %.1f mutations/s over %.1f s of sync\n", s.MutationsPerSecond, s.SyncSeconds)
	fmt.Fprintf(&b, "  push          %d requests, p50 %.1f ms, p99 %.1f ms\n", s.Push.Requests, s.Push.P50ms, s.Push.P99ms)
	fmt.Fprintf(&b, "  pull          %d requests, p50 %.1f ms, p99 %.1f ms\n", s.Pull.Requests, s.Pull.P50ms, s.Pull.P99ms)
	fmt.Fprintf(&b, "  on the wire   %s sent, %s received\n", bytesOf(s.BytesSent), bytesOf(s.BytesReceived))
	fmt.Fprintf(&b, "  faults        %d requests lost, %d answers dropped (%d retried answers were duplicates), %d rate limited\n",
		s.RequestsFailed, s.AnswersDropped, s.DuplicateAnswers, s.RateLimited)
	fmt.Fprintf(&b, "  erasure       %d persons, %d records\n", len(s.ErasedPersons), s.ErasedRecords)
	fmt.Fprintf(&b, "  lost %d, duplicated %d, diverged %d, erasure leaks %d, revocation leaks %d, converged %v\n",
		s.Lost, s.Duplicated, s.Diverged, s.Erasure, s.Revocation, s.Converged)
	for _, p := range s.Problems {
		fmt.Fprintf(&b, "  problem: %s\n", p)
	}
	for _, p := range s.Warnings {
		fmt.Fprintf(&b, "  warning: %s\n", p)
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

func codes(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, m[n])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func bytesOf(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
