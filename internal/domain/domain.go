// Package domain names the outreach data model: the collections, their
// enumerated values, which of them field devices write, and the referral
// state machine. It has no dependencies so that migrations, hooks, the sync
// API and the demo data all speak the same vocabulary.
package domain

// Collection names. They are public API: clients address records by them.
const (
	Users               = "users"
	Teams               = "teams"
	Sites               = "sites"
	Services            = "services"
	Persons             = "persons"
	CampVisits          = "camp_visits"
	SecretariatContacts = "secretariat_contacts"
	Referrals           = "referrals"
	ReferralEvents      = "referral_events"
	Devices             = "devices"
	SyncConflicts       = "sync_conflicts"
	Erasures            = "erasures"
)

// Roles of a users record.
const (
	RoleWorker     = "worker"
	RoleSupervisor = "supervisor"
)

// Enumerations used by select fields.
var (
	Roles        = []string{RoleWorker, RoleSupervisor}
	Locales      = []string{"it", "en"}
	TeamKinds    = []string{"prison_secretariat", "camp_outreach", "office"}
	SiteKinds    = []string{"prison", "camp", "office"}
	Genders      = []string{"female", "male", "nonbinary", "undisclosed"}
	ConsentKinds = []string{"none", "verbal", "written"}
	Settings     = []string{"intra", "extra"}
	VisitTopics  = []string{
		"documents", "health", "school", "work_training",
		"housing", "legal", "basic_needs", "other",
	}
	ContactRequests = []string{
		"identity_documents", "residence", "residence_permit", "pension_benefits",
		"family_contact", "housing_on_release", "work_training", "health_addiction",
		"legal_aid", "other",
	}
	ServiceCategories = []string{
		"immigration", "reception", "minors", "mediation", "detainees",
		"work_inclusion", "health_addiction", "other",
	}
)

// FieldWork lists the collections whose records are made in the field: their
// ids come from the device (UUIDv7), they carry a server-managed version and
// every change to them is written to the change log.
var FieldWork = []string{Persons, CampVisits, SecretariatContacts, Referrals}

// Logged lists every collection whose changes enter the change log: the field
// work, the referral history and the reference data devices keep offline.
var Logged = []string{Persons, CampVisits, SecretariatContacts, Referrals, ReferralEvents, Teams, Sites, Services}

// Reference lists the collections every signed-in user reads and only
// superusers write.
var Reference = []string{Teams, Sites, Services}

// IsFieldWork reports whether collection is one of [FieldWork].
func IsFieldWork(collection string) bool { return contains(FieldWork, collection) }

// IsLogged reports whether collection is one of [Logged].
func IsLogged(collection string) bool { return contains(Logged, collection) }

// IsReference reports whether collection is one of [Reference].
func IsReference(collection string) bool { return contains(Reference, collection) }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ServerManaged lists the fields of field-work records that only the server
// sets; a client that sends one is refused.
var ServerManaged = []string{"version", "created", "updated", "created_by", "updated_by"}

// IsServerManaged reports whether field is one of [ServerManaged].
func IsServerManaged(field string) bool { return contains(ServerManaged, field) }
