package syncapi_test

import (
	"slices"
	"strings"
	"testing"

	"strada/internal/apptest"
	"strada/internal/domain"
	"strada/internal/syncclient"
)

func TestPushCreateThenPullRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.device(apptest.CampWorker)
	mustSync(t, c) // snapshot
	camp := e.team("camp_outreach")
	pid, vid := newID(), newID()
	mp, _ := c.Upsert(domain.Persons, pid, map[string]any{"team": camp, "consent": "verbal", "given_name": "Ana"})
	mv, _ := c.Upsert(domain.CampVisits, vid, map[string]any{
		"team": camp, "site": e.siteOf("camp"), "visited_at": "2026-11-20 10:00:00.000Z",
		"persons_met": []string{pid}, "topics": []string{"health"},
	})
	res := mustSync(t, c)
	for _, m := range []string{mp.ID, mv.ID} {
		if r := statusOf(t, res, m); r.Status != "applied" || r.Version != 1 || r.Seq == 0 {
			t.Fatalf("got %+v, want applied version 1 with a seq", r)
		}
	}
	if got := e.record(domain.CampVisits, vid).GetStringSlice("persons_met"); !slices.Equal(got, []string{pid}) {
		t.Fatalf("got persons_met %v, want [%s]", got, pid)
	}
	view, ok := c.View(domain.Persons, pid)
	if !ok || view["given_name"] != "Ana" || view["version"] != float64(1) {
		t.Fatalf("got view %v, want the pulled person at version 1", view)
	}
	if len(c.Store.Outbox()) != 0 || len(c.Store.InFlight()) != 0 {
		t.Fatalf("got outbox %d in flight %d, want both empty", len(c.Store.Outbox()), len(c.Store.InFlight()))
	}
}

func TestPushRetryReturnsFirstResult(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.device(apptest.CampWorker)
	camp := e.team("camp_outreach")
	pid := newID()
	m, _ := c.Upsert(domain.Persons, pid, map[string]any{"team": camp, "consent": "none"})
	body := map[string]any{"mutations": []any{m, m}}
	var first, again struct{ Results []syncclient.Result }
	if err := e.post(c, "/api/sync/push", body, &first); err != nil {
		t.Fatal(err)
	}
	seq := e.lastSeq()
	if err := e.post(c, "/api/sync/push", body, &again); err != nil {
		t.Fatal(err)
	}
	if first.Results[0].Status != "applied" || first.Results[1].Status != "duplicate" {
		t.Fatalf("got %+v, want applied then duplicate", first.Results)
	}
	for _, r := range again.Results {
		if r.Status != "duplicate" || r.FirstStatus != "applied" || r.Seq != first.Results[0].Seq {
			t.Fatalf("got retry result %+v, want duplicate of %+v", r, first.Results[0])
		}
	}
	if got := e.lastSeq(); got != seq {
		t.Fatalf("got last seq %d after retry, want %d (nothing new)", got, seq)
	}
	if got := e.record(domain.Persons, pid).GetInt("version"); got != 1 {
		t.Fatalf("got version %d, want 1", got)
	}
}

