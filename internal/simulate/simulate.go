// Package simulate is Strada's field-day load generator (`strada
// simulate`): it drives many simulated devices, each a Go sync client
// (internal/syncclient) with its own store, against a running server the
// way a field day goes. Devices work offline for long windows and push in
// bursts when they reconnect, over a link that loses requests and drops
// answers after the server applied them; workers of a team edit the same
// records at once; a superuser erases persons and revokes a device. In the
// end every device syncs in good signal and the run is checked: every
// mutation answered and applied at most once, every device equal to the
// server in its scope, nothing of an erased person on any device, nothing
// for the revoked device. The summary gives mutations/s, push and pull
// latency, bytes on the wire, conflicts, and lost and duplicated mutations.
//
// The simulation writes synthetic records and accounts (workers named
// "Simulazione …", e-mails at [WorkerDomain]) into the server's camp and
// prison teams: run it against a test or demo server, never production.
package simulate

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"strada/internal/domain"
	"strada/internal/syncclient"
)

// WorkerDomain is the e-mail domain of the simulated workers.
const WorkerDomain = "simulazione.example.org"

// Config is a simulation run.
type Config struct {
	// URL is the server's base URL.
	URL string
	// AdminEmail and AdminPassword are a superuser's credentials.
	AdminEmail, AdminPassword string
	// Devices is the number of simulated devices, spread over Workers
	// simulated workers, half of them in the camp team, half in the
	// prison team.
	Devices, Workers int
	// Rounds is the number of rounds of offline work and sync.
	Rounds int
	// Ops is the mean number of local changes a device makes per round.
	Ops float64
	// Offline is the probability that a device in signal loses it at a
	// round; it then stays offline for 1 to Rounds/3 rounds.
	Offline float64
	// DropRequest is the probability that a request fails before it
	// reaches the server; DropAnswer that an answer is lost after the
	// server applied the request.
	DropRequest, DropAnswer float64
	// Concurrency is the number of devices syncing at the same moment.
	Concurrency int
	// Seed makes each device's choices and each link's faults repeatable.
	Seed uint64
	// SpreadAddresses dials each device from its own loopback address when
	// the server is on loopback, so that its per-address rate limits see
	// separate phones, not one address.
	SpreadAddresses bool
	// BatchSize and PageSize are the devices' push batch and pull page.
	BatchSize, PageSize int
	// Progress receives a line per phase; nil for none.
	Progress io.Writer
}

// DefaultConfig returns the defaults of `strada simulate`.
func DefaultConfig() Config {
	return Config{
		Devices: 100, Workers: 40, Rounds: 6, Ops: 1, Offline: 0.3,
		DropRequest: 0.05, DropAnswer: 0.1, Concurrency: 32, Seed: 1,
		SpreadAddresses: true, BatchSize: 100, PageSize: 500,
	}
}

func (c Config) validate() error {
	var errs []error
	if _, err := url.ParseRequestURI(c.URL); err != nil || c.URL == "" {
		errs = append(errs, fmt.Errorf("url %q: want the server's base URL, e.g. http://127.0.0.1:8090", c.URL))
	}
	if c.AdminEmail == "" || c.AdminPassword == "" {
		errs = append(errs, errors.New("a superuser's e-mail and password are required"))
	}
	if c.Devices < 2 || c.Workers < 2 || c.Workers > c.Devices {
		errs = append(errs, fmt.Errorf("devices %d, workers %d: want at least 2 workers and no more workers than devices", c.Devices, c.Workers))
	}
	if c.Rounds < 3 {
		errs = append(errs, fmt.Errorf("rounds %d: want at least 3 (a revocation and an erasure happen during the run)", c.Rounds))
	}
	for name, p := range map[string]float64{"offline": c.Offline, "drop-request": c.DropRequest, "drop-answer": c.DropAnswer} {
		if p < 0 || p >= 1 {
			errs = append(errs, fmt.Errorf("%s %v: want a probability from 0 to below 1", name, p))
		}
	}
	if c.Ops < 0 || c.Concurrency < 1 || c.BatchSize < 1 || c.PageSize < 1 {
		errs = append(errs, errors.New("ops, concurrency, batch and page sizes must be positive"))
	}
	return errors.Join(errs...)
}

