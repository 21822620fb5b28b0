package erasure_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/logger"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/domain"
	"strada/internal/erasure"
	"strada/internal/storage"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// fixture is a person of the prison team with what a worker records about
// them, every free-text field holding a string found nowhere else.
type fixture struct {
	person, contact, deletedContact, referral string
	secrets                                   []string
}

// newFixture records a person, an edit of their notes, a contact, a
// referral (with its history) and a contact deleted before the erasure.
func newFixture(t *testing.T, app core.App) fixture {
	t.Helper()
	team := apptest.Team(t, app, "prison_secretariat")
	site, err := app.FindFirstRecordByFilter(domain.Sites, "kind = 'prison' && team = {:t}", dbx.Params{"t": team})
	if err != nil {
		t.Fatalf("find prison site: %v", err)
	}
	service, err := app.FindFirstRecordByFilter(domain.Services, "active = true")
	if err != nil {
		t.Fatalf("find service: %v", err)
	}
	f := fixture{secrets: []string{
		"Ermenegildo", "Sbarbaglia-Zanfretta", "nota-superata-a1b2", "nota-riservata-c3d4",
		"colloquio-segreto-e5f6", "contatto-cancellato-0a9b", "invio-riservato-7c8d", "esito-privato-3e4f",
	}}
	p := save(t, app, domain.Persons, map[string]any{
		"team": team, "consent": "written", "given_name": f.secrets[0], "family_name": f.secrets[1], "notes": f.secrets[2],
	})
	p.Set("notes", f.secrets[3])
	if err := app.Save(p); err != nil {
		t.Fatalf("edit person: %v", err)
	}
	f.person = p.Id
	contact := map[string]any{"team": team, "person": p.Id, "site": site.Id, "setting": "intra", "contacted_at": "2026-11-19 09:00:00.000Z"}
	contact["notes"] = f.secrets[4]
	f.contact = save(t, app, domain.SecretariatContacts, contact).Id
	contact["notes"] = f.secrets[5]
	gone := save(t, app, domain.SecretariatContacts, contact)
	f.deletedContact = gone.Id
	if err := app.Delete(gone); err != nil {
		t.Fatalf("delete contact: %v", err)
	}
	f.referral = save(t, app, domain.Referrals, map[string]any{
		"team": team, "person": p.Id, "service": service.Id, "reason": f.secrets[6], "outcome": f.secrets[7], "status": "draft",
	}).Id
	return f
}

func save(t *testing.T, app core.App, collection string, fields map[string]any) *core.Record {
	t.Helper()
	c, err := app.FindCachedCollectionByNameOrId(collection)
	if err != nil {
		t.Fatalf("find %s: %v", collection, err)
	}
	r := core.NewRecord(c)
	r.Load(fields)
	if err := app.Save(r); err != nil {
		t.Fatalf("save %s: %v", collection, err)
	}
	return r
}

// serve binds what `serve` binds for erasure (register, request log,
// storage, the erase route) and returns the router after the serve hooks
// ran.
func serve(t *testing.T, app core.App, register string) (http.Handler, *erasure.Register) {
	t.Helper()
	// Test apps keep no request log; production keeps it for days.
	app.Settings().Logs.MaxDays = 5
	reg := erasure.BindRegister(app, func() string { return register })
	storage.Bind(app, reg.Has)
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.POST("/api/persons/{id}/erase", erasure.HandleErase)
		return se.Next()
	})
	return apptest.Handler(t, app), reg
}

