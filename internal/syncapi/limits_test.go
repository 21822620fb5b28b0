package syncapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"strada/internal/apptest"
	"strada/internal/domain"
	"strada/internal/fieldpolicy"
	"strada/internal/syncapi"
	"strada/internal/syncclient"
)

// do sends one request and returns its status and body.
func do(t *testing.T, method, url, token, device, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	if device != "" {
		req.Header.Set(syncapi.DeviceHeader, device)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

// oneObject decodes exactly one JSON object from data.
func oneObject(t *testing.T, data []byte) syncclient.APIError {
	t.Helper()
	var out syncclient.APIError
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Fatalf("got more than one JSON value in %s", data)
	}
	return out
}

// TestRegisterDeviceBadInputWritesNothing sends registrations a client
// must not send: each is answered with one 4xx and no device is made.
// Limits count characters, not bytes.
func TestRegisterDeviceBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := apptest.Token(t, e.app, apptest.CampWorker)
	cases := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"unknown field", `{"name":"tablet","extra":1}`, 400, "malformed_json"},
		{"trailing object", `{"name":"tablet"}{"name":"other"}`, 400, "malformed_json"},
		{"trailing bracket", `{"name":"tablet"}]`, 400, "malformed_json"},
		{"trailing garbage", `{"name":"tablet"} x`, 400, "malformed_json"},
		{"not JSON", `name=tablet`, 400, "malformed_json"},
		{"no name", `{"platform":"android"}`, 400, "invalid_field"},
		{"name of 101 characters", `{"name":"` + strings.Repeat("è", 101) + `"}`, 400, "invalid_field"},
		{"platform of 101 characters", `{"name":"tablet","platform":"` + strings.Repeat("a", 101) + `"}`, 400, "invalid_field"},
		{"app version of 51 characters", `{"name":"tablet","appVersion":"` + strings.Repeat("1", 51) + `"}`, 400, "invalid_field"},
		{"NUL in the name", `{"name":"tablet\u0000"}`, 400, fieldpolicy.CodeControlCharacter},
		{"escape in the platform", `{"name":"tablet","platform":"\u001b[2J"}`, 400, fieldpolicy.CodeControlCharacter},
		{"body over the limit", `{"name":"` + strings.Repeat("x", 20<<10) + `"}`, 413, "body_too_large"},
	}
	for _, c := range cases {
		before := e.count(domain.Devices)
		status, _, data := do(t, http.MethodPost, e.url+"/api/sync/devices", token, "", c.body)
		got := oneObject(t, data)
		if status != c.status || got.Status != c.status || got.Code != c.code {
			t.Errorf("%s: got %d %s, want %d %s", c.name, status, data, c.status, c.code)
		}
		if after := e.count(domain.Devices); after != before {
			t.Errorf("%s: got %d devices, want %d: a refused registration made one", c.name, after, before)
		}
	}

	// A name of 100 characters is accepted, whatever its length in bytes.
	name := strings.Repeat("è", 100)
	status, _, data := do(t, http.MethodPost, e.url+"/api/sync/devices", token, "", `{"name":"`+name+`"}`)
	var created struct{ ID string }
	if err := json.Unmarshal(data, &created); status != http.StatusCreated || err != nil {
		t.Fatalf("name of 100 characters (200 bytes): got %d %s, want 201", status, data)
	}
	if got := e.record(domain.Devices, created.ID).GetString("name"); got != name {
		t.Fatalf("got name %q, want %q", got, name)
	}
}

// TestSignedOutSyncCallsSayNothingAboutDevices calls every device route
// without a valid token, naming a revoked, an active and an unknown
// device: all get the same 401.
func TestSignedOutSyncCallsSayNothingAboutDevices(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	active := e.device(apptest.CampWorker)
	revoked := e.device(apptest.PrisonWorker)
	dev := e.record(domain.Devices, revoked.DeviceID)
	dev.Set("revoked", true)
	if err := e.app.Save(dev); err != nil {
		t.Fatal(err)
	}
	routes := []struct{ method, path, body string }{
		{http.MethodGet, "/api/sync/pull", ""},
		{http.MethodPost, "/api/sync/push", `{"mutations":[]}`},
		{http.MethodGet, "/api/sync/stream", ""},
	}
	devices := map[string]string{"revoked": revoked.DeviceID, "active": active.DeviceID, "unknown": newUUID(), "none": ""}
	tokens := map[string]string{"no token": "", "revoked device's old token": revoked.Token, "garbage": "Bearer abc"}
	for _, r := range routes {
		for dname, id := range devices {
			for tname, token := range tokens {
				status, _, data := do(t, r.method, e.url+r.path, token, id, r.body)
				got := oneObject(t, data)
				if status != http.StatusUnauthorized || got.Code != "unauthorized" || got.Wipe {
					t.Errorf("%s %s, %s device, %s: got %d %s, want 401 unauthorized", r.method, r.path, dname, tname, status, data)
				}
			}
		}
	}
}