// scoped are the collections a worker receives for its teams only; the
// reference data (teams, sites, services) every worker receives whole.
var scoped = []string{domain.Persons, domain.CampVisits, domain.SecretariatContacts, domain.Referrals, domain.ReferralEvents}

type run struct {
	cfg     Config
	admin   *admin
	wire    *wire
	rec     *recorder
	world   world
	workers []*worker
	devices []*device
	rnd     *mrand.Rand

	erased []Key
	bumped map[Key]int
	// erasedPersons and revokedDevice are for the summary.
	erasedPersons []string
	revokedDevice string
	outcomes      map[string]int
	syncTime      time.Duration
	snapshotTime  time.Duration
	mu            sync.Mutex
	warnings      []string
	warned        int
}

// Run runs a simulation and returns its summary; the run passed when
// Summary.OK. An error means the run could not be carried out.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	sum, _, err := execute(ctx, cfg)
	return sum, err
}

// execute runs a simulation and returns its summary and what the checker
// was given.
func execute(ctx context.Context, cfg Config) (Summary, Input, error) {
	if err := cfg.validate(); err != nil {
		return Summary{}, Input{}, err
	}
	r := &run{
		cfg:      cfg,
		admin:    &admin{base: cfg.URL, http: &http.Client{Timeout: 2 * time.Minute}},
		wire:     &wire{},
		rec:      newRecorder(),
		rnd:      mrand.New(mrand.NewPCG(cfg.Seed, 0x5157)),
		bumped:   map[Key]int{},
		outcomes: map[string]int{},
	}
	defer r.closeIdle()
	start := time.Now()
	if err := r.setup(ctx); err != nil {
		return Summary{}, Input{}, err
	}
	initial, err := r.serverState(ctx)
	if err != nil {
		return Summary{}, Input{}, err
	}
	if err := r.rounds(ctx); err != nil {
		return Summary{}, Input{}, err
	}
	if err := r.settle(ctx); err != nil {
		return Summary{}, Input{}, err
	}
	in, err := r.checkInput(ctx, initial)
	if err != nil {
		return Summary{}, Input{}, err
	}
	r.progress("checking %d mutations and %d devices", len(in.Mutations), len(in.Devices))
	rep := Check(in)
	return r.summary(rep, time.Since(start)), in, nil
}

func (r *run) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "simulate: "+format+"\n", args...)
	}
}

// maxWarnings bounds the warnings a summary lists; the rest are counted.
const maxWarnings = 20

func (r *run) warn(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warned++
	if len(r.warnings) < maxWarnings {
		r.warnings = append(r.warnings, fmt.Sprintf(format, args...))
	}
}

func (r *run) closeIdle() {
	for _, d := range r.devices {
		d.tr.CloseIdleConnections()
	}
	r.admin.http.CloseIdleConnections()
}

