package dashboard_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"strada/internal/apptest"
	"strada/internal/dashboard"
	"strada/internal/domain"
)

func TestAccessAndScope(t *testing.T) {
	w := newWorld(t, 2)
	supA, supB := tokenOf(t, w.supA), tokenOf(t, w.supB)
	worker := tokenOf(t, w.workerA)
	admin := apptest.Token(t, w.e.app, apptest.Admin)
	routes := []string{
		dashboard.RouteSummary + "?period=month",
		dashboard.RouteRecords + "?block=" + dashboard.BlockCampVisits,
		dashboard.RouteExport + "?month=2026-01",
		dashboard.RouteStream,
	}
	for _, r := range routes {
		for _, c := range []struct {
			who, token string
			code       int
			errCode    string
		}{
			{"signed out", "", http.StatusUnauthorized, dashboard.CodeUnauthorized},
			{"worker", worker, http.StatusForbidden, dashboard.CodeForbidden},
			{"superuser", admin, http.StatusForbidden, dashboard.CodeForbidden},
		} {
			code, body := w.e.get(c.token, r)
			var er dashboard.Error
			_ = json.Unmarshal(body, &er)
			if code != c.code || er.Code != c.errCode {
				t.Errorf("%s %s: got %d %s, want %d %s", c.who, r, code, body, c.code, c.errCode)
			}
		}
	}

	// A team, site or worker of another team answers as one that does not
	// exist.
	otherSite, otherWorker := "", w.workers[w.teams[2]][0]
	for _, s := range w.sites {
		if s.team == w.teams[2] {
			otherSite = s.id
		}
	}
	for _, c := range []struct{ param, other, missing string }{
		{"team", w.teams[2], "zzzzzzzzzzzzzzz"},
		{"site", otherSite, "zzzzzzzzzzzzzzz"},
		{"worker", otherWorker, "zzzzzzzzzzzzzzz"},
	} {
		for _, route := range []string{dashboard.RouteSummary + "?", dashboard.RouteRecords + "?block=feed&", dashboard.RouteExport + "?month=2026-01&"} {
			code1, body1 := w.e.get(supA, route+c.param+"="+c.other)
			code2, body2 := w.e.get(supA, route+c.param+"="+c.missing)
			if code1 != http.StatusNotFound || code1 != code2 || !bytes.Equal(body1, body2) {
				t.Errorf("%s of another team %s: got %d %s, want the answer to a missing one: %d %s", c.param, route, code1, body1, code2, body2)
			}
		}
	}

	// A supervisor of one team sees nothing of another.
	code, bodyB := w.e.get(supB, dashboard.RouteSummary+"?period=month")
	if code != http.StatusOK {
		t.Fatalf("supervisor B: got %d %s", code, bodyB)
	}
	var ids []string
	for _, team := range w.teams[:2] {
		ids = append(ids, team)
		ids = append(ids, w.workers[team]...)
	}
	for _, p := range w.persons {
		if p.team != w.teams[2] {
			ids = append(ids, p.id, p.code)
		}
	}
	for _, v := range w.visits {
		if v.team != w.teams[2] {
			ids = append(ids, v.id)
		}
	}
	for _, c := range w.contacts {
		if c.team != w.teams[2] {
			ids = append(ids, c.id)
		}
	}
	for _, r := range w.refs {
		if r.team != w.teams[2] {
			ids = append(ids, r.id)
		}
	}
	for _, s := range w.sites {
		if s.team != w.teams[2] {
			ids = append(ids, s.id)
		}
	}
	blocks := []string{"", dashboard.BlockCampVisits, dashboard.BlockContacts, dashboard.BlockPersons, dashboard.BlockReferrals,
		dashboard.BlockOverdue, dashboard.BlockOfflineLag, dashboard.BlockConflicts, dashboard.BlockDevices, dashboard.BlockFeed}
	for _, b := range blocks {
		body := bodyB
		if b != "" {
			_, body = w.e.get(supB, dashboard.RouteRecords+"?period=month&perPage=200&block="+b)
		}
		for _, id := range ids {
			if bytes.Contains(body, []byte(`"`+id+`"`)) {
				t.Errorf("supervisor of team 2, block %q: answer holds %s of another team", b, id)
			}
		}
	}
	// ...and the other supervisor's answer holds them, so the check can
	// fail.
	_, bodyA := w.e.get(supA, dashboard.RouteSummary+"?period=month")
	if !bytes.Contains(bodyA, []byte(`"`+w.teams[0]+`"`)) {
		t.Fatalf("supervisor A's summary lacks their own team")
	}
	// No names or free text of persons anywhere.
	for _, b := range append(blocks, "export") {
		body := bodyA
		switch b {
		case "export":
			_, body = w.e.get(supA, dashboard.RouteExport+"?month="+w.now.Format("2006-01"))
		case "":
		default:
			_, body = w.e.get(supA, dashboard.RouteRecords+"?period=month&perPage=200&block="+b)
		}
		for _, s := range []string{"Nome", "motivo", `"x"`, `"y"`} {
			if bytes.Contains(body, []byte(s)) {
				t.Errorf("block %q holds %s", b, s)
			}
		}
	}
}

