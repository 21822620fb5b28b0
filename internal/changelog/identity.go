package changelog

import (
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

// RowTag returns a short fingerprint of the row at seq, and whether there
// is one. A reader that remembers the tag of its position can tell that the
// log it reads is no longer the one it read before (a database restored
// from a backup hands out the same sequence numbers again).
func RowTag(app core.App, seq int64) (string, bool, error) {
	if seq <= 0 {
		return "", false, nil
	}
	var r row
	err := app.ConcurrentDB().Select("*").From(Table).Where(dbx.HashExp{"seq": seq}).One(&r)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read change %d: %w", seq, err)
	}
	sum := sha256.Sum256([]byte(r.Collection + "|" + r.RecordID + "|" + r.Op + "|" + r.At))
	return hex.EncodeToString(sum[:6]), true, nil
}

// identityKey is the row of strada_state holding the log's identity.
const identityKey = "log.identity"

// Identity returns the log's identity: a random id made the first time it
// is asked for and kept in the database, so that two databases, even ones
// whose sequences overlap, never name their rows alike (the event relay
// puts it in every message id). A copy of the database keeps it.
func Identity(app core.App) (string, error) {
	var id string
	err := app.ConcurrentDB().Select("value").From("strada_state").Where(dbx.HashExp{"key": identityKey}).Row(&id)
	if errors.Is(err, sql.ErrNoRows) {
		fresh := make([]byte, 8)
		if _, err := rand.Read(fresh); err != nil {
			return "", fmt.Errorf("make log identity: %w", err)
		}
		// INSERT OR IGNORE: if another process made one first, use theirs.
		_, err = app.NonconcurrentDB().NewQuery(`INSERT OR IGNORE INTO strada_state (key, value) VALUES ({:k}, {:v})`).
			Bind(dbx.Params{"k": identityKey, "v": hex.EncodeToString(fresh)}).Execute()
		if err != nil {
			return "", fmt.Errorf("store log identity: %w", err)
		}
		err = app.ConcurrentDB().Select("value").From("strada_state").Where(dbx.HashExp{"key": identityKey}).Row(&id)
	}
	if err != nil {
		return "", fmt.Errorf("read log identity: %w", err)
	}
	return id, nil
}
