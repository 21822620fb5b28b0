// Strada is an offline-first sync service for social outreach work: an
// embedded PocketBase holds the records, a change log feeds NATS JetStream,
// and field devices sync over HTTP. main only wires configuration to parts.
package main

import (
	"context"
	"errors"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pocketbase/pocketbase"
	"github.com/pocketbase/pocketbase/plugins/migratecmd"
	"github.com/spf13/cobra"

	"strada/internal/accesslog"
	"strada/internal/dashboard"
	"strada/internal/events"
	"strada/internal/natsbus"
	"strada/internal/simulate"
	"strada/internal/storage"
	"strada/internal/syncapi"
	hooks "strada/pb_hooks"
	_ "strada/pb_migrations"
	webclient "strada/web-client"
)

func main() {
	// The load generator drives a running server and opens no data
	// directory: it runs before PocketBase would open one.
	if len(os.Args) > 1 && os.Args[1] == "simulate" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		cmd := simulateCommand()
		cmd.SetArgs(os.Args[2:])
		err := cmd.ExecuteContext(ctx)
		stop()
		if err != nil {
			os.Exit(1)
		}
		return
	}

	app := newApp()

	cfg := &hooks.Config{Stream: events.DefaultStreamOptions, WebClient: webclient.DistFS()}
	flags := app.RootCmd.PersistentFlags()
	flags.StringVar(&cfg.NATSListen, "nats-listen", envOr("STRADA_NATS_LISTEN", "127.0.0.1:4222"),
		"embedded NATS client address host:port; empty for in-process only (env STRADA_NATS_LISTEN)")
	flags.StringVar(&cfg.NATSURL, "nats-url", envOr("STRADA_NATS_URL", ""),
		"URL of an external NATS server or cluster; starts no embedded server (env STRADA_NATS_URL)")
	flags.StringVar(&cfg.NATSCreds, "nats-creds", envOr("STRADA_NATS_CREDS", ""),
		"credentials file (user JWT and seed) for the external NATS (env STRADA_NATS_CREDS)")
	flags.StringVar(&cfg.NATSNKey, "nats-nkey", envOr("STRADA_NATS_NKEY", ""),
		"NKey seed file for the external NATS (env STRADA_NATS_NKEY)")
	flags.StringVar(&cfg.NATSTLSCA, "nats-tls-ca", envOr("STRADA_NATS_TLS_CA", ""),
		"CA certificate (PEM) that signed the external NATS server's certificate (env STRADA_NATS_TLS_CA)")
	flags.StringVar(&cfg.NATSTLSCert, "nats-tls-cert", envOr("STRADA_NATS_TLS_CERT", ""),
		"client certificate (PEM) for the external NATS (env STRADA_NATS_TLS_CERT)")
	flags.StringVar(&cfg.NATSTLSKey, "nats-tls-key", envOr("STRADA_NATS_TLS_KEY", ""),
		"key (PEM) of the client certificate (env STRADA_NATS_TLS_KEY)")
	flags.BoolVar(&cfg.NATSTLSRequired, "nats-tls", envBool("STRADA_NATS_TLS"),
		"refuse an unencrypted connection to the external NATS (env STRADA_NATS_TLS)")
	flags.Int64Var(&cfg.NATSMaxStore, "nats-max-store", envInt64("STRADA_NATS_MAX_STORE", natsbus.DefaultMaxStore),
		"bytes of disk the embedded NATS server's JetStream may use (env STRADA_NATS_MAX_STORE)")
	flags.Int64Var(&cfg.NATSMaxMemory, "nats-max-memory", envInt64("STRADA_NATS_MAX_MEMORY", natsbus.DefaultMaxMemory),
		"bytes of memory the embedded NATS server's JetStream may use (env STRADA_NATS_MAX_MEMORY)")
	flags.BoolVar(&cfg.Demo, "demo", envBool("STRADA_DEMO"),
		"create demo teams, sites, services, accounts and synthetic records on an empty database (env STRADA_DEMO)")
	flags.StringVar(&cfg.MetricsToken, "metrics-token", envOr("STRADA_METRICS_TOKEN", ""),
		"bearer token of /api/strada/metrics, at least 32 characters; empty: the one in <dir>/metrics.token, made on the first start (env STRADA_METRICS_TOKEN)")
	flags.DurationVar(&cfg.AccessLogRetention, "access-log-retention", envDuration("STRADA_ACCESS_LOG_RETENTION", accesslog.DefaultRetention),
		"how long the access log of person reads keeps a row; 0 keeps every row (env STRADA_ACCESS_LOG_RETENTION)")
	cfg.LockAfter = syncapi.DefaultLockAfter
	if v, ok := os.LookupEnv("STRADA_LOCK_AFTER"); ok {
		if err := (syncapi.LockAfterValue{D: &cfg.LockAfter}).Set(v); err != nil {
			log.Fatalf("STRADA_LOCK_AFTER: %v", err)
		}
	}
	flags.Var(syncapi.LockAfterValue{D: &cfg.LockAfter}, "lock-after",
		"the field app locks after this long without use or hidden, from 1m to 60m; sent to devices at sign-in and with every pull (env STRADA_LOCK_AFTER)")
	flags.StringVar(&cfg.ErasureRegister, "erasure-register", envOr("STRADA_ERASURE_REGISTER", ""),
		"file of the erasure register, re-applied after a restore; keep it with the configuration, not in backups; empty: <dir>/erasure_register.jsonl (env STRADA_ERASURE_REGISTER)")
	flags.DurationVar(&cfg.SilentAfter, "silent-after", envDuration("STRADA_SILENT_AFTER", dashboard.DefaultSilentAfter),
		"dashboard: a device that has not synced for this long is flagged silent, whole hours from 1h to 720h (env STRADA_SILENT_AFTER)")

	migratecmd.MustRegister(app, app.RootCmd, migratecmd.Config{
		// Collection changes made in the admin UI become migration files
		// only while developing with `go run`.
		Automigrate: isGoRun(),
		Dir:         "pb_migrations",
	})

	hooks.Register(app, cfg)
	app.RootCmd.AddCommand(simulateCommand())

	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
}

