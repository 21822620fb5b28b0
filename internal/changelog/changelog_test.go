package changelog_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/changelog"
	"strada/internal/domain"
)

func TestMain(m *testing.M) { apptest.Main(m) }

func TestWriteAppendsRowInSameTransaction(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	before, err := changelog.LastSeq(app)
	if err != nil {
		t.Fatal(err)
	}
	team := apptest.Team(t, app, "camp_outreach")
	user := apptest.User(t, app, apptest.CampWorker)
	persons, _ := app.FindCollectionByNameOrId(domain.Persons)

	p := core.NewRecord(persons)
	p.Load(map[string]any{"team": team, "consent": "verbal", "given_name": "Test", "notes": "x"})
	actorApp := changelog.AppWithActor(app, changelog.Actor{User: user.Id, Device: "d1", Mutation: "m1"})
	if err := actorApp.Save(p); err != nil {
		t.Fatalf("save: %v", err)
	}
	if p.GetInt("version") != 1 || p.GetString("created_by") != user.Id {
		t.Fatalf("got version %d created_by %q, want 1 and %s", p.GetInt("version"), p.GetString("created_by"), user.Id)
	}
	p.Set("notes", "changed")
	if err := actorApp.Save(p); err != nil {
		t.Fatalf("update: %v", err)
	}
	entries, err := changelog.Since(app, before, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("got %d entries, want 2", len(entries))
	}
	up := entries[1]
	if up.Op != changelog.OpUpdate || up.Version != 2 || !slices.Equal(up.Fields, []string{"notes"}) ||
		up.Team != team || up.Actor.Device != "d1" || up.Actor.Mutation != "m1" {
		t.Fatalf("got update entry %+v", up)
	}

	// A write refused by validation leaves no row.
	bad := core.NewRecord(persons)
	bad.Load(map[string]any{"team": team, "consent": "maybe"})
	if err := app.Save(bad); err == nil {
		t.Fatal("invalid consent saved")
	}
	last, _ := changelog.LastSeq(app)
	if last != entries[1].Seq {
		t.Fatalf("got last seq %d after refused write, want %d", last, entries[1].Seq)
	}
}

