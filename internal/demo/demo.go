// Package demo fills an empty Strada with demonstration data: the real teams'
// kinds, the Rome sites and service directory, synthetic persons and field
// work spread over the last weeks, and one account per role.
package demo

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/domain"
)

// Password is the password of every demo account.
const Password = "strada-demo-2026"

// Account is a demo login.
type Account struct {
	Email, Name, Role, Teams string
}

// Accounts are the demo logins, printed at start-up and listed in the README.
var Accounts = []Account{
	{Email: "operatore.carcere@example.org", Name: "Operatore Carcere", Role: domain.RoleWorker, Teams: "prison"},
	{Email: "operatore.campi@example.org", Name: "Operatrice Campi", Role: domain.RoleWorker, Teams: "camp"},
	{Email: "supervisore@example.org", Name: "Supervisore", Role: domain.RoleSupervisor, Teams: "prison,camp"},
	{Email: "admin@example.org", Name: "Amministratore", Role: "superuser"},
}

type site struct{ name, kind, municipio, address, team string }

var sites = []site{
	{"Rebibbia Nuovo Complesso", "prison", "IV", "Via Raffaele Majetti, 70 – Roma", "prison"},
	{"Rebibbia Femminile", "prison", "IV", "Via Bartolo Longo, 92 – Roma", "prison"},
	{"Rebibbia Terza Casa", "prison", "IV", "Via Bartolo Longo – Roma", "prison"},
	{"Rebibbia Reclusione", "prison", "IV", "Via Bartolo Longo – Roma", "prison"},
	{"Regina Coeli", "prison", "I", "Via della Lungara, 29 – Roma", "prison"},
	{"Casal del Marmo (IPM)", "prison", "XIV", "Via Giuseppe Barellai, 140 – Roma", "prison"},
	{"Sede cooperativa – Via della Mercede", "office", "I", "Via della Mercede, 52 – Roma", "prison"},
	{"Villaggio attrezzato Via Candoni", "camp", "XV", "Via Luigi Candoni – Roma", "camp"},
	{"Villaggio attrezzato Via di Salone", "camp", "VIII", "Via di Salone – Roma", "camp"},
}

// Seed creates the demo data unless the database already has teams; it
// reports whether it created anything. Everything is saved through the
// record hooks, so the demo data enters the change log like any write.
func Seed(app core.App, now time.Time) (bool, error) {
	n, err := app.CountRecords(domain.Teams)
	if err != nil {
		return false, fmt.Errorf("count teams: %w", err)
	}
	if n > 0 {
		return false, nil
	}
	err = app.RunInTransaction(func(tx core.App) error {
		return seed(tx, now)
	})
	if err != nil {
		return false, fmt.Errorf("seed demo data: %w", err)
	}
	return true, nil
}

type seeder struct {
	app   core.App
	rnd   *rand.Rand
	now   time.Time
	teams map[string]*core.Record
	sites map[string][]*core.Record // by team key
	users map[string]*core.Record   // by team key: the worker
	svcs  []*core.Record
}

func seed(app core.App, now time.Time) error {
	s := &seeder{
		app: app, now: now.UTC(),
		rnd:   rand.New(rand.NewPCG(2026, 11)),
		teams: map[string]*core.Record{}, sites: map[string][]*core.Record{}, users: map[string]*core.Record{},
	}
	steps := []func() error{s.seedTeams, s.seedSites, s.seedServices, s.seedAccounts, s.seedFieldWork}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func (s *seeder) save(collection string, fields map[string]any) (*core.Record, error) {
	c, err := s.app.FindCachedCollectionByNameOrId(collection)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", collection, err)
	}
	r := core.NewRecord(c)
	r.Load(fields)
	if err := s.app.Save(r); err != nil {
		return nil, fmt.Errorf("save %s: %w", collection, err)
	}
	return r, nil
}

func (s *seeder) seedTeams() error {
	for key, t := range map[string][2]string{
		"prison": {"Segretariato sociale carceri", "prison_secretariat"},
		"camp":   {"Unità di strada campi", "camp_outreach"},
	} {
		r, err := s.save(domain.Teams, map[string]any{"name": t[0], "kind": t[1]})
		if err != nil {
			return err
		}
		s.teams[key] = r
	}
	return nil
}

