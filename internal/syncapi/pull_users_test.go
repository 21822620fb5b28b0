package syncapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"strada/internal/apptest"
	"strada/internal/domain"
)

// TestPullCarriesTeamColleagues proves that a pull carries the id and name
// of the users who share a team with the caller, and nothing else about
// them: no email, role, teams or other team's users.
func TestPullCarriesTeamColleagues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := []struct {
		email string
		want  []string // emails of the users the pull must name
	}{
		{"operatore.carcere@example.org", []string{"operatore.carcere@example.org", "supervisore@example.org"}},
		{"operatore.campi@example.org", []string{"operatore.campi@example.org", "supervisore@example.org"}},
		{"supervisore@example.org", []string{"operatore.campi@example.org", "operatore.carcere@example.org", "supervisore@example.org"}},
	}
	for _, tc := range cases {
		t.Run(tc.email, func(t *testing.T) {
			c := e.device(tc.email)
			var raw map[string]json.RawMessage
			if err := e.raw(c, http.MethodGet, "/api/sync/pull?limit=5", nil, &raw); err != nil {
				t.Fatalf("pull: %v", err)
			}
			var users []map[string]any
			if err := json.Unmarshal(raw["users"], &users); err != nil {
				t.Fatalf("decode users %s: %v", raw["users"], err)
			}
			wantIDs := map[string]string{}
			for _, email := range tc.want {
				u := apptest.User(t, e.app, email)
				wantIDs[u.Id] = u.GetString("name")
			}
			var got []string
			for _, u := range users {
				if len(u) != 2 {
					t.Errorf("got user keys %v, want only id and name", u)
				}
				id, _ := u["id"].(string)
				got = append(got, id)
				if name, ok := wantIDs[id]; !ok {
					t.Errorf("got user %v, not in a team of %s", u, tc.email)
				} else if u["name"] != name {
					t.Errorf("got name %v for %s, want %q", u["name"], id, name)
				}
			}
			if len(got) != len(wantIDs) {
				t.Fatalf("got %d users %v, want %d", len(got), got, len(wantIDs))
			}
			if slices.ContainsFunc(users, func(u map[string]any) bool { return u["email"] != nil }) {
				t.Fatalf("got an email in %v, want none", users)
			}
		})
	}
	_ = domain.Users
}
