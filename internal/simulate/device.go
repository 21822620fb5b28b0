package simulate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"

	"github.com/google/uuid"

	"strada/internal/domain"
	"strada/internal/syncclient"
)

// worker is a simulated worker: a users account in one team, signed in on
// each of its devices.
type worker struct {
	id    string
	email string
	team  string
	kind  string // the team's kind

	mu    sync.Mutex
	token string
}

// device is one simulated phone or tablet.
type device struct {
	index  int
	worker *worker
	c      *syncclient.Client
	link   *faultyTransport
	tr     *http.Transport
	rnd    *rand.Rand

	// offlineFor is the number of rounds the device stays out of signal.
	offlineFor int
	muts       []Planned
	created    []Key // records this device made, for its deletes

	// Revocation: the index in muts from which its mutations were made
	// after its last sync before the revocation; refused stays true while
	// every call after the revocation is refused.
	revoked     bool
	discardFrom int
	refused     bool
}

// world is what a device may refer to: the sites of each team and a
// service of the directory.
type world struct {
	sites   map[string][]string // team id -> site ids
	service string
}

var words = []string{"documenti", "residenza", "salute", "scuola", "lavoro", "casa", "famiglia", "permesso", "pensione", "mediazione"}

func (d *device) word() string {
	return fmt.Sprintf("%s %d (simulazione)", words[d.rnd.IntN(len(words))], d.rnd.IntN(1000))
}

func newRecordID() string { return uuid.Must(uuid.NewV7()).String() }

func (d *device) track(m syncclient.Mutation, err error) error {
	if err != nil {
		return fmt.Errorf("device %d: queue mutation: %w", d.index, err)
	}
	d.muts = append(d.muts, Planned{
		ID: m.ID, Device: d.c.DeviceID, Collection: m.Collection, RecordID: m.RecordID, Op: m.Op,
	})
	return nil
}

// create queues the first version of a new record.
func (d *device) create(collection string, fields map[string]any) error {
	id := newRecordID()
	if err := d.track(d.c.Upsert(collection, id, fields)); err != nil {
		return err
	}
	d.created = append(d.created, Key{collection, id})
	return nil
}

// pick returns a record of a collection as the device shows it: most
// picks fall on a few hot records, as in the field, where several workers
// follow the same families; that is where concurrent edits meet. A worker
// of the simulation is in one team and sees only its records.
func (d *device) pick(collection string) (string, syncclient.Record) {
	ids := d.c.IDs(collection)
	if len(ids) == 0 {
		return "", nil
	}
	if len(ids) > hotRecords && d.rnd.IntN(4) > 0 {
		ids = ids[:hotRecords]
	}
	id := ids[d.rnd.IntN(len(ids))]
	r, _ := d.c.View(collection, id)
	return id, r
}

// hotRecords is the number of records of a team that most edits fall on.
const hotRecords = 8

// editable are the free-text fields workers edit, by collection.
var editable = map[string][]string{
	domain.Persons:             {"notes", "languages", "nationality"},
	domain.CampVisits:          {"needs", "actions", "notes"},
	domain.SecretariatContacts: {"actions", "next_steps", "notes"},
}