// TestRevocationIsFinal tries to restore a revoked device through every
// path a superuser has: the records API (as the admin UI does), the batch
// API and a save in code. Each is refused and the device stays revoked.
func TestRevocationIsFinal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.device(apptest.CampWorker)
	dev := e.record(domain.Devices, c.DeviceID)
	dev.Set("revoked", true)
	if err := e.app.Save(dev); err != nil {
		t.Fatal(err)
	}
	settings, err := e.app.Settings().Clone()
	if err != nil {
		t.Fatal(err)
	}
	settings.Batch.Enabled = true
	if err := e.app.Save(settings); err != nil {
		t.Fatal(err)
	}
	admin := apptest.Token(t, e.app, apptest.Admin)
	record := "/api/collections/" + domain.Devices + "/records/" + c.DeviceID
	attempts := []struct{ name, method, path, body string }{
		{"records API", http.MethodPatch, record, `{"revoked":false}`},
		{"records API with other fields", http.MethodPatch, record, `{"revoked":false,"name":"found again"}`},
		{"batch API", http.MethodPost, "/api/batch", `{"requests":[{"method":"PATCH","url":"` + record + `","body":{"revoked":false}}]}`},
	}
	for _, a := range attempts {
		status, _, data := do(t, a.method, e.url+a.path, admin, "", a.body)
		if status != http.StatusBadRequest || !strings.Contains(string(data), syncapi.CodeRevocationFinal) {
			t.Errorf("%s: got %d %s, want 400 %s", a.name, status, data, syncapi.CodeRevocationFinal)
		}
		if !e.record(domain.Devices, c.DeviceID).GetBool("revoked") {
			t.Fatalf("%s: the device is no longer revoked", a.name)
		}
	}
	dev = e.record(domain.Devices, c.DeviceID)
	dev.Set("revoked", false)
	if err := e.app.Save(dev); err == nil || !strings.Contains(err.Error(), "cannot be restored") {
		t.Errorf("save in code: got %v, want the revocation kept", err)
	}
	if !e.record(domain.Devices, c.DeviceID).GetBool("revoked") {
		t.Fatal("save in code: the device is no longer revoked")
	}
	// Other edits of a revoked device, and revoking again, still work.
	dev = e.record(domain.Devices, c.DeviceID)
	dev.Set("name", "lost tablet")
	if err := e.app.Save(dev); err != nil {
		t.Errorf("rename a revoked device: got %v, want it saved", err)
	}
}