// parallel runs fn for every index up to n, at most r.cfg.Concurrency at a
// time, and returns their errors joined.
func (r *run) parallel(ctx context.Context, n int, fn func(i int) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		next = make(chan int)
	)
	for range min(r.cfg.Concurrency, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// setup signs the superuser in, finds the teams, sites and a service,
// creates or reuses the simulated workers, signs them in and registers
// every device.
func (r *run) setup(ctx context.Context) error {
	if err := r.admin.signIn(ctx, r.cfg.AdminEmail, r.cfg.AdminPassword); err != nil {
		return err
	}
	teams, err := r.admin.list(ctx, domain.Teams, "")
	if err != nil {
		return err
	}
	kinds := map[string]string{}
	byKind := map[string]string{}
	for _, t := range teams {
		id, kind := str(t["id"]), str(t["kind"])
		kinds[id] = kind
		if _, seen := byKind[kind]; !seen {
			byKind[kind] = id
		}
	}
	camp, prison := byKind["camp_outreach"], byKind["prison_secretariat"]
	if camp == "" || prison == "" {
		return errors.New("the server has no camp outreach or prison secretariat team: start it with --demo")
	}
	sites, err := r.admin.list(ctx, domain.Sites, "")
	if err != nil {
		return err
	}
	r.world.sites = map[string][]string{}
	for _, s := range sites {
		team, kind := str(s["team"]), str(s["kind"])
		if (team == camp && kind == "camp") || (team == prison && kind == "prison") {
			r.world.sites[team] = append(r.world.sites[team], str(s["id"]))
		}
	}
	services, err := r.admin.list(ctx, domain.Services, "active = true")
	if err != nil {
		return err
	}
	if len(services) > 0 {
		r.world.service = str(services[0]["id"])
	}

	if err := r.setupWorkers(ctx, []string{camp, prison}, kinds); err != nil {
		return err
	}
	r.progress("%d workers signed in; registering %d devices", len(r.workers), r.cfg.Devices)
	return r.setupDevices(ctx)
}

func (r *run) setupWorkers(ctx context.Context, teams []string, kinds map[string]string) error {
	existing, err := r.admin.list(ctx, domain.Users, fmt.Sprintf("email ~ '@%s'", WorkerDomain))
	if err != nil {
		return err
	}
	byEmail := map[string]Record{}
	for _, u := range existing {
		byEmail[str(u["email"])] = u
	}
	for i := range r.cfg.Workers {
		email := fmt.Sprintf("operatore.%04d@%s", i+1, WorkerDomain)
		team := teams[i%len(teams)]
		u, ok := byEmail[email]
		if !ok {
			password, err := randomSecret()
			if err != nil {
				return err
			}
			u, err = r.admin.create(ctx, domain.Users, map[string]any{
				"email": email, "password": password, "passwordConfirm": password, "verified": true,
				"name": fmt.Sprintf("Simulazione – operatore %d", i+1), "role": domain.RoleWorker,
				"teams": []string{team}, "locale": "it",
			})
			if err != nil {
				return fmt.Errorf("create simulated worker %s: %w", email, err)
			}
		}
		ts := strs(u["teams"])
		if len(ts) != 1 || kinds[ts[0]] == "" {
			return fmt.Errorf("simulated worker %s: got teams %v, want one team", email, ts)
		}
		w := &worker{id: str(u["id"]), email: email, team: ts[0], kind: kinds[ts[0]]}
		token, err := r.admin.impersonate(ctx, w.id, tokenLife)
		if err != nil {
			return err
		}
		w.token = token
		r.workers = append(r.workers, w)
	}
	return nil
}

// registerPatience is how long a device keeps trying to register while the
// server answers that it is busy or rate limited.
const registerPatience = 20 * time.Minute

// tokenLife is how long a simulated worker's sign-in lasts.
const tokenLife = 12 * time.Hour

func randomSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// signIn gives a device of w a valid token: the worker signs in again
// unless another of its devices has already done so since stale was
// issued.
func (r *run) signIn(w *worker, stale string) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.token != stale {
		return w.token, nil
	}
	token, err := r.admin.impersonate(context.Background(), w.id, tokenLife)
	if err != nil {
		return "", err
	}
	w.token = token
	return token, nil
}

// loopback reports whether the server's host is a loopback address.
func loopback(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback() && ip.To4() != nil
}

