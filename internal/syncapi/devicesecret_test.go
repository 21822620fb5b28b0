package syncapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pocketbase/dbx"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/syncapi"
	"strada/internal/syncclient"
)

// callAs sends a request with the given token, device id and device
// secret (each left out when empty) and returns the status and the body.
func callAs(t *testing.T, method, u, token, device, secret, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	if device != "" {
		req.Header.Set(syncapi.DeviceHeader, device)
	}
	if secret != "" {
		req.Header.Set(syncapi.DeviceSecretHeader, secret)
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
	return resp.StatusCode, data
}

// revokeAs revokes a device through the records API as the supervisor, as
// a supervisor does for a lost phone: the owner's tokens die with it.
func (e *env) revokeAs(t *testing.T, device string) {
	t.Helper()
	status, data := callAs(t, http.MethodPatch, e.url+"/api/collections/devices/records/"+device,
		apptest.Token(t, e.app, apptest.Supervisor), "", "", `{"revoked":true}`)
	if status != http.StatusOK {
		t.Fatalf("revoke %s: got %d %s, want 200", device, status, data)
	}
}

// storedSecretHash returns the hash a device keeps of its secret.
func (e *env) storedSecretHash(device string) string {
	e.t.Helper()
	return e.record(domain.Devices, device).GetString(syncapi.DeviceSecretField)
}

// TestSignedOutRevokedDeviceWithItsSecretWipes sends every device route
// without a valid token. Only the revoked device that presents its own
// secret is told to wipe; every other call gets a 401 byte for byte the
// same as a call that names no device at all.
func TestSignedOutRevokedDeviceWithItsSecretWipes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	lost := e.device(apptest.PrisonWorker)
	active := e.device(apptest.CampWorker)
	if len(lost.DeviceSecret) < 43 {
		t.Fatalf("got device secret %q, want at least 32 bytes in base64url", lost.DeviceSecret)
	}
	e.revokeAs(t, lost.DeviceID)
	seq := e.lastSeq()

	routes := []struct{ method, path, body string }{
		{http.MethodGet, "/api/sync/pull", ""},
		{http.MethodPost, "/api/sync/push", fmt.Sprintf(`{"mutations":[{"id":%q,"collection":"persons","recordId":%q,"op":"upsert","baseVersion":0,"fields":{"team":%q,"consent":"none"}}]}`,
			newUUID(), newID(), e.team("prison_secretariat"))},
		{http.MethodGet, "/api/sync/stream", ""},
	}
	wrong := strings.Repeat("A", len(lost.DeviceSecret))
	cases := []struct {
		name                  string
		token, device, secret string
		wipe                  bool
	}{
		{"revoked, its secret, its dead token", lost.Token, lost.DeviceID, lost.DeviceSecret, true},
		{"revoked, its secret, no token", "", lost.DeviceID, lost.DeviceSecret, true},
		{"revoked, its secret, garbage token", "Bearer abc", lost.DeviceID, lost.DeviceSecret, true},
		{"revoked, a wrong secret", lost.Token, lost.DeviceID, wrong, false},
		{"revoked, another device's secret", "", lost.DeviceID, active.DeviceSecret, false},
		{"revoked, its secret hash as secret", "", lost.DeviceID, e.storedSecretHash(lost.DeviceID), false},
		{"revoked, no secret", lost.Token, lost.DeviceID, "", false},
		{"not revoked, its secret", "", active.DeviceID, active.DeviceSecret, false},
		{"unknown device, a secret", "", newUUID(), lost.DeviceSecret, false},
		{"no device, a secret", "", "", lost.DeviceSecret, false},
	}
	for _, r := range routes {
		_, reference := callAs(t, r.method, e.url+r.path, "", "", "", r.body)
		for _, c := range cases {
			status, data := callAs(t, r.method, e.url+r.path, c.token, c.device, c.secret, r.body)
			if c.wipe {
				got := oneObject(t, data)
				if status != http.StatusForbidden || got.Code != "device_revoked" || !got.Wipe {
					t.Errorf("%s %s, %s: got %d %s, want 403 device_revoked with wipe", r.method, r.path, c.name, status, data)
				}
				continue
			}
			if status != http.StatusUnauthorized || !bytes.Equal(data, reference) {
				t.Errorf("%s %s, %s: got %d %s, want 401 %s", r.method, r.path, c.name, status, data, reference)
			}
		}
	}
	if got := e.lastSeq(); got != seq {
		t.Fatalf("got change log at %d after the revoked device's calls, want %d", got, seq)
	}
}

