// Package dashboard is the server side of the supervisor dashboard: the
// summary of the field work of a supervisor's teams (activity, caseload,
// referrals, overdue follow-ups, offline lag, conflicts, device health and
// a feed of recent changes), the records behind each of its numbers, a
// monthly CSV export and a live stream of change hints fed by the NATS
// event hub. Every aggregate is SQL over indexes, scoped by team in its
// WHERE clause; answers carry identifiers, person codes and counts, never a
// person's name or free text. docs/dashboard.md is its reference.
package dashboard

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"strada/internal/events"
)

// Routes of the dashboard API.
const (
	RouteSummary      = "/api/dashboard/summary"
	RouteRecords      = "/api/dashboard/records"
	RouteExport       = "/api/dashboard/export.csv"
	RouteStreamTicket = "/api/dashboard/stream-ticket"
	RouteStream       = "/api/dashboard/stream"
)

// Error codes of the dashboard API.
const (
	// CodeUnauthorized: no users account signed in.
	CodeUnauthorized = "unauthorized"
	// CodeForbidden: signed in, but not a supervisor.
	CodeForbidden = "forbidden"
	// CodeInvalidFilter: a filter or parameter that cannot be read; the
	// answer's field names it.
	CodeInvalidFilter = "invalid_filter"
	// CodeNotFound: a team, site or worker filter outside the supervisor's
	// teams, answered exactly as one that does not exist.
	CodeNotFound = "not_found"
	// CodeInvalidMonth: the export's month is not YYYY-MM.
	CodeInvalidMonth = "invalid_month"
	// CodeInvalidBlock: the drill-down names no block of the summary.
	CodeInvalidBlock = "invalid_block"
	// CodeInvalidTicket: a stream ticket that is missing, expired, used or
	// not made by this server for this account.
	CodeInvalidTicket = "invalid_ticket"
	// CodeTooManyStreams: the account has MaxStreamsPerUser streams open.
	CodeTooManyStreams = "too_many_streams"
)

// Defaults of a Dashboard.
const (
	DefaultSilentAfter = 48 * time.Hour
	// MinSilentAfter and MaxSilentAfter bound the silent threshold, as
	// silentHours bounds a request's.
	MinSilentAfter   = time.Hour
	MaxSilentAfter   = 720 * time.Hour
	DefaultHeartbeat = 15 * time.Second
	DefaultCoalesce  = 250 * time.Millisecond
	DefaultTicketTTL = 60 * time.Second
	// MaxStreamsPerUser caps the open dashboard streams of one account in
	// this process: a few tabs, and reconnects not yet noticed.
	MaxStreamsPerUser = 5
)

// Dashboard serves the dashboard API.
type Dashboard struct {
	hub    *events.Hub
	logger *slog.Logger

	// Now is the clock of periods, ages and tickets.
	Now func() time.Time
	// SilentAfter is how long a device may go without syncing before it is
	// flagged silent, unless a request sets silentHours.
	SilentAfter time.Duration
	// Heartbeat is the interval of stream heartbeats.
	Heartbeat time.Duration
	// Coalesce is the least time between two change hints of a stream:
	// the changes of a burst arrive as one hint.
	Coalesce time.Duration
	// TicketTTL is how long a stream ticket may be used.
	TicketTTL time.Duration
	// Direct computes activity, caseload, referrals and offline lag from
	// the records and the change log at each request instead of reading
	// the rollups that the record hooks keep: seconds instead of
	// milliseconds over a million records. Tests and benchmarks compare
	// the two.
	Direct bool

	streams streamCount
	tickets usedTickets
}

// New returns a dashboard whose live stream is fed by hub.
func New(hub *events.Hub, logger *slog.Logger) *Dashboard {
	return &Dashboard{
		hub: hub, logger: logger, Now: time.Now,
		SilentAfter: DefaultSilentAfter, Heartbeat: DefaultHeartbeat,
		Coalesce: DefaultCoalesce, TicketTTL: DefaultTicketTTL,
	}
}

// Bind registers the dashboard's routes.
func (d *Dashboard) Bind(se *core.ServeEvent) {
	se.Router.GET(RouteSummary, d.HandleSummary)
	se.Router.GET(RouteRecords, d.HandleRecords)
	se.Router.GET(RouteExport, d.HandleExport)
	se.Router.POST(RouteStreamTicket, d.HandleStreamTicket)
	se.Router.GET(RouteStream, d.HandleStream)
}

// CheckSilentAfter refuses a default silent threshold outside
// MinSilentAfter..MaxSilentAfter or not a whole number of hours (the page
// and silentHours count in hours).
func CheckSilentAfter(d time.Duration) error {
	if d < MinSilentAfter || d > MaxSilentAfter || d%time.Hour != 0 {
		return fmt.Errorf("silent-after is %s: give whole hours from 1h to 720h (30 days), such as 48h", d)
	}
	return nil
}

// Error is the body of every dashboard error answer.
type Error struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (er *Error) Error() string { return er.Code + ": " + er.Message }

func answer(e *core.RequestEvent, er *Error) error {
	e.Response.Header().Set("Cache-Control", "no-store")
	return e.JSON(er.Status, er)
}

func invalid(field, message string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidFilter, Field: field, Message: message}
}

func notFound(field string) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Field: field,
		Message: "No " + field + " with this id is visible to you."}
}
