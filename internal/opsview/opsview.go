// Package opsview shows operators how the event flow is doing: the change
// log's backlog, the relay's progress and errors, the stream's state and the
// live subscribers, as JSON (superusers only) and as Prometheus text
// (superusers, or a scraper with its own revocable bearer token).
package opsview

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/changelog"
	"strada/internal/events"
)

// Sources are the parts whose state is shown.
type Sources struct {
	Relay *events.Relay
	Hub   *events.Hub
	JS    jetstream.JetStream
}

// Status is the operator view.
type Status struct {
	LastSeq     int64             `json:"lastSeq"`
	Backlog     int64             `json:"backlog"`
	Relay       events.RelayStats `json:"relay"`
	Stream      *StreamState      `json:"stream,omitempty"`
	StreamError string            `json:"streamError,omitempty"`
	Subscribers int               `json:"subscribers"`
}

// StreamState is the part of the JetStream stream info an operator needs.
type StreamState struct {
	Messages  uint64    `json:"messages"`
	Bytes     uint64    `json:"bytes"`
	FirstSeq  uint64    `json:"firstSeq"`
	LastSeq   uint64    `json:"lastSeq"`
	Consumers int       `json:"consumers"`
	LastTime  time.Time `json:"lastTime"`
}

// Collect reads the current status.
func Collect(ctx context.Context, app core.App, src Sources) (Status, error) {
	var st Status
	last, err := changelog.LastSeq(app)
	if err != nil {
		return st, err
	}
	st.LastSeq = last
	st.Relay = src.Relay.Stats()
	hwm, err := src.Relay.HighWaterMark()
	if err != nil {
		return st, err
	}
	st.Backlog = last - hwm
	st.Subscribers = src.Hub.Subscribers()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	stream, err := src.JS.Stream(cctx, events.StreamName)
	if err == nil {
		var info *jetstream.StreamInfo
		info, err = stream.Info(cctx)
		if err == nil {
			st.Stream = &StreamState{
				Messages: info.State.Msgs, Bytes: info.State.Bytes,
				FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq,
				Consumers: info.State.Consumers, LastTime: info.State.LastTime,
			}
		}
	}
	if err != nil {
		st.StreamError = err.Error()
	}
	return st, nil
}

// HandleStatus answers GET /api/strada/events with the status as JSON.
func HandleStatus(src Sources) func(*core.RequestEvent) error {
	return func(e *core.RequestEvent) error {
		st, err := Collect(e.Request.Context(), e.App, src)
		if err != nil {
			return e.InternalServerError("Failed to read the event status.", err)
		}
		return e.JSON(http.StatusOK, st)
	}
}

// HandleMetrics answers GET /api/strada/metrics in the Prometheus text
// exposition format.
func HandleMetrics(src Sources) func(*core.RequestEvent) error {
	return func(e *core.RequestEvent) error {
		st, err := Collect(e.Request.Context(), e.App, src)
		if err != nil {
			return e.InternalServerError("Failed to read the event status.", err)
		}
		var b strings.Builder
		metric := func(name, kind, help string, v any) {
			fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", name, help, name, kind, name, v)
		}
		metric("strada_changelog_last_seq", "gauge", "Highest committed change sequence.", st.LastSeq)
		metric("strada_relay_backlog", "gauge", "Committed changes not yet stored in the stream.", st.Backlog)
		metric("strada_relay_published_seq", "gauge", "Highest sequence stored in the stream.", st.Relay.LastPublished)
		metric("strada_relay_published_total", "counter", "Events published since start.", st.Relay.Published)
		metric("strada_relay_errors_total", "counter", "Publish errors since start.", st.Relay.PublishErrors)
		metric("strada_hub_subscribers", "gauge", "Live event subscribers in this process.", st.Subscribers)
		up := 0
		if st.Stream != nil {
			up = 1
			metric("strada_stream_messages", "gauge", "Messages in the STRADA stream.", st.Stream.Messages)
			metric("strada_stream_bytes", "gauge", "Bytes in the STRADA stream.", st.Stream.Bytes)
			metric("strada_stream_consumers", "gauge", "Consumers of the STRADA stream.", st.Stream.Consumers)
		}
		metric("strada_stream_up", "gauge", "1 when the stream answered.", up)
		e.Response.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		return e.String(http.StatusOK, b.String())
	}
}
