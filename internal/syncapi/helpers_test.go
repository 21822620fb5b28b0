package syncapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/events"
	"strada/internal/syncclient"
	hooks "strada/pb_hooks"
)

func TestMain(m *testing.M) { apptest.Main(m) }

type env struct {
	t   testing.TB
	app *apptest.App
	url string
	hub *events.Hub
}

func newEnv(t testing.TB) *env {
	t.Helper()
	app := apptest.New(t)
	hub := events.NewHub(app.Logger())
	hooks.BindSyncAPI(app, hub)
	srv := apptest.Serve(t, app)
	return &env{t: t, app: app, url: srv.URL, hub: hub}
}

// device registers a new device of the account and returns its client.
func (e *env) device(email string) *syncclient.Client {
	e.t.Helper()
	c := &syncclient.Client{
		BaseURL: e.url,
		Token:   apptest.Token(e.t, e.app, email),
		Store:   syncclient.NewMemoryStore(),
		HTTP:    &http.Client{},
	}
	if err := c.Register(context.Background(), uuid.NewString(), "tablet "+email, "test", "1.0"); err != nil {
		e.t.Fatalf("register device of %s: %v", email, err)
	}
	return c
}

func (e *env) team(kind string) string { return apptest.Team(e.t, e.app, kind) }

// siteOf returns a site of the given kind.
func (e *env) siteOf(kind string) string {
	e.t.Helper()
	r, err := e.app.FindFirstRecordByData(domain.Sites, "kind", kind)
	if err != nil {
		e.t.Fatalf("find %s site: %v", kind, err)
	}
	return r.Id
}

func (e *env) lastSeq() int64 {
	e.t.Helper()
	seq, err := changelog.LastSeq(e.app)
	if err != nil {
		e.t.Fatal(err)
	}
	return seq
}

func (e *env) count(collection string) int64 {
	e.t.Helper()
	n, err := e.app.CountRecords(collection)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) record(collection, id string) *core.Record {
	e.t.Helper()
	r, err := e.app.FindRecordById(collection, id)
	if err != nil {
		e.t.Fatalf("find %s/%s: %v", collection, id, err)
	}
	return r
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func newUUID() string { return uuid.NewString() }

func mustSync(t testing.TB, c *syncclient.Client) []syncclient.Result {
	t.Helper()
	res, err := c.Sync(context.Background())
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return res
}

func statusOf(t testing.TB, results []syncclient.Result, id string) syncclient.Result {
	t.Helper()
	for _, r := range results {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no result for mutation %s in %+v", id, results)
	return syncclient.Result{}
}

// post sends body as the device and decodes a 2xx answer into out; any
// other answer is returned as an *syncclient.APIError-like error.
func (e *env) post(c *syncclient.Client, path string, body any, out any) error {
	return e.raw(c, http.MethodPost, path, body, out)
}

func (e *env) raw(c *syncclient.Client, method, path string, body any, out any) error {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", c.Token)
	req.Header.Set("X-Strada-Device", c.DeviceID)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		apiErr := &syncclient.APIError{Status: resp.StatusCode}
		_ = json.Unmarshal(data, apiErr)
		return apiErr
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func dbxTeam(team string) dbx.Expression { return dbx.HashExp{"team": team} }
