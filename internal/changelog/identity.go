package changelog

import (
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
