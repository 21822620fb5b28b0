package syncapi_test

import (
	"net/http"
	"strings"
	"testing"

	"strada/internal/apptest"
	"strada/internal/domain"
)

// makeConflict makes a same-field conflict on a new record of team kind by
// two devices of the given accounts and returns the record id.
func makeConflict(t *testing.T, e *env, kind, emailA, emailB string) string {
	t.Helper()
	a, b := e.device(emailA), e.device(emailB)
	pid := newID()
	a.Upsert(domain.Persons, pid, map[string]any{"team": e.team(kind), "consent": "verbal", "languages": "it"})
	mustSync(t, a)
	mustSync(t, b)
	a.Upsert(domain.Persons, pid, map[string]any{"languages": "romanes"})
	b.Upsert(domain.Persons, pid, map[string]any{"languages": "romeno"})
	mustSync(t, a)
	res := mustSync(t, b)
	if res[0].Status != "conflict" {
		t.Fatalf("got %+v, want conflict", res)
	}
	return pid
}

func TestConflictJournalScopeAndResolution(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	campRecord := makeConflict(t, e, "camp_outreach", apptest.CampWorker, apptest.Supervisor)
	prisonRecord := makeConflict(t, e, "prison_secretariat", apptest.PrisonWorker, apptest.Supervisor)

	camp := e.device(apptest.CampWorker)
	var list struct {
		Items []struct {
			ID       string `json:"id"`
			RecordID string `json:"record_id"`
		} `json:"items"`
	}
	if err := e.raw(camp, http.MethodGet, "/api/collections/sync_conflicts/records", nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].RecordID != campRecord {
		t.Fatalf("got %+v, want only the camp conflict (never %s)", list.Items, prisonRecord)
	}
	entry := list.Items[0].ID

	// Only the resolution may be written.
	if err := e.raw(camp, http.MethodPatch, "/api/collections/sync_conflicts/records/"+entry,
		map[string]any{"resolution": "keep_current", "kept_value": "x"}, nil); !isStatus(err, 400) {
		t.Fatalf("got %v, want 400 for writing kept_value", err)
	}
	// Restoring the overwritten value writes it back as a new change.
	if err := e.raw(camp, http.MethodPatch, "/api/collections/sync_conflicts/records/"+entry,
		map[string]any{"resolution": "restore_overwritten", "resolution_note": "confermato con la persona"}, nil); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	p := e.record(domain.Persons, campRecord)
	if p.GetString("languages") != "romanes" || p.GetInt("version") != 4 {
		t.Fatalf("got languages %q version %d, want the overwritten romanes at version 4", p.GetString("languages"), p.GetInt("version"))
	}
	j := e.record(domain.SyncConflicts, entry)
	if j.GetString("resolved_by") != apptest.User(t, e.app, apptest.CampWorker).Id || j.GetDateTime("resolved_at").IsZero() {
		t.Fatalf("got resolved_by %q at %v, want the camp worker and a time", j.GetString("resolved_by"), j.GetDateTime("resolved_at"))
	}
	// A resolved entry stays resolved.
	err := e.raw(camp, http.MethodPatch, "/api/collections/sync_conflicts/records/"+entry, map[string]any{"resolution": "keep_current"}, nil)
	if err == nil || !strings.Contains(err.Error(), "404") && !isStatus(err, 404) && !isStatus(err, 400) && !isStatus(err, 403) {
		t.Fatalf("got %v, want a refusal to resolve twice", err)
	}
}
