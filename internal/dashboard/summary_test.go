package dashboard_test

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"

	"strada/internal/changelog"
	"strada/internal/dashboard"
	"strada/internal/domain"
)

// The expected numbers, counted in Go over the generated world.

var rome, _ = time.LoadLocation("Europe/Rome")

type scopeF struct {
	teams        []string
	site, worker string
}

func midnight(t time.Time) time.Time {
	t = t.In(rome)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, rome)
}

// windows returns the current and previous window of a period.
func windows(kind string, now time.Time) (cur, prev [2]time.Time) {
	today := midnight(now)
	switch kind {
	case "today":
		return [2]time.Time{today, today.AddDate(0, 0, 1)}, [2]time.Time{today.AddDate(0, 0, -1), today}
	case "month":
		first := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, rome)
		return [2]time.Time{first, first.AddDate(0, 1, 0)}, [2]time.Time{first.AddDate(0, -1, 0), first}
	}
	wd := int(today.Weekday()+6) % 7
	mon := time.Date(today.Year(), today.Month(), today.Day()-wd, 0, 0, 0, 0, rome)
	return [2]time.Time{mon, mon.AddDate(0, 0, 7)}, [2]time.Time{mon.AddDate(0, 0, -7), mon}
}

func in(t time.Time, w [2]time.Time) bool { return !t.Before(w[0]) && t.Before(w[1]) }

func (w *world) siteOK(f scopeF, site string) bool { return f.site == "" || f.site == site }
func (w *world) workerOK(f scopeF, worker string) bool {
	return f.worker == "" || f.worker == worker
}

func (w *world) personSite(id string) string {
	for _, p := range w.persons {
		if p.id == id {
			return p.site
		}
	}
	return ""
}

func (w *world) expectActivity(f scopeF, win [2]time.Time) dashboard.Activity {
	var a dashboard.Activity
	camps := map[string]*dashboard.CampCount{}
	topics := map[string]int{}
	for _, v := range w.visits {
		if !slices.Contains(f.teams, v.team) || !w.siteOK(f, v.site) || !w.workerOK(f, v.worker) || !in(v.at, win) {
			continue
		}
		a.CampVisits++
		a.HouseholdsMet += v.households
		c := camps[v.site]
		if c == nil {
			c = &dashboard.CampCount{Site: v.site}
			camps[v.site] = c
		}
		c.Visits++
		c.HouseholdsMet += v.households
		for _, t := range v.topics {
			topics[t]++
		}
	}
	inst := map[string]*dashboard.InstituteCount{}
	requests := map[string]int{}
	for _, c := range w.contacts {
		if !slices.Contains(f.teams, c.team) || !w.siteOK(f, c.site) || !w.workerOK(f, c.worker) || !in(c.at, win) {
			continue
		}
		a.Contacts++
		ic := inst[c.site]
		if ic == nil {
			ic = &dashboard.InstituteCount{Site: c.site}
			inst[c.site] = ic
		}
		ic.Total++
		if c.setting == "intra" {
			ic.Intra++
		} else {
			ic.Extra++
		}
		for _, r := range c.requests {
			requests[r]++
		}
	}
	for _, c := range camps {
		a.VisitsByCamp = append(a.VisitsByCamp, *c)
	}
	for _, c := range inst {
		a.ContactsByInstitute = append(a.ContactsByInstitute, *c)
	}
	for _, t := range domain.VisitTopics {
		a.Topics = append(a.Topics, dashboard.CategoryCount{Category: t, Count: topics[t]})
	}
	for _, r := range domain.ContactRequests {
		a.Requests = append(a.Requests, dashboard.CategoryCount{Category: r, Count: requests[r]})
	}
	return a
}

