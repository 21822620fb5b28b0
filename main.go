// Strada is an offline-first sync service for social outreach work: an
// embedded PocketBase holds the records, a change log feeds NATS JetStream,
// and field devices sync over HTTP. main only wires configuration to parts.
package main

import (
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase"
	"github.com/pocketbase/pocketbase/plugins/migratecmd"

	"strada/internal/accesslog"
	"strada/internal/dashboard"
	"strada/internal/events"
	"strada/internal/natsbus"
	"strada/internal/storage"
	hooks "strada/pb_hooks"
	_ "strada/pb_migrations"
	webclient "strada/web-client"
)

func main() {
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

	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
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
