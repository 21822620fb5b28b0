package authzmatrix_test

import (
	"fmt"
	"net/http"

	"github.com/pocketbase/pocketbase/core"

	"strada/internal/accesslog"
	"strada/internal/domain"
)

// outcome is what the policy says must come of a request.
type outcome int

const (
	// ok: a 2xx answer.
	ok outcome = iota
	// refused: a 4xx answer (not 429) and nothing changed.
	refused
	// quiet: a 2xx answer with nothing of the caller's concern (a list
	// filtered down to nothing), or a refusal.
	quiet
	// authorized: past authorization (not 401 or 403); the matrix sends a
	// superuser's administrative requests so that they fail harmlessly
	// after it, on a name that does not exist or an empty body.
	authorized
)

func (o outcome) String() string {
	return [...]string{"2xx", "refused (4xx)", "2xx with nothing or refused", "authorized (not 401/403)"}[o]
}

// holds reports whether status is what o allows.
func (o outcome) holds(status int) bool {
	success := status >= 200 && status < 300
	refusal := status >= 400 && status < 500 && status != http.StatusTooManyRequests
	switch o {
	case ok:
		return success
	case refused:
		return refusal
	case quiet:
		return success || refusal
	case authorized:
		return status != http.StatusUnauthorized && status != http.StatusForbidden && status < 500
	}
	return false
}

func allow(b bool) outcome {
	if b {
		return ok
	}
	return refused
}

// rule is the policy of one action: what a may do to a record of team.
type rule func(a account, team string) outcome

var (
	member     rule = func(a account, team string) outcome { return allow(a.superuser || a.member(team)) }
	supervisor rule = func(a account, team string) outcome { return allow(a.superuser || a.supervises(team)) }
	signedIn   rule = func(a account, _ string) outcome { return allow(a.superuser || a.user()) }
	superuser  rule = func(a account, _ string) outcome { return allow(a.superuser) }
	nobody     rule = func(account, string) outcome { return refused }
	// superuserAdmin is a superuser-only request built to fail after
	// authorization (no such record).
	superuserAdmin rule = func(a account, _ string) outcome {
		if a.superuser {
			return authorized
		}
		return refused
	}
	// owner: a device's owner, the supervisors of the owner's teams.
	deviceReader rule = func(a account, team string) outcome {
		return allow(a.superuser || a.supervises(team) || a.worker == team)
	}
	// self: a user changes their own account (not role nor teams).
	self rule = func(a account, team string) outcome { return allow(a.superuser || a.worker == team) }
)

// collectionPolicy is the intended policy of one collection's records
// API. A team-scoped collection is requested against a record of each
// team; the others against one record.
type collectionPolicy struct {
	name   string
	scoped bool
	// list is what a list answers; reads of its records are then checked
	// record by record with read.
	list                               func(a account) outcome
	read, create, update, delete       rule
	createBody, updateBody             func(s *server, team string) string
	updateFresh, readFresh, viewAbsent bool
}

// listAll: every account lists, and sees only what read allows.
func listAll(a account) outcome {
	if a.email == "" {
		return quiet
	}
	return ok
}

func listSuperuser(a account) outcome {
	if a.superuser {
		return ok
	}
	return refused
}

