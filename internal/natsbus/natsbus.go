// Package natsbus provides Strada's connection to NATS: it starts the
// embedded JetStream server unless an external URL is configured, connects
// to it, and shuts both down cleanly (drain, then stop).
package natsbus

import (
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

// Config says where NATS is.
type Config struct {
	// URL of an external NATS server or cluster; when set no server is
	// started.
	URL string
	// Listen is the host:port the embedded server listens on for clients
	// such as the nats CLI; empty means in-process connections only.
	Listen string
	// StoreDir is the embedded server's JetStream store.
	StoreDir string
	// Name identifies this process's connection.
	Name string
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
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("nats reconnected", "url", c.ConnectedUrl())
		}),
	}
	url := cfg.URL
	if url == "" {
		srv, err := StartServer(cfg.StoreDir, cfg.Listen)
		if err != nil {
			return nil, err
		}
		b.server = srv
		opts = append(opts, nats.InProcessServer(srv))
		url = srv.ClientURL()
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

// StartServer starts an embedded JetStream server storing under storeDir.
// listen is host:port ("" for in-process only; port -1 for a random one).
func StartServer(storeDir, listen string) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "strada",
		JetStream:  true,
		StoreDir:   filepath.Clean(storeDir),
		NoSigs:     true,
		NoLog:      true,
	}
	if listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("nats listen port %q: %w", port, err)
		}
		opts.Host, opts.Port = host, p
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("configure embedded nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded nats did not become ready within 10s")
	}
	return srv, nil
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