func (s *seeder) seedSites() error {
	for _, st := range sites {
		r, err := s.save(domain.Sites, map[string]any{
			"name": st.name, "kind": st.kind, "municipio": st.municipio,
			"address": st.address, "team": s.teams[st.team].Id,
		})
		if err != nil {
			return err
		}
		s.sites[st.team] = append(s.sites[st.team], r)
	}
	return nil
}

func (s *seeder) seedServices() error {
	for _, d := range Directory {
		r, err := s.save(domain.Services, map[string]any{
			"name": d.Name, "organisation": d.Organisation, "category": d.Category,
			"address": d.Address, "phone": d.Phone, "email": d.Email, "hours": d.Hours,
			"languages": d.Languages, "notes": d.Notes, "active": d.Active,
		})
		if err != nil {
			return err
		}
		s.svcs = append(s.svcs, r)
	}
	return nil
}

func (s *seeder) seedAccounts() error {
	for _, a := range Accounts {
		if a.Role == "superuser" {
			c, err := s.app.FindCachedCollectionByNameOrId(core.CollectionNameSuperusers)
			if err != nil {
				return fmt.Errorf("find superusers: %w", err)
			}
			su := core.NewRecord(c)
			su.SetEmail(a.Email)
			su.SetPassword(Password)
			if err := s.app.Save(su); err != nil {
				return fmt.Errorf("save superuser %s: %w", a.Email, err)
			}
			continue
		}
		var teams []string
		switch a.Teams {
		case "prison":
			teams = []string{s.teams["prison"].Id}
		case "camp":
			teams = []string{s.teams["camp"].Id}
		default:
			teams = []string{s.teams["prison"].Id, s.teams["camp"].Id}
		}
		c, err := s.app.FindCachedCollectionByNameOrId(domain.Users)
		if err != nil {
			return fmt.Errorf("find users: %w", err)
		}
		u := core.NewRecord(c)
		u.SetEmail(a.Email)
		u.SetPassword(Password)
		u.SetVerified(true)
		u.Set("name", a.Name)
		u.Set("role", a.Role)
		u.Set("teams", teams)
		u.Set("locale", "it")
		if err := s.app.Save(u); err != nil {
			return fmt.Errorf("save user %s: %w", a.Email, err)
		}
		if a.Role == domain.RoleWorker {
			s.users[a.Teams] = u
		}
	}
	return nil
}

var (
	givenNames  = []string{"Andrei", "Ioana", "Mihai", "Elena", "Florin", "Maria", "Adrian", "Roxana", "Ahmed", "Fatima", "Youssef", "Amina", "Marco", "Giulia", "Luca", "Sara", "Ion", "Gabriela", "Samuel", "Grace"}
	familyNames = []string{"Popescu", "Ionescu", "Dumitru", "Stan", "Rossi", "Bianchi", "Ferri", "Haddad", "Benali", "Okafor", "Mensah", "Marin", "Costa", "Greco", "Lungu"}
	nationality = []string{"Romania", "Italia", "Marocco", "Nigeria", "Bosnia ed Erzegovina", "Serbia", "Tunisia", "Senegal"}
	languages   = []string{"romeno, romanes", "italiano", "arabo, francese", "inglese", "romanes, serbo", "italiano, romeno"}
)

func (s *seeder) pick(list []string) string { return list[s.rnd.IntN(len(list))] }