// entriesAfter returns the log rows written after seq.
func entriesAfter(t *testing.T, app core.App, seq int64) []changelog.Entry {
	t.Helper()
	var out []changelog.Entry
	for {
		page, err := changelog.Since(app, seq, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		seq = page[len(page)-1].Seq
	}
}

func lastSeq(t *testing.T, app core.App) int64 {
	t.Helper()
	seq, err := changelog.LastSeq(app)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func newPerson(t *testing.T, app core.App, fields map[string]any) *core.Record {
	t.Helper()
	persons, err := app.FindCachedCollectionByNameOrId(domain.Persons)
	if err != nil {
		t.Fatal(err)
	}
	p := core.NewRecord(persons)
	p.Load(fields)
	return p
}

func TestChangedFields(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	base := map[string]any{
		"id": "0193a5b2-7c1e-7d40-9a51-3f2b8c6d1e07", "team": "t1", "code": "P-0001", "consent": "verbal",
		"given_name": "A", "birth_year": 1980, "languages": "romeno", "version": 3, "updated_by": "u1",
	}
	cases := []struct {
		name   string
		change map[string]any
		want   []string
	}{
		{"nothing", nil, nil},
		{"one text field", map[string]any{"given_name": "B"}, []string{"given_name"}},
		{"number and text, in collection order", map[string]any{"languages": "italiano", "birth_year": 1981}, []string{"birth_year", "languages"}},
		{"cleared field", map[string]any{"given_name": ""}, []string{"given_name"}},
		{"same value set again", map[string]any{"given_name": "A", "birth_year": 1980}, nil},
		{"server-managed fields are not changes", map[string]any{"version": 4, "updated_by": "u2", "updated": "2026-11-20 10:00:00.000Z"}, nil},
		{"team", map[string]any{"team": "t2"}, []string{"team"}},
	}
	for _, c := range cases {
		before := newPerson(t, app, base)
		after := newPerson(t, app, base)
		after.Load(c.change)
		if got := changelog.ChangedFields(before, after); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

// TestVersionAndFieldsAgainstCommittedRow saves through copies of a record
// obtained in each way a caller may hold one: the version always follows
// the committed one and the changed fields are those that differ from the
// committed row, whatever the copy was loaded from.
func TestVersionAndFieldsAgainstCommittedRow(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	team := apptest.Team(t, app, "camp_outreach")
	load := func(t *testing.T, id string) *core.Record {
		t.Helper()
		r, err := app.FindRecordById(domain.Persons, id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	cases := []struct {
		name string
		// write makes the record's second and later writes and returns
		// the copy whose save is checked.
		write       func(t *testing.T, created *core.Record) *core.Record
		wantVersion int
		wantFields  []string
	}{
		{"fresh copy", func(t *testing.T, p *core.Record) *core.Record {
			fresh := load(t, p.Id)
			fresh.Set("notes", "b")
			return fresh
		}, 2, []string{"notes"}},
		{"the created copy saved again", func(t *testing.T, p *core.Record) *core.Record {
			p.Set("notes", "b")
			if err := app.Save(p); err != nil {
				t.Fatal(err)
			}
			p.Set("languages", "romanes")
			return p
		}, 3, []string{"languages"}},
		{"copy made stale by another write", func(t *testing.T, p *core.Record) *core.Record {
			stale := load(t, p.Id)
			other := load(t, p.Id)
			other.Set("notes", "b")
			if err := app.Save(other); err != nil {
				t.Fatal(err)
			}
			// Saving the stale copy writes its old notes back: a change.
			stale.Set("languages", "romanes")
			return stale
		}, 3, []string{"languages", "notes"}},
		{"fresh copy after several writes", func(t *testing.T, p *core.Record) *core.Record {
			for _, v := range []string{"b", "c", "d"} {
				r := load(t, p.Id)
				r.Set("notes", v)
				if err := app.Save(r); err != nil {
					t.Fatal(err)
				}
			}
			fresh := load(t, p.Id)
			fresh.Set("given_name", "Z")
			return fresh
		}, 5, []string{"given_name"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newPerson(t, app, map[string]any{"team": team, "consent": "verbal", "notes": "a"})
			if err := app.Save(p); err != nil {
				t.Fatal(err)
			}
			r := c.write(t, p)
			before := lastSeq(t, app)
			if err := app.Save(r); err != nil {
				t.Fatal(err)
			}
			entries := entriesAfter(t, app, before)
			if len(entries) != 1 {
				t.Fatalf("got %d rows, want 1", len(entries))
			}
			e := entries[0]
			if e.Version != c.wantVersion || !slices.Equal(e.Fields, c.wantFields) {
				t.Fatalf("got version %d fields %v, want %d %v", e.Version, e.Fields, c.wantVersion, c.wantFields)
			}
			if got := load(t, p.Id).GetInt("version"); got != c.wantVersion {
				t.Fatalf("got stored version %d, want %d", got, c.wantVersion)
			}
		})
	}
}

// TestEntryShape checks the row of each kind of write: op, version, team,
// site, changed fields and actor.
func TestEntryShape(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	team := apptest.Team(t, app, "camp_outreach")
	site, err := app.FindFirstRecordByFilter(domain.Sites, "kind = 'camp'")
	if err != nil {
		t.Fatal(err)
	}
	actor := changelog.Actor{User: apptest.User(t, app, apptest.CampWorker).Id, Device: "d1", Mutation: "m1"}
	actorApp := changelog.AppWithActor(app, actor)

	before := lastSeq(t, app)
	p := newPerson(t, app, map[string]any{"team": team, "site": site.Id, "consent": "verbal", "given_name": "A"})
	if err := actorApp.Save(p); err != nil {
		t.Fatal(err)
	}
	if err := actorApp.Delete(p); err != nil {
		t.Fatal(err)
	}
	purged := newPerson(t, app, map[string]any{"team": team, "consent": "verbal"})
	if err := app.Save(purged); err != nil {
		t.Fatal(err)
	}
	if err := app.DeleteWithContext(changelog.WithPurge(context.Background()), purged); err != nil {
		t.Fatal(err)
	}
	svc, err := app.FindFirstRecordByFilter(domain.Services, "active = true")
	if err != nil {
		t.Fatal(err)
	}
	svc.Set("hours", "9-13")
	if err := app.Save(svc); err != nil {
		t.Fatal(err)
	}

	got := entriesAfter(t, app, before)
	want := []changelog.Entry{
		{Collection: domain.Persons, RecordID: p.Id, Op: changelog.OpCreate, Version: 1, Team: team, Site: site.Id,
			Fields: []string{"code", "given_name", "site", "consent", "team"}, Actor: actor},
		{Collection: domain.Persons, RecordID: p.Id, Op: changelog.OpDelete, Version: 2, Team: team, Site: site.Id, Actor: actor},
		{Collection: domain.Persons, RecordID: purged.Id, Op: changelog.OpCreate, Version: 1, Team: team,
			Fields: []string{"code", "consent", "team"}},
		{Collection: domain.Persons, RecordID: purged.Id, Op: changelog.OpPurge, Version: 2, Team: team},
		{Collection: domain.Services, RecordID: svc.Id, Op: changelog.OpUpdate, Fields: []string{"hours"}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		slices.Sort(g.Fields)
		slices.Sort(w.Fields)
		if g.Collection != w.Collection || g.RecordID != w.RecordID || g.Op != w.Op || g.Version != w.Version ||
			g.Team != w.Team || g.Site != w.Site || !slices.Equal(g.Fields, w.Fields) || g.Actor != w.Actor {
			t.Errorf("row %d: got %+v, want %+v", i, g, w)
		}
		if g.At.IsZero() || time.Since(g.At) > time.Minute {
			t.Errorf("row %d: got time %s, want now", i, g.At)
		}
		if i > 0 && g.Seq <= got[i-1].Seq {
			t.Errorf("row %d: got seq %d after %d, want increasing", i, g.Seq, got[i-1].Seq)
		}
	}
}

// TestAuthorship checks created_by and updated_by for each kind of actor:
// only a users record becomes the author; the log keeps the actor as given.
func TestAuthorship(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	team := apptest.Team(t, app, "camp_outreach")
	worker := apptest.User(t, app, apptest.CampWorker).Id
	supervisor := apptest.User(t, app, apptest.Supervisor).Id
	superuser, err := app.FindAuthRecordByEmail(core.CollectionNameSuperusers, apptest.Admin)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name                 string
		create, update       changelog.Actor
		wantCreated, wantUpd string
	}{
		{"worker then supervisor", changelog.Actor{User: worker}, changelog.Actor{User: supervisor}, worker, supervisor},
		{"superuser is no author", changelog.Actor{User: superuser.Id}, changelog.Actor{User: superuser.Id}, "", ""},
		{"unknown id is no author", changelog.Actor{User: "nosuchuser0000"}, changelog.Actor{User: worker}, "", worker},
		{"no actor", changelog.Actor{}, changelog.Actor{}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := lastSeq(t, app)
			p := newPerson(t, app, map[string]any{"team": team, "consent": "verbal"})
			if err := changelog.AppWithActor(app, c.create).Save(p); err != nil {
				t.Fatal(err)
			}
			// The update runs in a transaction of the actor's app: the
			// actor carries over to the transaction.
			err := changelog.AppWithActor(app, c.update).RunInTransaction(func(tx core.App) error {
				fresh, err := tx.FindRecordById(domain.Persons, p.Id)
				if err != nil {
					return err
				}
				fresh.Set("notes", "x")
				return tx.Save(fresh)
			})
			if err != nil {
				t.Fatal(err)
			}
			stored, err := app.FindRecordById(domain.Persons, p.Id)
			if err != nil {
				t.Fatal(err)
			}
			if got := stored.GetString("created_by"); got != c.wantCreated {
				t.Errorf("got created_by %q, want %q", got, c.wantCreated)
			}
			if got := stored.GetString("updated_by"); got != c.wantUpd {
				t.Errorf("got updated_by %q, want %q", got, c.wantUpd)
			}
			entries := entriesAfter(t, app, before)
			if len(entries) != 2 || entries[0].Actor != c.create || entries[1].Actor != c.update {
				t.Fatalf("got rows %+v, want actors %+v then %+v", entries, c.create, c.update)
			}
		})
	}
}

// TestRollbackLeavesNoRowAndNoSignal rolls back transactions that wrote
// records: no row stays and readers are not woken.
func TestRollbackLeavesNoRowAndNoSignal(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	team := apptest.Team(t, app, "camp_outreach")
	errStop := errors.New("stop")
	before := lastSeq(t, app)
	woken := app.Log.Committed()
	p := newPerson(t, app, map[string]any{"team": team, "consent": "verbal"})
	err := app.RunInTransaction(func(tx core.App) error {
		if err := tx.Save(p); err != nil {
			return err
		}
		q := newPerson(t, tx, map[string]any{"team": team, "consent": "written"})
		if err := tx.Save(q); err != nil {
			return err
		}
		if n, err := changelog.Count(tx, before); err != nil || n != 2 {
			t.Errorf("inside the transaction: got %d rows (%v), want 2", n, err)
		}
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("got %v, want %v", err, errStop)
	}
	if got := lastSeq(t, app); got != before {
		t.Fatalf("got last seq %d, want %d", got, before)
	}
	if _, err := app.FindRecordById(domain.Persons, p.Id); err == nil {
		t.Fatal("rolled-back record exists")
	}
	select {
	case <-woken:
		t.Fatal("readers woken by a rolled-back transaction")
	default:
	}

	// A commit wakes them, once it has committed.
	if err := app.Save(newPerson(t, app, map[string]any{"team": team, "consent": "verbal"})); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woken:
	case <-time.After(time.Second):
		t.Fatal("readers not woken by a commit")
	}
	if n, err := changelog.Count(app, before); err != nil || n != 1 {
		t.Fatalf("got %d rows after the commit (%v), want 1", n, err)
	}
}

// TestReaderNeverSkipsARow runs concurrent writers while a reader follows
// the log by cursor as the relay and sync pulls do: the reader sees every
// row, so no row ever becomes visible after a higher sequence.
func TestReaderNeverSkipsARow(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	team := apptest.Team(t, app, "prison_secretariat")
	before := lastSeq(t, app)
	const writers, each = 4, 150
	persons, err := app.FindCachedCollectionByNameOrId(domain.Persons)
	if err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			for range each {
				p := core.NewRecord(persons)
				p.Load(map[string]any{"team": team, "consent": "verbal"})
				if err := app.Save(p); err != nil {
					errs[w] = err
					return
				}
				p.Set("notes", "x")
				if err := app.Save(p); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(done)
	}()

	var seen []int64
	cursor := before
	deadline := time.After(time.Minute)
	for finished := false; ; {
		page, err := changelog.Since(app, cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			seen = append(seen, e.Seq)
			cursor = e.Seq
		}
		if len(page) > 0 {
			continue
		}
		if finished {
			break
		}
		select {
		case <-done:
			finished = true
		case <-app.Log.Committed():
		case <-time.After(5 * time.Millisecond):
		case <-deadline:
			t.Fatalf("reader: not done within a minute, at %d", cursor)
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var all []int64
	for _, e := range entriesAfter(t, app, before) {
		all = append(all, e.Seq)
	}
	if len(all) != writers*each*2 {
		t.Fatalf("got %d rows, want %d", len(all), writers*each*2)
	}
	if !slices.Equal(seen, all) {
		t.Fatalf("reader saw %d rows, the log has %d: a row became visible after a higher one", len(seen), len(all))
	}
}
