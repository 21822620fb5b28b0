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

	"strada/internal/changelog"
	"strada/internal/demo"
	"strada/internal/domain"
	"strada/internal/erasure"
	"strada/internal/events"
	"strada/internal/integrity"
	"strada/internal/natsbus"
	"strada/internal/opsview"
	"strada/internal/restguard"
	"strada/internal/syncapi"
)

// Config is what `serve` needs beyond PocketBase's own settings. It is read
// when the server starts, after the command line has been parsed.
type Config struct {
	NATSURL    string // external NATS; empty starts the embedded server
	NATSListen string // embedded server's client address; empty: in-process only
	Stream     events.StreamOptions
	Demo       bool
	WebClient  fs.FS
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
	BindSyncAPI(app, rt.Hub)
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		if err := rt.start(se.App, cfg); err != nil {
			return err
		}
		src := opsview.Sources{Relay: rt.Relay, Hub: rt.Hub, JS: rt.Bus.JS}
		se.Router.GET("/api/strada/events", opsview.HandleStatus(src)).Bind(apis.RequireSuperuserAuth())
		se.Router.GET("/api/strada/metrics", opsview.HandleMetrics(src)).Bind(apis.RequireSuperuserAuth())
		if cfg.WebClient != nil {
			se.Router.GET("/{path...}", apis.Static(cfg.WebClient, true))
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
	fieldWork := domain.FieldWork
	logged := domain.Logged

	// Ids, codes and consistency, before validation and the write.
	app.OnRecordCreate(fieldWork...).BindFunc(integrity.AssignID)
	app.OnRecordCreate(domain.Persons).BindFunc(integrity.AssignPersonCode)
	app.OnRecordValidate(fieldWork...).BindFunc(integrity.ValidateTeamScope)
	app.OnRecordValidate(domain.Referrals).BindFunc(integrity.ValidateReferralStatus)

	// The write and its change log row in one transaction; the referral
	// history inside it.
	app.OnRecordCreateExecute(logged...).BindFunc(log.OnCreateExecute)
	app.OnRecordUpdateExecute(logged...).BindFunc(log.OnUpdateExecute)
	app.OnRecordDeleteExecute(logged...).BindFunc(log.OnDeleteExecute)
	app.OnRecordCreateExecute(domain.Referrals).BindFunc(integrity.RecordReferralHistory)
	app.OnRecordUpdateExecute(domain.Referrals).BindFunc(integrity.RecordReferralHistory)

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
}

// BindSyncAPI serves the sync protocol, erasure and conflict resolution;
// live hints come from hub.
func BindSyncAPI(app core.App, hub *events.Hub) *syncapi.API {
	api := syncapi.New(hub, app.Logger())
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.POST("/api/sync/devices", api.RegisterDevice)
		se.Router.POST("/api/sync/push", api.Push).BindFunc(api.RequireDevice)
		se.Router.GET("/api/sync/pull", api.Pull).BindFunc(api.RequireDevice)
		se.Router.GET("/api/sync/stream", api.Stream).BindFunc(api.RequireDevice)
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
	bus, err := natsbus.Start(natsbus.Config{
		URL:      cfg.NATSURL,
		Listen:   cfg.NATSListen,
		StoreDir: filepath.Join(app.DataDir(), "nats"),
		Name:     "strada",
	}, logger)
	if err != nil {
		return err
	}
	rt.Bus = bus
	if url := bus.ClientURL(); url != "" {
		fmt.Printf("├─ NATS (embedded): %s\n", url)
	}
	if err := rt.Hub.Listen(bus.Conn); err != nil {
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