func (s *seeder) daysAgo(max int) time.Time {
	d := s.rnd.IntN(max)
	h := 9 + s.rnd.IntN(8)
	day := s.now.AddDate(0, 0, -d)
	return time.Date(day.Year(), day.Month(), day.Day(), h, 15*s.rnd.IntN(4), 0, 0, time.UTC)
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func (s *seeder) seedFieldWork() error {
	persons := map[string][]*core.Record{}
	code := 0
	for _, team := range []string{"prison", "camp"} {
		for range 18 {
			code++
			teamSites := s.sites[team]
			p, err := s.save(domain.Persons, map[string]any{
				"id": newID(), "code": fmt.Sprintf("P-%04d", code),
				"given_name": s.pick(givenNames), "family_name": s.pick(familyNames),
				"birth_year":  1960 + s.rnd.IntN(45),
				"gender":      []string{"female", "male"}[s.rnd.IntN(2)],
				"nationality": s.pick(nationality), "languages": s.pick(languages),
				"team": s.teams[team].Id, "site": teamSites[s.rnd.IntN(len(teamSites))].Id,
				"consent":      []string{"verbal", "written", "written"}[s.rnd.IntN(3)],
				"consent_date": s.daysAgo(60).Format(time.DateOnly),
				"notes":        "Persona di esempio (dati sintetici).",
			})
			if err != nil {
				return err
			}
			persons[team] = append(persons[team], p)
		}
	}
	if err := s.seedContacts(persons["prison"]); err != nil {
		return err
	}
	return s.seedVisits(persons["camp"])
}

func (s *seeder) seedContacts(persons []*core.Record) error {
	team := s.teams["prison"].Id
	var prisons []*core.Record
	var office *core.Record
	for _, st := range s.sites["prison"] {
		if st.GetString("kind") == "office" {
			office = st
		} else {
			prisons = append(prisons, st)
		}
	}
	for i := range 30 {
		p := persons[i%len(persons)]
		setting, site := "intra", prisons[s.rnd.IntN(len(prisons))]
		if i%4 == 3 {
			setting, site = "extra", office
		}
		at := s.daysAgo(42)
		req := []string{s.pick(domain.ContactRequests), s.pick(domain.ContactRequests)}
		fields := map[string]any{
			"id": newID(), "person": p.Id, "site": site.Id, "team": team, "setting": setting,
			"contacted_at": at, "requests": req,
			"actions":    "Colloquio di segretariato; raccolta documenti (esempio).",
			"next_steps": "Verificare l'esito della richiesta (esempio).",
			"notes":      "Annotazione di esempio.",
		}
		if i%3 == 0 {
			fields["follow_up_on"] = at.AddDate(0, 0, 14).Format(time.DateOnly)
		}
		c, err := s.save(domain.SecretariatContacts, fields)
		if err != nil {
			return err
		}
		if i%5 == 0 {
			if err := s.seedReferral(p, team, "source_contact", c.Id, at); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *seeder) seedVisits(persons []*core.Record) error {
	team := s.teams["camp"].Id
	worker := s.users["camp"].Id
	for i := range 20 {
		site := s.sites["camp"][i%2]
		at := s.daysAgo(42)
		met := []string{persons[s.rnd.IntN(len(persons))].Id, persons[s.rnd.IntN(len(persons))].Id}
		fields := map[string]any{
			"id": newID(), "site": site.Id, "team": team, "visited_at": at,
			"workers": []string{worker}, "persons_met": met, "households_met": 1 + s.rnd.IntN(8),
			"topics": []string{s.pick(domain.VisitTopics), s.pick(domain.VisitTopics)},
			"needs":  "Bisogni rilevati (esempio).", "actions": "Orientamento ai servizi (esempio).",
			"notes": "Annotazione di esempio.",
		}
		if i%3 == 0 {
			fields["follow_up_on"] = at.AddDate(0, 0, 10).Format(time.DateOnly)
		}
		v, err := s.save(domain.CampVisits, fields)
		if err != nil {
			return err
		}
		if i%4 == 0 {
			if err := s.seedReferral(persons[s.rnd.IntN(len(persons))], team, "source_visit", v.Id, at); err != nil {
				return err
			}
		}
	}
	return nil
}

// seedReferral creates a referral and walks it a few steps along the state
// machine, so that its history is as a real one would be.
func (s *seeder) seedReferral(p *core.Record, team, sourceField, sourceID string, at time.Time) error {
	active := []*core.Record{}
	for _, svc := range s.svcs {
		if svc.GetBool("active") {
			active = append(active, svc)
		}
	}
	r, err := s.save(domain.Referrals, map[string]any{
		"id": newID(), "person": p.Id, "team": team, "service": active[s.rnd.IntN(len(active))].Id,
		sourceField: sourceID, "reason": "Invio di esempio per orientamento al servizio.",
		"status": domain.StatusDraft, "due_on": at.AddDate(0, 0, 21).Format(time.DateOnly),
	})
	if err != nil {
		return err
	}
	path := [][]string{
		{}, {domain.StatusSent}, {domain.StatusSent, domain.StatusAccepted},
		{domain.StatusSent, domain.StatusAccepted, domain.StatusInProgress},
		{domain.StatusSent, domain.StatusAccepted, domain.StatusCompleted},
		{domain.StatusSent, domain.StatusDeclined},
	}[s.rnd.IntN(6)]
	for _, status := range path {
		r.Set("status", status)
		if status == domain.StatusCompleted || status == domain.StatusDeclined {
			r.Set("outcome", "Esito di esempio.")
		}
		if err := s.app.Save(r); err != nil {
			return fmt.Errorf("move referral to %s: %w", status, err)
		}
	}
	return nil
}
