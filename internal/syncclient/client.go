// Package syncclient is a client of Strada's sync protocol over a pluggable
// local store: it keeps an outbox of mutations made offline, pushes them
// with their ids so retries are harmless, pulls pages into the store with
// their cursor in one step, and shows each record as the server has it
// plus the device's own changes not yet pulled back. The tests, the
// benchmarks and the load generator drive the server through it.
package syncclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"strada/internal/compress"
)

// ErrRevoked is returned once the server has revoked the device; the store
// has been wiped.
var ErrRevoked = errors.New("device revoked: local data wiped")

// Result is the server's answer to one mutation.
type Result struct {
	ID          string   `json:"id"`
	Status      string   `json:"status"`
	Version     int      `json:"version"`
	Seq         int64    `json:"seq"`
	Conflicts   []string `json:"conflicts"`
	Merged      []string `json:"merged"`
	FirstStatus string   `json:"firstStatus"`
	Error       *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// APIError is an error answer of the server.
type APIError struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
	Wipe    bool   `json:"wipe"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("sync: %d %s: %s", e.Status, e.Code, e.Message)
}

// Client syncs one device.
type Client struct {
	BaseURL  string
	Token    string
	DeviceID string
	// DeviceSecret is the device's credential from its latest registration,
	// sent with every call: with it a revoked device learns that it must
	// wipe its data even when its token has been invalidated.
	DeviceSecret string
	HTTP         *http.Client
	Store        Store
	// BatchSize is the number of mutations per push (at most 500).
	BatchSize int
	// PageSize is the pull page size (at most 1000).
	PageSize int
	// Now is the device clock, for clientTime.
	Now func() time.Time
	// DisableCompression sends pushes as plain JSON and asks for answers
	// uncompressed; by default pushes over CompressAbove bytes are gzipped
	// and answers come in zstd or gzip.
	DisableCompression bool
	// AcceptEncoding, when set, replaces the codings the client asks
	// answers in ("zstd, gzip").
	AcceptEncoding string

	// wire counts bytes, updated atomically.
	wire Stats
}

// CompressAbove is the size of JSON above which a push body is gzipped.
const CompressAbove = 1024

// maxAnswerBytes bounds a decoded answer: a pull page of 1,000 records is
// a few MB.
const maxAnswerBytes = 64 << 20

// acceptEncoding is what the client asks for: zstd first, which the
// server also prefers, then gzip.
const acceptEncoding = "zstd, gzip"

// Stats counts the bodies of the client's requests and answers: as they
// went over the wire (compressed or not) and as JSON.
type Stats struct {
	SentBytes        int64
	SentRawBytes     int64
	ReceivedBytes    int64
	ReceivedRawBytes int64
}

// Stats returns the bytes the client has sent and received so far.
func (c *Client) Stats() Stats {
	return Stats{
		SentBytes:        atomic.LoadInt64(&c.wire.SentBytes),
		SentRawBytes:     atomic.LoadInt64(&c.wire.SentRawBytes),
		ReceivedBytes:    atomic.LoadInt64(&c.wire.ReceivedBytes),
		ReceivedRawBytes: atomic.LoadInt64(&c.wire.ReceivedRawBytes),
	}
}

// encodeBody is the body of a request to path as sent, and its
// Content-Encoding: only the push accepts a compressed body.
func (c *Client) encodeBody(path string, b []byte) ([]byte, string, error) {
	if c.DisableCompression || path != "/api/sync/push" || len(b) <= CompressAbove {
		return b, "", nil
	}
	var out bytes.Buffer
	if err := compress.Encode(&out, compress.Gzip, b); err != nil {
		return nil, "", err
	}
	return out.Bytes(), compress.Gzip, nil
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	coding := ""
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode %s: %w", path, err)
		}
		raw := len(b)
		if b, coding, err = c.encodeBody(path, b); err != nil {
			return fmt.Errorf("encode %s: %w", path, err)
		}
		atomic.AddInt64(&c.wire.SentRawBytes, int64(raw))
		atomic.AddInt64(&c.wire.SentBytes, int64(len(b)))
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", c.Token)
	req.Header.Set("Content-Type", "application/json")
	if coding != "" {
		req.Header.Set("Content-Encoding", coding)
	}
	// Set even when off, so that net/http does not ask for gzip itself.
	if c.DisableCompression {
		req.Header.Set("Accept-Encoding", compress.Identity)
	} else if c.AcceptEncoding != "" {
		req.Header.Set("Accept-Encoding", c.AcceptEncoding)
	} else {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	if c.DeviceID != "" {
		req.Header.Set("X-Strada-Device", c.DeviceID)
	}
	if c.DeviceSecret != "" {
		req.Header.Set("X-Strada-Device-Secret", c.DeviceSecret)
	}
	if c.Store != nil {
		req.Header.Set("X-Strada-Pending", strconv.Itoa(len(c.Store.Outbox())))
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	atomic.AddInt64(&c.wire.ReceivedBytes, int64(len(data)))
	if coding, err := compress.ContentCoding(resp.Header.Values("Content-Encoding")); err != nil {
		return fmt.Errorf("%s %s: answer: %w", method, path, err)
	} else if coding != "" {
		if data, err = compress.Decode(coding, data, maxAnswerBytes); err != nil {
			return fmt.Errorf("%s %s: decode %s answer: %w", method, path, coding, err)
		}
	}
	atomic.AddInt64(&c.wire.ReceivedRawBytes, int64(len(data)))
	if resp.StatusCode >= 300 {
		apiErr := &APIError{Status: resp.StatusCode}
		_ = json.Unmarshal(data, apiErr)
		if apiErr.Code == "device_revoked" && apiErr.Wipe && c.Store != nil {
			if err := c.Store.Wipe(); err != nil {
				return errors.Join(ErrRevoked, err)
			}
			return ErrRevoked
		}
		return apiErr
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// Register registers the device under id (a UUID made at install time) and
// keeps it as DeviceID, with the device secret of the answer as
// DeviceSecret. Retrying returns the same device with a new secret; the
// previous one stops working.
func (c *Client) Register(ctx context.Context, id, name, platform, appVersion string) error {
	var out struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	err := c.do(ctx, http.MethodPost, "/api/sync/devices", map[string]string{
		"id": id, "name": name, "platform": platform, "appVersion": appVersion,
	}, &out)
	if err != nil {
		return err
	}
	if out.Secret == "" {
		return errors.New("sync: the registration answer has no device secret")
	}
	c.DeviceID, c.DeviceSecret = out.ID, out.Secret
	return nil
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Upsert records a local change of fields of a record (a new record when
// the device has none with this id) and returns the queued mutation.
func (c *Client) Upsert(collection, id string, fields map[string]any) (Mutation, error) {
	base, _ := c.Store.Base(collection, id)
	return c.enqueue(Mutation{Collection: collection, RecordID: id, Op: "upsert", BaseVersion: versionOf(base), Fields: fields})
}

// Delete records a local delete of a record.
func (c *Client) Delete(collection, id string) (Mutation, error) {
	base, _ := c.Store.Base(collection, id)
	return c.enqueue(Mutation{Collection: collection, RecordID: id, Op: "delete", BaseVersion: versionOf(base)})
}

func (c *Client) enqueue(m Mutation) (Mutation, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return m, err
	}
	m.ID = id.String()
	m.ClientTime = c.now().UTC().Format(time.RFC3339Nano)
	m.Fields = maps.Clone(m.Fields)
	return m, c.Store.Enqueue(m)
}

func versionOf(r Record) int {
	if r == nil {
		return 0
	}
	switch v := r["version"].(type) {
	case float64:
		return int(v)
	case int:
		return v
	}
	return 0
}

// View returns a record as the device shows it: the pulled state with the
// device's answered-but-not-yet-pulled and pending changes on top.
func (c *Client) View(collection, id string) (Record, bool) {
	r, _ := c.Store.Base(collection, id)
	exists := r != nil
	for _, m := range append(c.Store.InFlight(), c.Store.Outbox()...) {
		if m.Collection != collection || m.RecordID != id {
			continue
		}
		exists, r = overlay(r, m)
	}
	return r, exists
}

// ViewAll returns every record of a collection as the device shows it.
func (c *Client) ViewAll(collection string) map[string]Record {
	all := c.Store.Bases(collection)
	for _, m := range append(c.Store.InFlight(), c.Store.Outbox()...) {
		if m.Collection != collection {
			continue
		}
		exists, r := overlay(all[m.RecordID], m)
		if exists {
			all[m.RecordID] = r
		} else {
			delete(all, m.RecordID)
		}
	}
	return all
}

// IDLister is a Store that lists the ids of its pulled records without
// copying them.
type IDLister interface {
	IDs(collection string) []string
}

// IDs returns the ids of every record of a collection as the device shows
// it, sorted, without copying the records: cheaper than [Client.ViewAll]
// on a store that is an [IDLister].
func (c *Client) IDs(collection string) []string {
	var ids []string
	if l, ok := c.Store.(IDLister); ok {
		ids = l.IDs(collection)
	} else {
		for id := range c.Store.Bases(collection) {
			ids = append(ids, id)
		}
	}
	present := make(map[string]bool, len(ids))
	for _, id := range ids {
		present[id] = true
	}
	for _, m := range append(c.Store.InFlight(), c.Store.Outbox()...) {
		if m.Collection == collection {
			present[m.RecordID] = m.Op != "delete"
		}
	}
	out := make([]string, 0, len(present))
	for id, ok := range present {
		if ok {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func overlay(r Record, m Mutation) (bool, Record) {
	if m.Op == "delete" {
		return false, nil
	}
	if r == nil {
		r = Record{"id": m.RecordID}
	}
	for k, v := range m.Fields {
		r[k] = v
	}
	return true, r
}

// Push sends the outbox in batches. Answered mutations leave the outbox;
// on a network or server error the outbox is kept for the next try.
func (c *Client) Push(ctx context.Context) ([]Result, error) {
	size := c.BatchSize
	if size <= 0 || size > 500 {
		size = 100
	}
	var all []Result
	for {
		out := c.Store.Outbox()
		if len(out) == 0 {
			return all, nil
		}
		if len(out) > size {
			out = out[:size]
		}
		var resp struct {
			Results []Result `json:"results"`
		}
		if err := c.do(ctx, http.MethodPost, "/api/sync/push", map[string]any{"mutations": out}, &resp); err != nil {
			return all, err
		}
		seqs := make(map[string]int64, len(resp.Results))
		for _, r := range resp.Results {
			if r.Status == "rejected" || (r.Status == "duplicate" && r.FirstStatus == "rejected") {
				seqs[r.ID] = 0
			} else {
				seqs[r.ID] = r.Seq
			}
		}
		if err := c.Store.Answered(seqs); err != nil {
			return all, err
		}
		all = append(all, resp.Results...)
		if len(resp.Results) < len(out) {
			return all, errors.New("sync: the server answered fewer mutations than were sent")
		}
	}
}

type pullPage struct {
	Changes []Change `json:"changes"`
	Cursor  string   `json:"cursor"`
	Seq     int64    `json:"seq"`
	HasMore bool     `json:"hasMore"`
	Reset   bool     `json:"reset"`
}

// Pull pulls pages until the device has everything, starting a fresh
// snapshot when the server answers reset.
func (c *Client) Pull(ctx context.Context) error {
	size := c.PageSize
	if size <= 0 || size > 1000 {
		size = 500
	}
	resets := 0
	for {
		cursor, _ := c.Store.Cursor()
		var page pullPage
		q := url.Values{"limit": {strconv.Itoa(size)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		if err := c.do(ctx, http.MethodGet, "/api/sync/pull?"+q.Encode(), nil, &page); err != nil {
			return err
		}
		if page.Reset {
			resets++
			if resets > 2 {
				return errors.New("sync: the server keeps answering reset")
			}
			if err := c.Store.Reset(); err != nil {
				return err
			}
			continue
		}
		if err := c.Store.ApplyPage(page.Changes, page.Cursor, page.Seq); err != nil {
			return err
		}
		if !page.HasMore {
			return nil
		}
	}
}

// Sync pushes the outbox, then pulls.
func (c *Client) Sync(ctx context.Context) ([]Result, error) {
	results, err := c.Push(ctx)
	if err != nil {
		return results, err
	}
	return results, c.Pull(ctx)
}
