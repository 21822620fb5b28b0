// Package natsbus provides Strada's connection to NATS: it starts the
// embedded JetStream server unless an external URL is configured, connects
// to it with credentials, and shuts both down cleanly (drain, then stop).
//
// The embedded server admits no anonymous client. It knows two NKey users
// whose seeds it makes in its store directory on the first start: the
// process itself, and a read-only observer for operators.
package natsbus

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The subjects and the stream that the embedded server's permissions are
// written for.
const (
	// EventSubjectPrefix starts the subject of every change event. Only the
	// process user publishes under it.
	EventSubjectPrefix = "strada.changes"
	// EventStream is the JetStream stream of the change events, the one
	// stream the observer user may read.
	EventStream = "STRADA"
)

// Limits of the embedded server unless configured otherwise.
const (
	// DefaultMaxStore caps the JetStream file store: the stream of 1 GiB
	// fits, and nothing can fill the disk that holds the database.
	DefaultMaxStore int64 = 2 << 30
	// DefaultMaxMemory caps JetStream memory storage.
	DefaultMaxMemory int64 = 64 << 20
	// MaxConnections is how many clients the embedded server accepts:
	// the process, operators' CLI sessions and integrations.
	MaxConnections = 256
	// MaxPayload is the largest message a client may publish.
	MaxPayload = 1 << 20
)

// processInbox is the reply subject prefix of the process's own requests,
// which the observer cannot subscribe to.
const processInbox = "_STRADA_INBOX"

// Config says where NATS is and how to reach it.
type Config struct {
	// URL of an external NATS server or cluster; when set no server is
	// started.
	URL string
	// Listen is the host:port the embedded server listens on for clients
	// such as the nats CLI; empty means in-process connections only.
	Listen string
	// StoreDir is the embedded server's directory: the JetStream store
	// (under jetstream/) and the users' seeds.
	StoreDir string
	// Name identifies this process's connection.
	Name string

	// MaxStore and MaxMemory cap the embedded server's JetStream storage
	// in bytes; zero means DefaultMaxStore and DefaultMaxMemory.
	MaxStore  int64
	MaxMemory int64

	// Credentials for an external server: a creds file (user JWT and
	// seed) or an NKey seed file, not both.
	CredsFile string
	NKeyFile  string
	// TLS for an external server: the CA that signed its certificate, and
	// a client certificate and key when it asks for one. TLSRequired
	// refuses a connection that is not encrypted.
	TLSCA       string
	TLSCert     string
	TLSKey      string
	TLSRequired bool
}

// Bus is a live NATS connection and, when embedded, the server behind it.
type Bus struct {
	Conn   *nats.Conn
	JS     jetstream.JetStream
	server *server.Server
	logger *slog.Logger
}

// Start starts the embedded server (unless cfg.URL is set) and connects.
func Start(cfg Config, logger *slog.Logger) (*Bus, error) {
	b := &Bus{logger: logger}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		// Fail publishes at once while disconnected: the relay keeps its
		// own backlog in SQLite and retries.
		nats.ReconnectBufSize(-1),
		nats.CustomInboxPrefix(processInbox),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("nats reconnected", "url", c.ConnectedUrl())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			logger.Warn("nats", "error", err)
		}),
	}
	url := cfg.URL
	if url == "" {
		if err := cfg.embeddedOnly(); err != nil {
			return nil, err
		}
		srv, creds, err := startServer(cfg)
		if err != nil {
			return nil, err
		}
		b.server = srv
		user, err := userOption(creds.process)
		if err != nil {
			b.shutdownServer()
			return nil, err
		}
		opts = append(opts, nats.InProcessServer(srv), user)
		url = srv.ClientURL()
	} else {
		ext, err := cfg.externalOptions()
		if err != nil {
			return nil, err
		}
		if cfg.CredsFile == "" && cfg.NKeyFile == "" {
			logger.Warn("connecting to external NATS without credentials", "url", url)
		}
		opts = append(opts, ext...)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("connect to nats %s: %w", url, err)
	}
	b.Conn = nc
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		b.shutdownServer()
		return nil, fmt.Errorf("jetstream context: %w", err)
	}
	b.JS = js
	return b, nil
}

// embeddedOnly refuses settings that only mean something for an external
// server: silently ignoring them would hide a mistyped URL.
func (cfg Config) embeddedOnly() error {
	if cfg.CredsFile != "" || cfg.NKeyFile != "" || cfg.TLSCA != "" || cfg.TLSCert != "" || cfg.TLSKey != "" || cfg.TLSRequired {
		return errors.New("nats credentials and TLS settings are for an external server: set its URL too")
	}
	return nil
}

