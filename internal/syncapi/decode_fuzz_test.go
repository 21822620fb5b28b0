package syncapi_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/uuid"

	"strada/internal/domain"
	"strada/internal/syncapi"
)

// FuzzDecodePush feeds the push decoder arbitrary bodies: it never panics,
// refuses a body only with a 4xx, and whatever it accepts is well-formed and
// reads back the same.
// go test ./internal/syncapi -run '^$' -fuzz FuzzDecodePush -fuzztime 60s
func FuzzDecodePush(f *testing.F) {
	seeds := []string{
		`{"mutations":[]}`,
		`{"mutations":[{"id":"01930000-0000-7000-8000-000000000001","collection":"persons","recordId":"01930000-0000-7000-8000-000000000002","op":"upsert","baseVersion":0,"fields":{"team":"t","consent":"none"},"clientTime":"2026-11-26T10:00:00Z"}]}`,
		`{"mutations":[{"id":"01930000-0000-7000-8000-000000000001","collection":"camp_visits","recordId":"01930000-0000-7000-8000-000000000003","op":"delete","baseVersion":3}]}`,
		`{"mutations":[{"id":"x","collection":"users","recordId":"y","op":"upsert","fields":{"version":1}}]}`,
		`{"mutations":[{"id":1,"fields":[]}]}`,
		`{"mutations":[null,{},[],"a",1]}`,
		`{"mutations":[{"id":"01930000-0000-7000-8000-000000000001","collection":"persons","recordId":"01930000-0000-7000-8000-000000000002","op":"upsert","baseVersion":-1,"fields":{"a":1}}]}`,
		`{"mutations":{}}`,
		`{"mutations":[]}{"mutations":[]}`,
		`{`,
		``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		batch, err := syncapi.DecodePush(body)
		if err != nil {
			var be *syncapi.BatchError
			if !errors.As(err, &be) || be.Status < 400 || be.Status > 499 || be.Code == "" {
				t.Fatalf("got error %v, want a *BatchError with a 4xx status and a code", err)
			}
			return
		}
		if len(batch.Mutations) > syncapi.MaxMutations {
			t.Fatalf("got %d mutations, want at most %d", len(batch.Mutations), syncapi.MaxMutations)
		}
		for _, d := range batch.Mutations {
			if d.Reject != nil {
				if d.Reject.Code == "" || d.Reject.Message == "" {
					t.Fatalf("got rejection %+v without code or message", d.Reject)
				}
				continue
			}
			m := d.Mutation
			if u, err := uuid.Parse(m.ID); err != nil || u.String() != m.ID {
				t.Fatalf("accepted mutation id %q", m.ID)
			}
			if u, err := uuid.Parse(m.RecordID); err != nil || u.Version() != 7 || u.String() != m.RecordID {
				t.Fatalf("accepted record id %q", m.RecordID)
			}
			if !domain.IsFieldWork(m.Collection) || (m.Op != "upsert" && m.Op != "delete") || m.BaseVersion < 0 {
				t.Fatalf("accepted %+v", m)
			}
			for name := range m.Fields {
				if name == "id" || domain.IsServerManaged(name) {
					t.Fatalf("accepted server-managed field %q", name)
				}
			}
			// It reads back the same.
			again, err := json.Marshal(map[string]any{"mutations": []any{m}})
			if err != nil {
				t.Fatal(err)
			}
			b2, err := syncapi.DecodePush(again)
			if err != nil || len(b2.Mutations) != 1 || b2.Mutations[0].Reject != nil || b2.Mutations[0].Mutation.ID != m.ID {
				t.Fatalf("re-encoded mutation does not decode the same: %v %+v", err, b2)
			}
		}
	})
}
