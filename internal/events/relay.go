package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/changelog"
)

// stateKey is the row of strada_state holding the relay's high-water mark:
// the highest sequence known to be stored in the stream.
const stateKey = "relay.published"

// scanLimit bounds how many of the stream's last messages reconciliation
// reads looking for the newest one the relay published.
const scanLimit = 256

// Relay publishes the change log to JetStream in sequence order. Each
// message's Nats-Msg-Id names the log and the sequence and authenticates
// the message (see Codec), so a publish repeated after a crash is dropped
// by the stream's duplicate window, and on start the relay finds the last
// message it stored to skip what is already there. It trusts nothing else
// in the stream: not a message it did not make, not an acknowledgement from
// another stream, not stream settings changed from outside.
type Relay struct {
	app     core.App
	log     *changelog.Log
	js      jetstream.JetStream
	codec   *Codec
	opts    StreamOptions
	logger  *slog.Logger
	batch   int
	timeout time.Duration

	mu    sync.Mutex
	stats RelayStats
}

// RelayStats is what an operator sees of the relay.
type RelayStats struct {
	Published      uint64    `json:"published"`
	LastPublished  int64     `json:"lastPublishedSeq"`
	PublishErrors  uint64    `json:"publishErrors"`
	LastError      string    `json:"lastError,omitempty"`
	LastErrorAt    time.Time `json:"lastErrorAt,omitzero"`
	StreamReady    bool      `json:"streamReady"`
	LastPublishAt  time.Time `json:"lastPublishAt,omitzero"`
	BatchSize      int       `json:"batchSize"`
	RetryingSince  time.Time `json:"retryingSince,omitzero"`
	ReconciledFrom int64     `json:"reconciledFrom"`
}

// NewRelay returns a relay of log's rows into the STRADA stream.
func NewRelay(app core.App, log *changelog.Log, js jetstream.JetStream, opts StreamOptions, logger *slog.Logger) *Relay {
	return &Relay{app: app, log: log, js: js, codec: NewCodec(app), opts: opts, logger: logger, batch: 256, timeout: 5 * time.Second}
}

