package syncclient

import (
	"slices"
	"testing"
)

func TestMemoryStoreWriteCheckpoint(t *testing.T) {
	t.Parallel()
	s := NewMemoryStore()
	c := &Client{Store: s}
	m, err := c.Upsert("persons", "p1", map[string]any{"notes": "mine"})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := c.View("persons", "p1"); !ok || v["notes"] != "mine" {
		t.Fatalf("got view %v, want the pending edit", v)
	}
	// Answered at seq 10 while the device has pulled to 5: the edit stays
	// visible until the pull reaches 10.
	if err := s.ApplyPage(nil, "c5", 5); err != nil {
		t.Fatal(err)
	}
	if err := s.Answered(map[string]int64{m.ID: 10}); err != nil {
		t.Fatal(err)
	}
	if len(s.Outbox()) != 0 || len(s.InFlight()) != 1 {
		t.Fatalf("got outbox %d in flight %d, want 0 and 1", len(s.Outbox()), len(s.InFlight()))
	}
	if v, _ := c.View("persons", "p1"); v["notes"] != "mine" {
		t.Fatalf("got view %v before the pull reached the write, want the edit kept", v)
	}
	page := []Change{{Collection: "persons", ID: "p1", Op: "upsert", Version: 1, Record: Record{"id": "p1", "notes": "mine", "version": 1.0}}}
	if err := s.ApplyPage(page, "c10", 10); err != nil {
		t.Fatal(err)
	}
	if len(s.InFlight()) != 0 {
		t.Fatal("the in-flight edit outlived the pull that covers it")
	}
	// A rejected mutation leaves and its effect reverts.
	r, _ := c.Upsert("persons", "p1", map[string]any{"notes": "refused"})
	if err := s.Answered(map[string]int64{r.ID: 0}); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.View("persons", "p1"); v["notes"] != "mine" {
		t.Fatalf("got view %v after a rejection, want the server's value", v)
	}
}

func TestMemoryStorePurgeOfPersonCascades(t *testing.T) {
	t.Parallel()
	s := NewMemoryStore()
	c := &Client{Store: s}
	page := []Change{
		{Collection: "persons", ID: "p1", Op: "upsert", Record: Record{"id": "p1"}},
		{Collection: "persons", ID: "p2", Op: "upsert", Record: Record{"id": "p2"}},
		{Collection: "secretariat_contacts", ID: "c1", Op: "upsert", Record: Record{"id": "c1", "person": "p1"}},
		{Collection: "secretariat_contacts", ID: "c2", Op: "upsert", Record: Record{"id": "c2", "person": "p2"}},
		{Collection: "referrals", ID: "r1", Op: "upsert", Record: Record{"id": "r1", "person": "p1"}},
		{Collection: "referral_events", ID: "e1", Op: "upsert", Record: Record{"id": "e1", "referral": "r1"}},
		{Collection: "camp_visits", ID: "v1", Op: "upsert", Record: Record{"id": "v1", "persons_met": []any{"p1", "p2"}}},
	}
	if err := s.ApplyPage(page, "c1", 1); err != nil {
		t.Fatal(err)
	}
	// Offline: an edit of the person, a contact about them only this
	// device knows, and a visit that met them.
	c.Upsert("persons", "p1", map[string]any{"notes": "x"})
	c.Upsert("secretariat_contacts", "c3", map[string]any{"person": "p1"})
	c.Upsert("camp_visits", "v2", map[string]any{"persons_met": []any{"p1", "p2"}})
	c.Upsert("persons", "p2", map[string]any{"notes": "kept"})

	if err := s.ApplyPage([]Change{{Collection: "persons", ID: "p1", Op: "purge"}}, "c2", 2); err != nil {
		t.Fatal(err)
	}
	for _, k := range []Key{{"persons", "p1"}, {"secretariat_contacts", "c1"}, {"secretariat_contacts", "c3"}, {"referrals", "r1"}, {"referral_events", "e1"}} {
		if _, ok := c.View(k.Collection, k.ID); ok {
			t.Errorf("device still shows %s/%s after the erasure", k.Collection, k.ID)
		}
	}
	for _, k := range []Key{{"persons", "p2"}, {"secretariat_contacts", "c2"}, {"camp_visits", "v1"}, {"camp_visits", "v2"}} {
		if _, ok := c.View(k.Collection, k.ID); !ok {
			t.Errorf("device lost %s/%s, which is not about the erased person", k.Collection, k.ID)
		}
	}
	for _, id := range []string{"v1", "v2"} {
		v, _ := c.View("camp_visits", id)
		if met, _ := v["persons_met"].([]any); slices.Contains(met, any("p1")) || !slices.Contains(met, any("p2")) {
			t.Errorf("visit %s persons_met %v, want p2 only", id, v["persons_met"])
		}
	}
	if got := len(s.Outbox()); got != 2 {
		t.Errorf("got %d pending mutations, want the visit and the other person's edit", got)
	}
}

// storeWithoutIDs is a Store that cannot list ids, for the fallback of
// Client.IDs.
type storeWithoutIDs struct{ Store }

// TestClientIDsMatchTheView: the ids of a collection, listed without
// copying records, are those of ViewAll: pulled records, plus pending
// creates, minus pending and answered deletes, on a store that lists ids
// and on one that does not.
func TestClientIDsMatchTheView(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		store func(*MemoryStore) Store
	}{
		{"memory store", func(s *MemoryStore) Store { return s }},
		{"store without IDs", func(s *MemoryStore) Store { return storeWithoutIDs{s} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := NewMemoryStore()
			page := []Change{
				{Collection: "persons", ID: "a", Op: "upsert", Version: 1, Record: Record{"id": "a", "version": 1.0}},
				{Collection: "persons", ID: "b", Op: "upsert", Version: 1, Record: Record{"id": "b", "version": 1.0}},
				{Collection: "camp_visits", ID: "v", Op: "upsert", Version: 1, Record: Record{"id": "v", "version": 1.0}},
			}
			if err := s.ApplyPage(page, "c1", 1); err != nil {
				t.Fatal(err)
			}
			c := &Client{Store: tc.store(s)}
			if _, err := c.Upsert("persons", "c", map[string]any{"notes": "nuovo"}); err != nil {
				t.Fatal(err)
			}
			del, err := c.Delete("persons", "a")
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Answered(map[string]int64{del.ID: 5}); err != nil {
				t.Fatal(err)
			}
			got := c.IDs("persons")
			var want []string
			for id := range c.ViewAll("persons") {
				want = append(want, id)
			}
			slices.Sort(want)
			if !slices.Equal(got, want) || !slices.Equal(got, []string{"b", "c"}) {
				t.Fatalf("got ids %v, want %v (the view's) = [b c]", got, want)
			}
		})
	}
}
