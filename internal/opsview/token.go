package opsview

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pocketbase/pocketbase/core"
)

// TokenFile is the file in the data directory that holds the metrics token
// when none is configured.
const TokenFile = "metrics.token"

// minTokenLen is the shortest metrics token accepted.
const minTokenLen = 32

// LoadOrCreateToken returns the metrics token: configured when not empty,
// else the one in <dataDir>/metrics.token, made (32 random bytes, hex, file
// mode 0600) when the file does not exist. Deleting the file and restarting
// makes a new token and revokes the old one.
func LoadOrCreateToken(configured, dataDir string) (string, error) {
	if configured != "" {
		if len(configured) < minTokenLen {
			return "", fmt.Errorf("metrics token: at least %d characters", minTokenLen)
		}
		return configured, nil
	}
	path := filepath.Join(dataDir, TokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		token := strings.TrimSpace(string(b))
		if len(token) < minTokenLen {
			return "", fmt.Errorf("metrics token in %s: at least %d characters; delete the file to make a new one", path, minTokenLen)
		}
		return token, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read metrics token: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("make metrics token: %w", err)
	}
	token := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return token, nil
}

// RequireMetricsAuth admits a request to the metrics with the bearer token
// (compared in constant time) or a superuser's auth. A request with neither
// is answered 401, another account 403.
func RequireMetricsAuth(token string) func(*core.RequestEvent) error {
	want := []byte(token)
	return func(e *core.RequestEvent) error {
		h := e.Request.Header.Get("Authorization")
		if len(want) > 0 && len(h) > len(bearer) && strings.EqualFold(h[:len(bearer)], bearer) &&
			subtle.ConstantTimeCompare([]byte(h[len(bearer):]), want) == 1 {
			return e.Next()
		}
		switch {
		case e.HasSuperuserAuth():
			return e.Next()
		case e.Auth == nil:
			return e.UnauthorizedError("The request requires the metrics token or a superuser's authorization.", nil)
		}
		return e.ForbiddenError("Only superusers and the metrics scraper can read the metrics.", nil)
	}
}

const bearer = "Bearer "
