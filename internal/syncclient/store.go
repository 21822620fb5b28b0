package syncclient

import (
	"encoding/json"
	"maps"
	"slices"
	"sync"
)

// Record is a record's fields as the server sends them.
type Record map[string]any

// Mutation is one local change waiting for the server, as the protocol
// sends it.
type Mutation struct {
	ID          string         `json:"id"`
	Collection  string         `json:"collection"`
	RecordID    string         `json:"recordId"`
	Op          string         `json:"op"`
	BaseVersion int            `json:"baseVersion"`
	Fields      map[string]any `json:"fields,omitempty"`
	ClientTime  string         `json:"clientTime,omitempty"`
	// Seq is set once the server has answered: the change log position of
	// its effect. Until the device has pulled that far the mutation stays
	// in the local view (the write checkpoint).
	Seq int64 `json:"-"`
}

// Change is one record's state in a pull page.
type Change struct {
	Collection string `json:"collection"`
	ID         string `json:"id"`
	Op         string `json:"op"`
	Version    int    `json:"version"`
	Record     Record `json:"record"`
}

// Store is a device's local database: the server state it has pulled, the
// cursor it has pulled to, and the outbox of its own mutations. A store
// must apply a page and its cursor atomically.
type Store interface {
	// Base returns the server state of a record as last pulled.
	Base(collection, id string) (Record, bool)
	// Bases returns every pulled record of a collection.
	Bases(collection string) map[string]Record
	// Cursor returns the cursor and its sequence.
	Cursor() (cursor string, seq int64)
	// ApplyPage stores changes and the new cursor in one step.
	ApplyPage(changes []Change, cursor string, seq int64) error
	// Reset forgets the pulled state and the cursor, keeping the outbox.
	Reset() error
	// Wipe forgets everything, outbox included.
	Wipe() error
	// Enqueue appends a mutation to the outbox.
	Enqueue(m Mutation) error
	// Outbox returns the mutations not yet answered, oldest first.
	Outbox() []Mutation
	// Answered moves answered mutations out of the outbox: kept with their
	// seq until the cursor passes it, or dropped when seq is 0 (rejected).
	Answered(seqs map[string]int64) error
	// InFlight returns answered mutations not yet covered by the cursor.
	InFlight() []Mutation
}

// Key names a record.
type Key struct{ Collection, ID string }

// MemoryStore is a Store in memory, for tests, benchmarks and the load
// generator.
type MemoryStore struct {
	mu       sync.Mutex
	base     map[string]map[string]Record
	cursor   string
	seq      int64
	outbox   []Mutation
	inflight []Mutation
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{base: map[string]map[string]Record{}}
}

func clone(r Record) Record {
	if r == nil {
		return nil
	}
	b, _ := json.Marshal(r)
	var out Record
	_ = json.Unmarshal(b, &out)
	return out
}

// Base implements Store.
func (s *MemoryStore) Base(collection, id string) (Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.base[collection][id]
	return clone(r), ok
}

// Bases implements Store.
func (s *MemoryStore) Bases(collection string) map[string]Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Record, len(s.base[collection]))
	for id, r := range s.base[collection] {
		out[id] = clone(r)
	}
	return out
}

// Cursor implements Store.
func (s *MemoryStore) Cursor() (string, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursor, s.seq
}

// ApplyPage implements Store.
func (s *MemoryStore) ApplyPage(changes []Change, cursor string, seq int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range changes {
		if s.base[c.Collection] == nil {
			s.base[c.Collection] = map[string]Record{}
		}
		switch c.Op {
		case "upsert":
			s.base[c.Collection][c.ID] = clone(c.Record)
		case "purge":
			s.purge(Key{c.Collection, c.ID})
		default:
			delete(s.base[c.Collection], c.ID)
		}
	}
	s.cursor, s.seq = cursor, seq
	s.inflight = slices.DeleteFunc(s.inflight, func(m Mutation) bool { return m.Seq <= seq })
	return nil
}