func (r *run) setupDevices(ctx context.Context) error {
	spread := r.cfg.SpreadAddresses && loopback(r.cfg.URL)
	for i := range r.cfg.Devices {
		w := r.workers[i%len(r.workers)]
		var local net.IP
		if spread {
			local = net.IPv4(127, 10, byte(i/250), byte(i%250+1))
		}
		tr := newTransport(r.wire, local)
		link := &faultyTransport{base: tr, rec: r.rec, rnd: mrand.New(mrand.NewPCG(r.cfg.Seed, uint64(i)|1<<40))}
		d := &device{
			index: i, worker: w, tr: tr, link: link,
			rnd: mrand.New(mrand.NewPCG(r.cfg.Seed, uint64(i))),
			c: &syncclient.Client{
				BaseURL: r.cfg.URL, Token: w.token, Store: syncclient.NewMemoryStore(),
				HTTP:      &http.Client{Transport: link, Timeout: 2 * time.Minute},
				BatchSize: r.cfg.BatchSize, PageSize: r.cfg.PageSize,
			},
		}
		r.devices = append(r.devices, d)
	}
	return r.parallel(ctx, len(r.devices), func(i int) error {
		d := r.devices[i]
		id := uuid.NewString()
		// Behind one address the registration rate limit (120 a minute)
		// paces the devices: they wait for it, as phones would retry.
		deadline := time.Now().Add(registerPatience)
		for {
			err := d.c.Register(ctx, id, fmt.Sprintf("Simulazione dispositivo %d", i+1), "simulate", "simulate")
			if err == nil {
				d.link.device = d.c.DeviceID
				d.link.setFaults(r.cfg.DropRequest, r.cfg.DropAnswer)
				return nil
			}
			if kind := classify(err); (kind != syncLimited && kind != syncServer) || time.Now().After(deadline) {
				return fmt.Errorf("register device %d: %w", i, err)
			}
			select {
			case <-time.After(2 * time.Second):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	})
}

// syncAll syncs the devices that are in signal, at most Concurrency at a
// time, and adds the time it took to the run's sync time.
func (r *run) syncAll(ctx context.Context, online []*device) error {
	start := time.Now()
	err := r.parallel(ctx, len(online), func(i int) error {
		d := online[i]
		kind, err := d.sync(ctx, r.signIn)
		r.mu.Lock()
		r.outcomes[kind]++
		r.mu.Unlock()
		if d.revoked && kind != syncRevoked {
			d.refused = false
		}
		if err != nil {
			// An answer the protocol does not foresee fails the run, which
			// goes on to show what else happened.
			r.warn("%v", err)
		}
		return nil
	})
	r.syncTime += time.Since(start)
	return err
}

// rounds runs the field day: the morning's first sync, then rounds of
// offline work and sync, with a revocation and an erasure on the way.
func (r *run) rounds(ctx context.Context) error {
	start := time.Now()
	if err := r.parallel(ctx, len(r.devices), func(i int) error {
		_, err := r.devices[i].sync(ctx, r.signIn)
		return err
	}); err != nil {
		return err
	}
	r.snapshotTime = time.Since(start)
	r.progress("first sync of %d devices in %s", len(r.devices), r.snapshotTime.Round(time.Millisecond))

	revokeRound, eraseRound := max(1, r.cfg.Rounds/3), max(2, r.cfg.Rounds*2/3)
	target := r.devices[r.rnd.IntN(len(r.devices))]
	window := max(1, r.cfg.Rounds/3)
	for round := 1; round <= r.cfg.Rounds; round++ {
		if round == revokeRound {
			if err := r.drain(ctx, target); err != nil {
				return err
			}
		}
		today := time.Now().UTC().Format("2006-01-02 15:04:05.000Z")
		if err := r.parallel(ctx, len(r.devices), func(i int) error {
			d := r.devices[i]
			if d.revoked {
				return nil
			}
			for range d.changes(r.cfg.Ops) {
				if err := d.work(&r.world, today); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if round == revokeRound {
			// The lost tablet holds work it never sent.
			for try := 0; len(target.muts) == target.discardFrom && try < 50; try++ {
				if err := target.work(&r.world, today); err != nil {
					return err
				}
			}
			if err := r.revoke(ctx, target); err != nil {
				return err
			}
		}
		var online []*device
		for _, d := range r.devices {
			switch {
			case d.revoked:
				online = append(online, d) // the lost tablet keeps trying
			case d.offlineFor > 0:
				d.offlineFor--
			case d.rnd.Float64() < r.cfg.Offline:
				d.offlineFor = d.rnd.IntN(window)
			default:
				online = append(online, d)
			}
		}
		if err := r.syncAll(ctx, online); err != nil {
			return err
		}
		r.progress("round %d: %d of %d devices in signal", round, len(online), len(r.devices))
		if round == eraseRound {
			if err := r.eraseSome(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// changes returns how many local changes the device makes this round:
// from 0 to twice the mean, evenly.
func (d *device) changes(mean float64) int {
	hi := int(math.Round(2 * mean))
	if hi <= 0 {
		return 0
	}
	return d.rnd.IntN(hi + 1)
}

// drain syncs the device in good signal until it has nothing pending, so
// that every mutation it makes afterwards is known never to have reached
// the server when it is revoked.
func (r *run) drain(ctx context.Context, d *device) error {
	before, after := d.link.faults()
	d.link.setFaults(0, 0)
	defer d.link.setFaults(before, after)
	for range 10 {
		kind, err := d.sync(ctx, r.signIn)
		if err != nil {
			return err
		}
		if kind == syncOK && d.pending() == 0 {
			d.discardFrom = len(d.muts)
			d.offlineFor = 0
			return nil
		}
	}
	return fmt.Errorf("device %d: could not sync before its revocation", d.index)
}

// revoke revokes the device as a supervisor does for a lost tablet: from
// then on every call it makes must be refused, and it must wipe its data.
func (r *run) revoke(ctx context.Context, d *device) error {
	if err := r.admin.update(ctx, domain.Devices, d.c.DeviceID, map[string]any{"revoked": true}); err != nil {
		return err
	}
	d.revoked, d.refused = true, true
	d.link.setFaults(0, 0)
	d.link.watchRevocation()
	for i := d.discardFrom; i < len(d.muts); i++ {
		d.muts[i].Discarded = true
	}
	r.revokedDevice = d.c.DeviceID
	r.progress("device %d of %s revoked with %d unsent mutations", d.index, d.worker.email, len(d.muts)-d.discardFrom)
	return nil
}

// eraseSome erases a camp person met in visits and a prison person with
// secretariat contacts, while no device is syncing, noting what each
// erasure must remove and which visits it changes.
func (r *run) eraseSome(ctx context.Context) error {
	state, err := r.serverState(ctx)
	if err != nil {
		return err
	}
	met := map[string][]Key{}   // person -> visits
	about := map[string][]Key{} // person -> contacts and referrals
	referralOf := map[string][]Key{}
	for _, k := range sortedRecords(state) {
		rec := state[k]
		switch k.Collection {
		case domain.CampVisits:
			for _, p := range strs(rec["persons_met"]) {
				met[p] = append(met[p], k)
			}
		case domain.SecretariatContacts, domain.Referrals:
			about[str(rec["person"])] = append(about[str(rec["person"])], k)
		case domain.ReferralEvents:
			referralOf[str(rec["referral"])] = append(referralOf[str(rec["referral"])], k)
		}
	}
	for _, candidates := range []map[string][]Key{met, about} {
		var persons []string
		for p := range candidates {
			if _, ok := state[Key{domain.Persons, p}]; ok && !slices.Contains(r.erasedPersons, p) {
				persons = append(persons, p)
			}
		}
		if len(persons) == 0 {
			r.warn("no person to erase among %d candidates", len(candidates))
			continue
		}
		sort.Strings(persons)
		p := persons[r.rnd.IntN(len(persons))]
		gone := []Key{{domain.Persons, p}}
		for _, k := range about[p] {
			gone = append(gone, k)
			if k.Collection == domain.Referrals {
				gone = append(gone, referralOf[k.ID]...)
			}
		}
		sum, err := r.admin.erase(ctx, p, "Simulazione: cancellazione su richiesta dell'interessato")
		if err != nil {
			return err
		}
		if sum.VisitsUpdated != len(met[p]) {
			r.warn("erasure of %s changed %d visits, want %d", p, sum.VisitsUpdated, len(met[p]))
		}
		for _, k := range met[p] {
			r.bumped[k]++
		}
		r.erased = append(r.erased, gone...)
		r.erasedPersons = append(r.erasedPersons, p)
		r.progress("erased person %s: %d records, %d visits changed", p, sum.Records, sum.VisitsUpdated)
	}
	return nil
}

// settle brings every device back into good signal until nothing is
// pending, then pulls once more everywhere, and asks the revoked device to
// register again.
func (r *run) settle(ctx context.Context) error {
	var live []*device
	for _, d := range r.devices {
		if !d.revoked {
			d.link.setFaults(0, 0)
			live = append(live, d)
		}
	}
	passes := 0
	for pass := 0; ; pass++ {
		passes++
		if err := r.syncAll(ctx, live); err != nil {
			return err
		}
		waiting := 0
		for _, d := range live {
			if d.pending() > 0 {
				waiting++
			}
		}
		if waiting == 0 {
			break
		}
		if pass == 5 {
			r.warn("%d devices still have mutations pending after %d passes in good signal", waiting, pass+1)
			break
		}
	}
	start := time.Now()
	err := r.parallel(ctx, len(live), func(i int) error {
		if err := live[i].c.Pull(ctx); err != nil {
			return fmt.Errorf("device %d: final pull: %w", live[i].index, err)
		}
		return nil
	})
	r.syncTime += time.Since(start)
	if err != nil {
		return err
	}
	for _, d := range r.devices {
		if !d.revoked {
			continue
		}
		token, err := r.admin.impersonate(ctx, d.worker.id, tokenLife)
		if err != nil {
			return err
		}
		again := *d.c
		again.Token = token
		if err := again.Register(ctx, d.c.DeviceID, "Simulazione dispositivo revocato", "simulate", "simulate"); !errors.Is(err, syncclient.ErrRevoked) {
			r.warn("the revoked device registering again: got %v, want a refusal that wipes it", err)
			d.refused = false
		}
	}
	r.progress("every device back in signal: %d passes to empty the outboxes", passes)
	return nil
}

// serverState reads every record of the synced collections as the
// superuser sees it.
func (r *run) serverState(ctx context.Context) (map[Key]Record, error) {
	out := map[Key]Record{}
	for _, coll := range domain.Logged {
		records, err := r.admin.list(ctx, coll, "")
		if err != nil {
			return nil, err
		}
		for _, rec := range records {
			out[Key{coll, str(rec["id"])}] = rec
		}
	}
	return out, nil
}

func (r *run) checkInput(ctx context.Context, initial map[Key]Record) (Input, error) {
	final, err := r.serverState(ctx)
	if err != nil {
		return Input{}, err
	}
	in := Input{
		Initial: map[Key]int{}, Final: final, Scoped: scoped,
		Erased: r.erased, Bumped: r.bumped, Answers: r.rec.answers,
	}
	for k, rec := range initial {
		in.Initial[k] = versionOf(rec)
	}
	in.Devices = make([]DeviceState, len(r.devices))
	for _, d := range r.devices {
		in.Mutations = append(in.Mutations, d.muts...)
	}
	err = r.parallel(ctx, len(r.devices), func(i int) error {
		st, err := r.devices[i].state(domain.Logged)
		in.Devices[i] = st
		return err
	})
	return in, err
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func strs(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
