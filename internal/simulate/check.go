package simulate

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Key names a record.
type Key struct{ Collection, ID string }

func (k Key) String() string { return k.Collection + "/" + k.ID }

// Planned is a mutation a simulated device made.
type Planned struct {
	ID         string
	Device     string
	Collection string
	RecordID   string
	Op         string
	// Discarded marks a mutation made by a device after its last sync
	// before its revocation: the server must never apply it.
	Discarded bool
}

// Answer is the server's answer to one mutation as the device's transport
// read it, delivered to the device or dropped on the way back.
type Answer struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	FirstStatus string `json:"firstStatus"`
	Seq         int64  `json:"seq"`
	Error       *struct {
		Code string `json:"code"`
	} `json:"error"`
	Device    string `json:"-"`
	Delivered bool   `json:"-"`
}

// Answer statuses of the sync protocol.
const (
	statusApplied   = "applied"
	statusMerged    = "merged"
	statusConflict  = "conflict"
	statusRejected  = "rejected"
	statusDuplicate = "duplicate"
)

func tookEffect(status string) bool {
	return status == statusApplied || status == statusMerged || status == statusConflict
}

// Record is a record as the server or a device holds it.
type Record map[string]any

// DeviceState is what a device holds at the end of the run.
type DeviceState struct {
	ID    string
	Teams []string
	// Records is every record the device shows, by collection and id.
	Records map[Key]Record
	// Pending is the number of mutations still unanswered or not yet
	// pulled back.
	Pending int
	// Dump is everything the device stores, serialised: the erased ids
	// must appear nowhere in it.
	Dump []byte
	// Revoked marks the revoked device. Refused reports that every
	// request it made after its revocation was refused and that it could
	// not register again; Answered counts the successful answers it got
	// after its revocation.
	Revoked  bool
	Refused  bool
	Answered int
}

// Input is everything the checker needs: the mutations the devices made,
// every answer the server gave, the server's state at the start and the
// end, what the erasures touched, and what each device holds.
type Input struct {
	Mutations []Planned
	Answers   []Answer
	// Initial is the version of every record at the start.
	Initial map[Key]int
	// Final is the server's state at the end: every record of the synced
	// collections, with its "version" and "team".
	Final map[Key]Record
	// Scoped names the collections whose records a device receives only
	// for its teams; the others every device receives whole.
	Scoped []string
	// Erased lists the ids of the erased persons and of the records about
	// them that the erasure purged; Bumped counts, per record, the saves
	// the erasures made (a person leaving the persons met of a visit).
	Erased []Key
	Bumped map[Key]int
	// Devices is the state of every device.
	Devices []DeviceState
}

// Report is the verdict of the checker.
type Report struct {
	Made, Applied, Merged, Conflicts, Rejected int
	DuplicateAnswers, Discarded                int
	RejectedBy                                 map[string]int
	Lost, Duplicated                           []string
	Diverged, ErasureLeaks, RevocationLeaks    []string
}

// OK reports whether the run passed every check.
func (r Report) OK() bool {
	return len(r.Lost) == 0 && len(r.Duplicated) == 0 && len(r.Diverged) == 0 &&
		len(r.ErasureLeaks) == 0 && len(r.RevocationLeaks) == 0
}

// Problems lists every failed check, at most limit of each kind.
func (r Report) Problems(limit int) []string {
	var out []string
	for _, g := range []struct {
		name string
		list []string
	}{
		{"lost", r.Lost}, {"duplicated", r.Duplicated}, {"diverged", r.Diverged},
		{"erasure leak", r.ErasureLeaks}, {"revocation leak", r.RevocationLeaks},
	} {
		for i, p := range g.list {
			if i == limit {
				out = append(out, fmt.Sprintf("%s: %d more", g.name, len(g.list)-limit))
				break
			}
			out = append(out, g.name+": "+p)
		}
	}
	return out
}