func TestBadInputIsRefused(t *testing.T) {
	e := newEnv(t, time.Now())
	sup := apptest.Token(t, e.app, apptest.Supervisor)
	for _, c := range []struct {
		path, code, field string
	}{
		{dashboard.RouteSummary + "?period=year", dashboard.CodeInvalidFilter, "period"},
		{dashboard.RouteSummary + "?from=2026-13-01&to=2026-12-01", dashboard.CodeInvalidFilter, "from"},
		{dashboard.RouteSummary + "?from=2026-02-01&to=2026-01-01", dashboard.CodeInvalidFilter, "to"},
		{dashboard.RouteSummary + "?from=2020-01-01&to=2026-01-01", dashboard.CodeInvalidFilter, "to"},
		{dashboard.RouteSummary + "?from=2026-01-01", dashboard.CodeInvalidFilter, "to"},
		{dashboard.RouteSummary + "?silentHours=0", dashboard.CodeInvalidFilter, "silentHours"},
		{dashboard.RouteRecords + "?block=nope", dashboard.CodeInvalidBlock, "block"},
		{dashboard.RouteRecords + "?block=persons_not_seen&days=45", dashboard.CodeInvalidFilter, "days"},
		{dashboard.RouteRecords + "?block=camp_visits&perPage=1000", dashboard.CodeInvalidFilter, "perPage"},
		{dashboard.RouteRecords + "?block=camp_visits&window=next", dashboard.CodeInvalidFilter, "window"},
		{dashboard.RouteRecords + "?block=referrals&status=lost", dashboard.CodeInvalidFilter, "status"},
		{dashboard.RouteExport + "?month=2026-13", dashboard.CodeInvalidMonth, "month"},
		{dashboard.RouteExport + "?month=26-01", dashboard.CodeInvalidMonth, "month"},
		{dashboard.RouteExport, dashboard.CodeInvalidMonth, "month"},
	} {
		code, body := e.get(sup, c.path)
		var er dashboard.Error
		if err := json.Unmarshal(body, &er); err != nil || code != http.StatusBadRequest || er.Code != c.code || er.Field != c.field {
			t.Errorf("%s: got %d %s, want 400 %s on %s", c.path, code, body, c.code, c.field)
		}
	}
}