// simulateCommand is `strada simulate`, the field-day load generator
// (internal/simulate), with its flags.
func simulateCommand() *cobra.Command {
	cfg := simulate.DefaultConfig()
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Drive simulated field devices against a running server and check that they converge",
		Long: "Drives simulated devices (offline windows, lost answers and retries, concurrent edits, an erasure, a revoked device)\n" +
			"against a running Strada server, then checks that nothing was lost or duplicated and every device converged.\n" +
			"It creates simulated workers and synthetic records: use a test or demo server, never production.",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Progress = cmd.ErrOrStderr()
			sum, err := simulate.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if asJSON {
				err = sum.WriteJSON(cmd.OutOrStdout())
			} else {
				err = sum.WriteText(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			if !sum.OK() {
				return errors.New("the simulation failed its checks")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.URL, "url", envOr("STRADA_SIM_URL", "http://127.0.0.1:8090"), "base URL of the running server (env STRADA_SIM_URL)")
	f.StringVar(&cfg.AdminEmail, "admin-email", envOr("STRADA_SIM_ADMIN_EMAIL", ""), "a superuser's e-mail (env STRADA_SIM_ADMIN_EMAIL)")
	f.StringVar(&cfg.AdminPassword, "admin-password", envOr("STRADA_SIM_ADMIN_PASSWORD", ""), "the superuser's password (env STRADA_SIM_ADMIN_PASSWORD)")
	f.IntVar(&cfg.Devices, "devices", cfg.Devices, "simulated devices")
	f.IntVar(&cfg.Workers, "workers", cfg.Workers, "simulated workers the devices belong to, half in the camp team, half in the prison team")
	f.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "rounds of offline work and sync (at least 3)")
	f.Float64Var(&cfg.Ops, "ops", cfg.Ops, "mean local changes per device per round")
	f.Float64Var(&cfg.Offline, "offline", cfg.Offline, "probability that a device in signal loses it at a round (for 1 to rounds/3 rounds)")
	f.Float64Var(&cfg.DropRequest, "drop-request", cfg.DropRequest, "probability that a request fails before it reaches the server")
	f.Float64Var(&cfg.DropAnswer, "drop-answer", cfg.DropAnswer, "probability that an answer is lost after the server applied the request")
	f.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "devices syncing at the same moment")
	f.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the devices' choices and of the links' faults")
	f.BoolVar(&cfg.SpreadAddresses, "spread-addresses", cfg.SpreadAddresses, "with a server on loopback, dial each device from its own 127.10.x.y address")
	f.IntVar(&cfg.BatchSize, "batch", cfg.BatchSize, "mutations per push")
	f.IntVar(&cfg.PageSize, "page", cfg.PageSize, "changes per pull page")
	f.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	return cmd
}

// newApp returns the PocketBase app. Development mode, which prints every
// SQL statement with its values (secrets included), is on only with
// --dev: never because the binary runs from the temporary directory, as
// `go run` builds it.
func newApp() *pocketbase.PocketBase {
	// Secure delete on data.db and auxiliary.db: erased data is overwritten,
	// not left in free pages.
	return pocketbase.NewWithConfig(pocketbase.Config{DefaultDev: false, DBConnect: storage.Connect})
}

func envOr(key, fallback string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return fallback
}

func envDuration(key string, fallback time.Duration) time.Duration {
	v, ok := os.LookupEnv(key)
	if !ok {
		return fallback
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		log.Fatalf("%s: %v", key, err)
	}
	return d
}

func envInt64(key string, fallback int64) int64 {
	v, ok := os.LookupEnv(key)
	if !ok {
		return fallback
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		log.Fatalf("%s: %v", key, err)
	}
	return n
}

func envBool(key string) bool {
	v, err := strconv.ParseBool(os.Getenv(key))
	return err == nil && v
}

// isGoRun reports whether the binary was built by `go run`.
func isGoRun() bool {
	return strings.HasPrefix(os.Args[0], os.TempDir()) ||
		strings.Contains(filepath.ToSlash(os.Args[0]), "/go-build")
}
