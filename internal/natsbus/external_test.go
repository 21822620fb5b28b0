package natsbus_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"strada/internal/natsbus"
)

// pki is a throwaway certificate authority with a server and a client
// certificate, as PEM files.
type pki struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	write := func(name, kind string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	keyFile := func(name string, k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name, "EC PRIVATE KEY", der)
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "strada test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(serial int64, usage x509.ExtKeyUsage, k *ecdsa.PrivateKey) []byte {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "strada test"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	serverKey, clientKey := key(), key()
	return pki{
		ca:         write("ca.pem", "CERTIFICATE", caDER),
		serverCert: write("server.pem", "CERTIFICATE", leaf(2, x509.ExtKeyUsageServerAuth, serverKey)),
		serverKey:  keyFile("server-key.pem", serverKey),
		clientCert: write("client.pem", "CERTIFICATE", leaf(3, x509.ExtKeyUsageClientAuth, clientKey)),
		clientKey:  keyFile("client-key.pem", clientKey),
	}
}

// TestExternalServerWithNKeyAndTLS connects to an external server that
// requires an NKey user and TLS with client certificates: Start connects
// with the seed file and the certificates, is refused without either, and
// Close leaves the server running.
func TestExternalServerWithNKeyAndTLS(t *testing.T) {
	t.Parallel()
	certs := newPKI(t)
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := user.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := user.Seed()
	if err != nil {
		t.Fatal(err)
	}
	seedFile := filepath.Join(t.TempDir(), "integration.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	tlsConfig, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: certs.serverCert, KeyFile: certs.serverKey, CaFile: certs.ca, Verify: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		Nkeys: []*server.NkeyUser{{Nkey: pub}},
		TLS:   true, TLSVerify: true, TLSConfig: tlsConfig, TLSTimeout: 2,
		NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("external server not ready")
	}
	t.Cleanup(srv.Shutdown)
	url := strings.Replace(srv.ClientURL(), "tls://", "nats://", 1)

	full := natsbus.Config{URL: url, Name: "external", NKeyFile: seedFile, TLSCA: certs.ca, TLSCert: certs.clientCert, TLSKey: certs.clientKey}
	refused := []struct {
		name    string
		edit    func(c *natsbus.Config)
		wantErr string
	}{
		{"no credentials", func(c *natsbus.Config) { c.NKeyFile = "" }, "Authorization Violation"},
		// TLS 1.3 reports the missing certificate after the handshake, in
		// words that depend on timing.
		{"no client certificate", func(c *natsbus.Config) { c.TLSCert, c.TLSKey = "", "" }, "tls"},
		{"no TLS settings", func(c *natsbus.Config) { c.TLSCA, c.TLSCert, c.TLSKey = "", "", "" }, "unknown authority"},
		{"server not trusted", func(c *natsbus.Config) { c.TLSCA = certs.clientCert }, "unknown authority"},
		{"another user's seed", func(c *natsbus.Config) {
			other, err := nkeys.CreateUser()
			if err != nil {
				t.Fatal(err)
			}
			s, err := other.Seed()
			if err != nil {
				t.Fatal(err)
			}
			c.NKeyFile = filepath.Join(t.TempDir(), "other.nk")
			if err := os.WriteFile(c.NKeyFile, s, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "Authorization Violation"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			cfg := full
			c.edit(&cfg)
			bus, err := natsbus.Start(cfg, quiet)
			if err == nil {
				bus.Close()
				t.Fatalf("got connected, want refused with %q", c.wantErr)
			}
			if !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("got error %q, want one containing %q", err, c.wantErr)
			}
		})
	}

	bus, err := natsbus.Start(full, quiet)
	if err != nil {
		t.Fatalf("connect with seed and certificates: %v", err)
	}
	if bus.Embedded() || bus.ClientURL() != "" {
		t.Fatalf("got embedded %v client URL %q, want neither", bus.Embedded(), bus.ClientURL())
	}
	if state, ok := bus.Conn.TLSConnectionState(); ok != nil || !state.HandshakeComplete || state.Version < tls.VersionTLS12 {
		t.Fatalf("got TLS state %+v (%v), want a TLS 1.2+ connection", state, ok)
	}
	if got := publishAndCount(t, bus.JS, 1); got != 1 {
		t.Fatalf("got %d messages, want 1", got)
	}
	bus.Close()
	if !srv.Running() {
		t.Fatal("external server stopped by Close")
	}
}

// TestRequireTLS refuses a plain connection when TLS is required.
func TestRequireTLS(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	srv, err := natsbus.StartServer(store, "127.0.0.1:-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	cfg := natsbus.Config{URL: srv.ClientURL(), NKeyFile: filepath.Join(store, natsbus.ProcessSeedFile), Name: "plain"}
	bus, err := natsbus.Start(cfg, quiet)
	if err != nil {
		t.Fatalf("plain connection, TLS not required: %v", err)
	}
	bus.Close()
	cfg.TLSRequired = true
	if bus, err := natsbus.Start(cfg, quiet); err == nil {
		bus.Close()
		t.Fatal("got a plain connection with TLS required, want it refused")
	}
}

// TestConfigRefused checks the settings Start refuses before connecting.
func TestConfigRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		cfg     natsbus.Config
		wantErr string
	}{
		{"creds for the embedded server", natsbus.Config{StoreDir: t.TempDir(), CredsFile: "x.creds"}, "set its URL too"},
		{"TLS for the embedded server", natsbus.Config{StoreDir: t.TempDir(), TLSRequired: true}, "set its URL too"},
		{"creds and nkey", natsbus.Config{URL: "nats://127.0.0.1:1", CredsFile: "x.creds", NKeyFile: "x.nk"}, "not both"},
		{"certificate without key", natsbus.Config{URL: "nats://127.0.0.1:1", TLSCert: "c.pem"}, "needs its key"},
		{"missing nkey file", natsbus.Config{URL: "nats://127.0.0.1:1", NKeyFile: filepath.Join(t.TempDir(), "none.nk")}, "nkey seed file"},
		{"no store directory", natsbus.Config{}, "store directory not set"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			bus, err := natsbus.Start(c.cfg, quiet)
			if err == nil {
				bus.Close()
				t.Fatalf("got started, want an error containing %q", c.wantErr)
			}
			if !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("got error %q, want one containing %q", err, c.wantErr)
			}
		})
	}
}