func TestConcurrentEditsMergeByField(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.device(apptest.CampWorker)
	b := e.device(apptest.Supervisor)
	camp := e.team("camp_outreach")
	vid := newID()
	a.Upsert(domain.CampVisits, vid, map[string]any{
		"team": camp, "site": e.siteOf("camp"), "visited_at": "2026-11-20 10:00:00.000Z", "needs": "n0", "actions": "a0",
	})
	mustSync(t, a)
	mustSync(t, b)

	// Both offline: A edits needs, B edits actions and, later, needs too.
	ma, _ := a.Upsert(domain.CampVisits, vid, map[string]any{"needs": "needs by A"})
	mb1, _ := b.Upsert(domain.CampVisits, vid, map[string]any{"actions": "actions by B"})
	mb2, _ := b.Upsert(domain.CampVisits, vid, map[string]any{"needs": "needs by B"})

	ra := mustSync(t, a)
	if r := statusOf(t, ra, ma.ID); r.Status != "applied" {
		t.Fatalf("got %+v, want applied", r)
	}
	rb := mustSync(t, b)
	if r := statusOf(t, rb, mb1.ID); r.Status != "merged" || !slices.Equal(r.Merged, []string{"needs"}) {
		t.Fatalf("got %+v, want merged with the other device's needs kept", r)
	}
	if r := statusOf(t, rb, mb2.ID); r.Status != "conflict" || !slices.Equal(r.Conflicts, []string{"needs"}) {
		t.Fatalf("got %+v, want conflict on needs", r)
	}
	rec := e.record(domain.CampVisits, vid)
	if rec.GetString("needs") != "needs by B" || rec.GetString("actions") != "actions by B" {
		t.Fatalf("got needs %q actions %q, want B's later needs and B's actions", rec.GetString("needs"), rec.GetString("actions"))
	}
	journal, err := e.app.FindAllRecords(domain.SyncConflicts)
	if err != nil {
		t.Fatal(err)
	}
	if len(journal) != 1 {
		t.Fatalf("got %d journal rows, want 1", len(journal))
	}
	j := journal[0]
	if j.GetString("field") != "needs" || j.GetString("kind") != "same_field" ||
		string(j.GetString("overwritten_value")) != `"needs by A"` || string(j.GetString("kept_value")) != `"needs by B"` ||
		j.GetString("overwritten_device") != a.DeviceID || j.GetString("kept_device") != b.DeviceID {
		t.Fatalf("got journal %v, want needs by A overwritten by needs by B", j.PublicExport())
	}
	// Both devices converge on the server's state.
	mustSync(t, a)
	va, _ := a.View(domain.CampVisits, vid)
	vb, _ := b.View(domain.CampVisits, vid)
	if va["needs"] != "needs by B" || vb["needs"] != "needs by B" || va["version"] != vb["version"] {
		t.Fatalf("got views %v and %v, want equal", va, vb)
	}
}

func TestReferralTransitionRejectedAndJournaled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.device(apptest.PrisonWorker)
	mustSync(t, c)
	var personID, serviceID string
	for id := range c.Store.Bases(domain.Persons) {
		personID = id
		break
	}
	for id := range c.Store.Bases(domain.Services) {
		serviceID = id
		break
	}
	rid := newID()
	c.Upsert(domain.Referrals, rid, map[string]any{
		"team": e.team("prison_secretariat"), "person": personID, "service": serviceID,
		"reason": "documenti", "status": "draft",
	})
	mustSync(t, c)
	bad, _ := c.Upsert(domain.Referrals, rid, map[string]any{"status": "completed"})
	next, _ := c.Upsert(domain.Referrals, rid, map[string]any{"reason": "documenti e residenza"})
	res := mustSync(t, c)
	r := statusOf(t, res, bad.ID)
	if r.Status != "rejected" || r.Error == nil || r.Error.Field != "status" ||
		!strings.Contains(r.Error.Message, "draft") || !strings.Contains(r.Error.Message, "completed") {
		t.Fatalf("got %+v, want rejected naming draft and completed", r)
	}
	if r := statusOf(t, res, next.ID); r.Status != "applied" {
		t.Fatalf("got %+v for the mutation behind the rejected one, want applied", r)
	}
	if got := e.record(domain.Referrals, rid).GetString("status"); got != "draft" {
		t.Fatalf("got status %q, want draft", got)
	}
	j, err := e.app.FindFirstRecordByData(domain.SyncConflicts, "record_id", rid)
	if err != nil || j.GetString("kind") != "rejected_transition" {
		t.Fatalf("got journal %v (%v), want a rejected_transition row", j, err)
	}
	view, _ := c.View(domain.Referrals, rid)
	if view["status"] != "draft" {
		t.Fatalf("got device status %v, want draft after the rejection", view["status"])
	}
}