// TestPushBoundsListsAndText pushes lists longer than their field holds
// and text with control characters: each mutation is rejected with a
// client error, never answered 5xx, and nothing is written.
func TestPushBoundsListsAndText(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.device(apptest.CampWorker)
	camp, site := e.team("camp_outreach"), e.siteOf("camp")
	workers := make([]string, 50_000)
	for i := range workers {
		workers[i] = fmt.Sprintf("u%014d", i)
	}
	visit := func(extra map[string]any) map[string]any {
		f := map[string]any{"team": camp, "site": site, "visited_at": "2026-11-20 10:00:00.000Z"}
		for k, v := range extra {
			f[k] = v
		}
		return f
	}
	cases := []struct {
		name       string
		collection string
		fields     map[string]any
		code       string
		field      string
	}{
		{"50,000 workers", domain.CampVisits, visit(map[string]any{"workers": workers}), fieldpolicy.CodeTooManyValues, "workers"},
		{"21 workers", domain.CampVisits, visit(map[string]any{"workers": workers[:21]}), fieldpolicy.CodeTooManyValues, "workers"},
		{"201 persons met", domain.CampVisits, visit(map[string]any{"persons_met": workers[:201]}), fieldpolicy.CodeTooManyValues, "persons_met"},
		{"9 topics", domain.CampVisits, visit(map[string]any{"topics": []string{"health", "health", "health", "health", "health", "health", "health", "health", "health"}}), fieldpolicy.CodeTooManyValues, "topics"},
		{"NUL in notes", domain.Persons, map[string]any{"team": camp, "consent": "none", "notes": "a\x00b"}, fieldpolicy.CodeControlCharacter, "notes"},
		{"DEL in a name", domain.Persons, map[string]any{"team": camp, "consent": "none", "given_name": "An\x7fa"}, fieldpolicy.CodeControlCharacter, "given_name"},
		{"C1 control in needs", domain.CampVisits, visit(map[string]any{"needs": "x\u0090"}), fieldpolicy.CodeControlCharacter, "needs"},
	}
	for _, tc := range cases {
		seq, visits, persons := e.lastSeq(), e.count(domain.CampVisits), e.count(domain.Persons)
		body := map[string]any{"mutations": []any{map[string]any{
			"id": newID(), "collection": tc.collection, "recordId": newID(), "op": "upsert", "fields": tc.fields,
		}}}
		var out struct{ Results []syncclient.Result }
		if err := e.post(c, "/api/sync/push", body, &out); err != nil {
			t.Errorf("%s: got %v, want 200 with a rejection", tc.name, err)
			continue
		}
		if len(out.Results) != 1 || out.Results[0].Status != "rejected" || out.Results[0].Error == nil ||
			out.Results[0].Error.Code != tc.code || out.Results[0].Error.Field != tc.field {
			t.Errorf("%s: got %+v, want rejected %s on %s", tc.name, out.Results, tc.code, tc.field)
		}
		if e.lastSeq() != seq || e.count(domain.CampVisits) != visits || e.count(domain.Persons) != persons {
			t.Errorf("%s: something was written", tc.name)
		}
	}

	// Text with line breaks and tabs is text.
	id := newID()
	c.Upsert(domain.Persons, id, map[string]any{"team": camp, "consent": "none", "notes": "riga uno\r\nriga\tdue"})
	if r := mustSync(t, c); len(r) != 1 || r[0].Status != "applied" {
		t.Fatalf("notes with line breaks: got %+v, want applied", r)
	}
}

// TestStreamCaps opens streams up to the caps of a device and of a user:
// one more is answered 429 with Retry-After; a closed stream frees its
// place.
func TestStreamCaps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	open := func(ctx context.Context, c *syncclient.Client) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/api/sync/stream", nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", c.Token)
		req.Header.Set(syncapi.DeviceHeader, c.DeviceID)
		return http.DefaultClient.Do(req)
	}
	refused := func(c *syncclient.Client) bool {
		t.Helper()
		resp, err := open(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("got a stream over the cap, want 429")
		}
		body, _ := io.ReadAll(resp.Body)
		got := oneObject(t, body)
		return resp.StatusCode == http.StatusTooManyRequests && got.Code == syncapi.CodeTooManyStreams &&
			resp.Header.Get("Retry-After") != ""
	}
	keep := func(c *syncclient.Client) context.CancelFunc {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		resp, err := open(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Fatalf("open stream: got %d %s, want 200", resp.StatusCode, body)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return cancel
	}

	// Per device.
	phone := e.device(apptest.CampWorker)
	var closers []context.CancelFunc
	for range syncapi.MaxStreamsPerDevice {
		closers = append(closers, keep(phone))
	}
	if !refused(phone) {
		t.Fatalf("stream %d of a device: got no 429 %s", syncapi.MaxStreamsPerDevice+1, syncapi.CodeTooManyStreams)
	}
	closers[0]()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithCancel(context.Background())
		resp, err := open(ctx, phone)
		if err != nil {
			t.Fatal(err)
		}
		ok := resp.StatusCode == http.StatusOK
		cancel()
		resp.Body.Close()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed stream did not free its place within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Per user, over several devices.
	user := apptest.PrisonWorker
	opened := 0
	for opened < syncapi.MaxStreamsPerUser {
		d := e.device(user)
		for i := 0; i < syncapi.MaxStreamsPerDevice && opened < syncapi.MaxStreamsPerUser; i++ {
			keep(d)
			opened++
		}
	}
	if !refused(e.device(user)) {
		t.Fatalf("stream %d of a user: got no 429 %s", syncapi.MaxStreamsPerUser+1, syncapi.CodeTooManyStreams)
	}
	// Another user is not affected.
	keep(e.device(apptest.Supervisor))
}
