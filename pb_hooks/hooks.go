// Package hooks is Strada's wiring table: which PocketBase hook calls which
// function of internal/, and what starts and stops with `serve`. Logic lives
// in internal/; this file only connects it.
package hooks

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"

	"strada/internal/accesslog"
	"strada/internal/changelog"
	"strada/internal/compress"
	"strada/internal/dashboard"
	"strada/internal/dashboard/rollup"
	"strada/internal/demo"
	"strada/internal/domain"
	"strada/internal/erasure"
	"strada/internal/events"
	"strada/internal/httpguard"
	"strada/internal/integrity"
	"strada/internal/natsbus"
	"strada/internal/opsview"
	"strada/internal/queryguard"
	"strada/internal/ratelimit"
	"strada/internal/restguard"
	"strada/internal/signin"
	"strada/internal/storage"
	"strada/internal/syncapi"
	"strada/internal/webserve"
)

// Config is what `serve` needs beyond PocketBase's own settings. It is read
// when the server starts, after the command line has been parsed.
type Config struct {
	NATSURL    string // external NATS; empty starts the embedded server
	NATSListen string // embedded server's client address; empty: in-process only
	Stream     events.StreamOptions
	Demo       bool
	WebClient  fs.FS
	// MetricsToken is the bearer token of /api/strada/metrics; empty: the
	// one in <dataDir>/metrics.token, made on the first start.
	MetricsToken string
	// AccessLogRetention is how long the access log keeps a row; zero or
	// less keeps every row.
	AccessLogRetention time.Duration
	// ErasureRegister is the erasure register's file; empty:
	// erasure.DefaultRegisterFile in the data directory.
	ErasureRegister string
	// LockAfter is the field app's idle lock time sent to devices; zero:
	// syncapi.DefaultLockAfter.
	LockAfter time.Duration
	// SilentAfter is the dashboard's default silent threshold of a device;
	// zero: dashboard.DefaultSilentAfter.
	SilentAfter time.Duration

	// Credentials and TLS of an external NATS (see natsbus.Config).
	NATSCreds, NATSNKey                string
	NATSTLSCA, NATSTLSCert, NATSTLSKey string
	NATSTLSRequired                    bool
	// The embedded server's JetStream storage caps in bytes; zero: the
	// natsbus defaults.
	NATSMaxStore, NATSMaxMemory int64
}

// Runtime holds what `serve` started, for the routes and for tests.
type Runtime struct {
	Log   *changelog.Log
	Bus   *natsbus.Bus
	Relay *events.Relay
	Hub   *events.Hub

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Register binds every hook of Strada to app.
func Register(app core.App, cfg *Config) *Runtime {
	rt := &Runtime{Log: changelog.New(domain.Reference), Hub: events.NewHub(app.Logger())}
	BindRecordHooks(app, rt.Log)
	BindRecordAPI(app)
	syncAPI := BindSyncAPI(app, rt.Hub)
	dash := BindDashboard(app, rt.Hub)
	BindLimits(app)
	// Erasures kept in a register and re-applied after a restore; a request
	// log without query strings or erased ids; no leftovers on disk.
	register := erasure.BindRegister(app, func() string { return cfg.ErasureRegister })
	storage.Bind(app, register.Has)
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		// Read here: the command line is parsed after Register.
		if cfg.SilentAfter != 0 {
			dash.SilentAfter = cfg.SilentAfter
		}
		if err := dashboard.CheckSilentAfter(dash.SilentAfter); err != nil {
			return err
		}
		syncAPI.LockAfter = cfg.LockAfter
		if err := rt.start(se.App, cfg); err != nil {
			return err
		}
		metricsToken, err := opsview.LoadOrCreateToken(cfg.MetricsToken, se.App.DataDir())
		if err != nil {
			return err
		}
		accesslog.SchedulePrune(se.App, cfg.AccessLogRetention)
		src := opsview.Sources{Relay: rt.Relay, Hub: rt.Hub, JS: rt.Bus.JS}
		se.Router.GET("/api/strada/events", opsview.HandleStatus(src)).Bind(apis.RequireSuperuserAuth())
		se.Router.GET("/api/strada/metrics", opsview.HandleMetrics(src)).BindFunc(opsview.RequireMetricsAuth(metricsToken))
		if cfg.WebClient != nil {
			se.Router.GET("/{path...}", webserve.Handler(cfg.WebClient))
		}
		return se.Next()
	})
	app.OnTerminate().BindFunc(func(e *core.TerminateEvent) error {
		rt.Stop()
		return e.Next()
	})
	return rt
}

