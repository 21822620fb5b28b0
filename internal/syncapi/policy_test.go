package syncapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"strada/internal/apptest"
	"strada/internal/events"
	"strada/internal/syncapi"
	"strada/internal/syncclient"
	hooks "strada/pb_hooks"
)

// TestDevicePolicyLockAfter proves that the idle lock time the server is
// configured with reaches the device with its registration and with every
// pull page, and that an API configured without one sends the default.
func TestDevicePolicyLockAfter(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		lockAfter time.Duration
		want      int
	}{
		{"default", 0, 900},
		{"five minutes", 5 * time.Minute, 300},
		{"one hour", time.Hour, 3600},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := apptest.New(t)
			api := hooks.BindSyncAPI(app, events.NewHub(app.Logger()))
			api.LockAfter = tc.lockAfter
			e := &env{t: t, app: app, url: apptest.Serve(t, app).URL}
			c := &syncclient.Client{BaseURL: e.url, Token: apptest.Token(t, app, "operatore.campi@example.org"), HTTP: &http.Client{}}
			c.DeviceID = uuid.NewString()

			var reg struct {
				Policy *syncapi.DevicePolicy `json:"policy"`
			}
			body := map[string]string{"id": c.DeviceID, "name": "telefono", "platform": "test", "appVersion": "1"}
			if err := e.raw(c, http.MethodPost, "/api/sync/devices", body, &reg); err != nil {
				t.Fatalf("register: %v", err)
			}
			if reg.Policy == nil || reg.Policy.LockAfterSeconds != tc.want {
				t.Fatalf("registration policy: got %+v, want lockAfterSeconds %d", reg.Policy, tc.want)
			}

			cursor := ""
			for page := 0; page < 50; page++ {
				var raw map[string]json.RawMessage
				if err := e.raw(c, http.MethodGet, "/api/sync/pull?limit=20&cursor="+cursor, nil, &raw); err != nil {
					t.Fatalf("pull page %d: %v", page, err)
				}
				var p syncapi.DevicePolicy
				if err := json.Unmarshal(raw["policy"], &p); err != nil {
					t.Fatalf("pull page %d: decode policy %s: %v", page, raw["policy"], err)
				}
				if p.LockAfterSeconds != tc.want {
					t.Fatalf("pull page %d: got lockAfterSeconds %d, want %d", page, p.LockAfterSeconds, tc.want)
				}
				var more bool
				if err := json.Unmarshal(raw["hasMore"], &more); err != nil {
					t.Fatal(err)
				}
				if !more {
					return
				}
				if err := json.Unmarshal(raw["cursor"], &cursor); err != nil {
					t.Fatal(err)
				}
			}
			t.Fatal("got more than 50 pages, want the pull to end")
		})
	}
}

// TestLockAfterValue proves that --lock-after and STRADA_LOCK_AFTER take
// a duration from one minute to one hour and refuse anything else.
func TestLockAfterValue(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want time.Duration // zero: refused
	}{
		{"15m", 15 * time.Minute},
		{"1m", time.Minute},
		{"1h", time.Hour},
		{"90s", 90 * time.Second},
		{"59s", 0},
		{"61m", 0},
		{"0", 0},
		{"-5m", 0},
		{"quindici", 0},
		{"", 0},
	}
	for _, tc := range cases {
		d := syncapi.DefaultLockAfter
		err := syncapi.LockAfterValue{D: &d}.Set(tc.in)
		switch {
		case tc.want == 0 && err == nil:
			t.Errorf("Set(%q): got %s and no error, want it refused", tc.in, d)
		case tc.want == 0 && d != syncapi.DefaultLockAfter:
			t.Errorf("Set(%q) refused: got value changed to %s, want %s", tc.in, d, syncapi.DefaultLockAfter)
		case tc.want != 0 && (err != nil || d != tc.want):
			t.Errorf("Set(%q): got %s, %v; want %s", tc.in, d, err, tc.want)
		}
	}
}