// Reset implements Store.
func (s *MemoryStore) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.base = map[string]map[string]Record{}
	s.cursor, s.seq = "", 0
	return nil
}

// Wipe implements Store.
func (s *MemoryStore) Wipe() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.base = map[string]map[string]Record{}
	s.cursor, s.seq = "", 0
	s.outbox, s.inflight = nil, nil
	return nil
}

// Enqueue implements Store.
func (s *MemoryStore) Enqueue(m Mutation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m.Fields = maps.Clone(m.Fields)
	s.outbox = append(s.outbox, m)
	return nil
}

// Outbox implements Store.
func (s *MemoryStore) Outbox() []Mutation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.outbox)
}

// InFlight implements Store.
func (s *MemoryStore) InFlight() []Mutation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.inflight)
}

// Answered implements Store.
func (s *MemoryStore) Answered(seqs map[string]int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.outbox[:0]
	for _, m := range s.outbox {
		seq, answered := seqs[m.ID]
		switch {
		case !answered:
			kept = append(kept, m)
		case seq > s.seq:
			m.Seq = seq
			s.inflight = append(s.inflight, m)
		}
	}
	s.outbox = kept
	return nil
}

// purge drops every local trace of an erased record: its pulled state and
// pending edits, and, for a person, the records about them that only this
// device knows, and their place in the persons met of a visit.
func (s *MemoryStore) purge(k Key) {
	drop := PurgeSet(k, s.base, s.outbox, s.inflight)
	about := func(m Mutation) bool { return drop[Key{m.Collection, m.RecordID}] }
	for d := range drop {
		delete(s.base[d.Collection], d.ID)
	}
	s.outbox = slices.DeleteFunc(s.outbox, about)
	s.inflight = slices.DeleteFunc(s.inflight, about)
	if k.Collection != "persons" {
		return
	}
	for _, r := range s.base["camp_visits"] {
		r["persons_met"] = without(r["persons_met"], k.ID)
	}
	for _, list := range [][]Mutation{s.outbox, s.inflight} {
		for i := range list {
			if v, ok := list[i].Fields["persons_met"]; ok {
				list[i].Fields["persons_met"] = without(v, k.ID)
			}
		}
	}
}

// personRefs are the fields that make a record about one person: erasing
// the person erases such records on the device too.
var personRefs = map[string]string{"secretariat_contacts": "person", "referrals": "person"}

// PurgeSet returns the records an erasure of k removes from a device: k
// itself and, for a person, the records about them, whether pulled or only
// pending in the outbox.
func PurgeSet(k Key, base map[string]map[string]Record, lists ...[]Mutation) map[Key]bool {
	drop := map[Key]bool{k: true}
	if k.Collection != "persons" {
		return drop
	}
	for collection, field := range personRefs {
		for id, r := range base[collection] {
			if r[field] == k.ID {
				drop[Key{collection, id}] = true
			}
		}
		for _, list := range lists {
			for _, m := range list {
				if m.Collection == collection && m.Fields[field] == k.ID {
					drop[Key{collection, m.RecordID}] = true
				}
			}
		}
	}
	// Referral history follows its referral.
	for id, r := range base["referral_events"] {
		if ref, _ := r["referral"].(string); drop[Key{"referrals", ref}] {
			drop[Key{"referral_events", id}] = true
		}
	}
	return drop
}

func without(v any, id string) any {
	list, ok := v.([]any)
	if !ok {
		if ss, ok := v.([]string); ok {
			return slices.DeleteFunc(slices.Clone(ss), func(s string) bool { return s == id })
		}
		return v
	}
	out := make([]any, 0, len(list))
	for _, x := range list {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

// IDs implements [IDLister].
func (s *MemoryStore) IDs(collection string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.base[collection]))
	for id := range s.base[collection] {
		ids = append(ids, id)
	}
	return ids
}
