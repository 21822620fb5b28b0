package rollup

import (
	"context"
	"fmt"
	"slices"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"

	"strada/internal/domain"
)

// How a write keeps the counts: in the record's transaction, the
// contributions of the records it touches are taken away as they were
// before the write and added back as they are after it, by the same SQL
// that Rebuild runs over every record. Each record's contribution is
// handled by its own hook; a hook also redoes the records whose rows
// depend on it (a person's site places their referrals and outcomes, a
// referral's author and person place its outcomes), with their ids taken
// before the write, so that a record written by a nested hook (the history
// row of a referral) is counted once, by its own hook. When each person
// was last seen is recounted, never adjusted.

// Handlers are the record hooks of the rollups, by collection: bound to
// OnRecordCreateExecute, OnRecordUpdateExecute and OnRecordDeleteExecute,
// after the change log's hooks, so that they run inside its transaction.
func Handlers() map[string]func(*core.RecordEvent) error {
	return map[string]func(*core.RecordEvent) error{
		domain.CampVisits:          onVisit,
		domain.SecretariatContacts: onContact,
		domain.Persons:             onPerson,
		domain.Referrals:           onReferral,
		domain.ReferralEvents:      onReferralEvent,
	}
}

// Created counts rec, just inserted in tx by a path that runs no record
// hook (the sync push's bulk path), as its create hook would have.
func Created(tx core.App, rec *core.Record) error {
	fn, ok := Handlers()[rec.Collection().Name]
	if !ok {
		return nil
	}
	e := &core.RecordEvent{App: tx, Type: core.ModelEventTypeCreate, Context: context.Background()}
	e.Record = rec
	// The event has no next handler: the write is already done.
	return fn(e)
}

// HookID is the id of the rollup handler of collection, to unbind it.
func HookID(collection string) string { return "dashboard_rollup_" + collection }

// Bind binds Handlers to the create, update and delete of their
// collections.
func Bind(app core.App) {
	for c, fn := range Handlers() {
		app.OnRecordCreateExecute(c).Bind(&hook.Handler[*core.RecordEvent]{Id: HookID(c), Func: fn})
		app.OnRecordUpdateExecute(c).Bind(&hook.Handler[*core.RecordEvent]{Id: HookID(c), Func: fn})
		app.OnRecordDeleteExecute(c).Bind(&hook.Handler[*core.RecordEvent]{Id: HookID(c), Func: fn})
	}
}

// Unbind removes the handlers Bind bound (to measure what they cost).
func Unbind(app core.App) {
	for c := range Handlers() {
		app.OnRecordCreateExecute().Unbind(HookID(c))
		app.OnRecordUpdateExecute().Unbind(HookID(c))
		app.OnRecordDeleteExecute().Unbind(HookID(c))
	}
}

// touched is what one write changes: the records whose contributions are
// redone, by collection, and the persons whose last sighting is recounted.
type touched struct {
	records map[string][]string
	persons []string
}

func (t *touched) add(collection string, ids ...string) {
	if t.records == nil {
		t.records = map[string][]string{}
	}
	for _, id := range ids {
		if id != "" && !slices.Contains(t.records[collection], id) {
			t.records[collection] = append(t.records[collection], id)
		}
	}
}

func (t *touched) person(ids ...string) {
	for _, id := range ids {
		if id != "" && !slices.Contains(t.persons, id) {
			t.persons = append(t.persons, id)
		}
	}
}

func (t *touched) counts(tx core.App, sign int) error {
	for c, ids := range t.records {
		params := dbx.Params{}
		cond := aliases[c] + ".id IN (" + inList(ids, params) + ")"
		if err := addCounts(tx, c, cond, params, sign); err != nil {
			return err
		}
	}
	return nil
}

func inList(ids []string, params dbx.Params) string {
	out := ""
	for i, id := range ids {
		name := fmt.Sprintf("id%d", i)
		params[name] = id
		if i > 0 {
			out += ", "
		}
		out += "{:" + name + "}"
	}
	return out
}

// around runs the write of e between taking away and adding back the
// contributions that before collects (from the rows as committed), then
// lets after collect what the write changed and recounts the persons.
func around(e *core.RecordEvent, before func(tx core.App, t *touched) error, after func(tx core.App, t *touched) error) error {
	outer := e.App
	defer func() { e.App = outer }()
	return outer.RunInTransaction(func(tx core.App) error {
		e.App = tx
		t := &touched{}
		t.add(e.Record.Collection().Name, e.Record.Id)
		// A new record has nothing counted yet, nor anything that depends
		// on it.
		if e.Type != core.ModelEventTypeCreate {
			if err := before(tx, t); err != nil {
				return err
			}
			if err := t.counts(tx, -1); err != nil {
				return err
			}
		}
		if err := e.Next(); err != nil {
			return err
		}
		t.add(e.Record.Collection().Name, e.Record.Id) // a create's id is set now
		if err := t.counts(tx, 1); err != nil {
			return err
		}
		if after != nil {
			if err := after(tx, t); err != nil {
				return err
			}
		}
		return recountSeen(tx, t.persons)
	})
}

