package syncapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/pocketbase/dbx"

	"strada/internal/apptest"
	"strada/internal/domain"
	"strada/internal/syncclient"
)

func TestErasureReachesDeviceThatWasOffline(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	prison := e.team("prison_secretariat")
	worker := e.device(apptest.PrisonWorker)
	sup := e.device(apptest.Supervisor)
	mustSync(t, worker)

	// A person the worker knows, with a contact and a referral.
	pid := newID()
	sup.Upsert(domain.Persons, pid, map[string]any{"team": prison, "consent": "written", "given_name": "Erasmo", "family_name": "Dimenticato", "notes": "nota riservata"})
	cid := newID()
	sup.Upsert(domain.SecretariatContacts, cid, map[string]any{"team": prison, "person": pid, "site": e.siteOf("prison"), "setting": "intra", "contacted_at": "2026-11-19 09:00:00.000Z", "notes": "colloquio riservato"})
	var service string
	for id := range worker.Store.Bases(domain.Services) {
		service = id
		break
	}
	rid := newID()
	sup.Upsert(domain.Referrals, rid, map[string]any{"team": prison, "person": pid, "service": service, "reason": "documenti", "status": "draft"})
	mustSync(t, sup)
	mustSync(t, worker)
	if _, ok := worker.Store.Base(domain.SecretariatContacts, cid); !ok {
		t.Fatal("worker did not receive the contact")
	}

	// Offline in a prison, the worker edits the contact and records a new
	// one about the same person.
	worker.Upsert(domain.SecretariatContacts, cid, map[string]any{"next_steps": "richiamare"})
	newContact := newID()
	worker.Upsert(domain.SecretariatContacts, newContact, map[string]any{"team": prison, "person": pid, "site": e.siteOf("prison"), "setting": "intra", "contacted_at": "2026-11-21 09:00:00.000Z"})
	worker.Upsert(domain.Persons, pid, map[string]any{"languages": "italiano"})

	// Meanwhile a supervisor erases the person.
	var sum struct {
		Records int   `json:"records"`
		Seq     int64 `json:"seq"`
	}
	if err := e.post(sup, "/api/persons/"+pid+"/erase", map[string]string{"reason": "richiesta dell'interessato"}, &sum); err != nil {
		t.Fatalf("erase: %v", err)
	}
	if sum.Records < 3 {
		t.Fatalf("got %d records erased, want person, contact, referral and its history", sum.Records)
	}

	// Back online: push then pull.
	res, err := worker.Sync(context.Background())
	if err != nil {
		t.Fatalf("sync after erasure: %v", err)
	}
	for _, r := range res {
		if r.Status != "rejected" {
			t.Fatalf("got %+v, want every pending edit about the erased person rejected", r)
		}
	}
	for _, k := range []syncclient.Key{{Collection: domain.Persons, ID: pid}, {Collection: domain.SecretariatContacts, ID: cid}, {Collection: domain.SecretariatContacts, ID: newContact}, {Collection: domain.Referrals, ID: rid}} {
		if _, ok := worker.View(k.Collection, k.ID); ok {
			t.Fatalf("device still shows %s/%s", k.Collection, k.ID)
		}
	}
	if n := len(worker.Store.Outbox()) + len(worker.Store.InFlight()); n != 0 {
		t.Fatalf("got %d pending mutations, want none about the erased person", n)
	}

	// The server kept nothing about them but purge rows and the audit.
	for _, coll := range []string{domain.Persons, domain.SecretariatContacts, domain.Referrals} {
		n, _ := e.app.CountRecords(coll, dbx.HashExp{"id": pid})
		if n != 0 {
			t.Fatalf("%s still has the person", coll)
		}
	}
	var ops []string
	if err := e.app.DB().Select("op").From("strada_changes").
		Where(dbx.In("record_id", pid, cid, rid)).Column(&ops); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if op != "purge" {
			t.Fatalf("got change log ops %v for erased records, want only purge", ops)
		}
	}
	if len(ops) != 3 {
		t.Fatalf("got %d change rows for the erased records, want 3 purge rows", len(ops))
	}
	audit, err := e.app.FindFirstRecordByData(domain.Erasures, "record_id", pid)
	if err != nil {
		t.Fatalf("no audit row: %v", err)
	}
	exported := audit.PublicExport()
	for _, v := range exported {
		if s, ok := v.(string); ok && (strings.Contains(s, "Erasmo") || strings.Contains(s, "riservat")) {
			t.Fatalf("audit row keeps erased data: %v", exported)
		}
	}
	if audit.GetString("reason") == "" || audit.GetString("erased_by") == "" {
		t.Fatalf("got audit %v, want who and why", exported)
	}

	// Retrying the erasure answers with the first one.
	var again struct {
		AlreadyErased bool `json:"alreadyErased"`
	}
	if err := e.post(sup, "/api/persons/"+pid+"/erase", map[string]string{"reason": "retry"}, &again); err != nil || !again.AlreadyErased {
		t.Fatalf("got %v %+v, want alreadyErased", err, again)
	}
}

func TestErasureAccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	prison := e.team("prison_secretariat")
	p, err := e.app.FindFirstRecordByData(domain.Persons, "team", prison)
	if err != nil {
		t.Fatal(err)
	}
	worker := e.device(apptest.PrisonWorker)
	camp := e.device(apptest.CampWorker)
	sup := e.device(apptest.Supervisor)
	path := "/api/persons/" + p.Id + "/erase"
	cases := []struct {
		name    string
		c       *syncclient.Client
		body    any
		status  int
		unknown bool // erase an id that does not exist
	}{
		{"worker of the team", worker, map[string]string{"reason": "x"}, 403, false},
		// A person of another team is answered as one that does not exist.
		{"worker of another team", camp, map[string]string{"reason": "x"}, 404, false},
		{"no reason", sup, map[string]string{"reason": "  "}, 400, false},
		{"unknown field", sup, map[string]any{"reason": "x", "force": true}, 400, false},
		{"unknown person", sup, map[string]string{"reason": "x"}, 404, true},
	}
	for _, tc := range cases {
		p := path
		if tc.unknown {
			p = "/api/persons/" + newID() + "/erase"
		}
		if err := e.raw(tc.c, http.MethodPost, p, tc.body, nil); !isStatus(err, tc.status) {
			t.Errorf("%s: got %v, want %d", tc.name, err, tc.status)
		}
	}
	if _, err := e.app.FindRecordById(domain.Persons, p.Id); err != nil {
		t.Fatal("a refused erasure erased the person")
	}
}
