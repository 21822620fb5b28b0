package syncapi_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"strada/internal/apptest"
	"strada/internal/domain"
	"strada/internal/syncclient"
)

// TestPushBadInput sends what a buggy or hostile client might: each is
// answered with a clear 4xx or a per-mutation rejection, and nothing is
// written.
func TestPushBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.device(apptest.CampWorker)
	other := e.device(apptest.PrisonWorker)
	camp, prison := e.team("camp_outreach"), e.team("prison_secretariat")
	prisonPerson, err := e.app.FindFirstRecordByData(domain.Persons, "team", prison)
	if err != nil {
		t.Fatal(err)
	}
	campPerson, err := e.app.FindFirstRecordByData(domain.Persons, "team", camp)
	if err != nil {
		t.Fatal(err)
	}
	mut := func(fields string) string {
		return fmt.Sprintf(`{"mutations":[{"id":%q,"collection":"persons","recordId":%q,"op":"upsert","baseVersion":0,"fields":%s}]}`,
			newID(), newID(), fields)
	}
	many := make([]string, 501)
	for i := range many {
		many[i] = fmt.Sprintf(`{"id":%q,"collection":"persons","recordId":%q,"op":"delete","baseVersion":0}`, newID(), newID())
	}
	cases := []struct {
		name       string
		device     *syncclient.Client
		deviceID   string // overrides the device header
		body       string
		wantStatus int    // the HTTP status, when the whole request is refused
		wantCode   string // the error code (request or mutation)
		wantField  string
	}{
		{name: "malformed json", body: `{"mutations":[`, wantStatus: 400, wantCode: "malformed_json"},
		{name: "not an object", body: `[1,2]`, wantStatus: 400, wantCode: "malformed_json"},
		{name: "no mutations", body: `{}`, wantStatus: 400, wantCode: "missing_mutations"},
		{name: "unknown top-level field", body: `{"mutations":[],"x":1}`, wantStatus: 400, wantCode: "malformed_json"},
		{name: "501 mutations", body: `{"mutations":[` + strings.Join(many, ",") + `]}`, wantStatus: 413, wantCode: "too_many_mutations"},
		{name: "2 MiB body", body: mut(`{"notes":"` + strings.Repeat("x", 2<<20) + `"}`), wantStatus: 413, wantCode: "body_too_large"},
		{name: "device of another user", deviceID: other.DeviceID, body: mut(`{"team":"` + camp + `","consent":"none"}`), wantStatus: 403, wantCode: "device_unknown"},
		{name: "unknown device", deviceID: "nope", body: mut(`{"team":"` + camp + `","consent":"none"}`), wantStatus: 403, wantCode: "device_unknown"},
		{name: "unknown collection", body: fmt.Sprintf(`{"mutations":[{"id":%q,"collection":"prisoners","recordId":%q,"op":"upsert","fields":{"a":1}}]}`, newID(), newID()), wantCode: "unknown_collection", wantField: "collection"},
		{name: "users not writable", body: fmt.Sprintf(`{"mutations":[{"id":%q,"collection":"users","recordId":%q,"op":"upsert","fields":{"role":"supervisor"}}]}`, newID(), newID()), wantCode: "collection_not_writable", wantField: "collection"},
		{name: "teams not writable", body: fmt.Sprintf(`{"mutations":[{"id":%q,"collection":"teams","recordId":%q,"op":"upsert","fields":{"name":"x"}}]}`, newID(), newID()), wantCode: "collection_not_writable"},
		{name: "sites not writable", body: fmt.Sprintf(`{"mutations":[{"id":%q,"collection":"sites","recordId":%q,"op":"upsert","fields":{"name":"x"}}]}`, newID(), newID()), wantCode: "collection_not_writable"},
		{name: "services not writable", body: fmt.Sprintf(`{"mutations":[{"id":%q,"collection":"services","recordId":%q,"op":"upsert","fields":{"name":"x"}}]}`, newID(), newID()), wantCode: "collection_not_writable"},
		{name: "devices not writable", body: fmt.Sprintf(`{"mutations":[{"id":%q,"collection":"devices","recordId":%q,"op":"upsert","fields":{"revoked":false}}]}`, newID(), newID()), wantCode: "collection_not_writable"},
		{name: "wrong type number", body: mut(`{"team":"` + camp + `","consent":"none","birth_year":"nineteen"}`), wantCode: "invalid_type", wantField: "birth_year"},
		{name: "wrong type text", body: mut(`{"team":"` + camp + `","consent":"none","notes":42}`), wantCode: "invalid_type", wantField: "notes"},
		{name: "wrong type date", body: mut(`{"team":"` + camp + `","consent":"none","consent_date":"yesterday"}`), wantCode: "invalid_type", wantField: "consent_date"},
		{name: "non-uuid mutation id", body: fmt.Sprintf(`{"mutations":[{"id":"m-1","collection":"persons","recordId":%q,"op":"upsert","fields":{"consent":"none"}}]}`, newID()), wantCode: "invalid_mutation_id", wantField: "id"},
		{name: "non-uuid record id", body: fmt.Sprintf(`{"mutations":[{"id":%q,"collection":"persons","recordId":"abc","op":"upsert","fields":{"consent":"none"}}]}`, newID()), wantCode: "invalid_record_id", wantField: "recordId"},
		{name: "uuid v4 record id", body: fmt.Sprintf(`{"mutations":[{"id":%q,"collection":"persons","recordId":"4b0e3a64-3f2e-4e7a-9a43-2a1f8e0c5d11","op":"upsert","fields":{"consent":"none"}}]}`, newID()), wantCode: "invalid_record_id"},
		{name: "future base version", body: fmt.Sprintf(`{"mutations":[{"id":%q,"collection":"persons","recordId":%q,"op":"upsert","baseVersion":99,"fields":{"notes":"x"}}]}`, newID(), campPerson.Id), wantCode: "future_base_version", wantField: "baseVersion"},
		{name: "unknown field", body: mut(`{"team":"` + camp + `","consent":"none","religion":"x"}`), wantCode: "unknown_field", wantField: "religion"},
		{name: "sets version", body: mut(`{"team":"` + camp + `","consent":"none","version":7}`), wantCode: "server_managed", wantField: "version"},
		{name: "sets updated_by", body: mut(`{"team":"` + camp + `","consent":"none","updated_by":"x"}`), wantCode: "server_managed", wantField: "updated_by"},
		{name: "other team", body: mut(`{"team":"` + prison + `","consent":"none"}`), wantCode: "forbidden", wantField: "team"},
		{name: "relation to another team's record", body: fmt.Sprintf(`{"mutations":[{"id":%q,"collection":"referrals","recordId":%q,"op":"upsert","fields":{"team":%q,"person":%q,"service":"x","reason":"r","status":"draft"}}]}`, newID(), newID(), camp, prisonPerson.Id), wantCode: "validation_missing_rel_records", wantField: "person"},
		{name: "edit another team's record", body: fmt.Sprintf(`{"mutations":[{"id":%q,"collection":"persons","recordId":%q,"op":"upsert","baseVersion":1,"fields":{"notes":"x"}}]}`, newID(), prisonPerson.Id), wantCode: "future_base_version", wantField: "baseVersion"},
		{name: "invalid select value", body: mut(`{"team":"` + camp + `","consent":"maybe"}`), wantCode: "validation_invalid_value", wantField: "consent"},
		{name: "unknown op", body: fmt.Sprintf(`{"mutations":[{"id":%q,"collection":"persons","recordId":%q,"op":"merge","fields":{"consent":"none"}}]}`, newID(), newID()), wantCode: "invalid_op", wantField: "op"},
		{name: "unknown mutation field", body: fmt.Sprintf(`{"mutations":[{"id":%q,"collection":"persons","recordId":%q,"op":"upsert","fields":{"consent":"none"},"force":true}]}`, newID(), newID()), wantCode: "malformed_mutation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seq, persons, ledger := e.lastSeq(), e.count(domain.Persons), e.ledgerSize()
			dev := *c
			if tc.deviceID != "" {
				dev.DeviceID = tc.deviceID
			}
			var out struct{ Results []syncclient.Result }
			err := e.post(&dev, "/api/sync/push", tc.body, &out)
			if tc.wantStatus != 0 {
				var apiErr *syncclient.APIError
				if !errors.As(err, &apiErr) || apiErr.Status != tc.wantStatus || apiErr.Code != tc.wantCode {
					t.Fatalf("got %v, want %d %s", err, tc.wantStatus, tc.wantCode)
				}
			} else {
				if err != nil {
					t.Fatalf("got %v, want 200 with a rejection", err)
				}
				if len(out.Results) != 1 || out.Results[0].Status != "rejected" || out.Results[0].Error == nil ||
					out.Results[0].Error.Code != tc.wantCode || (tc.wantField != "" && out.Results[0].Error.Field != tc.wantField) {
					t.Fatalf("got %+v, want rejected %s on %q", out.Results, tc.wantCode, tc.wantField)
				}
			}
			if got := e.lastSeq(); got != seq {
				t.Errorf("got last seq %d, want %d: something was written", got, seq)
			}
			if got := e.count(domain.Persons); got != persons {
				t.Errorf("got %d persons, want %d", got, persons)
			}
			if got := e.ledgerSize(); tc.wantStatus != 0 && got != ledger {
				t.Errorf("got ledger size %d, want %d", got, ledger)
			}
		})
	}
}

func TestPullBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.device(apptest.CampWorker)
	mustSync(t, c)
	cursor, _ := c.Store.Cursor()
	forged := cursor[:len(cursor)-2] + "AA"
	cases := []struct {
		name, query, code string
		status            int
	}{
		{"forged cursor", "cursor=" + forged, "invalid_cursor", 400},
		{"garbage cursor", "cursor=%00%01", "invalid_cursor", 400},
		{"limit zero", "limit=0", "invalid_limit", 400},
		{"limit too large", "limit=1001", "invalid_limit", 400},
		{"limit not a number", "limit=ten", "invalid_limit", 400},
	}
	for _, tc := range cases {
		err := e.raw(c, http.MethodGet, "/api/sync/pull?"+tc.query, nil, nil)
		var apiErr *syncclient.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != tc.status || apiErr.Code != tc.code {
			t.Errorf("%s: got %v, want %d %s", tc.name, err, tc.status, tc.code)
		}
	}
	anon := *c
	anon.Token = ""
	if err := e.raw(&anon, http.MethodGet, "/api/sync/pull", nil, nil); !isStatus(err, 401) {
		t.Errorf("anonymous pull: got %v, want 401", err)
	}
	admin := *c
	admin.Token = apptest.Token(t, e.app, apptest.Admin)
	if err := e.raw(&admin, http.MethodGet, "/api/sync/pull", nil, nil); !isStatus(err, 401) {
		t.Errorf("superuser pull: got %v, want 401 (devices belong to users)", err)
	}
}

func isStatus(err error, status int) bool {
	var apiErr *syncclient.APIError
	return errors.As(err, &apiErr) && apiErr.Status == status
}

func (e *env) ledgerSize() int64 {
	e.t.Helper()
	var n int64
	if err := e.app.DB().Select("count(*)").From("strada_mutations").Row(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}
