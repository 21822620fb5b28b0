package dashboard_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/pocketbase/dbx"

	"strada/internal/accesslog"
	"strada/internal/dashboard"
)

func TestDrillDownReadsAreLogged(t *testing.T) {
	w := newWorld(t, 3)
	token := tokenOf(t, w.supA)
	for _, block := range []string{"persons", "referrals", "contacts&period=month", "camp_visits&period=month", "overdue", "conflicts"} {
		t.Run(block, func(t *testing.T) {
			before := accessRows(t, w)
			code, body := w.e.get(token, dashboard.RouteRecords+"?perPage=200&block="+block)
			if code != http.StatusOK {
				t.Fatalf("records: got %d %s, want 200", code, body)
			}
			var r dashboard.Records
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
			var shown []string
			for _, it := range r.Items {
				shown = append(shown, it.PersonCodes...)
			}
			logged := map[string]bool{}
			for _, row := range accessRows(t, w)[len(before):] {
				if row.User != w.supA.Id || row.Action != accesslog.ActionList {
					t.Errorf("access row: got user %q action %q, want %q %q", row.User, row.Action, w.supA.Id, accesslog.ActionList)
				}
				logged[row.Code] = true
			}
			if len(shown) == 0 && block != "conflicts" {
				t.Fatalf("block %s shows no person code: the world does not exercise it", block)
			}
			for _, c := range shown {
				if !logged[c] {
					t.Errorf("code %s shown by %s: got no access log row, want one", c, block)
				}
			}
			if len(logged) > len(slices.Compact(slices.Sorted(slices.Values(shown)))) {
				t.Errorf("logged %d persons, want at most the %d shown", len(logged), len(shown))
			}
		})
	}
}

type accessRow struct {
	ID     string `db:"id"`
	User   string `db:"user"`
	Action string `db:"action"`
	Code   string `db:"code"`
}

// accessRows returns the access log with the code of each row's person, in
// the order written.
func accessRows(t *testing.T, w *world) []accessRow {
	t.Helper()
	var rows []accessRow
	err := w.e.app.DB().NewQuery(`SELECT a.id, a.user, a.action, coalesce(p.code, '') AS code FROM ` + accesslog.Collection + ` a
		LEFT JOIN persons p ON p.id = a.person ORDER BY a.id`).Bind(dbx.Params{}).All(&rows)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestCheckSilentAfter(t *testing.T) {
	for _, tc := range []struct {
		d  time.Duration
		ok bool
	}{
		{48 * time.Hour, true}, {time.Hour, true}, {720 * time.Hour, true},
		{0, false}, {30 * time.Minute, false}, {721 * time.Hour, false}, {90 * time.Minute, false}, {-time.Hour, false},
	} {
		err := dashboard.CheckSilentAfter(tc.d)
		if (err == nil) != tc.ok {
			t.Errorf("CheckSilentAfter(%s): got error %v, want ok %v", tc.d, err, tc.ok)
		}
	}
}
