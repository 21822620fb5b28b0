// Package events carries the change log onto NATS JetStream and back: the
// event schema and subjects, the relay that publishes committed changes in
// sequence order exactly once, and the in-process hub that fans the stream
// out to live subscribers (SSE hints to devices and dashboards).
package events

import (
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"strada/internal/changelog"
	"strada/internal/natsbus"
)

// SchemaVersion is the version of the Event payload.
const SchemaVersion = 1

// StreamName is the JetStream stream holding change events.
const StreamName = natsbus.EventStream

// SubjectPrefix starts every change subject:
// strada.changes.<team|global>.<collection>.<op>.<recordId>.
const SubjectPrefix = natsbus.EventSubjectPrefix

// GlobalScope is the team token of reference data that every user reads.
const GlobalScope = "global"

// Event is the message body of a change. It carries identifiers and field
// names, never field values: no personal data travels on the bus.
type Event struct {
	V          int             `json:"v"`
	Seq        int64           `json:"seq"`
	Collection string          `json:"collection"`
	RecordID   string          `json:"recordId"`
	Op         changelog.Op    `json:"op"`
	Version    int             `json:"version"`
	Team       string          `json:"team,omitempty"`
	Site       string          `json:"site,omitempty"`
	Fields     []string        `json:"fields,omitempty"`
	Actor      changelog.Actor `json:"actor"`
	At         time.Time       `json:"at"`
}

// FromEntry builds the event of a change log entry.
func FromEntry(e changelog.Entry) Event {
	return Event{
		V: SchemaVersion, Seq: e.Seq, Collection: e.Collection, RecordID: e.RecordID,
		Op: e.Op, Version: e.Version, Team: e.Team, Site: e.Site, Fields: e.Fields,
		Actor: e.Actor, At: e.At,
	}
}

// Subject is where an event is published. The record id is its last token,
// so that the stream's messages about one record can be removed together
// (an erasure); record ids are random identifiers, not personal data.
func (ev Event) Subject() string {
	scope := ev.Team
	if scope == "" {
		scope = GlobalScope
	}
	return fmt.Sprintf("%s.%s.%s.%s.%s", SubjectPrefix, token(scope), token(ev.Collection), token(string(ev.Op)), token(ev.RecordID))
}

// recordSubject is the filter of every message about one record with op,
// whatever its team.
func recordSubject(collection string, op changelog.Op, recordID string) string {
	return fmt.Sprintf("%s.*.%s.%s.%s", SubjectPrefix, token(collection), token(string(op)), token(recordID))
}

// legacySubjects matches the subjects of events published before the
// record id was part of the subject.
const legacySubjects = SubjectPrefix + ".*.*.*"

// token keeps a subject token free of the separators and wildcards of NATS.
func token(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}

// TeamSubject is the filter for every change of one team.
func TeamSubject(team string) string {
	return fmt.Sprintf("%s.%s.>", SubjectPrefix, token(team))
}

// StreamOptions sets the stream's limits.
type StreamOptions struct {
	MaxAge       time.Duration
	MaxBytes     int64
	Duplicates   time.Duration
	MaxConsumers int
	Replicas     int
}

// DefaultStreamOptions are the limits used unless configured otherwise:
// events are kept 30 days (devices pull from SQLite; the stream serves live
// subscribers and integrations), duplicates are detected for 10 minutes of
// relay retries, and up to 10,000 consumers may attach.
var DefaultStreamOptions = StreamOptions{
	MaxAge:       30 * 24 * time.Hour,
	MaxBytes:     1 << 30,
	Duplicates:   10 * time.Minute,
	MaxConsumers: 10_000,
	Replicas:     1,
}

// StreamConfig is the JetStream configuration of the STRADA stream. Every
// limit is explicit (-1 for none), so that it reads back from the server
// as written and the relay can tell a setting changed from outside.
func StreamConfig(o StreamOptions) jetstream.StreamConfig {
	if o.Duplicates > o.MaxAge {
		o.Duplicates = o.MaxAge
	}
	return jetstream.StreamConfig{
		Name:              StreamName,
		Description:       "Strada change events: ids and field names only",
		Subjects:          []string{SubjectPrefix + ".>"},
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxAge:            o.MaxAge,
		MaxBytes:          o.MaxBytes,
		MaxMsgs:           -1,
		MaxMsgsPerSubject: -1,
		MaxMsgSize:        -1,
		Duplicates:        o.Duplicates,
		MaxConsumers:      o.MaxConsumers,
		Replicas:          o.Replicas,
	}
}
