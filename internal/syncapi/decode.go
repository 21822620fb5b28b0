package syncapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/google/uuid"

	"strada/internal/domain"
)

// Mutation is one change a device made offline.
type Mutation struct {
	ID          string                     `json:"id"`
	Collection  string                     `json:"collection"`
	RecordID    string                     `json:"recordId"`
	Op          string                     `json:"op"`
	BaseVersion int                        `json:"baseVersion"`
	Fields      map[string]json.RawMessage `json:"fields"`
	ClientTime  string                     `json:"clientTime"`
}

// Mutation ops.
const (
	OpUpsert = "upsert"
	OpDelete = "delete"
)

// Result statuses.
const (
	StatusApplied   = "applied"
	StatusMerged    = "merged"
	StatusConflict  = "conflict"
	StatusRejected  = "rejected"
	StatusDuplicate = "duplicate"
)

// Result is the answer to one mutation.
type Result struct {
	ID          string       `json:"id"`
	Status      string       `json:"status"`
	Version     int          `json:"version,omitempty"`
	Seq         int64        `json:"seq,omitempty"`
	Error       *ResultError `json:"error,omitempty"`
	Conflicts   []string     `json:"conflicts,omitempty"`
	Merged      []string     `json:"merged,omitempty"`
	FirstStatus string       `json:"firstStatus,omitempty"`
}

// ResultError says why a mutation was rejected.
type ResultError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func reject(code, field, format string, args ...any) *ResultError {
	return &ResultError{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// DecodedMutation is a mutation as decoded from a push: either a
// well-formed Mutation or the rejection that answers it.
type DecodedMutation struct {
	Mutation Mutation
	Reject   *ResultError
}

// PushBatch is a decoded push request.
type PushBatch struct {
	Mutations []DecodedMutation
}

// BatchError is a push that cannot be read at all; it is answered with
// Status and nothing is applied.
type BatchError struct {
	Status  int
	Code    string
	Message string
}

func (e *BatchError) Error() string { return e.Message }

var uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// knownCollections are the collections a mutation may name at all; only
// the field-work ones among them are writable by devices.
var knownCollections = map[string]bool{
	domain.Users: true, domain.Teams: true, domain.Sites: true, domain.Services: true,
	domain.Persons: true, domain.CampVisits: true, domain.SecretariatContacts: true,
	domain.Referrals: true, domain.ReferralEvents: true, domain.Devices: true,
	domain.SyncConflicts: true, domain.Erasures: true,
}

// DecodePush reads a push body. A body that is not a JSON object with a
// "mutations" array, or that has more than MaxMutations, is a *BatchError;
// a single malformed mutation is answered by its own rejection so that it
// never blocks the ones behind it.
func DecodePush(body []byte) (*PushBatch, error) {
	var req struct {
		Mutations []json.RawMessage `json:"mutations"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, &BatchError{Status: 400, Code: "malformed_json", Message: "The push body is not valid: " + err.Error()}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &BatchError{Status: 400, Code: "malformed_json", Message: "The push body has trailing data."}
	}
	if req.Mutations == nil {
		return nil, &BatchError{Status: 400, Code: "missing_mutations", Message: `The push body needs a "mutations" array.`}
	}
	if len(req.Mutations) > MaxMutations {
		return nil, &BatchError{Status: 413, Code: "too_many_mutations",
			Message: fmt.Sprintf("A push carries at most %d mutations; this one has %d.", MaxMutations, len(req.Mutations))}
	}
	batch := &PushBatch{Mutations: make([]DecodedMutation, 0, len(req.Mutations))}
	for _, raw := range req.Mutations {
		batch.Mutations = append(batch.Mutations, decodeMutation(raw))
	}
	return batch, nil
}

func decodeMutation(raw json.RawMessage) DecodedMutation {
	var m Mutation
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		// Keep the id if it can be read, so the device can match the answer.
		var idOnly struct {
			ID any `json:"id"`
		}
		_ = json.Unmarshal(raw, &idOnly)
		id, _ := idOnly.ID.(string)
		m = Mutation{ID: truncate(id, 64)}
		return DecodedMutation{Mutation: m, Reject: reject("malformed_mutation", "", "The mutation is not valid: %v", err)}
	}
	return DecodedMutation{Mutation: m, Reject: checkShape(&m)}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// checkShape validates what can be checked without the database.
func checkShape(m *Mutation) *ResultError {
	if u, err := uuid.Parse(m.ID); err != nil || u.String() != m.ID {
		m.ID = truncate(m.ID, 64)
		return reject("invalid_mutation_id", "id", "The mutation id must be a lowercase UUID.")
	}
	if !knownCollections[m.Collection] {
		return reject("unknown_collection", "collection", "%q is not a collection.", truncate(m.Collection, 64))
	}
	if !domain.IsFieldWork(m.Collection) {
		return reject("collection_not_writable", "collection", "Devices cannot write %s.", m.Collection)
	}
	if !uuidV7.MatchString(m.RecordID) {
		return reject("invalid_record_id", "recordId", "The record id must be a lowercase UUIDv7.")
	}
	if m.BaseVersion < 0 {
		return reject("invalid_base_version", "baseVersion", "baseVersion cannot be negative.")
	}
	if m.ClientTime != "" {
		if _, err := time.Parse(time.RFC3339Nano, m.ClientTime); err != nil {
			return reject("invalid_client_time", "clientTime", "clientTime must be an RFC 3339 time.")
		}
	}
	switch m.Op {
	case OpUpsert:
		if len(m.Fields) == 0 {
			return reject("no_fields", "fields", "An upsert needs at least one field.")
		}
	case OpDelete:
		if len(m.Fields) != 0 {
			return reject("fields_on_delete", "fields", "A delete carries no fields.")
		}
	default:
		return reject("invalid_op", "op", "op must be %q or %q.", OpUpsert, OpDelete)
	}
	for name := range m.Fields {
		switch {
		case name == "id":
			return reject("invalid_field", name, "The id is given as recordId, not as a field.")
		case domain.IsServerManaged(name):
			return reject("server_managed", name, "%q is set by the server.", name)
		}
	}
	return nil
}
