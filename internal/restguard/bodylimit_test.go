package restguard_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"strada/internal/apptest"
	"strada/internal/domain"
	"strada/internal/events"
	"strada/internal/httpbody"
	"strada/internal/restguard"
	hooks "strada/pb_hooks"
)

// TestEveryRouteLimitsItsBody sends a body over the limit to every route
// that takes one, with its length declared and without (chunked): each is
// answered 413 before it is parsed. Only a superuser's backup upload keeps
// PocketBase's own limit.
func TestEveryRouteLimitsItsBody(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	hooks.BindSyncAPI(app, events.NewHub(app.Logger()))
	h := apptest.Handler(t, app)
	w := load(t, app)
	worker := apptest.User(t, app, apptest.CampWorker)
	admin := apptest.Token(t, app, apptest.Admin)
	big := `{"password":"` + strings.Repeat("x", int(restguard.MaxBodyBytes)) + `"}`

	routes := []struct{ method, path string }{
		{http.MethodPost, "/api/collections/users/auth-with-password"},
		{http.MethodPost, "/api/collections/_superusers/auth-with-password"},
		{http.MethodPost, "/api/collections/users/request-password-reset"},
		{http.MethodPost, "/api/batch"},
		{http.MethodPost, "/api/realtime"},
		{http.MethodPost, "/api/collections/" + domain.Services + "/records"},
		{http.MethodPatch, "/api/collections/users/records/" + worker.Id},
		{http.MethodPost, "/api/collections/" + domain.Persons + "/records"},
		{http.MethodPost, "/api/sync/push"},
		{http.MethodPost, "/api/sync/devices"},
		{http.MethodPost, "/api/persons/" + w.campPerson + "/erase"},
		{http.MethodPost, restguard.BackupUploadPath},
		{http.MethodPost, "/api/settings"},
	}
	for _, r := range routes {
		for _, chunked := range []bool{false, true} {
			req := httptest.NewRequest(r.method, r.path, strings.NewReader(big))
			if chunked {
				req.Body = io.NopCloser(strings.NewReader(big))
				req.ContentLength = -1
			}
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var got struct {
				Status int    `json:"status"`
				Code   string `json:"code"`
			}
			_ = json.Unmarshal(rec.Body.Bytes(), &got)
			if rec.Code != http.StatusRequestEntityTooLarge || got.Status != http.StatusRequestEntityTooLarge || got.Code != httpbody.CodeTooLarge {
				t.Errorf("%s %s (chunked %v): got %d %s, want 413 %s", r.method, r.path, chunked, rec.Code, rec.Body.String(), httpbody.CodeTooLarge)
			}
		}
	}

	// A superuser's backup upload is read by PocketBase under its own limit:
	// this body is refused as a bad archive, not for its size.
	req := httptest.NewRequest(http.MethodPost, restguard.BackupUploadPath, strings.NewReader(big))
	req.Header.Set("Authorization", admin)
	req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code == http.StatusRequestEntityTooLarge || rec.Code < 400 {
		t.Errorf("superuser backup upload: got %d %s, want a 4xx other than 413", rec.Code, rec.Body.String())
	}
}

// TestLineBreaksAndTabsAreText writes text with the control characters
// that text may hold.
func TestLineBreaksAndTabsAreText(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	w := load(t, app)
	h := apptest.Handler(t, app)
	notes := "prima riga\r\nseconda\triga — è già"
	status, body := call(t, h, http.MethodPatch, "/api/collections/persons/records/"+w.campPerson,
		apptest.Token(t, app, apptest.CampWorker), map[string]any{"notes": notes})
	if status != http.StatusOK || body["notes"] != notes {
		t.Fatalf("got %d notes %q, want 200 %q (%v)", status, body["notes"], notes, body)
	}
}
