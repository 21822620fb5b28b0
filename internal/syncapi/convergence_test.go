package syncapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/domain"
	"strada/internal/syncapi"
	"strada/internal/syncclient"
)

var (
	convDevices = flag.Int("sync.devices", 6, "devices in the convergence test")
	convRounds  = flag.Int("sync.rounds", 15, "rounds of offline work and sync in the convergence test")
	convSeed    = flag.Uint64("sync.seed", 2026, "seed of the convergence test")
)

// flakyTransport fails some requests before they reach the server (no
// signal) and drops some answers after the server applied the request (the
// connection breaks on the way back).
type flakyTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	rnd  *rand.Rand
	// before and after are the probabilities of each failure.
	before, after float64
	dropped       int
}

func (f *flakyTransport) roll(p float64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rnd.Float64() < p
}

func (f *flakyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if f.roll(f.before) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errors.New("no signal")
	}
	resp, err := f.base.RoundTrip(req)
	if err == nil && f.roll(f.after) {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		f.mu.Lock()
		f.dropped++
		f.mu.Unlock()
		return nil, errors.New("connection lost after the server answered")
	}
	return resp, err
}

type simDevice struct {
	c     *syncclient.Client
	flaky *flakyTransport
	teams []string
	role  string
	muts  []syncclient.Mutation
}

