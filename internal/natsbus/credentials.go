package natsbus

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// The users of the embedded server. Their NKey seeds are made on the first
// start in the store directory, readable by their owner only, and used
// again on every later start.
const (
	// ProcessSeedFile is the seed of the Strada process itself: it
	// publishes the change events and administers the stream.
	ProcessSeedFile = "strada.nk"
	// ObserverSeedFile is the seed operators give the nats CLI: it reads
	// the events and the stream and changes nothing.
	ObserverSeedFile = "observer.nk"
)

// credentials are the embedded server's users.
type credentials struct {
	process  nkeys.KeyPair
	observer nkeys.KeyPair
}

// loadCredentials reads the seeds of the embedded server's users from dir,
// making the directory (owner only) and any missing seed first.
func loadCredentials(dir string) (credentials, error) {
	if dir == "" {
		return credentials{}, errors.New("nats store directory not set: it holds the server's credentials")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return credentials{}, fmt.Errorf("make nats directory %s: %w", dir, err)
	}
	// A directory made by an older version may be open to the group.
	if err := os.Chmod(dir, 0o700); err != nil {
		return credentials{}, fmt.Errorf("restrict nats directory %s to its owner: %w", dir, err)
	}
	process, err := userSeed(filepath.Join(dir, ProcessSeedFile))
	if err != nil {
		return credentials{}, err
	}
	observer, err := userSeed(filepath.Join(dir, ObserverSeedFile))
	if err != nil {
		return credentials{}, err
	}
	return credentials{process: process, observer: observer}, nil
}

// userSeed reads the user seed at path, or makes and stores a new one when
// there is no file.
func userSeed(path string) (nkeys.KeyPair, error) {
	kp, err := readUserSeed(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return kp, err
	}
	fresh, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("make nats user key: %w", err)
	}
	seed, err := fresh.Seed()
	if err != nil {
		return nil, fmt.Errorf("make nats user key: %w", err)
	}
	if err := writeNew(path, append(seed, '\n')); err != nil {
		return nil, err
	}
	// Read back what is on disk: another process may have written first.
	return readUserSeed(path)
}

// readUserSeed reads a user seed, refusing a file that other accounts of
// the machine may read.
func readUserSeed(path string) (nkeys.KeyPair, error) {
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("nats credentials %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("nats credentials %s: not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("nats credentials %s: mode %04o lets other users read the key; run chmod 600 on it", path, perm)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read nats credentials %s: %w", path, err)
	}
	kp, err := nkeys.ParseDecoratedUserNKey(raw)
	if err != nil {
		return nil, fmt.Errorf("nats credentials %s: not a user NKey seed: %w", path, err)
	}
	return kp, nil
}

// writeNew stores data at path, readable by the owner only, unless a file
// is already there. The file appears whole or not at all.
func writeNew(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".seed-*")
	if err != nil {
		return fmt.Errorf("write nats credentials %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write nats credentials %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("write nats credentials %s: %w", path, err)
	}
	return nil
}

// userOption authenticates a connection as the user of kp.
func userOption(kp nkeys.KeyPair) (nats.Option, error) {
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("nats user public key: %w", err)
	}
	return nats.Nkey(pub, kp.Sign), nil
}

// ProcessUser returns the option that connects as the Strada process to
// the embedded server whose store is storeDir (as StartServer left it).
func ProcessUser(storeDir string) (nats.Option, error) {
	kp, err := readUserSeed(filepath.Join(storeDir, ProcessSeedFile))
	if err != nil {
		return nil, err
	}
	return userOption(kp)
}
