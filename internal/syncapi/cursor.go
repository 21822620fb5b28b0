package syncapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

// Cursor is a device's position in what it has received. It travels as an
// opaque, signed string: a device cannot forge one, and one made for another
// scope is recognised.
type Cursor struct {
	// Seq is the change log position: every change up to it has been
	// delivered (in a snapshot, the position the snapshot started from).
	Seq int64 `json:"s"`
	// Scope is the fingerprint of the user's scope when the cursor was made.
	Scope string `json:"f"`
	// User the cursor was made for.
	User string `json:"u"`
	// Hint marks the cursor of a stream hint: it names a position to
	// compare with, and pulling from it is refused (it would skip the
	// changes between the device's own cursor and it).
	Hint bool `json:"h,omitempty"`
	// Tag fingerprints the change row at Seq (see changelog.RowTag).
	Tag string `json:"t,omitempty"`
	// Snapshot progress: the collection index and the last id sent.
	Snap       bool   `json:"n,omitempty"`
	Collection int    `json:"c,omitempty"`
	After      string `json:"k,omitempty"`
}

// errBadCursor means a cursor was not made by this server.
var errBadCursor = errors.New("the cursor is not valid")

// cursorCodec signs and verifies cursors with a key kept in the database,
// so cursors survive restarts and are shared by every server process.
type cursorCodec struct {
	mu  sync.Mutex
	key []byte
}

const cursorKeyName = "sync.cursor_key"

func (c *cursorCodec) loadKey(app core.App) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.key != nil {
		return c.key, nil
	}
	var v string
	err := app.ConcurrentDB().Select("value").From("strada_state").Where(dbx.HashExp{"key": cursorKeyName}).Row(&v)
	if errors.Is(err, sql.ErrNoRows) {
		fresh := make([]byte, 32)
		if _, err := rand.Read(fresh); err != nil {
			return nil, fmt.Errorf("make cursor key: %w", err)
		}
		// INSERT OR IGNORE: if another process made one first, use theirs.
		_, err = app.NonconcurrentDB().NewQuery(`INSERT OR IGNORE INTO strada_state (key, value) VALUES ({:k}, {:v})`).
			Bind(dbx.Params{"k": cursorKeyName, "v": hex.EncodeToString(fresh)}).Execute()
		if err != nil {
			return nil, fmt.Errorf("store cursor key: %w", err)
		}
		err = app.ConcurrentDB().Select("value").From("strada_state").Where(dbx.HashExp{"key": cursorKeyName}).Row(&v)
	}
	if err != nil {
		return nil, fmt.Errorf("read cursor key: %w", err)
	}
	key, err := hex.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("decode cursor key: %w", err)
	}
	c.key = key
	return key, nil
}

func (c *cursorCodec) encode(app core.App, cur Cursor) (string, error) {
	key, err := c.loadKey(app)
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(cur)
	if err != nil {
		return "", fmt.Errorf("encode cursor: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(body) + "." + enc.EncodeToString(mac.Sum(nil)[:16]), nil
}

func (c *cursorCodec) decode(app core.App, s string) (Cursor, error) {
	var cur Cursor
	key, err := c.loadKey(app)
	if err != nil {
		return cur, err
	}
	body64, sig64, ok := strings.Cut(s, ".")
	if !ok || len(s) > 512 {
		return cur, errBadCursor
	}
	enc := base64.RawURLEncoding
	body, err1 := enc.DecodeString(body64)
	sig, err2 := enc.DecodeString(sig64)
	if err1 != nil || err2 != nil {
		return cur, errBadCursor
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	if !hmac.Equal(sig, mac.Sum(nil)[:16]) {
		return cur, errBadCursor
	}
	if err := json.Unmarshal(body, &cur); err != nil {
		return cur, errBadCursor
	}
	return cur, nil
}

// scopeFingerprint changes whenever what a user may see changes: their
// role or their teams.
func scopeFingerprint(role string, teams []string) string {
	t := slices.Clone(teams)
	slices.Sort(t)
	sum := sha256.Sum256([]byte(role + "|" + strings.Join(t, ",")))
	return hex.EncodeToString(sum[:8])
}
