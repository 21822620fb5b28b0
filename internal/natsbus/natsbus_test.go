package natsbus_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"strada/internal/natsbus"
)

var quiet = slog.New(slog.DiscardHandler)

// testSubjects are where these tests publish: the process user may
// publish only under the event subjects.
const testSubjects = natsbus.EventSubjectPrefix + ".test.>"

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
			store := t.TempDir()
			srv, err := natsbus.StartServer(store, c.listen)
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
			user, err := natsbus.ProcessUser(store)
			if err != nil {
				t.Fatal(err)
			}
			url, via := srv.ClientURL(), nats.InProcessServer(srv)
			if c.wantTCP {
				via = nats.Name("tcp")
			}
			if nc, err := nats.Connect(url, via); err == nil {
				nc.Close()
				t.Fatal("anonymous client connected, want it refused")
			}
			nc, err := nats.Connect(url, via, user)
			if err != nil {
				t.Fatalf("connect as the process: %v", err)
			}
			nc.Close()
		})
	}
}

// publishAndCount creates a stream, stores n messages, and returns how many
// the stream holds.
func publishAndCount(t *testing.T, js jetstream.JetStream, n int) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{testSubjects}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := js.Publish(ctx, natsbus.EventSubjectPrefix+".test.x", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// seedKey returns the public key of a seed file.
func seedKey(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := nkeys.ParseDecoratedUserNKey(raw)
	if err != nil {
		t.Fatalf("seed %s: %v", path, err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// TestEmbeddedKeepsStoreAcrossRestarts starts the embedded server
// in-process, stores messages, stops, and starts again on the same store:
// the messages and the users' seeds are kept, and the seeds and their
// directory are for their owner only.
func TestEmbeddedKeepsStoreAcrossRestarts(t *testing.T) {
	t.Parallel()
	store := filepath.Join(t.TempDir(), "nats")
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
	keys := map[string]string{}
	for _, name := range []string{natsbus.ProcessSeedFile, natsbus.ObserverSeedFile} {
		path := filepath.Join(store, name)
		info, err := os.Stat(path)
		if err != nil {
			t.Fatalf("seed %s: %v", name, err)
		}
		if got := info.Mode().Perm(); got != 0o600 {
			t.Fatalf("seed %s: got mode %04o, want 0600", name, got)
		}
		keys[name] = seedKey(t, path)
	}
	if keys[natsbus.ProcessSeedFile] == keys[natsbus.ObserverSeedFile] {
		t.Fatal("process and observer have the same key, want two users")
	}
	if info, err := os.Stat(store); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("store directory: got %v (%v), want mode 0700", info.Mode().Perm(), err)
	}

	bus, err = natsbus.Start(natsbus.Config{StoreDir: store, Name: "second"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	if got := publishAndCount(t, bus.JS, 3); got != 8 {
		t.Fatalf("got %d messages after the restart, want 8", got)
	}
	for name, want := range keys {
		if got := seedKey(t, filepath.Join(store, name)); got != want {
			t.Fatalf("seed %s: got key %s after the restart, want the same %s", name, got, want)
		}
	}
}

// TestCredentialFilesChecked starts the embedded server on seeds that are
// unsafe or unusable: it refuses to start and says which file and why.
func TestCredentialFilesChecked(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		prepare func(t *testing.T, store string)
		wantErr string
	}{
		{"seed readable by others", func(t *testing.T, store string) {
			if err := os.Chmod(filepath.Join(store, natsbus.ProcessSeedFile), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "mode 0644 lets other users read the key"},
		{"seed readable by the group", func(t *testing.T, store string) {
			if err := os.Chmod(filepath.Join(store, natsbus.ObserverSeedFile), 0o640); err != nil {
				t.Fatal(err)
			}
		}, "mode 0640 lets other users read the key"},
		{"not a seed", func(t *testing.T, store string) {
			if err := os.WriteFile(filepath.Join(store, natsbus.ProcessSeedFile), []byte("hello\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a user NKey seed"},
		{"a directory in its place", func(t *testing.T, store string) {
			path := filepath.Join(store, natsbus.ObserverSeedFile)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			store := t.TempDir()
			bus, err := natsbus.Start(natsbus.Config{StoreDir: store, Name: "seeds"}, quiet)
			if err != nil {
				t.Fatal(err)
			}
			bus.Close()
			c.prepare(t, store)
			bus, err = natsbus.Start(natsbus.Config{StoreDir: store, Name: "seeds"}, quiet)
			if err == nil {
				bus.Close()
				t.Fatalf("got the server started, want an error containing %q", c.wantErr)
			}
			if !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), store) {
				t.Fatalf("got error %q, want one naming the file under %s and containing %q", err, store, c.wantErr)
			}
		})
	}

	t.Run("directory open to others is restricted", func(t *testing.T) {
		t.Parallel()
		store := t.TempDir()
		if err := os.Chmod(store, 0o755); err != nil {
			t.Fatal(err)
		}
		bus, err := natsbus.Start(natsbus.Config{StoreDir: store, Name: "dir"}, quiet)
		if err != nil {
			t.Fatal(err)
		}
		bus.Close()
		if info, err := os.Stat(store); err != nil || info.Mode().Perm() != 0o700 {
			t.Fatalf("got directory mode %v (%v), want 0700", info.Mode().Perm(), err)
		}
	})
}

// TestEmbeddedListensForTools starts the embedded server with a client
// address: outside clients reach it there with the observer's seed, an
// anonymous one is refused, and it stops with the bus.
func TestEmbeddedListensForTools(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	bus, err := natsbus.Start(natsbus.Config{StoreDir: store, Listen: "127.0.0.1:-1", Name: "listening"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	url := bus.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("got client URL %q, want nats://127.0.0.1:<port>", url)
	}
	if got := publishAndCount(t, bus.JS, 2); got != 2 {
		t.Fatalf("got %d messages, want 2", got)
	}
	if nc, err := nats.Connect(url, nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Fatal("anonymous client connected, want it refused")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("anonymous client: got error %v, want an authorization violation", err)
	}
	observer, err := nats.NkeyOptionFromSeed(filepath.Join(store, natsbus.ObserverSeedFile))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, observer)
	if err != nil {
		t.Fatalf("observer: %v", err)
	}
	nc.Close()
	bus.Close()
	if nc, err := nats.Connect(url, observer, nats.Timeout(time.Second)); err == nil {
		nc.Close()
		t.Fatal("server still answers after Close")
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
	bus, err := natsbus.Start(natsbus.Config{URL: srv.ClientURL(), NKeyFile: filepath.Join(store, natsbus.ProcessSeedFile), Name: "reconnect"}, quiet)
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
	if _, err := bus.JS.PublishAsync(natsbus.EventSubjectPrefix+".test.x", []byte("x")); err == nil {
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