// TestDeviceSecretMustMatchWithAValidToken: a signed-in call that sends a
// device secret must send its device's; one that sends none is admitted as
// before.
func TestDeviceSecretMustMatchWithAValidToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.device(apptest.CampWorker)
	other := e.device(apptest.CampWorker)
	_, reference := callAs(t, http.MethodGet, e.url+"/api/sync/pull", "", "", "", "")
	cases := []struct {
		name   string
		secret string
		status int
	}{
		{"its secret", c.DeviceSecret, http.StatusOK},
		{"no secret", "", http.StatusOK},
		{"a wrong secret", strings.Repeat("A", len(c.DeviceSecret)), http.StatusUnauthorized},
		{"another device's secret of the same user", other.DeviceSecret, http.StatusUnauthorized},
	}
	for _, tc := range cases {
		status, data := callAs(t, http.MethodGet, e.url+"/api/sync/pull?limit=1", c.Token, c.DeviceID, tc.secret, "")
		if status != tc.status {
			t.Errorf("%s: got %d %s, want %d", tc.name, status, data, tc.status)
		}
		if tc.status == http.StatusUnauthorized && !bytes.Equal(data, reference) {
			t.Errorf("%s: got %s, want the plain 401 %s", tc.name, data, reference)
		}
	}
}

// TestRegistrationRetryIssuesANewSecret: a repeated registration of the same
// install id answers the same device with a new secret; the previous secret
// stops working, the new one is the one that reaches a wipe after the
// device is revoked, and a registration of the revoked device changes
// nothing.
func TestRegistrationRetryIssuesANewSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := newUUID()
	token := apptest.Token(t, e.app, apptest.CampWorker)
	type registration struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
		syncclient.APIError
	}
	register := func(wantStatus int) registration {
		t.Helper()
		status, data := callAs(t, http.MethodPost, e.url+"/api/sync/devices", token, "", "", `{"id":"`+id+`","name":"tablet"}`)
		var out registration
		if err := json.Unmarshal(data, &out); err != nil || status != wantStatus {
			t.Fatalf("register %s: got %d %s, want %d", id, status, data, wantStatus)
		}
		if wantStatus < 300 && (out.ID != id || len(out.Secret) < 43) {
			t.Fatalf("register %s: got %s, want the device with a secret of at least 32 bytes", id, data)
		}
		return out
	}
	first := register(http.StatusCreated).Secret
	before := e.count(domain.Devices)
	second := register(http.StatusOK).Secret
	if second == first {
		t.Fatal("got the same secret on a retry, want a new one")
	}
	if got := e.count(domain.Devices); got != before {
		t.Fatalf("got %d devices after a retry, want %d", got, before)
	}
	pull := func(secret string) int {
		status, _ := callAs(t, http.MethodGet, e.url+"/api/sync/pull?limit=1", token, id, secret, "")
		return status
	}
	if got := pull(first); got != http.StatusUnauthorized {
		t.Fatalf("pull with the replaced secret: got %d, want 401", got)
	}
	if got := pull(second); got != http.StatusOK {
		t.Fatalf("pull with the new secret: got %d, want 200", got)
	}

	e.revokeAs(t, id)
	hash := e.storedSecretHash(id)
	token = apptest.Token(t, e.app, apptest.CampWorker) // signed in again
	if got := register(http.StatusForbidden); got.Code != "device_revoked" || !got.Wipe {
		t.Fatalf("register the revoked device: got %+v, want device_revoked with wipe", got)
	}
	if e.storedSecretHash(id) != hash {
		t.Fatal("registering a revoked device replaced its secret")
	}
	for _, s := range []struct {
		secret string
		status int
	}{{first, http.StatusUnauthorized}, {second, http.StatusForbidden}} {
		if status, data := callAs(t, http.MethodGet, e.url+"/api/sync/pull", "", id, s.secret, ""); status != s.status {
			t.Errorf("signed out with secret %s: got %d %s, want %d", s.secret, status, data, s.status)
		}
	}
}