func (w *world) expectCaseload(f scopeF) dashboard.Caseload {
	var c dashboard.Caseload
	last := map[string]time.Time{}
	seen := func(p string, t time.Time) {
		if t.After(last[p]) {
			last[p] = t
		}
	}
	for _, v := range w.visits {
		if slices.Contains(f.teams, v.team) {
			for _, p := range v.persons {
				seen(p, v.at)
			}
		}
	}
	for _, x := range w.contacts {
		if slices.Contains(f.teams, x.team) {
			seen(x.person, x.at)
		}
	}
	for _, r := range w.refs {
		if slices.Contains(f.teams, r.team) {
			seen(r.person, r.created)
		}
	}
	wd := int(midnight(w.now).Weekday()+6) % 7
	week := midnight(w.now).AddDate(0, 0, -wd)
	for _, p := range w.persons {
		if !slices.Contains(f.teams, p.team) || !w.siteOK(f, p.site) || !w.workerOK(f, p.worker) {
			continue
		}
		c.Followed++
		if !p.created.Before(week) {
			c.NewThisWeek++
		}
		seen(p.id, p.created)
		l := last[p.id]
		for _, n := range []struct {
			days int
			dst  *int
		}{{30, &c.NotSeen30}, {60, &c.NotSeen60}, {90, &c.NotSeen90}} {
			if l.Before(w.now.AddDate(0, 0, -n.days)) {
				*n.dst++
			}
		}
	}
	return c
}

var final = []string{domain.StatusCompleted, domain.StatusDeclined, domain.StatusCancelled}

func (w *world) refOK(f scopeF, r gReferral) bool {
	return slices.Contains(f.teams, r.team) && w.workerOK(f, r.worker) && w.siteOK(f, w.personSite(r.person))
}

type refExpect struct {
	total     int
	byStatus  map[string]int
	byService map[string][2]int // total, open
	stuck     int
	outcomes  [2]map[string]int
}

func (w *world) expectReferrals(f scopeF, cur, prev [2]time.Time) refExpect {
	x := refExpect{byStatus: map[string]int{}, byService: map[string][2]int{}, outcomes: [2]map[string]int{{}, {}}}
	for _, r := range w.refs {
		if !w.refOK(f, r) {
			continue
		}
		x.total++
		x.byStatus[r.status]++
		s := x.byService[r.service]
		s[0]++
		if !slices.Contains(final, r.status) {
			s[1]++
		}
		x.byService[r.service] = s
		if r.status == domain.StatusSent {
			var sent time.Time
			for _, ev := range r.events {
				if ev.to == domain.StatusSent {
					sent = ev.at
				}
			}
			if sent.Before(w.now.Add(-14 * 24 * time.Hour)) {
				x.stuck++
			}
		}
		for _, ev := range r.events {
			if slices.Contains(final, ev.to) {
				for i, win := range [][2]time.Time{cur, prev} {
					if in(ev.at, win) {
						x.outcomes[i][ev.to]++
					}
				}
			}
		}
	}
	return x
}

// expectOverdue returns the overdue items' ids by kind and by worker.
func (w *world) expectOverdue(f scopeF) (map[string][]string, map[string]int) {
	today := midnight(w.now).Format(time.DateOnly)
	since := midnight(w.now).AddDate(0, 0, -dashboard.OverdueLookbackDays).Format(time.DateOnly)
	ids := map[string][]string{}
	byWorker := map[string]int{}
	add := func(kind, id, worker string) {
		ids[kind] = append(ids[kind], id)
		byWorker[worker]++
	}
	for _, v := range w.visits {
		if !slices.Contains(f.teams, v.team) || !w.siteOK(f, v.site) || !w.workerOK(f, v.worker) || v.followUp < since || v.followUp >= today {
			continue
		}
		later := false
		for _, o := range w.visits {
			if o.team == v.team && o.site == v.site && o.at.After(v.at) {
				later = true
			}
		}
		if !later {
			add(dashboard.OverdueVisit, v.id, v.worker)
		}
	}
	for _, c := range w.contacts {
		if !slices.Contains(f.teams, c.team) || !w.siteOK(f, c.site) || !w.workerOK(f, c.worker) || c.followUp < since || c.followUp >= today {
			continue
		}
		later := false
		for _, o := range w.contacts {
			if o.person == c.person && o.at.After(c.at) {
				later = true
			}
		}
		if !later {
			add(dashboard.OverdueContact, c.id, c.worker)
		}
	}
	for _, r := range w.refs {
		if w.refOK(f, r) && !slices.Contains(final, r.status) && r.due != "" && r.due < today {
			add(dashboard.OverdueReferral, r.id, r.worker)
		}
	}
	return ids, byWorker
}

