package syncclient_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"strada/internal/apptest"
	"strada/internal/domain"
	"strada/internal/events"
	"strada/internal/syncclient"
	hooks "strada/pb_hooks"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// TestClientWipesAfterRevocationWithADeadToken: a lost tablet is revoked,
// which kills its owner's tokens. With its device secret the client still
// learns of the revocation on its next sync and deletes everything it
// holds, the unsent outbox included.
func TestClientWipesAfterRevocationWithADeadToken(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	hooks.BindSyncAPI(app, events.NewHub(app.Logger()))
	srv := apptest.Serve(t, app)
	ctx := context.Background()

	c := &syncclient.Client{
		BaseURL: srv.URL,
		Token:   apptest.Token(t, app, apptest.CampWorker),
		Store:   syncclient.NewMemoryStore(),
		HTTP:    srv.Client(),
	}
	if err := c.Register(ctx, uuid.NewString(), "tablet Candoni", "test", "1.0"); err != nil {
		t.Fatalf("register: %v", err)
	}
	if c.DeviceSecret == "" {
		t.Fatal("got no device secret after registering, want one")
	}
	if _, err := c.Sync(ctx); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	if n := len(c.Store.Bases(domain.Persons)); n == 0 {
		t.Fatal("got no persons after the first sync, want the team's")
	}
	id := uuid.Must(uuid.NewV7()).String()
	if _, err := c.Upsert(domain.Persons, id, map[string]any{"team": apptest.Team(t, app, "camp_outreach"), "consent": "none"}); err != nil {
		t.Fatal(err)
	}

	device, err := app.FindRecordById(domain.Devices, c.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	device.Set("revoked", true)
	if err := app.Save(device); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	// The token is dead: without the secret the device hears only 401.
	blind := *c
	blind.DeviceSecret = ""
	blind.Store = syncclient.NewMemoryStore()
	var apiErr *syncclient.APIError
	if _, err := blind.Sync(ctx); !errors.As(err, &apiErr) || apiErr.Status != 401 {
		t.Fatalf("sync with the dead token and no secret: got %v, want 401", err)
	}

	if _, err := c.Sync(ctx); !errors.Is(err, syncclient.ErrRevoked) {
		t.Fatalf("sync with the dead token and the secret: got %v, want ErrRevoked", err)
	}
	if cursor, _ := c.Store.Cursor(); len(c.Store.Outbox()) != 0 || len(c.Store.Bases(domain.Persons)) != 0 || cursor != "" {
		t.Fatalf("got outbox %d, persons %d, cursor %q after revocation, want all wiped",
			len(c.Store.Outbox()), len(c.Store.Bases(domain.Persons)), cursor)
	}
	if _, err := app.FindRecordById(domain.Persons, id); err == nil {
		t.Fatal("the revoked device's pending person reached the server")
	}
}

// TestClientAnswerCodings pulls from the real server asking for each
// coding: the client decodes what comes and counts the bytes as sent and
// as JSON.
func TestClientAnswerCodings(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	hooks.BindSyncAPI(app, events.NewHub(app.Logger()))
	srv := apptest.Serve(t, app)
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		accept     string
		off        bool
		compressed bool
	}{
		{"default", "", false, true},
		{"gzip", "gzip", false, true},
		{"zstd", "zstd", false, true},
		{"off", "", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &syncclient.Client{
				BaseURL: srv.URL, Token: apptest.Token(t, app, apptest.CampWorker),
				Store: syncclient.NewMemoryStore(), HTTP: srv.Client(),
				AcceptEncoding: tc.accept, DisableCompression: tc.off,
			}
			if err := c.Register(ctx, uuid.NewString(), "tablet", "test", "1.0"); err != nil {
				t.Fatalf("register: %v", err)
			}
			if err := c.Pull(ctx); err != nil {
				t.Fatalf("pull: %v", err)
			}
			if got := len(c.Store.Bases(domain.CampVisits)); got == 0 {
				t.Fatal("got no camp visits after the first pull, want the demo ones")
			}
			s := c.Stats()
			if tc.compressed && s.ReceivedBytes*3 > s.ReceivedRawBytes {
				t.Errorf("got %d bytes for %d of JSON, want at least 3× fewer", s.ReceivedBytes, s.ReceivedRawBytes)
			}
			if !tc.compressed && s.ReceivedBytes != s.ReceivedRawBytes {
				t.Errorf("got %d bytes for %d of JSON, want them equal", s.ReceivedBytes, s.ReceivedRawBytes)
			}
		})
	}
}