// externalOptions are the connect options of credentials and TLS.
func (cfg Config) externalOptions() ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case cfg.CredsFile != "" && cfg.NKeyFile != "":
		return nil, errors.New("nats: give a creds file or an nkey seed file, not both")
	case cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	case cfg.NKeyFile != "":
		opt, err := nats.NkeyOptionFromSeed(cfg.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey seed file %s: %w", cfg.NKeyFile, err)
		}
		opts = append(opts, opt)
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("nats: a TLS client certificate needs its key, and a key its certificate")
	}
	if cfg.TLSRequired || cfg.TLSCA != "" || cfg.TLSCert != "" {
		opts = append(opts, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	if cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCA))
	}
	if cfg.TLSCert != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
	}
	return opts, nil
}

// StartServer starts an embedded JetStream server storing under storeDir,
// with the default limits and the users whose seeds are in storeDir (made
// there when missing). listen is host:port ("" for in-process only; port -1
// for a random one). Connect to it with ProcessUser.
func StartServer(storeDir, listen string) (*server.Server, error) {
	srv, _, err := startServer(Config{StoreDir: storeDir, Listen: listen})
	return srv, err
}

func startServer(cfg Config) (*server.Server, credentials, error) {
	creds, err := loadCredentials(cfg.StoreDir)
	if err != nil {
		return nil, creds, err
	}
	users, err := serverUsers(creds)
	if err != nil {
		return nil, creds, err
	}
	opts := &server.Options{
		ServerName:         "strada",
		JetStream:          true,
		StoreDir:           filepath.Clean(cfg.StoreDir),
		JetStreamMaxStore:  orDefault(cfg.MaxStore, DefaultMaxStore),
		JetStreamMaxMemory: orDefault(cfg.MaxMemory, DefaultMaxMemory),
		Nkeys:              users,
		MaxConn:            MaxConnections,
		MaxPayload:         MaxPayload,
		NoSigs:             true,
		NoLog:              true,
	}
	if cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, creds, fmt.Errorf("nats listen address %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, creds, fmt.Errorf("nats listen port %q: %w", port, err)
		}
		opts.Host, opts.Port = host, p
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, creds, fmt.Errorf("configure embedded nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, creds, errors.New("embedded nats did not become ready within 10s")
	}
	return srv, creds, nil
}

func orDefault(v, def int64) int64 {
	if v > 0 {
		return v
	}
	return def
}

// serverUsers are the embedded server's users and what each may do.
func serverUsers(creds credentials) ([]*server.NkeyUser, error) {
	process, err := creds.process.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("nats process user: %w", err)
	}
	observer, err := creds.observer.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("nats observer user: %w", err)
	}
	events := EventSubjectPrefix + ".>"
	return []*server.NkeyUser{
		{
			Nkey: process,
			Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{events, "$JS.API.>", "$JS.ACK.>", "$JS.FC.>"}},
				// _INBOX for an operator who administers the stream with
				// the process's seed in the nats CLI.
				Subscribe: &server.SubjectPermission{Allow: []string{events, processInbox + ".>", "_INBOX.>"}},
			},
		},
		{
			Nkey: observer,
			Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{
					"$JS.API.INFO",
					"$JS.API.STREAM.NAMES",
					"$JS.API.STREAM.LIST",
					"$JS.API.STREAM.INFO." + EventStream,
					"$JS.API.STREAM.MSG.GET." + EventStream,
					"$JS.API.DIRECT.GET." + EventStream,
					"$JS.API.DIRECT.GET." + EventStream + ".>",
					// Consumers are how a client reads a stream: the
					// observer may make, read and remove them.
					"$JS.API.CONSUMER.CREATE." + EventStream,
					"$JS.API.CONSUMER.CREATE." + EventStream + ".>",
					"$JS.API.CONSUMER.DURABLE.CREATE." + EventStream + ".>",
					"$JS.API.CONSUMER.INFO." + EventStream + ".>",
					"$JS.API.CONSUMER.NAMES." + EventStream,
					"$JS.API.CONSUMER.LIST." + EventStream,
					"$JS.API.CONSUMER.MSG.NEXT." + EventStream + ".>",
					"$JS.API.CONSUMER.DELETE." + EventStream + ".>",
					"$JS.ACK." + EventStream + ".>",
					"$JS.FC." + EventStream + ".>",
				}},
				Subscribe: &server.SubjectPermission{Allow: []string{events, "_INBOX.>"}},
			},
		},
	}, nil
}

// Embedded reports whether this process runs the NATS server.
func (b *Bus) Embedded() bool { return b.server != nil }

// ClientURL is the address external tools reach the embedded server at, or
// "" when it listens in-process only or NATS is external.
func (b *Bus) ClientURL() string {
	if b.server == nil || b.server.Addr() == nil {
		return ""
	}
	return b.server.ClientURL()
}

// Close drains the connection (flushing what is in flight) and then stops
// the embedded server.
func (b *Bus) Close() {
	if b.Conn != nil {
		if err := b.Conn.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			b.logger.Warn("nats drain", "error", err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !b.Conn.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		b.Conn.Close()
	}
	b.shutdownServer()
}

func (b *Bus) shutdownServer() {
	if b.server != nil {
		b.server.Shutdown()
		b.server.WaitForShutdown()
	}
}