func request(t *testing.T, h http.Handler, method, target, token string, body any) *httptest.ResponseRecorder {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req := httptest.NewRequest(method, target, bytes.NewReader(b))
	req.Header.Set("Authorization", token)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// flushRequestLog writes PocketBase's pending log entries until a request
// row whose url starts with path is in the request log.
func flushRequestLog(t *testing.T, app core.App, path string) {
	t.Helper()
	h, ok := app.Logger().Handler().(*logger.BatchHandler)
	if !ok {
		t.Fatalf("got log handler %T, want PocketBase's batch handler", app.Logger().Handler())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := h.WriteAll(context.Background()); err != nil {
			t.Fatalf("write logs: %v", err)
		}
		var n int
		err := app.AuxDB().Select("count(*)").From(core.LogsTableName).
			Where(dbx.NewExp("json_extract(data, '$.url') LIKE {:p}", dbx.Params{"p": path + "%"})).Row(&n)
		if err != nil {
			t.Fatalf("read request log: %v", err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request log row for %s", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leftovers returns "file: string" for every secret found, byte for byte,
// in a file under dir.
func leftovers(t *testing.T, dir string, secrets []string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if bytes.Contains(data, []byte(s)) {
				rel, _ := filepath.Rel(dir, path)
				found = append(found, rel+": "+s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", dir, err)
	}
	return found
}

// TestErasureLeavesNothingOnDisk erases a person through the API and then
// reads every file of the data directory byte by byte: the names, notes
// (the current ones and those overwritten before), the contact deleted
// before the erasure and a request log filter by name must all be gone,
// and the request log must not name the erased ids.
func TestErasureLeavesNothingOnDisk(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	h, _ := serve(t, app, filepath.Join(t.TempDir(), "register.jsonl"))
	f := newFixture(t, app)
	sup := apptest.Token(t, app, apptest.Supervisor)

	// A supervisor looks the person up by name and opens the record.
	filter := url.QueryEscape("family_name = '" + f.secrets[1] + "'")
	if rec := request(t, h, http.MethodGet, "/api/collections/persons/records?filter="+filter, sup, nil); rec.Code != http.StatusOK {
		t.Fatalf("search by name: got %d %s, want 200", rec.Code, rec.Body)
	}
	if rec := request(t, h, http.MethodGet, "/api/collections/persons/records/"+f.person, sup, nil); rec.Code != http.StatusOK {
		t.Fatalf("view person: got %d %s, want 200", rec.Code, rec.Body)
	}
	flushRequestLog(t, app, "/api/collections/persons/records/"+f.person)
	flushRequestLog(t, app, "/api/collections/persons/records")
	if got := leftovers(t, app.DataDir(), f.secrets); len(got) == 0 {
		t.Fatal("got no secret on disk before the erasure, want the fixture written")
	}

	rec := request(t, h, http.MethodPost, "/api/persons/"+f.person+"/erase", sup, map[string]string{"reason": "richiesta dell'interessato"})
	if rec.Code != http.StatusOK {
		t.Fatalf("erase: got %d %s, want 200", rec.Code, rec.Body)
	}
	flushRequestLog(t, app, "/api/persons/")

	if got := leftovers(t, app.DataDir(), f.secrets); len(got) > 0 {
		t.Errorf("got erased data on disk after the erasure: %v, want none", got)
	}
	for _, id := range []string{f.person, f.contact, f.deletedContact, f.referral} {
		var n int
		err := app.AuxDB().Select("count(*)").From(core.LogsTableName).
			Where(dbx.NewExp("instr(data, {:id}) > 0 OR instr(message, {:id}) > 0", dbx.Params{"id": id})).Row(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("got %d request log rows naming erased id %s, want 0", n, id)
		}
	}
	var queries int
	if err := app.AuxDB().Select("count(*)").From(core.LogsTableName).
		Where(dbx.NewExp("instr(json_extract(data, '$.url'), '?') > 0")).Row(&queries); err != nil {
		t.Fatal(err)
	}
	if queries != 0 {
		t.Errorf("got %d request log rows with a query string, want 0", queries)
	}
}

// TestErasurePurgesEarlierHistory erases persons whose records, or who
// themselves, were deleted before the erasure: every such record keeps one
// purge row in the change log and no row names the person any more.
func TestErasurePurgesEarlierHistory(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// before runs before the erasure and returns the records that
		// must be left with a purge row only.
		before func(t *testing.T, app core.App, f fixture) []changelog.Ref
		// kept are records that must keep their history.
		kept func(f fixture) []changelog.Ref
	}{{
		name: "contact deleted before",
		before: func(t *testing.T, app core.App, f fixture) []changelog.Ref {
			return []changelog.Ref{{Collection: domain.SecretariatContacts, RecordID: f.deletedContact}}
		},
	}, {
		name: "referral and its history deleted before",
		before: func(t *testing.T, app core.App, f fixture) []changelog.Ref {
			events, err := app.FindAllRecords(domain.ReferralEvents, dbx.HashExp{"referral": f.referral})
			if err != nil || len(events) == 0 {
				t.Fatalf("got referral history %d, %v; want at least one row", len(events), err)
			}
			r, err := app.FindRecordById(domain.Referrals, f.referral)
			if err != nil {
				t.Fatal(err)
			}
			if err := app.Delete(r); err != nil {
				t.Fatalf("delete referral: %v", err)
			}
			refs := []changelog.Ref{{Collection: domain.Referrals, RecordID: f.referral}}
			for _, ev := range events {
				refs = append(refs, changelog.Ref{Collection: domain.ReferralEvents, RecordID: ev.Id})
			}
			return refs
		},
	}, {
		name: "person deleted before",
		before: func(t *testing.T, app core.App, f fixture) []changelog.Ref {
			p, err := app.FindRecordById(domain.Persons, f.person)
			if err != nil {
				t.Fatal(err)
			}
			if err := app.Delete(p); err != nil {
				t.Fatalf("delete person: %v", err)
			}
			return []changelog.Ref{
				{Collection: domain.Persons, RecordID: f.person},
				{Collection: domain.SecretariatContacts, RecordID: f.contact},
				{Collection: domain.Referrals, RecordID: f.referral},
			}
		},
	}, {
		name: "contact moved to another person",
		before: func(t *testing.T, app core.App, f fixture) []changelog.Ref {
			p, err := app.FindRecordById(domain.Persons, f.person)
			if err != nil {
				t.Fatal(err)
			}
			other := save(t, app, domain.Persons, map[string]any{"team": p.GetString("team"), "consent": "verbal"})
			c, err := app.FindRecordById(domain.SecretariatContacts, f.contact)
			if err != nil {
				t.Fatal(err)
			}
			c.Set("person", other.Id)
			if err := app.Save(c); err != nil {
				t.Fatalf("move contact: %v", err)
			}
			return nil
		},
		kept: func(f fixture) []changelog.Ref {
			return []changelog.Ref{{Collection: domain.SecretariatContacts, RecordID: f.contact}}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := apptest.New(t)
			f := newFixture(t, app)
			purged := tc.before(t, app, f)
			refs, err := changelog.RecordsOfPerson(app, f.person)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range purged {
				found := false
				for _, r := range refs {
					found = found || r == want
				}
				if !found {
					t.Fatalf("got records of person %v before the erasure, want %v among them", refs, want)
				}
			}

			if _, err := erasure.Erase(context.Background(), app, f.person, changelog.Actor{}, "_superusers/test", "richiesta"); err != nil {
				t.Fatalf("erase: %v", err)
			}

			for _, ref := range purged {
				var ops []string
				if err := app.DB().Select("op").From(changelog.Table).
					Where(dbx.HashExp{"collection": ref.Collection, "record_id": ref.RecordID}).Column(&ops); err != nil {
					t.Fatal(err)
				}
				if len(ops) != 1 || ops[0] != string(changelog.OpPurge) {
					t.Errorf("%s/%s: got log ops %v, want [purge]", ref.Collection, ref.RecordID, ops)
				}
			}
			if tc.kept != nil {
				for _, ref := range tc.kept(f) {
					last, err := changelog.LastOf(app, ref.Collection, ref.RecordID)
					if err != nil {
						t.Fatal(err)
					}
					if last.Op != changelog.OpUpdate || last.Version < 2 {
						t.Errorf("%s/%s: got last row %+v, want its update kept", ref.Collection, ref.RecordID, last)
					}
				}
			}
			if refs, err := changelog.RecordsOfPerson(app, f.person); err != nil || len(refs) != 0 {
				t.Errorf("got log rows naming the erased person %v (%v), want none", refs, err)
			}
			if _, err := app.FindFirstRecordByData(domain.Erasures, "record_id", f.person); err != nil {
				t.Errorf("got no audit row: %v", err)
			}
		})
	}
}

func TestEraseUnknownPerson(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	before, err := changelog.LastSeq(app)
	if err != nil {
		t.Fatal(err)
	}
	_, err = erasure.Erase(context.Background(), app, "019a0000-0000-7000-8000-000000000000", changelog.Actor{}, "_superusers/test", "x")
	if err != erasure.ErrNotFound {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	after, err := changelog.LastSeq(app)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := app.CountRecords(domain.Erasures); after != before || n != 0 {
		t.Fatalf("got log %d -> %d and %d audit rows, want nothing written", before, after, n)
	}
}

func TestRequestLogRedactsErasedIDs(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	reg, err := erasure.OpenRegister(filepath.Join(t.TempDir(), "register.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	storage.BindRequestLog(app, reg.Has)
	if err := reg.Append(erasure.RegisterEntry{Person: "019a0000-0000-7000-8000-00000000000a", Records: []string{"referral_events/abcdefghijklmno"}, By: "users/x"}); err != nil {
		t.Fatal(err)
	}
	l := &core.Log{Message: "GET /api/collections/persons/records/019a0000-0000-7000-8000-00000000000a",
		Data: map[string]any{"type": "request", "url": "/api/collections/referral_events/records/abcdefghijklmno?expand=referral", "error": "019a0000-0000-7000-8000-00000000000a: gone"}}
	if err := app.AuxSave(l); err != nil {
		t.Fatal(err)
	}
	var stored core.Log
	if err := app.AuxDB().Select("*").From(core.LogsTableName).Where(dbx.HashExp{"id": l.Id}).One(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored.Message, "019a") || stored.Data["url"] != "/api/collections/referral_events/records/"+storage.ErasedMark ||
		stored.Data["error"] != storage.ErasedMark+": gone" {
		t.Fatalf("got stored %q %v, want the erased ids replaced by %s and no query", stored.Message, stored.Data, storage.ErasedMark)
	}
}
