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

	"github.com/pocketbase/pocketbase"
	"github.com/pocketbase/pocketbase/plugins/migratecmd"

	"strada/internal/events"
	hooks "strada/pb_hooks"
	_ "strada/pb_migrations"
	webclient "strada/web-client"
)

func main() {
	app := pocketbase.New()

	cfg := &hooks.Config{Stream: events.DefaultStreamOptions, WebClient: webclient.DistFS()}
	flags := app.RootCmd.PersistentFlags()
	flags.StringVar(&cfg.NATSListen, "nats-listen", envOr("STRADA_NATS_LISTEN", "127.0.0.1:4222"),
		"embedded NATS client address host:port; empty for in-process only (env STRADA_NATS_LISTEN)")
	flags.StringVar(&cfg.NATSURL, "nats-url", envOr("STRADA_NATS_URL", ""),
		"URL of an external NATS server or cluster; starts no embedded server (env STRADA_NATS_URL)")
	flags.BoolVar(&cfg.Demo, "demo", envBool("STRADA_DEMO"),
		"create demo teams, sites, services, accounts and synthetic records on an empty database (env STRADA_DEMO)")

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

func envOr(key, fallback string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return fallback
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