func TestDrillDownListsTheRecordsBehindEachNumber(t *testing.T) {
	w := newWorld(t, 3)
	token := tokenOf(t, w.supA)
	f := scopeF{teams: w.teams[:2]}
	s := w.e.summary(token, "period=month")
	cur, prev := windows("month", w.now)

	all := func(query string) (int, []dashboard.Item) {
		var items []dashboard.Item
		total := -1
		for page := 1; ; page++ {
			code, body := w.e.get(token, dashboard.RouteRecords+"?period=month&perPage=7&page="+strconv.Itoa(page)+"&"+query)
			if code != http.StatusOK {
				t.Fatalf("%s: got %d %s", query, code, body)
			}
			var r dashboard.Records
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
			total = r.Total
			items = append(items, r.Items...)
			if len(r.Items) < 7 {
				return total, items
			}
		}
	}
	idsOf := func(items []dashboard.Item) []string {
		var out []string
		for _, it := range items {
			out = append(out, it.ID)
		}
		return sorted(out)
	}

	overdue, _ := w.expectOverdue(f)
	var visitIDs, intraIDs, sentIDs, stuckIDs, outcomeIDs []string
	for _, v := range w.visits {
		if slices.Contains(f.teams, v.team) && in(v.at, prev) {
			visitIDs = append(visitIDs, v.id)
		}
	}
	for _, c := range w.contacts {
		if slices.Contains(f.teams, c.team) && in(c.at, cur) && c.setting == "intra" {
			intraIDs = append(intraIDs, c.id)
		}
	}
	rx := w.expectReferrals(f, cur, prev)
	for _, r := range w.refs {
		if !w.refOK(f, r) {
			continue
		}
		if r.status == domain.StatusSent {
			sentIDs = append(sentIDs, r.id)
			if r.events[len(r.events)-1].at.Before(w.now.Add(-14 * 24 * time.Hour)) {
				stuckIDs = append(stuckIDs, r.id)
			}
		}
		last := r.events[len(r.events)-1]
		if slices.Contains(final, last.to) && in(last.at, cur) {
			outcomeIDs = append(outcomeIDs, r.id)
		}
	}
	for _, c := range []struct {
		query  string
		number int
		want   []string
	}{
		{"block=camp_visits&window=previous", s.Activity.Previous.CampVisits, visitIDs},
		{"block=contacts&setting=intra", sum(s.Activity.Current.ContactsByInstitute, func(i dashboard.InstituteCount) int { return i.Intra }), intraIDs},
		{"block=referrals&status=sent", rx.byStatus[domain.StatusSent], sentIDs},
		{"block=referrals_stuck", s.Referrals.StuckSent, stuckIDs},
		{"block=referral_outcomes", sum(s.Referrals.Outcomes.Current, func(c dashboard.CategoryCount) int { return c.Count }), outcomeIDs},
		{"block=overdue&kind=visit", s.Overdue.Visits, overdue[dashboard.OverdueVisit]},
		{"block=overdue&kind=contact", s.Overdue.Contacts, overdue[dashboard.OverdueContact]},
		{"block=overdue&kind=referral", s.Overdue.Referrals, overdue[dashboard.OverdueReferral]},
	} {
		total, items := all(c.query)
		if total != c.number || len(items) != c.number {
			t.Errorf("%s: got total %d and %d items, want the summary's %d", c.query, total, len(items), c.number)
		}
		if got, want := idsOf(items), sorted(c.want); !slices.Equal(got, want) {
			t.Errorf("%s: got ids %v, want %v", c.query, got, want)
		}
	}
	// Counts without a Go list of their own: the block's total is the
	// summary's number.
	for _, c := range []struct {
		query  string
		number int
	}{
		{"block=persons", s.Caseload.Followed},
		{"block=persons_new", s.Caseload.NewThisWeek},
		{"block=persons_not_seen&days=30", s.Caseload.NotSeen30},
		{"block=persons_not_seen&days=60", s.Caseload.NotSeen60},
		{"block=persons_not_seen&days=90", s.Caseload.NotSeen90},
		{"block=camp_visits&category=health", s.Activity.Current.Topics[slices.Index(domain.VisitTopics, "health")].Count},
		{"block=contacts&category=residence", s.Activity.Current.Requests[slices.Index(domain.ContactRequests, "residence")].Count},
		{"block=conflicts", s.Conflicts.Open},
		{"block=devices&silent=true", s.Devices.Silent},
		{"block=offline_lag", sum(s.OfflineLag, func(d dashboard.LagDay) int { return d.Records })},
	} {
		total, items := all(c.query)
		if total != c.number || len(items) != c.number {
			t.Errorf("%s: got total %d and %d items, want the summary's %d", c.query, total, len(items), c.number)
		}
	}
	// Person codes, never names, come with the records.
	_, items := all("block=overdue&kind=contact")
	for _, it := range items {
		if len(it.PersonCodes) != 1 || !strings.HasPrefix(it.PersonCodes[0], "P-") {
			t.Errorf("overdue contact %s: got person codes %v, want one code", it.ID, it.PersonCodes)
		}
	}
}

func sum[T any](list []T, f func(T) int) int {
	n := 0
	for _, v := range list {
		n += f(v)
	}
	return n
}