// Check verifies a run:
//   - lost: a mutation that was never answered, or whose effect is not on
//     the server (a record's version lower than the saves answered for it,
//     a record gone that no delete or erasure removed);
//   - duplicated: a mutation answered as applied more than once, or a
//     record's version higher than the saves answered for it;
//   - diverged: a device whose records differ from the server's in its
//     scope, or with mutations still pending;
//   - erasure leak: any trace of an erased record on a device;
//   - revocation leak: a revoked device that was answered after its
//     revocation, or whose discarded mutations reached the server.
func Check(in Input) Report {
	rep := Report{RejectedBy: map[string]int{}}

	// The effect of each mutation, from its answers.
	type outcome struct {
		firsts   int
		status   string
		answered bool
	}
	outcomes := make(map[string]*outcome, len(in.Mutations))
	for _, m := range in.Mutations {
		outcomes[m.ID] = &outcome{}
	}
	for _, a := range in.Answers {
		o := outcomes[a.ID]
		if o == nil {
			continue // not a mutation of this run
		}
		o.answered = true
		if a.Status == statusDuplicate {
			rep.DuplicateAnswers++
			if o.status == "" {
				o.status = a.FirstStatus
			}
			continue
		}
		o.firsts++
		o.status = a.Status
		if a.Status == statusRejected && a.Error != nil && o.firsts == 1 {
			rep.RejectedBy[a.Error.Code]++
		}
	}

	saves := map[Key]int{}
	deleted := map[Key]bool{}
	touched := map[Key]bool{}
	for _, m := range in.Mutations {
		rep.Made++
		o := outcomes[m.ID]
		k := Key{m.Collection, m.RecordID}
		if m.Discarded {
			rep.Discarded++
			if o.answered {
				rep.RevocationLeaks = append(rep.RevocationLeaks, fmt.Sprintf("mutation %s of the revoked device %s was answered %q", m.ID, m.Device, o.status))
			}
			continue
		}
		if !o.answered {
			rep.Lost = append(rep.Lost, fmt.Sprintf("mutation %s (%s %s) of device %s was never answered", m.ID, m.Op, k, m.Device))
			continue
		}
		if o.firsts > 1 {
			rep.Duplicated = append(rep.Duplicated, fmt.Sprintf("mutation %s (%s %s) was applied %d times", m.ID, m.Op, k, o.firsts))
		}
		switch o.status {
		case statusApplied:
			rep.Applied++
		case statusMerged:
			rep.Merged++
		case statusConflict:
			rep.Conflicts++
		case statusRejected:
			rep.Rejected++
		}
		if !tookEffect(o.status) {
			continue
		}
		touched[k] = true
		if m.Op == "delete" {
			deleted[k] = true
		} else {
			saves[k]++
		}
	}

	erased := make(map[Key]bool, len(in.Erased))
	for _, k := range in.Erased {
		erased[k] = true
	}
	// Every record the run touched or the server had: its version must
	// count exactly the saves answered for it.
	keys := map[Key]bool{}
	for k := range touched {
		keys[k] = true
	}
	for k := range in.Initial {
		keys[k] = true
	}
	for _, k := range sortedKeys(keys) {
		r, exists := in.Final[k]
		if exists && deleted[k] {
			rep.Lost = append(rep.Lost, fmt.Sprintf("%s: a delete was answered, and the record is still on the server", k))
			continue
		}
		if !exists {
			if deleted[k] || erased[k] {
				continue
			}
			if touched[k] || in.Initial[k] > 0 {
				rep.Lost = append(rep.Lost, fmt.Sprintf("%s is gone from the server, and no delete or erasure removed it", k))
			}
			continue
		}
		if erased[k] {
			rep.ErasureLeaks = append(rep.ErasureLeaks, fmt.Sprintf("%s is still on the server after its erasure", k))
		}
		want := in.Initial[k] + saves[k] + in.Bumped[k]
		got := versionOf(r)
		switch {
		case got < want:
			rep.Lost = append(rep.Lost, fmt.Sprintf("%s: got version %d, want %d (%d saves answered): a save is missing", k, got, want, saves[k]))
		case got > want:
			rep.Duplicated = append(rep.Duplicated, fmt.Sprintf("%s: got version %d, want %d (%d saves answered): a save was applied twice", k, got, want, saves[k]))
		}
	}

	canon := make(map[Key]string, len(in.Final))
	for k, r := range in.Final {
		canon[k] = canonical(r)
	}
	for _, d := range in.Devices {
		checkErasure(&rep, d, in.Erased)
		if d.Revoked {
			if !d.Refused || d.Answered > 0 || len(d.Records) > 0 || d.Pending > 0 {
				rep.RevocationLeaks = append(rep.RevocationLeaks, fmt.Sprintf("revoked device %s: refused %v, %d answers after revocation, %d records and %d pending kept",
					d.ID, d.Refused, d.Answered, len(d.Records), d.Pending))
			}
			continue
		}
		checkConvergence(&rep, d, in, canon)
	}
	return rep
}

