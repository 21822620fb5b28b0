package dashboard

import (
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/domain"
	"strada/internal/teamscope"
)

// supervisedTeams returns the teams whose work auth may see on the
// dashboard: the teams of a users account with the supervisor role, as the
// team policy reads them. It answers 401 for nobody signed in and 403 for
// any other account (workers, superusers).
func supervisedTeams(auth *core.Record) ([]string, *Error) {
	who := teamscope.Of(auth)
	if auth == nil || (!who.Superuser && who.ID == "") {
		return nil, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "Sign in with a supervisor's account."}
	}
	if who.Superuser || who.Role != domain.RoleSupervisor {
		return nil, &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: "The dashboard is for supervisors."}
	}
	return slices.Clone(who.Teams), nil
}

// filters are what a request asks for, checked against the supervisor's
// teams.
type filters struct {
	// supervised are all the supervisor's teams; teams those queried (all
	// of them, or the one named by the team filter).
	supervised []string
	teams      []string
	team       string
	site       string
	worker     string
	period     period
	now        time.Time
	// today is the start of the current day in Rome.
	today time.Time
}

// readFilters reads team, site, worker and the period from q. A team, site
// or worker outside the supervisor's teams answers 404, exactly as one that
// does not exist.
func (d *Dashboard) readFilters(app core.App, auth *core.Record, q url.Values) (filters, *Error) {
	teams, er := supervisedTeams(auth)
	if er != nil {
		return filters{}, er
	}
	now := d.Now().In(rome)
	f := filters{supervised: teams, teams: teams, now: now, today: dayStart(now)}
	if t := q.Get("team"); t != "" {
		if !slices.Contains(teams, t) {
			return f, notFound("team")
		}
		f.team, f.teams = t, []string{t}
	}
	if s := q.Get("site"); s != "" {
		ok, err := siteInTeams(app, s, f.teams)
		if err != nil {
			return f, internal(err)
		}
		if !ok {
			return f, notFound("site")
		}
		f.site = s
	}
	if w := q.Get("worker"); w != "" {
		ok, err := memberOfTeams(app, w, f.teams)
		if err != nil {
			return f, internal(err)
		}
		if !ok {
			return f, notFound("worker")
		}
		f.worker = w
	}
	p, er := readPeriod(q, now)
	if er != nil {
		return f, er
	}
	f.period = p
	return f, nil
}

func internal(err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "server_error", Message: "The dashboard could not be read: " + err.Error()}
}

func siteInTeams(app core.App, site string, teams []string) (bool, error) {
	var team string
	err := app.ConcurrentDB().Select("team").From(domain.Sites).Where(dbx.HashExp{"id": site}).Row(&team)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read site %s: %w", site, err)
	}
	return slices.Contains(teams, team), nil
}

func memberOfTeams(app core.App, user string, teams []string) (bool, error) {
	var list string
	err := app.ConcurrentDB().Select("teams").From(domain.Users).Where(dbx.HashExp{"id": user}).Row(&list)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read user %s: %w", user, err)
	}
	var n int
	params := dbx.Params{"list": list}
	q := `SELECT COUNT(*) FROM json_each({:list}) WHERE value IN (` + inList("t", teams, params) + `)`
	if err := app.ConcurrentDB().NewQuery(q).Bind(params).Row(&n); err != nil {
		return false, fmt.Errorf("read teams of user %s: %w", user, err)
	}
	return n > 0, nil
}

// inList returns the placeholders of values for an SQL IN list, adding
// them to params under prefix0, prefix1, ...
func inList(prefix string, values []string, params dbx.Params) string {
	if len(values) == 0 {
		return "NULL"
	}
	out := make([]byte, 0, len(values)*8)
	for i, v := range values {
		name := prefix + strconv.Itoa(i)
		params[name] = v
		if i > 0 {
			out = append(out, ", "...)
		}
		out = append(out, "{:"+name+"}"...)
	}
	return string(out)
}
