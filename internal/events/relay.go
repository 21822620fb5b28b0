package events

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/changelog"
)

// stateKey is the row of strada_state holding the relay's high-water mark:
// the highest sequence known to be stored in the stream.
const stateKey = "relay.published"

// Relay publishes the change log to JetStream in sequence order. Each
// message's Nats-Msg-Id is its sequence, so a publish repeated after a crash
// is dropped by the stream's duplicate window, and on start the relay reads
// the last stored message to skip what is already there.
type Relay struct {
	app     core.App
	log     *changelog.Log
	js      jetstream.JetStream
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
	return &Relay{app: app, log: log, js: js, opts: opts, logger: logger, batch: 256, timeout: 5 * time.Second}
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
	r.logger.Warn("event relay", "error", err)
}

// prepare makes sure the stream exists with the configured limits and moves
// the high-water mark past whatever the stream already holds.
func (r *Relay) prepare(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	stream, err := r.js.CreateOrUpdateStream(cctx, StreamConfig(r.opts))
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", StreamName, err)
	}
	hwm, err := r.HighWaterMark()
	if err != nil {
		return err
	}
	stored, found, err := lastStoredSeq(cctx, stream)
	if err != nil {
		return err
	}
	last, err := changelog.LastSeq(r.app)
	if err != nil {
		return err
	}
	if stored > last {
		// The stream holds changes the log has not: the database was
		// restored from an older copy, and the sequences after its last
		// change will be used again. Never mark them published early.
		r.logger.Warn("event relay: stream is ahead of the change log (database restored?); remove the stream",
			"stream", stored, "log", last)
		stored = last
	}
	switch {
	case stored > hwm:
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

// lastStoredSeq reads the change sequence of the stream's last message;
// found is false when the stream holds none.
func lastStoredSeq(ctx context.Context, stream jetstream.Stream) (seq int64, found bool, err error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("stream info: %w", err)
	}
	if info.State.Msgs == 0 {
		return 0, false, nil
	}
	msg, err := stream.GetMsg(ctx, info.State.LastSeq)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("read last stored event: %w", err)
	}
	seq, err = strconv.ParseInt(msg.Header.Get(nats.MsgIdHdr), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("last stored event has no sequence id: %w", err)
	}
	return seq, true, nil
}

// publishBatch publishes the next rows after the high-water mark and
// advances it past those the stream acknowledged, in order.
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
	futures := make([]jetstream.PubAckFuture, 0, len(entries))
	var pubErr error
	for _, entry := range entries {
		msg, err := Message(FromEntry(entry))
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
	acked := hwm
	timer := time.NewTimer(r.timeout)
	defer timer.Stop()
	for i, f := range futures {
		select {
		case <-f.Ok():
			acked = entries[i].Seq
			continue
		case err := <-f.Err():
			pubErr = errors.Join(pubErr, fmt.Errorf("publish change %d: %w", entries[i].Seq, err))
		case <-timer.C:
			pubErr = errors.Join(pubErr, fmt.Errorf("publish change %d: no ack within %s", entries[i].Seq, r.timeout))
		case <-ctx.Done():
			pubErr = errors.Join(pubErr, ctx.Err())
		}
		break
	}
	if acked > hwm {
		if err := r.setHighWaterMark(acked); err != nil {
			return 0, err
		}
		r.mu.Lock()
		r.stats.Published += uint64(countUpTo(entries, acked))
		r.stats.LastPublished = acked
		r.stats.LastPublishAt = time.Now().UTC()
		r.mu.Unlock()
	}
	if pubErr != nil {
		return countUpTo(entries, acked), pubErr
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

// Message encodes ev as a NATS message for its subject, with its sequence
// as Nats-Msg-Id.
func Message(ev Event) (*nats.Msg, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event %d: %w", ev.Seq, err)
	}
	msg := nats.NewMsg(ev.Subject())
	msg.Data = body
	msg.Header.Set(nats.MsgIdHdr, strconv.FormatInt(ev.Seq, 10))
	return msg, nil
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