func body(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// policies is the access policy of every collection, as the issue states
// it: members read and write their team's field work; supervisors of a
// team read its devices, erasures and access log and revoke its devices;
// the history, the journal entries, the erasure audit and the access log
// are written by the server; reference data is read by every signed-in
// user and written by superusers; accounts are read by the members of
// their teams and changed by themselves; nothing for the signed out.
var policies = []*collectionPolicy{
	{name: domain.Users, scoped: true, list: listAll, read: member, update: self, create: superuser, delete: superuser,
		createBody: func(s *server, team string) string {
			return body(`{"email":"%s@example.org","password":"%s","passwordConfirm":"%s","role":"worker","teams":["%s"],"name":"%sq"}`,
				s.unique("nuova"), password, password, s.team[team], s.unique("Utente zq"))
		},
		updateBody: func(*server, string) string { return `{"locale":"it"}` }},
	{name: domain.Teams, list: listAll, read: signedIn, create: superuser, update: superuser, delete: superuser, updateFresh: true,
		createBody: func(s *server, _ string) string {
			return body(`{"name":"%s","kind":"office"}`, s.unique("Squadra nuova "))
		},
		updateBody: func(s *server, _ string) string { return body(`{"name":"%s"}`, s.unique("Squadra rinominata ")) }},
	{name: domain.Sites, list: listAll, read: signedIn, create: superuser, update: superuser, delete: superuser, updateFresh: true,
		createBody: func(s *server, _ string) string { return body(`{"name":"%s","kind":"camp"}`, s.unique("Sito nuovo ")) },
		updateBody: func(s *server, _ string) string { return body(`{"municipio":"%s"}`, s.unique("M")) }},
	{name: domain.Services, list: listAll, read: signedIn, create: superuser, update: superuser, delete: superuser, updateFresh: true,
		createBody: func(s *server, _ string) string {
			return body(`{"name":"%s","category":"other","active":true}`, s.unique("Servizio nuovo "))
		},
		updateBody: func(s *server, _ string) string { return body(`{"hours":"%s"}`, s.unique("lun ")) }},
	{name: domain.Persons, scoped: true, list: listAll, read: member, create: member, update: member, delete: superuser,
		createBody: func(s *server, team string) string {
			return body(`{"team":"%s","consent":"verbal","notes":"%s"}`, s.team[team], marker(domain.Persons, team))
		},
		updateBody: func(s *server, _ string) string { return body(`{"languages":"%s"}`, s.unique("romanes ")) }},
	{name: domain.CampVisits, scoped: true, list: listAll, read: member, create: member, update: member, delete: member,
		createBody: func(s *server, team string) string {
			return body(`{"team":"%s","site":"%s","visited_at":"%s","needs":"%s"}`, s.team[team], s.campOf[team], someDay, marker(domain.CampVisits, team))
		},
		updateBody: func(s *server, _ string) string { return body(`{"households_met":%d}`, s.seq%50+1) }},
	{name: domain.SecretariatContacts, scoped: true, list: listAll, read: member, create: member, update: member, delete: member,
		createBody: func(s *server, team string) string {
			return body(`{"team":"%s","person":"%s","site":"%s","setting":"extra","contacted_at":"%s","notes":"%s"}`,
				s.team[team], s.fixture[domain.Persons][team], s.office[team], someDay, marker(domain.SecretariatContacts, team))
		},
		updateBody: func(s *server, _ string) string { return body(`{"next_steps":"%s"}`, s.unique("richiamare ")) }},
	{name: domain.Referrals, scoped: true, list: listAll, read: member, create: member, update: member, delete: member,
		createBody: func(s *server, team string) string {
			return body(`{"team":"%s","person":"%s","service":"%s","reason":"Documenti","status":"draft","notes":"%s"}`,
				s.team[team], s.fixture[domain.Persons][team], s.service, marker(domain.Referrals, team))
		},
		updateBody: func(s *server, _ string) string { return body(`{"due_on":"2026-12-%02d"}`, s.seq%28+1) }},
	{name: domain.ReferralEvents, scoped: true, list: listAll, read: member, create: superuser, update: superuser, delete: superuser, updateFresh: true,
		createBody: func(s *server, team string) string {
			return body(`{"referral":"%s","team":"%s","to_status":"sent","note":"%s"}`, s.fixture[domain.Referrals][team], s.team[team], marker(domain.ReferralEvents, team))
		},
		updateBody: func(s *server, _ string) string { return body(`{"note":"%s"}`, s.unique("nota ")) }},
	{name: domain.Devices, scoped: true, list: listAll, read: deviceReader, create: superuser, update: supervisor, delete: superuser, updateFresh: true,
		createBody: func(s *server, team string) string {
			return body(`{"user":"%s","name":"%s"}`, s.fixture[domain.Users][team], marker(domain.Devices, team))
		},
		updateBody: func(*server, string) string { return `{"revoked":true}` }},
	{name: domain.SyncConflicts, scoped: true, list: listAll, read: member, create: superuser, update: member, delete: superuser, updateFresh: true,
		createBody: func(s *server, team string) string {
			return body(`{"collection":"persons","record_id":"%s","field":"languages","kind":"same_field","team":"%s"}`, s.fixture[domain.Persons][team], s.team[team])
		},
		updateBody: func(*server, string) string { return `{"resolution":"keep_current"}` }},
	{name: domain.Erasures, scoped: true, list: listAll, read: supervisor, create: superuser, update: superuser, delete: superuser, updateFresh: true,
		createBody: func(s *server, team string) string {
			return body(`{"collection":"persons","record_id":"%s","team":"%s","reason":"%s","erased_by":"matrix"}`, s.unique("id"), s.team[team], marker(domain.Erasures, team))
		},
		updateBody: func(s *server, _ string) string { return body(`{"reason":"%s"}`, s.unique("motivo ")) }},
	{name: accesslog.Collection, scoped: true, list: listAll, read: supervisor, create: nobody, update: nobody, delete: nobody,
		createBody: func(s *server, team string) string {
			return body(`{"person":"%s","team":"%s","collection":"persons","record":"x","action":"view"}`, s.unique("p"), s.team[team])
		},
		updateBody: func(*server, string) string { return `{"action":"list"}` }},
	{name: core.CollectionNameSuperusers, list: listSuperuser, read: superuser, create: superuser, update: superuser, delete: superuser, updateFresh: true,
		createBody: func(s *server, _ string) string {
			return body(`{"email":"%s@example.org","password":"%s","passwordConfirm":"%s"}`, s.unique("root-new"), password, password)
		},
		updateBody: func(*server, string) string { return `{"emailVisibility":false}` }},
}

// systemPolicy is PocketBase's own auth bookkeeping: records of the
// account that owns them at most, written by PocketBase; the matrix has
// none of them to read and asks for names that do not exist.
func systemPolicy(name string) *collectionPolicy {
	return &collectionPolicy{name: name, list: listAll, read: superuserAdmin, create: superuserAdmin,
		update: superuserAdmin, delete: superuserAdmin, viewAbsent: true,
		createBody: func(*server, string) string { return `{}` },
		updateBody: func(*server, string) string { return `{}` }}
}

var systemCollections = []string{
	core.CollectionNameMFAs, core.CollectionNameOTPs, core.CollectionNameExternalAuths, core.CollectionNameAuthOrigins,
}

func policyOf(name string) *collectionPolicy {
	for _, p := range policies {
		if p.name == name {
			return p
		}
	}
	for _, n := range systemCollections {
		if n == name {
			return systemPolicy(name)
		}
	}
	return nil
}