func column(tx core.App, sql string, params dbx.Params) ([]string, error) {
	var out []string
	if err := tx.NonconcurrentDB().NewQuery(sql).Bind(params).Column(&out); err != nil {
		return nil, fmt.Errorf("dashboard rollups: %w", err)
	}
	return out, nil
}

func onVisit(e *core.RecordEvent) error {
	id := func() dbx.Params { return dbx.Params{"id": e.Record.Id} }
	met := func(tx core.App, t *touched) error {
		persons, err := column(tx, `SELECT person FROM `+VisitPersons+` WHERE visit = {:id}`, id())
		t.person(persons...)
		return err
	}
	return around(e, met, func(tx core.App, t *touched) error {
		db := tx.NonconcurrentDB()
		if _, err := db.NewQuery(`DELETE FROM ` + VisitPersons + ` WHERE visit = {:id}`).Bind(id()).Execute(); err != nil {
			return fmt.Errorf("dashboard persons met: %w", err)
		}
		if _, err := db.NewQuery(`INSERT INTO ` + VisitPersons + ` (person, visit, at) SELECT m.value, v.id, v.visited_at
			FROM ` + domain.CampVisits + ` v, json_each(v.persons_met) m WHERE v.id = {:id} ON CONFLICT DO NOTHING`).Bind(id()).Execute(); err != nil {
			return fmt.Errorf("dashboard persons met: %w", err)
		}
		return met(tx, t)
	})
}

// personOf collects the person a record of collection is about, as
// committed.
func personOf(collection string, e *core.RecordEvent) func(tx core.App, t *touched) error {
	return func(tx core.App, t *touched) error {
		persons, err := column(tx, `SELECT person FROM `+collection+` WHERE id = {:id}`, dbx.Params{"id": e.Record.Id})
		t.person(persons...)
		return err
	}
}

func onContact(e *core.RecordEvent) error {
	return around(e, personOf(domain.SecretariatContacts, e), func(tx core.App, t *touched) error {
		t.person(e.Record.GetString("person"))
		return nil
	})
}

// outcomesOf is the SQL of the ids of the final moves of the referrals
// cond keeps (alias r).
func outcomesOf(cond string) string {
	return `SELECT ev.id FROM ` + domain.ReferralEvents + ` ev JOIN ` + domain.Referrals + ` r ON r.id = ev.referral
		WHERE ev.to_status IN (` + finalStatuses + `) AND ` + cond
}

func onPerson(e *core.RecordEvent) error {
	// The person's site places their referrals and outcomes.
	return around(e, func(tx core.App, t *touched) error {
		p := dbx.Params{"id": e.Record.Id}
		refs, err := column(tx, `SELECT id FROM `+domain.Referrals+` WHERE person = {:id}`, p)
		if err != nil {
			return err
		}
		evs, err := column(tx, outcomesOf(`r.person = {:id}`), p)
		if err != nil {
			return err
		}
		t.add(domain.Referrals, refs...)
		t.add(domain.ReferralEvents, evs...)
		return nil
	}, func(tx core.App, t *touched) error {
		t.person(e.Record.Id)
		return nil
	})
}

func onReferral(e *core.RecordEvent) error {
	return around(e, func(tx core.App, t *touched) error {
		var was struct {
			Person    string `db:"person"`
			CreatedBy string `db:"created_by"`
		}
		p := dbx.Params{"id": e.Record.Id}
		err := tx.NonconcurrentDB().NewQuery(`SELECT person, coalesce(created_by, '') AS created_by FROM ` + domain.Referrals + ` WHERE id = {:id}`).Bind(p).One(&was)
		if err != nil {
			return fmt.Errorf("dashboard rollups: read referral %s: %w", e.Record.Id, err)
		}
		t.person(was.Person)
		// The referral's author and person place its outcomes: they are
		// redone when either changes, or the referral goes.
		if was.Person != e.Record.GetString("person") || was.CreatedBy != e.Record.GetString("created_by") || isDelete(e) {
			evs, err := column(tx, outcomesOf(`r.id = {:id}`), p)
			if err != nil {
				return err
			}
			t.add(domain.ReferralEvents, evs...)
		}
		return nil
	}, func(tx core.App, t *touched) error {
		t.person(e.Record.GetString("person"))
		return nil
	})
}

func onReferralEvent(e *core.RecordEvent) error {
	return around(e, func(core.App, *touched) error { return nil }, nil)
}

func isDelete(e *core.RecordEvent) bool { return e.Type == core.ModelEventTypeDelete }

// recountSeen recounts when each of persons was last seen; a person that no
// longer exists loses their row.
func recountSeen(tx core.App, persons []string) error {
	if len(persons) == 0 {
		return nil
	}
	params := dbx.Params{}
	list := inList(persons, params)
	db := tx.NonconcurrentDB()
	if _, err := db.NewQuery(`DELETE FROM ` + Seen + ` WHERE person IN (` + list + `)`).Bind(params).Execute(); err != nil {
		return fmt.Errorf("dashboard last seen: %w", err)
	}
	if _, err := db.NewQuery(`INSERT INTO ` + Seen + ` (person, team, site, worker, seen) ` + seenRows(`p.id IN (`+list+`)`)).Bind(params).Execute(); err != nil {
		return fmt.Errorf("dashboard last seen: %w", err)
	}
	return nil
}
