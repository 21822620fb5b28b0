package dashboard_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"strada/internal/apptest"
	"strada/internal/dashboard"
)

// fieldWorkScan matches a query plan step that reads a whole table (or a
// whole index) of field work or the change log, by name or by the aliases
// the dashboard's SQL gives them.
var fieldWorkScan = regexp.MustCompile(`^SCAN (camp_visits|secretariat_contacts|referrals|referral_events|persons|strada_changes|dashboard_counts|dashboard_lag|dashboard_seen|v|x|c|n|r|ev|p|ps|pc|k|s)\b`)

func TestSummaryQueriesUseIndexes(t *testing.T) {
	app := apptest.New(t)
	teams := []string{apptest.Team(t, app, "prison_secretariat"), apptest.Team(t, app, "camp_outreach")}
	site, err := app.FindFirstRecordByData("sites", "kind", "camp")
	if err != nil {
		t.Fatal(err)
	}
	worker := apptest.User(t, app, apptest.CampWorker).Id
	for _, f := range []struct{ site, worker string }{{"", ""}, {site.Id, ""}, {"", worker}} {
		for _, q := range dashboard.SummaryQueries(time.Now(), teams, f.site, f.worker) {
			var steps []struct {
				Detail string `db:"detail"`
			}
			if err := app.DB().NewQuery("EXPLAIN QUERY PLAN " + q.SQL).Bind(q.Params).All(&steps); err != nil {
				t.Fatalf("%s: %v", q.Name, err)
			}
			var plan []string
			for _, s := range steps {
				plan = append(plan, s.Detail)
			}
			for _, s := range plan {
				// json_each is a virtual table over one record's array.
				if fieldWorkScan.MatchString(s) && !strings.Contains(s, "VIRTUAL TABLE") {
					t.Errorf("%s (site %q, worker %q): got a full scan %q, want index searches; plan:\n%s", q.Name, f.site, f.worker, s, strings.Join(plan, "\n"))
				}
			}
		}
	}
}
