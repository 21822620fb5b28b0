package natsbus_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"strada/internal/natsbus"
)

var quiet = slog.New(slog.DiscardHandler)

func TestStartServerListen(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		listen  string
		wantErr string
		wantTCP bool
	}{
		{"in-process only", "", "", false},
		{"random port", "127.0.0.1:-1", "", true},
		{"no port", "127.0.0.1", "nats listen address", false},
		{"port not a number", "127.0.0.1:abc", "nats listen port", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv, err := natsbus.StartServer(t.TempDir(), c.listen)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Shutdown)
			if !srv.JetStreamEnabled() {
				t.Fatal("got JetStream disabled, want enabled")
			}
			addr, ok := srv.Addr().(*net.TCPAddr)
			if got := ok && addr.Port > 0; got != c.wantTCP {
				t.Fatalf("got listening %v (%v), want %v", got, srv.Addr(), c.wantTCP)
			}
			if c.wantTCP {
				nc, err := nats.Connect(srv.ClientURL())
				if err != nil {
					t.Fatalf("connect over TCP: %v", err)
				}
				nc.Close()
			}
		})
	}
}

// publishAndCount creates a stream, stores n messages, and returns how many
// the stream holds.
func publishAndCount(t *testing.T, js jetstream.JetStream, n int) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := js.Publish(ctx, "t.x", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestEmbeddedKeepsStoreAcrossRestarts starts the embedded server
// in-process, stores messages, stops, and starts again on the same store.
func TestEmbeddedKeepsStoreAcrossRestarts(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	bus, err := natsbus.Start(natsbus.Config{StoreDir: store, Name: "first"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if !bus.Embedded() || bus.ClientURL() != "" {
		t.Fatalf("got embedded %v client URL %q, want embedded and no URL (in-process only)", bus.Embedded(), bus.ClientURL())
	}
	if got := publishAndCount(t, bus.JS, 5); got != 5 {
		t.Fatalf("got %d messages, want 5", got)
	}
	bus.Close()
	bus.Close() // closing twice is harmless
	if !bus.Conn.IsClosed() {
		t.Fatal("connection open after Close")
	}

	bus, err = natsbus.Start(natsbus.Config{StoreDir: store, Name: "second"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	if got := publishAndCount(t, bus.JS, 3); got != 8 {
		t.Fatalf("got %d messages after the restart, want 8", got)
	}
}

// TestEmbeddedListensForTools starts the embedded server with a client
// address: outside clients such as the nats CLI reach it there, and it
// stops with the bus.
func TestEmbeddedListensForTools(t *testing.T) {
	t.Parallel()
	bus, err := natsbus.Start(natsbus.Config{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", Name: "listening"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	url := bus.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("got client URL %q, want nats://127.0.0.1:<port>", url)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("outside client: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if got := publishAndCount(t, js, 2); got != 2 {
		t.Fatalf("got %d messages, want 2", got)
	}
	nc.Close()
	bus.Close()
	if nc, err := nats.Connect(url, nats.Timeout(time.Second)); err == nil {
		nc.Close()
		t.Fatal("server still answers after Close")
	}
}

// TestExternalServer connects to a server it did not start: it reports no
// embedded server, and Close leaves that server running.
func TestExternalServer(t *testing.T) {
	t.Parallel()
	srv, err := natsbus.StartServer(t.TempDir(), "127.0.0.1:-1")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	bus, err := natsbus.Start(natsbus.Config{URL: srv.ClientURL(), Name: "external"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if bus.Embedded() || bus.ClientURL() != "" {
		t.Fatalf("got embedded %v client URL %q, want neither", bus.Embedded(), bus.ClientURL())
	}
	if got := publishAndCount(t, bus.JS, 1); got != 1 {
		t.Fatalf("got %d messages, want 1", got)
	}
	bus.Close()
	if !srv.Running() {
		t.Fatal("external server stopped by Close")
	}

	if _, err := natsbus.Start(natsbus.Config{URL: "nats://127.0.0.1:1", Name: "nowhere"}, quiet); err == nil {
		t.Fatal("got a connection to a closed port, want an error")
	}
}

// TestReconnectsAfterServerRestart restarts the server a bus is connected
// to: publishes fail at once while it is away (the relay keeps its backlog)
// and work again once it is back on the same address.
func TestReconnectsAfterServerRestart(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	srv, err := natsbus.StartServer(store, "127.0.0.1:-1")
	if err != nil {
		t.Fatal(err)
	}
	listen := srv.Addr().String()
	bus, err := natsbus.Start(natsbus.Config{URL: srv.ClientURL(), Name: "reconnect"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	srv.Shutdown()
	srv.WaitForShutdown()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for !bus.Conn.IsReconnecting() {
		if ctx.Err() != nil {
			t.Fatal("disconnect not noticed within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	if _, err := bus.JS.PublishAsync("t.x", []byte("x")); err == nil {
		t.Fatal("got a buffered publish while disconnected, want an error")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("publish while disconnected took %s, want an immediate error", d)
	}

	srv, err = natsbus.StartServer(store, listen)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	for !bus.Conn.IsConnected() {
		if ctx.Err() != nil {
			t.Fatal("not reconnected within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := publishAndCount(t, bus.JS, 1); got != 1 {
		t.Fatalf("got %d messages, want 1", got)
	}
}