// work makes one local change, offline: a field day of a camp or prison
// worker is mostly edits of the records of the families they follow, some
// new persons and visits or contacts, a few referrals and, rarely, the
// delete of a record made by mistake.
func (d *device) work(w *world, today string) error {
	team := d.worker.team
	camp := d.worker.kind == "camp_outreach"
	work := domain.SecretariatContacts
	if camp {
		work = domain.CampVisits
	}
	switch op := d.rnd.IntN(100); {
	case op < 8:
		return d.create(domain.Persons, map[string]any{
			"team": team, "consent": "verbal", "notes": d.word(),
		})
	case op < 18:
		pid, _ := d.pick(domain.Persons)
		sites := w.sites[team]
		if len(sites) == 0 {
			return nil
		}
		site := sites[d.rnd.IntN(len(sites))]
		if camp {
			fields := map[string]any{"team": team, "site": site, "visited_at": today, "needs": d.word()}
			if pid != "" {
				fields["persons_met"] = []string{pid}
			}
			return d.create(domain.CampVisits, fields)
		}
		if pid == "" {
			return nil
		}
		return d.create(domain.SecretariatContacts, map[string]any{
			"team": team, "person": pid, "site": site, "setting": "intra", "contacted_at": today, "actions": d.word(),
		})
	case op < 23 && !camp:
		pid, _ := d.pick(domain.Persons)
		if pid == "" || w.service == "" {
			return nil
		}
		return d.create(domain.Referrals, map[string]any{
			"team": team, "person": pid, "service": w.service, "reason": d.word(), "status": domain.StatusDraft,
		})
	case op < 28 && !camp:
		id, r := d.pick(domain.Referrals)
		if id == "" {
			return nil
		}
		// The moves a worker may make; a concurrent move elsewhere can
		// still make this one invalid, and the server says so.
		next := map[string][]string{
			domain.StatusDraft: {domain.StatusSent, domain.StatusCancelled},
			domain.StatusSent:  {domain.StatusCancelled},
		}[fmt.Sprint(r["status"])]
		if len(next) == 0 {
			return nil
		}
		return d.track(d.c.Upsert(domain.Referrals, id, map[string]any{"status": next[d.rnd.IntN(len(next))]}))
	case op < 31:
		var mine []Key
		for _, k := range d.created {
			if k.Collection == work {
				if _, ok := d.c.View(k.Collection, k.ID); ok {
					mine = append(mine, k)
				}
			}
		}
		if len(mine) == 0 {
			return nil
		}
		k := mine[d.rnd.IntN(len(mine))]
		return d.track(d.c.Delete(k.Collection, k.ID))
	default:
		coll := []string{domain.Persons, work}[d.rnd.IntN(2)]
		id, _ := d.pick(coll)
		if id == "" {
			return nil
		}
		names := editable[coll]
		change := map[string]any{names[d.rnd.IntN(len(names))]: d.word()}
		if d.rnd.IntN(3) == 0 {
			change[names[d.rnd.IntN(len(names))]] = d.word()
		}
		return d.track(d.c.Upsert(coll, id, change))
	}
}

// outcome of one sync attempt, for the summary.
const (
	syncOK        = "ok"
	syncNoSignal  = "no_signal"
	syncAnswer    = "answer_lost"
	syncLimited   = "rate_limited"
	syncServer    = "server_error"
	syncSignedOut = "signed_out"
	syncRevoked   = "revoked"
	syncOther     = "other"
)

func classify(err error) string {
	var apiErr *syncclient.APIError
	switch {
	case err == nil:
		return syncOK
	case errors.Is(err, syncclient.ErrRevoked):
		return syncRevoked
	case errors.Is(err, errNoSignal):
		return syncNoSignal
	case errors.Is(err, errAnswerLost):
		return syncAnswer
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusTooManyRequests:
		return syncLimited
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized:
		return syncSignedOut
	case errors.As(err, &apiErr) && apiErr.Status >= 500:
		return syncServer
	}
	return syncOther
}

// sync pushes and pulls once. A device whose worker's tokens were
// invalidated (a revocation of another of the worker's devices does that)
// signs in again and tries once more, as the worker would.
func (d *device) sync(ctx context.Context, signIn func(*worker, string) (string, error)) (string, error) {
	_, err := d.c.Sync(ctx)
	if classify(err) == syncSignedOut && !d.revoked {
		token, signErr := signIn(d.worker, d.c.Token)
		if signErr != nil {
			return syncOther, signErr
		}
		d.c.Token = token
		_, err = d.c.Sync(ctx)
	}
	kind := classify(err)
	if kind == syncOther {
		return kind, fmt.Errorf("device %d: sync: %w", d.index, err)
	}
	return kind, nil
}

// pending is the number of the device's mutations not yet pulled back.
func (d *device) pending() int {
	return len(d.c.Store.Outbox()) + len(d.c.Store.InFlight())
}

// state is what the device holds, for the checker.
func (d *device) state(collections []string) (DeviceState, error) {
	st := DeviceState{ID: d.c.DeviceID, Teams: []string{d.worker.team}, Records: map[Key]Record{}, Pending: d.pending(),
		Revoked: d.revoked, Refused: d.refused}
	if d.revoked {
		_, st.Answered = d.link.revocationCounts()
	}
	byName := map[string]Record{}
	for _, coll := range collections {
		for id, r := range d.c.ViewAll(coll) {
			st.Records[Key{coll, id}] = Record(r)
			byName[coll+"/"+id] = Record(r)
		}
	}
	// Every pending mutation is in the view above; the dump carries them
	// whole, with the fields of those that delete or are not yet pulled.
	dump, err := json.Marshal(map[string]any{
		"records": byName, "outbox": d.c.Store.Outbox(), "inflight": d.c.Store.InFlight(),
	})
	if err != nil {
		return st, fmt.Errorf("device %d: serialise store: %w", d.index, err)
	}
	st.Dump = dump
	return st, nil
}
