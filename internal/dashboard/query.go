package dashboard

import (
	"fmt"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/changelog"
	"strada/internal/domain"
)

// query is one SQL statement of the dashboard with its parameters.
type query struct {
	name   string
	sql    string
	params dbx.Params
}

func (q query) all(app core.App, dst any) error {
	if err := app.ConcurrentDB().NewQuery(q.sql).Bind(q.params).All(dst); err != nil {
		return fmt.Errorf("dashboard query %s: %w", q.name, err)
	}
	return nil
}

func (q query) row(app core.App, dst ...any) error {
	if err := app.ConcurrentDB().NewQuery(q.sql).Bind(q.params).Row(dst...); err != nil {
		return fmt.Errorf("dashboard query %s: %w", q.name, err)
	}
	return nil
}

// sqlBuilder collects the parameters of one statement.
type sqlBuilder struct {
	params dbx.Params
	n      int
}

func newBuilder() *sqlBuilder { return &sqlBuilder{params: dbx.Params{}} }

// arg adds a parameter and returns its placeholder.
func (b *sqlBuilder) arg(v any) string {
	b.n++
	name := fmt.Sprintf("p%d", b.n)
	b.params[name] = v
	return "{:" + name + "}"
}

// in returns an IN list of values.
func (b *sqlBuilder) in(values []string) string {
	b.n++
	return inList(fmt.Sprintf("l%d_", b.n), values, b.params)
}

func (b *sqlBuilder) query(name, sql string) query {
	return query{name: name, sql: sql, params: b.params}
}

// dateField is the stored value of a date-only field (a calendar day) at
// the start of day d.
func dateField(d time.Time) string { return d.Format(time.DateOnly) + " 00:00:00.000Z" }

// Conditions shared by the blocks. alias is the table alias.

// workScope keeps field-work records of the queried teams, the site and
// worker filters.
func (b *sqlBuilder) workScope(f filters, alias string, withSite bool) string {
	w := alias + ".team IN (" + b.in(f.teams) + ")"
	if withSite && f.site != "" {
		w += " AND " + alias + ".site = " + b.arg(f.site)
	}
	if f.worker != "" {
		w += " AND " + alias + ".created_by = " + b.arg(f.worker)
	}
	return w
}

// personSite keeps records whose person is at the site filter's site.
func (b *sqlBuilder) personSite(f filters, personExpr string) string {
	if f.site == "" {
		return ""
	}
	return " AND EXISTS (SELECT 1 FROM " + domain.Persons + " ps WHERE ps.id = " + personExpr + " AND ps.site = " + b.arg(f.site) + ")"
}

// Final and open referral statuses.
var (
	finalStatuses = []string{domain.StatusCompleted, domain.StatusDeclined, domain.StatusCancelled}
	openStatuses  = []string{domain.StatusDraft, domain.StatusSent, domain.StatusAccepted, domain.StatusInProgress}
)

// StuckAfter is how long a referral may stay sent before it counts as
// stuck.
const StuckAfter = 14 * 24 * time.Hour

// sentAt is when referral r was last sent: its latest history row into
// sent, or its creation when the history has none.
const sentAt = `coalesce((SELECT max(ev.created) FROM ` + domain.ReferralEvents +
	` ev WHERE ev.referral = r.id AND ev.to_status = 'sent'), r.created)`

// logMillis is the SQL of a change log row's commit time in milliseconds.
const logMillis = `CAST(round((julianday(c.at) - 2440587.5) * 86400000.0) AS INTEGER)`

// changesTable is the change log.
const changesTable = changelog.Table