// Stats returns a snapshot of the relay's counters.
func (r *Relay) Stats() RelayStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Run publishes until ctx is cancelled. Failures are counted, logged and
// retried with backoff; they never stop the relay or the writes feeding it.
func (r *Relay) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	ready := false
	for ctx.Err() == nil {
		if !ready {
			if err := r.prepare(ctx); err != nil {
				r.fail(err)
				if !sleep(ctx, backoff) {
					return
				}
				backoff = min(backoff*2, 5*time.Second)
				continue
			}
			ready = true
		}
		committed := r.log.Committed()
		n, err := r.publishBatch(ctx)
		if err != nil {
			r.fail(err)
			// Prepare again before the next publish: the stream may have
			// been removed, or recreated by a server that lost its store.
			ready = false
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		r.mu.Lock()
		r.stats.RetryingSince = time.Time{}
		r.mu.Unlock()
		if n > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-committed:
		case <-time.After(time.Second):
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func (r *Relay) fail(err error) {
	r.mu.Lock()
	r.stats.PublishErrors++
	r.stats.LastError = err.Error()
	r.stats.LastErrorAt = time.Now().UTC()
	if r.stats.RetryingSince.IsZero() {
		r.stats.RetryingSince = r.stats.LastErrorAt
	}
	r.mu.Unlock()
	if errors.Is(err, ErrStreamUnusable) {
		r.logger.Error("event relay: publishing nothing", "error", err)
		return
	}
	r.logger.Warn("event relay", "error", err)
}

func (r *Relay) setReady(ready bool) {
	r.mu.Lock()
	r.stats.StreamReady = ready
	r.mu.Unlock()
}

// prepare makes sure the stream exists with the configured settings and
// moves the high-water mark past what the relay already stored there.
func (r *Relay) prepare(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	stream, err := r.ensureStream(cctx)
	if err != nil {
		r.setReady(false)
		return err
	}
	// Events published before the record id was in the subject cannot be
	// removed record by record when a person is erased: they go.
	if err := stream.Purge(cctx, jetstream.WithPurgeSubject(legacySubjects)); err != nil {
		return fmt.Errorf("remove events of the old subject layout: %w", err)
	}
	hwm, err := r.HighWaterMark()
	if err != nil {
		return err
	}
	stored, found, err := r.lastOwn(cctx, stream)
	if err != nil {
		return err
	}
	switch {
	case found && stored > hwm:
		// Published and acknowledged, but the mark was not stored.
		if err := r.setHighWaterMark(stored); err != nil {
			return err
		}
		hwm = stored
	case found && stored < hwm:
		// The stream lost its tail (a server that stopped before writing
		// it out, or a store restored from a copy): publish it again.
		r.logger.Warn("event relay: stream is behind the high-water mark, publishing again",
			"stream", stored, "mark", hwm)
		if err := r.setHighWaterMark(stored); err != nil {
			return err
		}
		hwm = stored
	}
	r.mu.Lock()
	r.stats.StreamReady = true
	r.stats.LastPublished = hwm
	r.stats.ReconciledFrom = stored
	r.stats.BatchSize = r.batch
	r.mu.Unlock()
	return nil
}

// lastOwn reads the stream backwards from its last message, at most
// scanLimit messages, and returns the sequence of the newest change it
// holds as the relay published it: a message that Verify accepts and that
// is, subject and body, the event of the log's row at its sequence.
// Anything else (no id, another log's id, an id that does not authenticate
// the message, a sequence the log does not hold, different content) is
// skipped and never moves the mark. found is false when no message within
// the limit is the relay's.
func (r *Relay) lastOwn(ctx context.Context, stream jetstream.Stream) (seq int64, found bool, err error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("stream info: %w", err)
	}
	if info.State.Msgs == 0 {
		return 0, false, nil
	}
	last, err := changelog.LastSeq(r.app)
	if err != nil {
		return 0, false, err
	}
	var skipped int
	var ahead int64
	defer func() {
		if ahead > 0 {
			// The database was restored from an older copy, and the
			// sequences after its last change will be used again.
			r.logger.Warn("event relay: stream is ahead of the change log (database restored?); remove the stream",
				"stream", ahead, "log", last)
		}
		if skipped > 0 {
			r.logger.Warn("event relay: skipped stream messages it did not publish", "count", skipped)
		}
	}()
	for n, s := 0, info.State.LastSeq; n < scanLimit && s >= info.State.FirstSeq && s > 0; n, s = n+1, s-1 {
		msg, err := stream.GetMsg(ctx, s)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return 0, false, fmt.Errorf("read stored event %d: %w", s, err)
		}
		ev, err := r.codec.Verify(msg.Subject, msg.Header, msg.Data)
		if errors.Is(err, ErrForeign) {
			skipped++
			continue
		}
		if err != nil {
			return 0, false, err
		}
		entry, ok, err := changelog.Get(r.app, ev.Seq)
		if err != nil {
			return 0, false, err
		}
		if !ok {
			if ev.Seq > last {
				ahead = max(ahead, ev.Seq)
			}
			continue
		}
		want, err := r.codec.Message(FromEntry(entry))
		if err != nil {
			return 0, false, err
		}
		if want.Subject != msg.Subject || string(want.Data) != string(msg.Data) {
			ahead = max(ahead, ev.Seq)
			continue
		}
		return ev.Seq, true, nil
	}
	return 0, false, nil
}

// publishBatch checks the stream, publishes the next rows after the
// high-water mark and advances it past those the stream acknowledged, in
// order. Before the purge row of a record, every earlier message about
// that record is removed from the stream.
func (r *Relay) publishBatch(ctx context.Context) (int, error) {
	hwm, err := r.HighWaterMark()
	if err != nil {
		return 0, err
	}
	entries, err := changelog.Since(r.app, hwm, r.batch)
	if err != nil {
		return 0, err
	}
	if len(entries) == 0 {
		return 0, nil
	}
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	stream, err := r.ensureStream(cctx)
	cancel()
	if err != nil {
		r.setReady(false)
		return 0, err
	}
	published := 0
	for start := 0; start < len(entries); {
		// A run of rows with a purge row at most at its start.
		end := start + 1
		for end < len(entries) && entries[end].Op != changelog.OpPurge {
			end++
		}
		if entries[start].Op == changelog.OpPurge {
			if err := r.purgeRecord(ctx, stream, entries[start]); err != nil {
				return published, err
			}
		}
		n, err := r.publishRun(ctx, entries[start:end])
		published += n
		if err != nil {
			return published, err
		}
		start = end
	}
	return published, nil
}

