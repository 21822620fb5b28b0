package events

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/changelog"
)

// ErrForeign means a message on the change subjects is not an event of
// this change log: it has no id, an id of another log, or an id whose
// authentication code does not match its subject and body.
var ErrForeign = errors.New("not an event of this change log")

// keyName is the row of strada_state holding the key that authenticates
// the message ids.
const keyName = "relay.msgid_key"

// macLen is how many bytes of the HMAC-SHA256 a message id carries.
const macLen = 8

// Codec makes the NATS message of each change and recognises the messages
// it made. A message id is <identity>:<seq>:<mac>: the change log's
// identity (changelog.Identity), the change's sequence, and an HMAC of the
// subject and body under a key that never leaves the database. Nobody
// without the key can make an id the stream's duplicate window would take
// for one of ours, or a message Verify accepts, even knowing what ids
// look like; a copy of the database (a restore) shares both.
type Codec struct {
	app core.App

	mu       sync.Mutex
	identity string
	key      []byte
	// macs holds HMAC states under key, reused across messages.
	macs sync.Pool
}

// NewCodec returns the codec of app's change log.
func NewCodec(app core.App) *Codec {
	return &Codec{app: app}
}

// load reads the identity and the key once, making the key on first use.
func (c *Codec) load() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.key != nil {
		return c.identity, nil
	}
	identity, err := changelog.Identity(c.app)
	if err != nil {
		return "", err
	}
	var v string
	err = c.app.ConcurrentDB().Select("value").From("strada_state").Where(dbx.HashExp{"key": keyName}).Row(&v)
	if errors.Is(err, sql.ErrNoRows) {
		fresh := make([]byte, 32)
		if _, err := rand.Read(fresh); err != nil {
			return "", fmt.Errorf("make event id key: %w", err)
		}
		// INSERT OR IGNORE: if another process made one first, use theirs.
		_, err = c.app.NonconcurrentDB().NewQuery(`INSERT OR IGNORE INTO strada_state (key, value) VALUES ({:k}, {:v})`).
			Bind(dbx.Params{"k": keyName, "v": hex.EncodeToString(fresh)}).Execute()
		if err != nil {
			return "", fmt.Errorf("store event id key: %w", err)
		}
		err = c.app.ConcurrentDB().Select("value").From("strada_state").Where(dbx.HashExp{"key": keyName}).Row(&v)
	}
	if err != nil {
		return "", fmt.Errorf("read event id key: %w", err)
	}
	key, err := hex.DecodeString(v)
	if err != nil {
		return "", fmt.Errorf("decode event id key: %w", err)
	}
	if len(key) < 16 {
		return "", fmt.Errorf("event id key of %d bytes, want 16 or more", len(key))
	}
	c.identity, c.key = identity, key
	c.macs.New = func() any { return hmac.New(sha256.New, key) }
	return identity, nil
}

// mac is the authentication code of a message of the log identity.
func (c *Codec) mac(identity string, seq int64, subject string, body []byte) []byte {
	h := c.macs.Get().(hash.Hash)
	defer c.macs.Put(h)
	h.Reset()
	h.Write([]byte(identity))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, seq, 10))
	h.Write([]byte{0})
	h.Write([]byte(subject))
	h.Write([]byte{0})
	h.Write(body)
	var sum [sha256.Size]byte
	return h.Sum(sum[:0])[:macLen]
}

// Message encodes ev as the NATS message for its subject, with its
// authenticated id as Nats-Msg-Id.
func (c *Codec) Message(ev Event) (*nats.Msg, error) {
	identity, err := c.load()
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event %d: %w", ev.Seq, err)
	}
	msg := nats.NewMsg(ev.Subject())
	msg.Data = body
	msg.Header.Set(nats.MsgIdHdr, identity+":"+strconv.FormatInt(ev.Seq, 10)+":"+hex.EncodeToString(c.mac(identity, ev.Seq, msg.Subject, body)))
	return msg, nil
}

// Verify returns the event of a message this codec made, and ErrForeign
// for any other message.
func (c *Codec) Verify(subject string, header nats.Header, data []byte) (Event, error) {
	identity, err := c.load()
	if err != nil {
		return Event{}, err
	}
	id := header.Get(nats.MsgIdHdr)
	owner, rest, ok := strings.Cut(id, ":")
	if !ok || owner != identity {
		return Event{}, ErrForeign
	}
	seqText, code, ok := strings.Cut(rest, ":")
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if !ok || err != nil || seq <= 0 {
		return Event{}, ErrForeign
	}
	got, err := hex.DecodeString(code)
	if err != nil || !hmac.Equal(got, c.mac(identity, seq, subject, data)) {
		return Event{}, ErrForeign
	}
	var ev Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return Event{}, fmt.Errorf("decode event %d: %w", seq, err)
	}
	if ev.Seq != seq || ev.Subject() != subject {
		return Event{}, ErrForeign
	}
	return ev, nil
}
