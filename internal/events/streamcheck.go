package events

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrStreamUnusable means the stream exists with settings the relay cannot
// put back (it was sealed, its storage or retention changed, ...): the
// relay publishes nothing until an operator removes it, and then creates
// it again.
var ErrStreamUnusable = errors.New("stream unusable")

// ensureStream returns the stream with the configured settings. It creates
// a missing stream and puts back settings changed from outside; a stream it
// cannot put right is refused with ErrStreamUnusable.
func (r *Relay) ensureStream(ctx context.Context) (jetstream.Stream, error) {
	want := StreamConfig(r.opts)
	stream, err := r.js.Stream(ctx, StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		stream, err = r.js.CreateStream(ctx, want)
		if err != nil {
			return nil, fmt.Errorf("create stream %s: %w", StreamName, err)
		}
		r.logger.Info("event relay: created stream", "stream", StreamName)
		return r.checkStream(stream, want)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", StreamName, err)
	}
	got := stream.CachedInfo().Config
	changed := configDrift(want, got)
	if len(changed) == 0 {
		return stream, nil
	}
	if got.Sealed {
		return nil, fmt.Errorf("%w: %s is sealed and takes no more events; remove it (nats stream rm %s) and the relay creates it again",
			ErrStreamUnusable, StreamName, StreamName)
	}
	r.logger.Warn("event relay: stream settings changed outside Strada, putting them back",
		"stream", StreamName, "changed", strings.Join(changed, ", "))
	stream, err = r.js.UpdateStream(ctx, want)
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) {
			return nil, fmt.Errorf("%w: %s has changed settings (%s) that cannot be put back: %v; remove it (nats stream rm %s) and the relay creates it again",
				ErrStreamUnusable, StreamName, strings.Join(changed, ", "), err, StreamName)
		}
		return nil, fmt.Errorf("restore settings of stream %s: %w", StreamName, err)
	}
	return r.checkStream(stream, want)
}

// checkStream refuses a stream whose settings, as the server reports them,
// are not the configured ones.
func (r *Relay) checkStream(stream jetstream.Stream, want jetstream.StreamConfig) (jetstream.Stream, error) {
	if changed := configDrift(want, stream.CachedInfo().Config); len(changed) > 0 {
		return nil, fmt.Errorf("%w: the server keeps %s with settings other than the configured ones (%s)",
			ErrStreamUnusable, StreamName, strings.Join(changed, ", "))
	}
	return stream, nil
}

// configDrift names the settings of got that differ from want: every
// setting that decides which messages the stream takes, how long it keeps
// them, where else they go and who may remove them. The description,
// metadata, compression and consumer defaults are not compared.
func configDrift(want, got jetstream.StreamConfig) []string {
	var out []string
	check := func(name string, same bool) {
		if !same {
			out = append(out, name)
		}
	}
	check("subjects", slices.Equal(want.Subjects, got.Subjects))
	check("retention", want.Retention == got.Retention)
	check("discard", want.Discard == got.Discard && want.DiscardNewPerSubject == got.DiscardNewPerSubject)
	check("max consumers", want.MaxConsumers == got.MaxConsumers)
	check("max messages", want.MaxMsgs == got.MaxMsgs)
	check("max bytes", want.MaxBytes == got.MaxBytes)
	check("max age", want.MaxAge == got.MaxAge)
	check("max messages per subject", want.MaxMsgsPerSubject == got.MaxMsgsPerSubject)
	check("max message size", want.MaxMsgSize == got.MaxMsgSize)
	check("storage", want.Storage == got.Storage)
	check("replicas", want.Replicas == got.Replicas)
	check("no ack", want.NoAck == got.NoAck)
	check("duplicate window", want.Duplicates == got.Duplicates)
	check("placement", reflect.DeepEqual(want.Placement, got.Placement))
	check("mirror", got.Mirror == nil)
	check("sources", len(got.Sources) == 0)
	check("sealed", want.Sealed == got.Sealed)
	check("deny delete", want.DenyDelete == got.DenyDelete)
	check("deny purge", want.DenyPurge == got.DenyPurge)
	check("allow rollup", want.AllowRollup == got.AllowRollup)
	check("subject transform", got.SubjectTransform == nil)
	check("republish", got.RePublish == nil)
	check("allow direct", want.AllowDirect == got.AllowDirect && want.MirrorDirect == got.MirrorDirect)
	check("message TTL", want.AllowMsgTTL == got.AllowMsgTTL && want.SubjectDeleteMarkerTTL == got.SubjectDeleteMarkerTTL)
	check("message counter", want.AllowMsgCounter == got.AllowMsgCounter)
	check("atomic publish", want.AllowAtomicPublish == got.AllowAtomicPublish)
	check("batch publish", want.AllowBatchPublish == got.AllowBatchPublish)
	check("message schedules", want.AllowMsgSchedules == got.AllowMsgSchedules)
	check("persist mode", want.PersistMode == got.PersistMode)
	return out
}