func checkErasure(rep *Report, d DeviceState, erased []Key) {
	for _, k := range erased {
		if _, ok := d.Records[k]; ok {
			rep.ErasureLeaks = append(rep.ErasureLeaks, fmt.Sprintf("device %s still holds %s", d.ID, k))
			continue
		}
		if d.Dump != nil && strings.Contains(string(d.Dump), k.ID) {
			rep.ErasureLeaks = append(rep.ErasureLeaks, fmt.Sprintf("device %s still stores the id of %s", d.ID, k))
		}
	}
}

// ignoredFields are the fields of the server's records API that the sync
// protocol does not carry.
var ignoredFields = map[string]bool{"collectionId": true, "collectionName": true, "expand": true}

// canonical is a record's JSON without the fields sync does not carry.
func canonical(r Record) string {
	c := make(Record, len(r))
	for n, v := range r {
		if !ignoredFields[n] {
			c[n] = v
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Sprintf("unencodable: %v", err)
	}
	return string(b)
}

func checkConvergence(rep *Report, d DeviceState, in Input, canon map[Key]string) {
	if d.Pending > 0 {
		rep.Diverged = append(rep.Diverged, fmt.Sprintf("device %s still has %d mutations pending", d.ID, d.Pending))
	}
	inScope := func(k Key, r Record) bool {
		if !slices.Contains(in.Scoped, k.Collection) {
			return true
		}
		team, _ := r["team"].(string)
		return slices.Contains(d.Teams, team)
	}
	want := 0
	for _, k := range sortedRecords(in.Final) {
		server := in.Final[k]
		if !inScope(k, server) {
			continue
		}
		want++
		local, ok := d.Records[k]
		if !ok {
			rep.Diverged = append(rep.Diverged, fmt.Sprintf("device %s lacks %s", d.ID, k))
			continue
		}
		if canonical(local) == canon[k] {
			continue
		}
		if diff := differ(server, local); diff != "" {
			rep.Diverged = append(rep.Diverged, fmt.Sprintf("device %s: %s differs: %s", d.ID, k, diff))
		}
	}
	if len(d.Records) != want {
		for _, k := range sortedRecords(d.Records) {
			if server, ok := in.Final[k]; !ok || !inScope(k, server) {
				rep.Diverged = append(rep.Diverged, fmt.Sprintf("device %s holds %s, which the server does not have in its scope", d.ID, k))
			}
		}
	}
}

// differ compares a record as the server's records API gives it with the
// device's copy, field by field, in their JSON form; it returns "" when
// they are equal.
func differ(server, local Record) string {
	names := map[string]bool{}
	for n := range server {
		if !ignoredFields[n] {
			names[n] = true
		}
	}
	for n := range local {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		s, sok := server[n]
		l, lok := local[n]
		if sok != lok {
			return fmt.Sprintf("field %s: on the server %v, on the device %v", n, sok, lok)
		}
		js, _ := json.Marshal(s)
		jl, _ := json.Marshal(l)
		if string(js) != string(jl) {
			return fmt.Sprintf("field %s: got %s, want %s", n, jl, js)
		}
	}
	return ""
}

func versionOf(r Record) int {
	switch v := r["version"].(type) {
	case float64:
		return int(v)
	case int:
		return v
	case json.Number:
		n, _ := v.Int64()
		return int(n)
	}
	return 0
}

func sortedKeys(m map[Key]bool) []Key {
	out := make([]Key, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sortKeys(out)
	return out
}

func sortedRecords(m map[Key]Record) []Key {
	out := make([]Key, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sortKeys(out)
	return out
}

func sortKeys(ks []Key) {
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].Collection != ks[j].Collection {
			return ks[i].Collection < ks[j].Collection
		}
		return ks[i].ID < ks[j].ID
	})
}