// BindRecordHooks binds the record hooks that every write path passes
// through, whatever command runs.
func BindRecordHooks(app core.App, log *changelog.Log) {
	log.SetVersioned(domain.FieldWork...)
	fieldWork := domain.FieldWork
	logged := domain.Logged

	// Ids, codes and consistency, before validation and the write.
	app.OnRecordCreate(fieldWork...).BindFunc(integrity.AssignID)
	app.OnRecordCreate(domain.Persons).BindFunc(integrity.AssignPersonCode)
	app.OnRecordValidate(fieldWork...).Bind(&hook.Handler[*core.RecordEvent]{
		Func: integrity.ValidateTeamScope, Priority: integrity.ValidatePriority,
	})
	app.OnRecordValidate(domain.Referrals).BindFunc(integrity.ValidateReferralStatus)

	// The write and its change log row in one transaction; the referral
	// history inside it. Rows name the person a record is about, for erasure.
	log.SetPersonOf(erasure.PersonOf)
	log.Attach(app) // the sync push's bulk path logs through it
	app.OnRecordCreateExecute(logged...).BindFunc(log.OnCreateExecute)
	app.OnRecordUpdateExecute(logged...).BindFunc(log.OnUpdateExecute)
	app.OnRecordDeleteExecute(logged...).BindFunc(log.OnDeleteExecute)
	app.OnRecordCreateExecute(domain.Referrals).BindFunc(integrity.RecordReferralHistory)
	app.OnRecordUpdateExecute(domain.Referrals).BindFunc(integrity.RecordReferralHistory)
	// The dashboard's counts, in the same transaction (after the log's
	// hooks): create, update and delete of visits, contacts, persons,
	// referrals and their history; the offline lag follows the change log
	// by triggers.
	rollup.Bind(app)

	// The record API: request checks and the actor for the log.
	app.OnRecordCreateRequest(fieldWork...).BindFunc(restguard.OnRecordWriteRequest)
	app.OnRecordUpdateRequest(fieldWork...).BindFunc(restguard.OnRecordWriteRequest)
	app.OnRecordDeleteRequest(logged...).BindFunc(restguard.OnRecordActorRequest)
	app.OnRecordCreateRequest(domain.Reference...).BindFunc(restguard.OnRecordActorRequest)
	app.OnRecordUpdateRequest(domain.Reference...).BindFunc(restguard.OnRecordActorRequest)

	// Devices and the conflict journal.
	app.OnRecordUpdateExecute(domain.Devices).BindFunc(syncapi.OnDeviceUpdateExecute)
	app.OnRecordUpdateRequest(domain.SyncConflicts).BindFunc(syncapi.ResolveConflictRequest)
}

// BindRecordAPI holds PocketBase's record API to Strada's request checks.
func BindRecordAPI(app core.App) {
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.BindFunc(restguard.LimitBody)
		return se.Next()
	})
	BindQueryGuard(app)

	// The access log: every read of a person's records, whatever API
	// returns it; the log itself is written by the server only.
	subjects := accesslog.Subjects()
	app.OnRecordViewRequest(subjects...).BindFunc(accesslog.OnView)
	app.OnRecordsListRequest(subjects...).BindFunc(accesslog.OnList)
	app.OnRecordEnrich(subjects...).BindFunc(accesslog.OnEnrich)
	app.OnRecordCreateRequest(accesslog.Collection).BindFunc(accesslog.RefuseWrite)
	app.OnRecordUpdateRequest(accesslog.Collection).BindFunc(accesslog.RefuseWrite)
	app.OnRecordDeleteRequest(accesslog.Collection).BindFunc(accesslog.RefuseWrite)
}

// BindQueryGuard holds the filter, sort and expand of every request that is
// not a superuser's to the collection's own fields and relations: on the
// records and auth routes, in batch requests and in realtime subscriptions.
func BindQueryGuard(app core.App) {
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.BindFunc(queryguard.Middleware)
		return se.Next()
	})
	app.OnBatchRequest().BindFunc(queryguard.OnBatchRequest)
	app.OnRealtimeSubscribeRequest().BindFunc(queryguard.OnRealtimeSubscribe)
}