// TestConvergence runs devices that work offline at random, sync over a
// transport that loses requests and answers, and checks that in the end
// every device equals the server in its scope, every mutation was applied
// at most once (exactly once when it changed something), and every
// same-field conflict is in the journal. Larger runs:
// go test ./internal/syncapi -run TestConvergence -args -sync.devices=40 -sync.rounds=60 -sync.seed=7
func TestConvergence(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rnd := rand.New(rand.NewPCG(*convSeed, 99))
	accounts := []string{apptest.CampWorker, apptest.PrisonWorker, apptest.Supervisor}
	var devices []*simDevice
	for i := range *convDevices {
		email := accounts[i%len(accounts)]
		flaky := &flakyTransport{base: http.DefaultTransport, rnd: rand.New(rand.NewPCG(*convSeed, uint64(i))), before: 0.1, after: 0.25}
		c := &syncclient.Client{
			BaseURL: e.url, Token: apptest.Token(t, e.app, email), Store: syncclient.NewMemoryStore(),
			HTTP: &http.Client{Transport: flaky}, BatchSize: 7, PageSize: 50,
		}
		id := uuid.NewString()
		for c.Register(context.Background(), id, fmt.Sprintf("device %d", i), "sim", "1") != nil {
		}
		user := apptest.User(t, e.app, email)
		devices = append(devices, &simDevice{c: c, flaky: flaky, teams: user.GetStringSlice("teams"), role: user.GetString("role")})
	}
	sites := map[string]string{"camp": e.siteOf("camp"), "prison": e.siteOf("prison")}
	campTeam := e.team("camp_outreach")
	var service string
	if r, err := e.app.FindFirstRecordByData(domain.Services, "active", true); err == nil {
		service = r.Id
	}

	for round := range *convRounds {
		for _, d := range devices {
			for range 1 + rnd.IntN(3) {
				d.randomOp(rnd, campTeam, sites, service)
			}
			if rnd.Float64() < 0.7 { // in signal
				_, _ = d.c.Sync(context.Background())
			}
		}
		_ = round
	}
	// Everyone reaches a good signal at last.
	for _, d := range devices {
		d.flaky.before, d.flaky.after = 0, 0
	}
	for range 3 {
		for _, d := range devices {
			if _, err := d.c.Sync(context.Background()); err != nil && !errors.Is(err, syncclient.ErrRevoked) {
				t.Fatalf("final sync: %v", err)
			}
		}
	}
	dropped := 0
	for _, d := range devices {
		dropped += d.flaky.dropped
		if n := len(d.c.Store.Outbox()) + len(d.c.Store.InFlight()); n != 0 {
			t.Fatalf("a device still has %d unanswered mutations", n)
		}
	}
	if dropped == 0 {
		t.Fatal("the transport dropped no answer: the test proved nothing about retries")
	}

	// 1. Every device equals the server in its scope.
	for i, d := range devices {
		for _, coll := range append([]string{domain.Teams, domain.Sites, domain.Services}, teamCollections...) {
			var server []*core.Record
			q := e.app.RecordQuery(coll)
			if !domain.IsReference(coll) {
				q = q.AndWhere(dbx.In("team", toAny(d.teams)...))
			}
			if err := q.All(&server); err != nil {
				t.Fatal(err)
			}
			local := d.c.ViewAll(coll)
			if len(local) != len(server) {
				t.Fatalf("device %d %s: got %d records, want %d", i, coll, len(local), len(server))
			}
			for _, r := range server {
				want, _ := json.Marshal(syncapi.Export(r))
				got, _ := json.Marshal(local[r.Id])
				if string(got) != string(want) {
					t.Fatalf("device %d %s/%s:\n got %s\nwant %s", i, coll, r.Id, got, want)
				}
			}
		}
	}

	// 2. Every mutation answered, and applied at most once.
	type ledgerRow struct {
		ID     string `db:"id"`
		Result string `db:"result"`
	}
	var rows []ledgerRow
	if err := e.app.DB().Select("id", "result").From("strada_mutations").All(&rows); err != nil {
		t.Fatal(err)
	}
	results := map[string]syncapi.Result{}
	for _, r := range rows {
		var res syncapi.Result
		if err := json.Unmarshal([]byte(r.Result), &res); err != nil {
			t.Fatal(err)
		}
		results[r.ID] = res
	}
	total, conflicts := 0, 0
	for _, d := range devices {
		for _, m := range d.muts {
			total++
			res, ok := results[m.ID]
			if !ok {
				t.Fatalf("mutation %s was never answered", m.ID)
			}
			var n int
			if err := e.app.DB().Select("count(*)").From("strada_changes").
				Where(dbx.HashExp{"mutation_id": m.ID, "collection": m.Collection, "record_id": m.RecordID}).Row(&n); err != nil {
				t.Fatal(err)
			}
			applied := res.Status == "applied" || res.Status == "merged" || res.Status == "conflict"
			if n > 1 || (applied && m.Op == "upsert" && n != 1) {
				t.Fatalf("mutation %s (%s) left %d change rows, want exactly one", m.ID, res.Status, n)
			}
			// 3. Every same-field conflict is journaled.
			for _, f := range res.Conflicts {
				conflicts++
				var j int
				if err := e.app.DB().Select("count(*)").From(domain.SyncConflicts).
					Where(dbx.HashExp{"kept_mutation": m.ID, "field": f}).Row(&j); err != nil {
					t.Fatal(err)
				}
				if j != 1 {
					t.Fatalf("conflict of mutation %s on %s: got %d journal rows, want 1", m.ID, f, j)
				}
			}
		}
	}
	var journaled int
	if err := e.app.DB().Select("count(*)").From(domain.SyncConflicts).
		Where(dbx.In("kind", "same_field", "delete_over_edit")).Row(&journaled); err != nil {
		t.Fatal(err)
	}
	if journaled != conflicts {
		t.Fatalf("got %d journal rows, want %d (one per reported conflict)", journaled, conflicts)
	}
	if conflicts == 0 {
		t.Fatal("no same-field conflict happened: the test proved nothing about the journal")
	}
	if int(e.ledgerSize()) != total {
		t.Fatalf("got %d ledger rows, want %d mutations", e.ledgerSize(), total)
	}
	t.Logf("%d devices, %d rounds, %d mutations, %d conflicts, %d answers dropped", len(devices), *convRounds, total, conflicts, dropped)
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

var words = []string{"documenti", "residenza", "salute", "scuola", "lavoro", "casa", "famiglia", "permesso"}

func pickID(rnd *rand.Rand, m map[string]syncclient.Record, teams []string) (string, syncclient.Record) {
	var ids []string
	for id, r := range m {
		if t, _ := r["team"].(string); slices.Contains(teams, t) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return "", nil
	}
	slices.Sort(ids)
	// Most picks fall on a few hot records, as in the field, where several
	// workers follow the same families.
	if len(ids) > 4 && rnd.IntN(4) > 0 {
		ids = ids[:4]
	}
	id := ids[rnd.IntN(len(ids))]
	return id, m[id]
}

func (d *simDevice) track(m syncclient.Mutation, err error) {
	if err != nil {
		panic(fmt.Sprintf("enqueue: %v", err)) // the memory store cannot fail
	}
	d.muts = append(d.muts, m)
}

func (d *simDevice) randomOp(rnd *rand.Rand, campTeam string, sites map[string]string, service string) {
	team := d.teams[rnd.IntN(len(d.teams))]
	word := func() string { return words[rnd.IntN(len(words))] + fmt.Sprint(rnd.IntN(100)) }
	persons := d.c.ViewAll(domain.Persons)
	switch op := rnd.IntN(10); {
	case op == 0:
		d.track(d.c.Upsert(domain.Persons, newID(), map[string]any{"team": team, "consent": "verbal", "notes": word()}))
	case op == 1:
		pid, _ := pickID(rnd, persons, []string{team})
		if team == campTeam {
			fields := map[string]any{"team": team, "site": sites["camp"], "visited_at": "2026-11-20 10:00:00.000Z", "needs": word()}
			if pid != "" {
				fields["persons_met"] = []string{pid}
			}
			d.track(d.c.Upsert(domain.CampVisits, newID(), fields))
		} else if pid != "" {
			d.track(d.c.Upsert(domain.SecretariatContacts, newID(), map[string]any{
				"team": team, "person": pid, "site": sites["prison"], "setting": "intra",
				"contacted_at": "2026-11-20 10:00:00.000Z", "actions": word(),
			}))
		}
	case op == 2:
		if pid, _ := pickID(rnd, persons, []string{team}); pid != "" && service != "" {
			d.track(d.c.Upsert(domain.Referrals, newID(), map[string]any{
				"team": team, "person": pid, "service": service, "reason": word(), "status": "draft",
			}))
		}
	case op == 3:
		if id, _ := pickID(rnd, d.c.ViewAll(domain.Referrals), d.teams); id != "" {
			next := domain.ReferralStatuses[rnd.IntN(len(domain.ReferralStatuses))]
			d.track(d.c.Upsert(domain.Referrals, id, map[string]any{"status": next}))
		}
	case op == 4:
		coll := []string{domain.CampVisits, domain.SecretariatContacts}[rnd.IntN(2)]
		if id, _ := pickID(rnd, d.c.ViewAll(coll), d.teams); id != "" {
			d.track(d.c.Delete(coll, id))
		}
	default:
		// Edits of one or two fields of a shared record: the common case,
		// and where concurrent edits meet.
		fields := map[string][]string{
			domain.Persons:             {"notes", "languages", "nationality"},
			domain.CampVisits:          {"needs", "actions", "notes"},
			domain.SecretariatContacts: {"actions", "next_steps", "notes"},
		}
		coll := []string{domain.Persons, domain.CampVisits, domain.SecretariatContacts}[rnd.IntN(3)]
		if id, _ := pickID(rnd, d.c.ViewAll(coll), d.teams); id != "" {
			names := fields[coll]
			change := map[string]any{names[rnd.IntN(len(names))]: word()}
			if rnd.IntN(2) == 0 {
				change[names[rnd.IntN(len(names))]] = word()
			}
			d.track(d.c.Upsert(coll, id, change))
		}
	}
}
