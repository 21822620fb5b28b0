package syncapi_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"strada/internal/apptest"
	"strada/internal/domain"
	"strada/internal/syncapi"
)

func TestPushAndPullRecordDeviceHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.device(apptest.CampWorker)
	send := func(method, path, body string, headers map[string]string) {
		t.Helper()
		req, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
		req.Header.Set("Authorization", c.Token)
		req.Header.Set(syncapi.DeviceHeader, c.DeviceID)
		req.Header.Set("Content-Type", "application/json")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: got %d, want 200", method, path, resp.StatusCode)
		}
	}
	dev := e.record(domain.Devices, c.DeviceID)
	if dev.GetString("last_push") != "" || dev.GetString("last_pull") != "" {
		t.Fatalf("new device: got last push %q, last pull %q, want none", dev.GetString("last_push"), dev.GetString("last_pull"))
	}

	// A pull with a clock two minutes ahead and storage not persisted.
	ahead := time.Now().Add(2 * time.Minute)
	send(http.MethodGet, "/api/sync/pull", "", map[string]string{
		syncapi.DeviceTimeHeader: ahead.UTC().Format(time.RFC3339Nano),
		syncapi.StorageHeader:    "best_effort",
		syncapi.AppVersionHeader: "1.4.0",
	})
	dev = e.record(domain.Devices, c.DeviceID)
	if dev.GetString("last_pull") == "" || dev.GetString("last_push") != "" {
		t.Fatalf("after a pull: got last pull %q, last push %q, want a pull only", dev.GetString("last_pull"), dev.GetString("last_push"))
	}
	if skew := dev.GetInt("clock_skew_ms"); skew < 110_000 || skew > 130_000 {
		t.Errorf("clock skew: got %d ms, want about 120000", skew)
	}
	if got := dev.GetString("storage"); got != "best_effort" {
		t.Errorf("storage: got %q, want best_effort", got)
	}
	if got := dev.GetString("app_version"); got != "1.4.0" {
		t.Errorf("app version: got %q, want 1.4.0", got)
	}

	// A push with a clock a minute behind (milliseconds), persisted
	// storage; values that cannot be used change nothing.
	behind := time.Now().Add(-time.Minute)
	send(http.MethodPost, "/api/sync/push", `{"mutations":[]}`, map[string]string{
		syncapi.DeviceTimeHeader: strconv.FormatInt(behind.UnixMilli(), 10),
		syncapi.StorageHeader:    "persisted",
		syncapi.AppVersionHeader: strings.Repeat("1.5.0-", 10),
	})
	dev = e.record(domain.Devices, c.DeviceID)
	if dev.GetString("last_push") == "" {
		t.Fatal("after a push: got no last push")
	}
	if skew := dev.GetInt("clock_skew_ms"); skew > -50_000 || skew < -70_000 {
		t.Errorf("clock skew: got %d ms, want about -60000", skew)
	}
	if got := dev.GetString("storage"); got != "persisted" {
		t.Errorf("storage: got %q, want persisted", got)
	}
	if got := dev.GetString("app_version"); got != "1.4.0" {
		t.Errorf("app version over 50 characters: got %q, want 1.4.0 kept", got)
	}
	send(http.MethodGet, "/api/sync/pull", "", map[string]string{syncapi.DeviceTimeHeader: "yesterday", syncapi.StorageHeader: "forever"})
	dev = e.record(domain.Devices, c.DeviceID)
	if got := dev.GetString("storage"); got != "persisted" {
		t.Errorf("storage after an unknown value: got %q, want persisted kept", got)
	}
	if skew := dev.GetInt("clock_skew_ms"); skew > -50_000 {
		t.Errorf("clock skew after an unreadable time: got %d, want the last one kept", skew)
	}
}