// BindLimits binds the abuse limits: the per-account back-off of password
// sign-ins, caps on PocketBase's realtime connections, the server's read
// timeouts and, on the first serve of a database, PocketBase's rate limits
// with Strada's rules.
func BindLimits(app core.App) *signin.Guard {
	guard := signin.New()
	app.OnRecordAuthWithPasswordRequest().BindFunc(guard.OnAuthWithPassword)
	app.OnRealtimeConnectRequest().BindFunc(httpguard.OnRealtimeConnect)
	app.OnRealtimeSubscribeRequest().BindFunc(httpguard.OnRealtimeSubscribe)
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		if se.Server != nil {
			httpguard.SetTimeouts(se.Server)
		}
		if _, err := ratelimit.ApplyDefaults(se.App); err != nil {
			return err
		}
		return se.Next()
	})
	return guard
}

// BindDashboard serves the supervisor dashboard's API; its live stream
// comes from hub.
func BindDashboard(app core.App, hub *events.Hub) *dashboard.Dashboard {
	d := dashboard.New(hub, app.Logger())
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		d.Bind(se)
		return se.Next()
	})
	return d
}

// BindSyncAPI serves the sync protocol, erasure and conflict resolution;
// live hints come from hub.
func BindSyncAPI(app core.App, hub *events.Hub) *syncapi.API {
	api := syncapi.New(hub, app.Logger())
	// The bulk path's creates run no record hook: the rollups' create
	// hook (bound by BindRecordHooks) is called for them.
	api.BulkCreated = rollup.Created
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.POST("/api/sync/devices", api.RegisterDevice)
		se.Router.POST("/api/sync/push", api.Push).BindFunc(compress.Middleware).BindFunc(api.RequireDevice)
		se.Router.GET("/api/sync/pull", api.Pull).BindFunc(compress.Middleware).BindFunc(api.RequireDevice)
		se.Router.GET("/api/sync/stream", api.Stream).BindFunc(api.RequireDevice)
		se.Router.POST("/api/sync/access", api.ReportAccess).BindFunc(api.RequireDevice)
		se.Router.POST("/api/persons/{id}/erase", erasure.HandleErase)
		return se.Next()
	})
	return api
}

func (rt *Runtime) start(app core.App, cfg *Config) error {
	logger := app.Logger()
	if cfg.Demo {
		created, err := demo.Seed(app, time.Now())
		if err != nil {
			return err
		}
		printDemo(created)
	}
	natsDir := filepath.Join(app.DataDir(), "nats")
	bus, err := natsbus.Start(natsbus.Config{
		URL:         cfg.NATSURL,
		Listen:      cfg.NATSListen,
		StoreDir:    natsDir,
		Name:        "strada",
		MaxStore:    cfg.NATSMaxStore,
		MaxMemory:   cfg.NATSMaxMemory,
		CredsFile:   cfg.NATSCreds,
		NKeyFile:    cfg.NATSNKey,
		TLSCA:       cfg.NATSTLSCA,
		TLSCert:     cfg.NATSTLSCert,
		TLSKey:      cfg.NATSTLSKey,
		TLSRequired: cfg.NATSTLSRequired,
	}, logger)
	if err != nil {
		return err
	}
	rt.Bus = bus
	if url := bus.ClientURL(); url != "" {
		fmt.Printf("├─ NATS (embedded): %s (nats CLI: --nkey %s)\n", url, filepath.Join(natsDir, natsbus.ObserverSeedFile))
	}
	// The hub passes on only events the relay of this database published.
	if err := rt.Hub.Listen(bus.Conn, events.NewCodec(app)); err != nil {
		bus.Close()
		return err
	}
	rt.Relay = events.NewRelay(app, rt.Log, bus.JS, cfg.Stream, logger)
	ctx, cancel := context.WithCancel(context.Background())
	rt.cancel = cancel
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		rt.Relay.Run(ctx)
	}()
	return nil
}

// Stop ends the relay, closes the hub and drains and stops NATS.
func (rt *Runtime) Stop() {
	if rt.cancel != nil {
		rt.cancel()
		rt.wg.Wait()
		rt.cancel = nil
	}
	if rt.Hub != nil {
		rt.Hub.Close()
	}
	if rt.Bus != nil {
		rt.Bus.Close()
		rt.Bus = nil
	}
}

func printDemo(created bool) {
	if created {
		fmt.Println("Demo data created. Accounts (password " + demo.Password + "):")
	} else {
		fmt.Println("Demo data already present. Accounts (password " + demo.Password + "):")
	}
	for _, a := range demo.Accounts {
		fmt.Printf("  %-32s %s\n", a.Email, a.Role)
	}
}