// TestDeviceSecretIsNeverRead registers devices and looks for their secrets
// and the hashes kept of them everywhere a user can read: the records API
// of devices (list, view, filter) for the owner and a supervisor, every
// pull page, and the change log that feeds the events. A supervisor's
// revocation that also names the hash does not change it.
func TestDeviceSecretIsNeverRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seq := e.lastSeq()
	worker := e.device(apptest.CampWorker)
	supervisor := e.device(apptest.Supervisor)
	// A retry replaces the secret; look for both.
	first := worker.DeviceSecret
	if err := worker.Register(context.Background(), worker.DeviceID, "tablet", "test", "1.0"); err != nil {
		t.Fatalf("register again: %v", err)
	}
	var secrets []string
	for _, c := range []*syncclient.Client{worker, supervisor} {
		hash := e.storedSecretHash(c.DeviceID)
		if len(c.DeviceSecret) < 43 || len(hash) != 64 {
			t.Fatalf("device %s: got secret %q and hash %q, want a secret of at least 32 bytes and its SHA-256", c.DeviceID, c.DeviceSecret, hash)
		}
		secrets = append(secrets, c.DeviceSecret, hash)
	}
	secrets = append(secrets, first, syncapi.DeviceSecretField)
	leaks := func(where string, data []byte) {
		t.Helper()
		for _, s := range secrets {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s: found %q in %s", where, s, data)
			}
		}
	}

	for _, c := range []*syncclient.Client{worker, supervisor} {
		for _, path := range []string{
			"/api/collections/devices/records?perPage=500",
			"/api/collections/devices/records?perPage=500&fields=*," + syncapi.DeviceSecretField,
			"/api/collections/devices/records/" + worker.DeviceID,
		} {
			status, data := callAs(t, http.MethodGet, e.url+path, c.Token, "", "", "")
			if status != http.StatusOK || !bytes.Contains(data, []byte(worker.DeviceID)) {
				t.Fatalf("%s as %s: got %d %s, want 200 with the worker's device", path, c.DeviceID, status, data)
			}
			leaks(path, data)
		}
		// The hash cannot serve as a filter either.
		filter := url.QueryEscape(syncapi.DeviceSecretField + ` != ""`)
		status, data := callAs(t, http.MethodGet, e.url+"/api/collections/devices/records?filter="+filter, c.Token, "", "", "")
		var list struct {
			TotalItems int `json:"totalItems"`
		}
		if status == http.StatusOK {
			if err := json.Unmarshal(data, &list); err != nil || list.TotalItems != 0 {
				t.Errorf("filter on the hidden hash: got %d %s, want a refusal or no items", status, data)
			}
		}

		cursor := ""
		for page := 0; ; page++ {
			q := url.Values{"limit": {"1000"}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			status, data := callAs(t, http.MethodGet, e.url+"/api/sync/pull?"+q.Encode(), c.Token, c.DeviceID, c.DeviceSecret, "")
			var p struct {
				Cursor  string `json:"cursor"`
				HasMore bool   `json:"hasMore"`
			}
			if err := json.Unmarshal(data, &p); status != http.StatusOK || err != nil {
				t.Fatalf("pull as %s: got %d %s, want 200", c.DeviceID, status, data)
			}
			leaks("pull", data)
			if !p.HasMore {
				break
			}
			if page > 100 {
				t.Fatal("pull does not end")
			}
			cursor = p.Cursor
		}
	}

	// A supervisor who names the hash while revoking changes only revoked.
	hash := e.storedSecretHash(worker.DeviceID)
	status, data := callAs(t, http.MethodPatch, e.url+"/api/collections/devices/records/"+worker.DeviceID,
		supervisor.Token, "", "", `{"revoked":true,"`+syncapi.DeviceSecretField+`":"`+strings.Repeat("0", 64)+`"}`)
	leaks("revocation answer", data)
	if got := e.storedSecretHash(worker.DeviceID); got != hash {
		t.Fatalf("after a revocation naming the hash (%d %s): got hash %q, want %q", status, data, got, hash)
	}

	// Devices are not in the change log, so no event can carry them.
	if got := e.lastSeq(); got != seq {
		t.Errorf("got change log at %d after registrations, want %d", got, seq)
	}
	var rows []dbx.NullStringMap
	if err := e.app.DB().NewQuery("SELECT * FROM " + changelog.Table).All(&rows); err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		b, err := json.Marshal(row)
		if err != nil {
			t.Fatal(err)
		}
		leaks("change log", b)
	}
}