// purgeRecord removes the stream's messages about the record of a purge
// row: its creates, updates and deletes under any team. A purge event
// published before (by a relay that stopped before storing its mark) is
// kept.
func (r *Relay) purgeRecord(ctx context.Context, stream jetstream.Stream, purge changelog.Entry) error {
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	for _, op := range []changelog.Op{changelog.OpCreate, changelog.OpUpdate, changelog.OpDelete} {
		if err := stream.Purge(cctx, jetstream.WithPurgeSubject(recordSubject(purge.Collection, op, purge.RecordID))); err != nil {
			return fmt.Errorf("remove events of purged %s/%s from the stream: %w", purge.Collection, purge.RecordID, err)
		}
	}
	return nil
}

// publishRun publishes entries asynchronously and advances the mark past
// those acknowledged by the STRADA stream, in order.
func (r *Relay) publishRun(ctx context.Context, entries []changelog.Entry) (int, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(entries))
	var pubErr error
	for _, entry := range entries {
		msg, err := r.codec.Message(FromEntry(entry))
		if err != nil {
			return 0, err
		}
		f, err := r.js.PublishMsgAsync(msg)
		if err != nil {
			pubErr = fmt.Errorf("publish change %d: %w", entry.Seq, err)
			break
		}
		futures = append(futures, f)
	}
	acked := int64(0)
	timer := time.NewTimer(r.timeout)
	defer timer.Stop()
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Stream == StreamName {
				acked = entries[i].Seq
				continue
			}
			pubErr = errors.Join(pubErr, fmt.Errorf("publish change %d: acknowledged by stream %q, want %q", entries[i].Seq, ack.Stream, StreamName))
		case err := <-f.Err():
			pubErr = errors.Join(pubErr, fmt.Errorf("publish change %d: %w", entries[i].Seq, err))
		case <-timer.C:
			pubErr = errors.Join(pubErr, fmt.Errorf("publish change %d: no ack within %s", entries[i].Seq, r.timeout))
		case <-ctx.Done():
			pubErr = errors.Join(pubErr, ctx.Err())
		}
		break
	}
	n := 0
	if acked > 0 {
		if err := r.setHighWaterMark(acked); err != nil {
			return 0, err
		}
		n = countUpTo(entries, acked)
		r.mu.Lock()
		r.stats.Published += uint64(n)
		r.stats.LastPublished = acked
		r.stats.LastPublishAt = time.Now().UTC()
		r.mu.Unlock()
	}
	if pubErr != nil {
		return n, pubErr
	}
	return len(entries), nil
}

func countUpTo(entries []changelog.Entry, seq int64) int {
	n := 0
	for _, e := range entries {
		if e.Seq <= seq {
			n++
		}
	}
	return n
}

// HighWaterMark returns the highest sequence the relay knows is stored.
func (r *Relay) HighWaterMark() (int64, error) {
	var v string
	err := r.app.ConcurrentDB().Select("value").From("strada_state").
		Where(dbx.HashExp{"key": stateKey}).Row(&v)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, nil
		}
		return 0, fmt.Errorf("read relay high-water mark: %w", err)
	}
	seq, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("relay high-water mark %q: %w", v, err)
	}
	return seq, nil
}

func (r *Relay) setHighWaterMark(seq int64) error {
	_, err := r.app.NonconcurrentDB().NewQuery(
		`INSERT INTO strada_state (key, value) VALUES ({:k}, {:v})
		 ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
	).Bind(dbx.Params{"k": stateKey, "v": strconv.FormatInt(seq, 10)}).Execute()
	if err != nil {
		return fmt.Errorf("store relay high-water mark %d: %w", seq, err)
	}
	return nil
}