func TestExportMatchesTheRecords(t *testing.T) {
	w := newWorld(t, 4)
	token := tokenOf(t, w.supA)
	month := w.now.In(rome).Format("2006-01")
	code, body := w.e.get(token, dashboard.RouteExport+"?month="+month)
	if code != http.StatusOK {
		t.Fatalf("export: got %d %s", code, body)
	}
	if !bytes.HasPrefix(body, []byte("\xEF\xBB\xBF")) {
		t.Fatalf("export: got no byte order mark, want UTF-8 with BOM")
	}
	if n, crlf := bytes.Count(body, []byte("\n")), bytes.Count(body, []byte("\r\n")); n == 0 || n != crlf {
		t.Fatalf("export: got %d line ends of which %d CRLF, want all CRLF", n, crlf)
	}
	r := csv.NewReader(bytes.NewReader(body[3:]))
	r.Comma = ';'
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("parse export: %v", err)
	}
	if !slices.Equal(rows[0], dashboard.ExportHeader) {
		t.Fatalf("header: got %v, want %v", rows[0], dashboard.ExportHeader)
	}
	got := map[string]int{}
	for _, row := range rows[1:] {
		n, err := strconv.Atoi(row[6])
		if err != nil || row[0] != month {
			t.Fatalf("row %v: bad month or count", row)
		}
		got[row[2]+"|"+row[4]+"|"+row[5]] += n
	}

	first := time.Date(w.now.In(rome).Year(), w.now.In(rome).Month(), 1, 0, 0, 0, 0, rome)
	win := [2]time.Time{first, first.AddDate(0, 1, 0)}
	names := map[string]string{}
	for _, s := range w.sites {
		rec, err := w.e.app.FindRecordById(domain.Sites, s.id)
		if err != nil {
			t.Fatal(err)
		}
		name := rec.GetString("name")
		if strings.HasPrefix(name, "=") {
			name = "'" + name
		}
		names[s.id] = name
	}
	want := map[string]int{}
	add := func(site, activity, category string, n int) {
		if n != 0 {
			want[names[site]+"|"+activity+"|"+category] += n
		}
	}
	labels := map[string]string{"intra": "intra murario", "extra": "extra murario", "health": "salute", "documents": "documenti",
		"school": "scuola", "work_training": "lavoro e formazione", "housing": "casa", "legal": "questioni legali",
		"basic_needs": "bisogni primari", "other": "altro"}
	reqLabels := map[string]string{"identity_documents": "documenti d’identità", "residence": "residenza", "residence_permit": "permesso di soggiorno",
		"pension_benefits": "pensione e sussidi", "family_contact": "contatti con la famiglia", "housing_on_release": "casa all’uscita",
		"work_training": "lavoro e formazione", "health_addiction": "salute e dipendenze", "legal_aid": "assistenza legale", "other": "altro"}
	catLabels := map[string]string{"immigration": "immigrazione", "reception": "accoglienza", "minors": "minori", "mediation": "mediazione culturale",
		"detainees": "detenuti ed ex detenuti", "work_inclusion": "inserimento lavorativo", "health_addiction": "salute e dipendenze", "other": "altro"}
	scope := w.teams[:2]
	for _, v := range w.visits {
		if slices.Contains(scope, v.team) && in(v.at, win) {
			add(v.site, dashboard.ExportVisits, dashboard.ExportTotal, 1)
			add(v.site, dashboard.ExportHouseholds, dashboard.ExportTotal, v.households)
			for _, tp := range v.topics {
				add(v.site, dashboard.ExportTopics, labels[tp], 1)
			}
		}
	}
	for _, c := range w.contacts {
		if slices.Contains(scope, c.team) && in(c.at, win) {
			add(c.site, dashboard.ExportContacts, labels[c.setting], 1)
			for _, rq := range c.requests {
				add(c.site, dashboard.ExportRequests, reqLabels[rq], 1)
			}
		}
	}
	for _, rf := range w.refs {
		if slices.Contains(scope, rf.team) && in(rf.created, win) {
			add(w.personSite(rf.person), dashboard.ExportReferrals, catLabels[w.services[rf.service]], 1)
		}
	}
	for _, p := range w.persons {
		if slices.Contains(scope, p.team) && in(p.created, win) {
			add(p.site, dashboard.ExportPersons, dashboard.ExportTotal, 1)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("export counts:\ngot  %v\nwant %v", got, want)
	}
	if len(want) == 0 {
		t.Fatal("the world has no work this month")
	}
	// A site name with the separator and quotes is quoted, and one that
	// starts like a formula is kept inert.
	if !bytes.Contains(body, []byte(`"'=Sede; ""0"""`)) && got[names[w.sites[0].id]+"|"+dashboard.ExportVisits+"|"+dashboard.ExportTotal] > 0 {
		t.Errorf("export: got no quoted, inert name for %q", names[w.sites[0].id])
	}
}