// expectLag computes the offline lag per day from the change log rows.
func (w *world) expectLag(t *testing.T, f scopeF, cur [2]time.Time) map[string]dashboard.LagDay {
	entries, err := changelog.Since(w.e.app, 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]dashboard.LagDay{}
	sums := map[string]int64{}
	for _, en := range entries {
		if en.Op != changelog.OpCreate || !domain.IsFieldWork(en.Collection) || !slices.Contains(f.teams, en.Team) || !in(en.At, cur) {
			continue
		}
		if (f.site != "" && en.Site != f.site) || (f.worker != "" && en.Actor.User != f.worker) {
			continue
		}
		sec, nsec := uuid.MustParse(en.RecordID).Time().UnixTime()
		made := time.Unix(sec, nsec).UnixMilli()
		lag := en.At.Round(time.Millisecond).UnixMilli() - made
		day := en.At.In(rome).Format(time.DateOnly)
		d := out[day]
		d.Day = day
		d.Records++
		if lag < 0 {
			d.Ahead++
			lag = 0
		}
		if lag > 3600000 {
			d.Over1h++
		}
		if lag > 86400000 {
			d.Over24h++
		}
		d.MaxSeconds = math.Max(d.MaxSeconds, float64(lag)/1000)
		sums[day] += lag
		out[day] = d
	}
	for day, d := range out {
		d.AvgSeconds = float64(sums[day]) / float64(d.Records) / 1000
		out[day] = d
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func TestSummaryCountsMatchTheRecords(t *testing.T) {
	w := newWorld(t, 1)
	token := tokenOf(t, w.supA)
	campSite := ""
	for _, s := range w.sites {
		if s.team == w.teams[0] && s.kind == "camp" {
			campSite = s.id
		}
	}
	prisonSite := ""
	for _, s := range w.sites {
		if s.team == w.teams[1] && s.kind == "prison" {
			prisonSite = s.id
		}
	}
	cur, _ := windows("week", w.now)
	cases := []struct {
		name  string
		query string
		f     scopeF
		kind  string
	}{
		{"week", "period=week", scopeF{teams: w.teams[:2]}, "week"},
		{"month", "period=month", scopeF{teams: w.teams[:2]}, "month"},
		{"today", "period=today", scopeF{teams: w.teams[:2]}, "today"},
		{"one team", "period=month&team=" + w.teams[1], scopeF{teams: w.teams[1:2]}, "month"},
		{"camp site", "period=month&site=" + campSite, scopeF{teams: w.teams[:2], site: campSite}, "month"},
		{"prison site", "period=week&site=" + prisonSite, scopeF{teams: w.teams[:2], site: prisonSite}, "week"},
		{"worker", "period=month&worker=" + w.workerA.Id, scopeF{teams: w.teams[:2], worker: w.workerA.Id}, "month"},
		{"custom", fmt.Sprintf("from=%s&to=%s", cur[0].AddDate(0, 0, -20).Format(time.DateOnly), cur[0].AddDate(0, 0, 6).Format(time.DateOnly)), scopeF{teams: w.teams[:2]}, "custom"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := w.e.summary(token, tc.query)
			var cur, prev [2]time.Time
			if tc.kind == "custom" {
				from, _ := time.ParseInLocation(time.DateOnly, s.Period.From, rome)
				to, _ := time.ParseInLocation(time.DateOnly, s.Period.To, rome)
				days := int(math.Round(to.Sub(from).Hours()/24)) + 1
				cur = [2]time.Time{from, to.AddDate(0, 0, 1)}
				prev = [2]time.Time{from.AddDate(0, 0, -days), from}
				if days != 27 {
					t.Fatalf("custom period: got %d days, want 27", days)
				}
			} else {
				cur, prev = windows(tc.kind, w.now)
			}
			if got, want := s.Period.From, cur[0].Format(time.DateOnly); got != want {
				t.Fatalf("period from: got %s, want %s", got, want)
			}
			if got, want := s.Period.PreviousFrom, prev[0].Format(time.DateOnly); got != want {
				t.Fatalf("previous from: got %s, want %s", got, want)
			}
			if !slices.Equal(sorted(s.Filters.Teams), sorted(tc.f.teams)) {
				t.Fatalf("teams: got %v, want %v", s.Filters.Teams, tc.f.teams)
			}
			checkActivity(t, "current", s.Activity.Current, w.expectActivity(tc.f, cur))
			checkActivity(t, "previous", s.Activity.Previous, w.expectActivity(tc.f, prev))
			if want := w.expectCaseload(tc.f); s.Caseload != want {
				t.Errorf("caseload: got %+v, want %+v", s.Caseload, want)
			}
			checkReferrals(t, s.Referrals, w.expectReferrals(tc.f, cur, prev))
			ids, byWorker := w.expectOverdue(tc.f)
			if s.Overdue.Visits != len(ids[dashboard.OverdueVisit]) || s.Overdue.Contacts != len(ids[dashboard.OverdueContact]) || s.Overdue.Referrals != len(ids[dashboard.OverdueReferral]) {
				t.Errorf("overdue: got %d visits %d contacts %d referrals, want %d %d %d", s.Overdue.Visits, s.Overdue.Contacts, s.Overdue.Referrals,
					len(ids[dashboard.OverdueVisit]), len(ids[dashboard.OverdueContact]), len(ids[dashboard.OverdueReferral]))
			}
			gotWorker := map[string]int{}
			for _, bw := range s.Overdue.ByWorker {
				gotWorker[bw.Worker] = bw.Total
			}
			if fmt.Sprint(gotWorker) != fmt.Sprint(byWorker) {
				t.Errorf("overdue by worker: got %v, want %v", gotWorker, byWorker)
			}
			wantLag := w.expectLag(t, tc.f, cur)
			for _, d := range s.OfflineLag {
				want := wantLag[d.Day]
				want.Day = d.Day
				if d.Records != want.Records || d.Over1h != want.Over1h || d.Over24h != want.Over24h || d.Ahead != want.Ahead ||
					math.Abs(d.MaxSeconds-want.MaxSeconds) > 0.0015 || math.Abs(d.AvgSeconds-want.AvgSeconds) > 0.0015 {
					t.Errorf("offline lag of %s: got %+v, want %+v", d.Day, d, want)
				}
				delete(wantLag, d.Day)
			}
			if len(wantLag) != 0 {
				t.Errorf("offline lag: days missing from the summary: %v", wantLag)
			}
			checkConflictsAndDevices(t, w, tc.f, s)
			if tc.name == "month" {
				// The world exercises every number: none of them is zero.
				lagOver24h := 0
				for _, d := range s.OfflineLag {
					lagOver24h += d.Over24h
				}
				outcomes := 0
				for _, c := range s.Referrals.Outcomes.Current {
					outcomes += c.Count
				}
				for name, n := range map[string]int{
					"visits": s.Activity.Current.CampVisits, "contacts": s.Activity.Current.Contacts,
					"previous visits": s.Activity.Previous.CampVisits, "households": s.Activity.Current.HouseholdsMet,
					"new this week": s.Caseload.NewThisWeek, "not seen 30": s.Caseload.NotSeen30, "not seen 90": s.Caseload.NotSeen90,
					"stuck": s.Referrals.StuckSent, "outcomes": outcomes, "overdue visits": s.Overdue.Visits,
					"overdue contacts": s.Overdue.Contacts, "overdue referrals": s.Overdue.Referrals,
					"lag over 24h": lagOver24h, "open conflicts": s.Conflicts.Open, "silent devices": s.Devices.Silent, "feed": len(s.Feed),
				} {
					if n == 0 {
						t.Errorf("%s: got 0, want a world that exercises it", name)
					}
				}
			}
		})
	}
}

func checkActivity(t *testing.T, which string, got, want dashboard.Activity) {
	t.Helper()
	if got.CampVisits != want.CampVisits || got.HouseholdsMet != want.HouseholdsMet || got.Contacts != want.Contacts {
		t.Errorf("%s activity: got %d visits %d households %d contacts, want %d %d %d", which,
			got.CampVisits, got.HouseholdsMet, got.Contacts, want.CampVisits, want.HouseholdsMet, want.Contacts)
	}
	bySite := func(l []dashboard.CampCount) map[string]dashboard.CampCount {
		m := map[string]dashboard.CampCount{}
		for _, c := range l {
			m[c.Site] = c
		}
		return m
	}
	if fmt.Sprint(bySite(got.VisitsByCamp)) != fmt.Sprint(bySite(want.VisitsByCamp)) {
		t.Errorf("%s visits by camp: got %v, want %v", which, got.VisitsByCamp, want.VisitsByCamp)
	}
	byInst := func(l []dashboard.InstituteCount) map[string]dashboard.InstituteCount {
		m := map[string]dashboard.InstituteCount{}
		for _, c := range l {
			m[c.Site] = c
		}
		return m
	}
	if fmt.Sprint(byInst(got.ContactsByInstitute)) != fmt.Sprint(byInst(want.ContactsByInstitute)) {
		t.Errorf("%s contacts by institute: got %v, want %v", which, got.ContactsByInstitute, want.ContactsByInstitute)
	}
	if !slices.Equal(got.Topics, want.Topics) {
		t.Errorf("%s topics: got %v, want %v", which, got.Topics, want.Topics)
	}
	if !slices.Equal(got.Requests, want.Requests) {
		t.Errorf("%s requests: got %v, want %v", which, got.Requests, want.Requests)
	}
}

func checkReferrals(t *testing.T, got dashboard.Referrals, want refExpect) {
	t.Helper()
	if got.Total != want.total || got.StuckSent != want.stuck {
		t.Errorf("referrals: got total %d stuck %d, want %d %d", got.Total, got.StuckSent, want.total, want.stuck)
	}
	for _, c := range got.ByStatus {
		if c.Count != want.byStatus[c.Category] {
			t.Errorf("referrals %s: got %d, want %d", c.Category, c.Count, want.byStatus[c.Category])
		}
	}
	gotSvc := map[string][2]int{}
	for _, s := range got.ByService {
		gotSvc[s.Service] = [2]int{s.Total, s.Open}
	}
	if fmt.Sprint(gotSvc) != fmt.Sprint(want.byService) {
		t.Errorf("referrals by service: got %v, want %v", gotSvc, want.byService)
	}
	for i, list := range [][]dashboard.CategoryCount{got.Outcomes.Current, got.Outcomes.Previous} {
		for _, c := range list {
			if c.Count != want.outcomes[i][c.Category] {
				t.Errorf("outcomes %d %s: got %d, want %d", i, c.Category, c.Count, want.outcomes[i][c.Category])
			}
		}
	}
}

func checkConflictsAndDevices(t *testing.T, w *world, f scopeF, s dashboard.Summary) {
	t.Helper()
	open := map[string]int{}
	total := 0
	for _, c := range w.conflict {
		if slices.Contains(f.teams, c.team) && !c.resolved && w.workerOK(f, c.overwrittenBy) {
			open[c.kind]++
			total++
		}
	}
	if s.Conflicts.Open != total {
		t.Errorf("open conflicts: got %d, want %d", s.Conflicts.Open, total)
	}
	for _, k := range s.Conflicts.ByKind {
		if k.Count != open[k.Category] {
			t.Errorf("conflicts %s: got %d, want %d", k.Category, k.Count, open[k.Category])
		}
	}
	want := map[string]bool{}
	for _, d := range w.devices {
		team := ""
		for tm, us := range w.workers {
			if slices.Contains(us, d.user) {
				team = tm
			}
		}
		if !slices.Contains(f.teams, team) || !w.workerOK(f, d.user) {
			continue
		}
		want[d.id] = !d.revoked && (d.lastSeen.IsZero() || d.lastSeen.Before(w.now.Add(-48*time.Hour)))
	}
	got := map[string]bool{}
	for _, d := range s.Devices.Items {
		got[d.ID] = d.Silent
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("devices (id: silent): got %v, want %v", got, want)
	}
}
