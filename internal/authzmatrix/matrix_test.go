package authzmatrix_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/accesslog"
	"strada/internal/demo"
	"strada/internal/domain"
	"strada/internal/syncapi"
)

// cell is one request of the matrix: an account, and the team of the
// record it addresses ("" when the route names no team's record).
type cell struct {
	as   account
	team string
}

func (c cell) String() string {
	if c.team == "" {
		return c.as.key
	}
	return c.as.key + " → " + c.team + " record"
}

// row is a route and a way of requesting it, with the policy's answer for
// every cell.
type row struct {
	route string // as registered: "METHOD /path"
	name  string
	// scoped rows run once per team for each account.
	scoped bool
	// build makes the request (and the records it needs) for a cell.
	build func(s *server, c cell) request
	// do replaces build for a request that takes several steps; it
	// returns the status and everything the account received.
	do   func(s *server, c cell) (int, string)
	want func(c cell) outcome
	// sees are tokens an ok answer must hold: proof that the cell reads
	// what it may, so that the search for what it may not is not vacuous.
	sees func(s *server, c cell) []string
	// write rows may change the data when they succeed; every other answer
	// must leave it as it was.
	write bool
	// effect checks what a write did (or, refused, did not do).
	effect func(s *server, c cell, status int, body string) error
}

func recordsPath(collection string) string { return "/api/collections/" + collection + "/records" }

// recordRows returns the rows of the records API for one collection.
func recordRows(p *collectionPolicy) []row {
	target := func(s *server, team string, fresh bool) string {
		if id := s.fixture[p.name][team]; id != "" && !fresh {
			return id
		}
		if p.viewAbsent {
			return "zqnone" + s.unique("")
		}
		return s.fresh(p.name, team)
	}
	seesOwn := func(s *server, c cell) []string {
		var out []string
		for _, team := range teamKeys {
			if _, has := s.fixture[p.name][team]; has && p.read(c.as, team) == ok && p.name != domain.Users {
				out = append(out, marker(p.name, team))
			}
		}
		return out
	}
	return []row{
		{route: "GET /api/collections/{collection}/records", name: "list " + p.name,
			build: func(s *server, c cell) request {
				return request{method: http.MethodGet, path: recordsPath(p.name) + "?perPage=1000"}
			},
			want: func(c cell) outcome { return p.list(c.as) },
			sees: seesOwn},
		{route: "GET /api/collections/{collection}/records/{id}", name: "view " + p.name, scoped: p.scoped,
			build: func(s *server, c cell) request {
				return request{method: http.MethodGet, path: recordsPath(p.name) + "/" + target(s, c.team, false)}
			},
			want: func(c cell) outcome { return p.read(c.as, c.team) },
			sees: func(s *server, c cell) []string {
				if _, has := s.fixture[p.name][c.team]; has && p.name != domain.Users {
					return []string{marker(p.name, c.team)}
				}
				return nil
			}},
		{route: "POST /api/collections/{collection}/records", name: "create " + p.name, scoped: p.scoped, write: true,
			build: func(s *server, c cell) request {
				return request{method: http.MethodPost, path: recordsPath(p.name), body: p.createBody(s, c.team)}
			},
			want: func(c cell) outcome { return p.create(c.as, c.team) }},
		{route: "PATCH /api/collections/{collection}/records/{id}", name: "update " + p.name, scoped: p.scoped, write: true,
			build: func(s *server, c cell) request {
				return request{method: http.MethodPatch, path: recordsPath(p.name) + "/" + target(s, c.team, p.updateFresh),
					body: p.updateBody(s, c.team)}
			},
			want: func(c cell) outcome { return p.update(c.as, c.team) }},
		{route: "DELETE /api/collections/{collection}/records/{id}", name: "delete " + p.name, scoped: p.scoped, write: true,
			build: func(s *server, c cell) request {
				id := target(s, c.team, false)
				if !p.viewAbsent {
					id = s.spare(p.name, c.team)
				}
				return request{method: http.MethodDelete, path: recordsPath(p.name) + "/" + id}
			},
			want: func(c cell) outcome { return p.delete(c.as, c.team) }},
	}
}

// Simple policies of whole routes.
func anyone(cell) outcome { return ok }
func signedInUser(c cell) outcome {
	return allow(c.as.user())
}
func anyAccount(c cell) outcome { return allow(c.as.email != "") }
func superuserOnly(c cell) outcome {
	if c.as.superuser {
		return ok
	}
	return refused
}
func superuserAdminOnly(c cell) outcome { return superuserAdmin(c.as, "") }
func everyoneRefused(cell) outcome      { return refused }
func supervisorAccount(c cell) outcome  { return allow(c.as.supervisor) }
func supervisorOfTeam(c cell) outcome   { return allow(c.as.supervises(c.team)) }

func get(path string) func(*server, cell) request {
	return func(*server, cell) request { return request{method: http.MethodGet, path: path} }
}

func post(path, body string) func(*server, cell) request {
	return func(*server, cell) request { return request{method: http.MethodPost, path: path, body: body} }
}

func method(m, path, body string) func(*server, cell) request {
	return func(*server, cell) request { return request{method: m, path: path, body: body} }
}

// device is the header of the cell account's registered device.
func (s *server) deviceHeader(c cell) map[string]string {
	if id := s.device[c.as.key]; id != "" {
		return map[string]string{syncapi.DeviceHeader: id}
	}
	return nil
}

func (s *server) exists(collection, id string) bool {
	_, err := s.app.FindRecordById(collection, id)
	return err == nil
}

// routeRows are the rows of every route but the records API.
func routeRows() []row {
	rows := []row{
		// Public: the web client, health, the admin UI's extensions.
		{route: "GET /{path...}", name: "web client", build: get("/"), want: anyone},
		{route: "GET /_/extensions.js", name: "admin UI extensions", build: get("/_/extensions.js"), want: func(cell) outcome { return quiet }},
		{route: "GET /api/health", name: "health", build: get("/api/health"), want: anyone},

		// Operator endpoints: superusers; the metrics also with their token.
		{route: "GET /api/strada/events", name: "event flow status", build: get("/api/strada/events"), want: superuserOnly},
		{route: "GET /api/strada/metrics", name: "metrics", build: get("/api/strada/metrics"), want: superuserOnly},
		{route: "GET /api/strada/metrics", name: "metrics with the scraper's token",
			build: func(*server, cell) request {
				return request{method: http.MethodGet, path: "/api/strada/metrics", anonymous: true,
					header: map[string]string{"Authorization": "Bearer " + metricsToken}}
			},
			want: anyone},
		{route: "GET /api/strada/metrics", name: "metrics with a wrong token",
			build: func(*server, cell) request {
				return request{method: http.MethodGet, path: "/api/strada/metrics", anonymous: true,
					header: map[string]string{"Authorization": "Bearer " + strings.Repeat("x", len(metricsToken))}}
			},
			want: everyoneRefused},

		// PocketBase's administration: superusers only.
		{route: "GET /api/settings", name: "settings", build: get("/api/settings"), want: superuserOnly},
		{route: "PATCH /api/settings", name: "change settings", build: method(http.MethodPatch, "/api/settings", `{"meta":{"appName":""}}`), want: superuserAdminOnly, write: true},
		{route: "POST /api/settings/test/s3", name: "test S3", build: post("/api/settings/test/s3", `{}`), want: superuserAdminOnly},
		{route: "POST /api/settings/test/email", name: "test e-mail", build: post("/api/settings/test/email", `{}`), want: superuserAdminOnly},
		{route: "POST /api/settings/apple/generate-client-secret", name: "Apple client secret", build: post("/api/settings/apple/generate-client-secret", `{}`), want: superuserAdminOnly},
		{route: "GET /api/collections", name: "schema", build: get("/api/collections"), want: superuserOnly},
		{route: "POST /api/collections", name: "create collection", build: post("/api/collections", `{}`), want: superuserAdminOnly},
		{route: "GET /api/collections/{collection}", name: "schema of persons", build: get("/api/collections/persons"), want: superuserOnly},
		{route: "PATCH /api/collections/{collection}", name: "change a collection", build: method(http.MethodPatch, "/api/collections/zqnone", `{}`), want: superuserAdminOnly},
		{route: "DELETE /api/collections/{collection}", name: "delete a collection", build: method(http.MethodDelete, "/api/collections/zqnone", ""), want: superuserAdminOnly},
		{route: "DELETE /api/collections/{collection}/truncate", name: "truncate a collection", build: method(http.MethodDelete, "/api/collections/zqnone/truncate", ""), want: superuserAdminOnly},
		{route: "PUT /api/collections/import", name: "import collections", build: method(http.MethodPut, "/api/collections/import", `{"collections":[{"name":""}]}`), want: superuserAdminOnly},
		{route: "GET /api/collections/meta/scaffolds", name: "scaffolds", build: get("/api/collections/meta/scaffolds"), want: superuserOnly},
		{route: "GET /api/collections/meta/oauth2-providers", name: "OAuth2 providers", build: get("/api/collections/meta/oauth2-providers"), want: superuserOnly},
		{route: "POST /api/collections/meta/dry-run-view", name: "dry-run a view", build: post("/api/collections/meta/dry-run-view", `{}`), want: superuserAdminOnly},
		{route: "GET /api/logs", name: "request logs", build: get("/api/logs"), want: superuserOnly},
		{route: "GET /api/logs/stats", name: "request log stats", build: get("/api/logs/stats"), want: superuserOnly},
		{route: "GET /api/logs/{id}", name: "a request log", build: get("/api/logs/zqnone"), want: superuserAdminOnly},
		{route: "GET /api/backups", name: "backups", build: get("/api/backups"), want: superuserOnly},
		{route: "POST /api/backups", name: "make a backup", build: post("/api/backups", `{"name":"../zq.zip"}`), want: superuserAdminOnly},
		{route: "POST /api/backups/upload", name: "upload a backup", build: post("/api/backups/upload", `{}`), want: superuserAdminOnly},
		{route: "GET /api/backups/{key}", name: "download a backup",
			build: func(s *server, c cell) request {
				path := "/api/backups/zqnone.zip"
				if c.as.email != "" {
					rec, err := s.app.FindAuthRecordByEmail(domain.Users, c.as.email)
					if err != nil {
						rec, err = s.app.FindAuthRecordByEmail(core.CollectionNameSuperusers, c.as.email)
					}
					if err != nil {
						s.t.Fatal(err)
					}
					tok, err := rec.NewFileToken()
					if err != nil {
						s.t.Fatal(err)
					}
					path += "?token=" + tok
				}
				return request{method: http.MethodGet, path: path}
			},
			want: superuserAdminOnly},
		{route: "DELETE /api/backups/{key}", name: "delete a backup", build: method(http.MethodDelete, "/api/backups/zqnone.zip", ""), want: superuserAdminOnly},
		{route: "POST /api/backups/{key}/restore", name: "restore a backup", build: post("/api/backups/zqnone.zip/restore", ""), want: superuserAdminOnly},
		{route: "GET /api/crons", name: "cron jobs", build: get("/api/crons"), want: superuserOnly},
		{route: "POST /api/crons/{id}", name: "run a cron job", build: post("/api/crons/zqnone", ""), want: superuserAdminOnly},
		{route: "POST /api/sql", name: "run SQL", build: post("/api/sql", `{"query":"SELECT count(*) AS n FROM persons"}`), want: superuserOnly},

		// Signing in and account e-mails (the users collection): open to
		// everyone with the right secret, and saying nothing of others.
		{route: "GET /api/collections/{collection}/auth-methods", name: "auth methods", build: get("/api/collections/users/auth-methods"), want: anyone},
		{route: "POST /api/collections/{collection}/auth-with-password", name: "sign in with a wrong password",
			build: func(s *server, c cell) request {
				return request{method: http.MethodPost, path: "/api/collections/users/auth-with-password",
					body: body(`{"identity":"%s@example.org","password":"wrong-password"}`, s.unique("nobody"))}
			},
			want: everyoneRefused},
		{route: "POST /api/collections/{collection}/auth-with-password", name: "sign in with one's own password", write: true,
			build: func(s *server, c cell) request {
				email := c.as.email
				if !c.as.user() {
					email = unknownEmail
				}
				return request{method: http.MethodPost, path: "/api/collections/users/auth-with-password",
					body: body(`{"identity":"%s","password":"%s"}`, email, demo.Password)}
			},
			want: signedInUser},
		{route: "POST /api/collections/{collection}/auth-refresh", name: "refresh a users token", build: post("/api/collections/users/auth-refresh", ""), want: signedInUser},
		{route: "POST /api/collections/{collection}/auth-with-oauth2", name: "OAuth2 sign-in", build: post("/api/collections/users/auth-with-oauth2", `{}`), want: everyoneRefused},
		{route: "POST /api/collections/{collection}/request-otp", name: "request an OTP",
			build: func(s *server, c cell) request {
				return request{method: http.MethodPost, path: "/api/collections/users/request-otp", body: body(`{"email":"%s"}`, emailOr(c))}
			},
			want: everyoneRefused},
		{route: "POST /api/collections/{collection}/auth-with-otp", name: "OTP sign-in", build: post("/api/collections/users/auth-with-otp", `{"otpId":"zqnone","password":"123456"}`), want: everyoneRefused},
		{route: "POST /api/collections/{collection}/request-password-reset", name: "request a password reset",
			build: func(s *server, c cell) request {
				return request{method: http.MethodPost, path: "/api/collections/users/request-password-reset", body: body(`{"email":"%s"}`, emailOr(c))}
			},
			want: anyone},
		{route: "POST /api/collections/{collection}/confirm-password-reset", name: "confirm a password reset with a forged token",
			build: post("/api/collections/users/confirm-password-reset", `{"token":"zq.forged.token","password":"nuova-password-1","passwordConfirm":"nuova-password-1"}`), want: everyoneRefused},
		{route: "POST /api/collections/{collection}/request-verification", name: "request a verification",
			build: func(s *server, c cell) request {
				return request{method: http.MethodPost, path: "/api/collections/users/request-verification", body: body(`{"email":"%s"}`, emailOr(c))}
			},
			want: anyone},
		{route: "POST /api/collections/{collection}/confirm-verification", name: "confirm a verification with a forged token",
			build: post("/api/collections/users/confirm-verification", `{"token":"zq.forged.token"}`), want: everyoneRefused},
		{route: "POST /api/collections/{collection}/request-email-change", name: "request an e-mail change",
			build: func(s *server, c cell) request {
				return request{method: http.MethodPost, path: "/api/collections/users/request-email-change",
					body: body(`{"newEmail":"%s@example.org"}`, s.unique("cambio"))}
			},
			want: signedInUser},
		{route: "POST /api/collections/{collection}/confirm-email-change", name: "confirm an e-mail change with a forged token",
			build: post("/api/collections/users/confirm-email-change", `{"token":"zq.forged.token","password":"x"}`), want: everyoneRefused},
		{route: "POST /api/collections/{collection}/impersonate/{id}", name: "impersonate a worker", scoped: true,
			build: func(s *server, c cell) request {
				return request{method: http.MethodPost, path: "/api/collections/users/impersonate/" + s.fixture[domain.Users][c.team], body: `{}`}
			},
			want: superuserOnly},
		// The page an OAuth2 provider sends the browser back to: public,
		// and without a flow it says nothing.
		{route: "GET /api/oauth2-redirect", name: "OAuth2 redirect without a flow", build: get("/api/oauth2-redirect"), want: anyone},
		{route: "POST /api/oauth2-redirect", name: "OAuth2 redirect without a flow", build: post("/api/oauth2-redirect", ""), want: anyone},

		// Files: a token for any account; the schema has no files.
		{route: "POST /api/files/token", name: "file token", build: post("/api/files/token", ""), want: anyAccount},
		{route: "GET /api/files/{collection}/{recordId}/{filename}", name: "a file of a person", scoped: true,
			build: func(s *server, c cell) request {
				return request{method: http.MethodGet, path: "/api/files/persons/" + s.fixture[domain.Persons][c.team] + "/zq.png"}
			},
			want: everyoneRefused},

		// The batch API: each request under its collection's rules.
		{route: "POST /api/batch", name: "batch create of a person", scoped: true, write: true,
			build: func(s *server, c cell) request {
				return request{method: http.MethodPost, path: "/api/batch", body: body(
					`{"requests":[{"method":"POST","url":"/api/collections/persons/records","body":{"team":"%s","consent":"verbal","notes":"%s"}}]}`,
					s.team[c.team], marker(domain.Persons, c.team))}
			},
			want: func(c cell) outcome { return member(c.as, c.team) }},
		{route: "POST /api/batch", name: "batch update of a person", scoped: true, write: true,
			build: func(s *server, c cell) request {
				return request{method: http.MethodPost, path: "/api/batch", body: body(
					`{"requests":[{"method":"PATCH","url":"/api/collections/persons/records/%s","body":{"languages":"%s"}}]}`,
					s.fixture[domain.Persons][c.team], s.unique("lingua "))}
			},
			want: func(c cell) outcome { return member(c.as, c.team) }},

		// PocketBase's realtime API.
		{route: "GET /api/realtime", name: "connect", build: func(*server, cell) request {
			return request{method: http.MethodGet, path: "/api/realtime", stream: true}
		}, want: anyone},
		{route: "POST /api/realtime", name: "subscribe to every collection and a record of the team", scoped: true, write: true,
			do: realtime, want: anyone,
			sees: func(s *server, c cell) []string {
				if c.as.superuser || c.as.member(c.team) {
					return []string{marker(domain.Persons, c.team)}
				}
				return nil
			}},

		// The sync API: users with a registered device.
		{route: "POST /api/sync/devices", name: "register a device", write: true,
			build: post("/api/sync/devices", `{"name":"Telefono nuovo"}`), want: signedInUser},
		{route: "POST /api/sync/push", name: "push a person", scoped: true, write: true,
			build: func(s *server, c cell) request {
				id := uuid.Must(uuid.NewV7()).String()
				return request{method: http.MethodPost, path: "/api/sync/push", header: s.deviceHeader(c), body: body(
					`{"mutations":[{"id":"%s","collection":"persons","recordId":"%s","op":"upsert","baseVersion":0,"fields":{"team":"%s","consent":"verbal","notes":"%s"}}]}`,
					uuid.NewString(), id, s.team[c.team], marker(domain.Persons, c.team))}
			},
			want: signedInUser,
			effect: func(s *server, c cell, status int, body string) error {
				created := strings.Contains(body, `"status":"applied"`)
				if want := status == http.StatusOK && c.as.member(c.team); created != want {
					return fmt.Errorf("got applied %v, want %v", created, want)
				}
				return nil
			}},
		{route: "GET /api/sync/pull", name: "pull a snapshot",
			build: func(s *server, c cell) request {
				return request{method: http.MethodGet, path: "/api/sync/pull?limit=1000", header: s.deviceHeader(c)}
			},
			want: signedInUser,
			sees: func(s *server, c cell) []string {
				var out []string
				for _, team := range c.as.teams {
					out = append(out, marker(domain.Persons, team), marker(domain.Referrals, team))
				}
				return out
			}},
		{route: "GET /api/sync/stream", name: "live hints",
			build: func(s *server, c cell) request {
				return request{method: http.MethodGet, path: "/api/sync/stream", header: s.deviceHeader(c), stream: true}
			},
			want: signedInUser},
		{route: "POST /api/sync/access", name: "report a card opened on the device", scoped: true, write: true,
			build: func(s *server, c cell) request {
				return request{method: http.MethodPost, path: "/api/sync/access", header: s.deviceHeader(c), body: body(
					`{"opens":[{"id":"%s","collection":"persons","recordId":"%s","at":"2026-11-19T10:00:00Z"}]}`,
					uuid.NewString(), s.fixture[domain.Persons][c.team])}
			},
			want: signedInUser,
			effect: func(s *server, c cell, status int, body string) error {
				n, err := s.app.CountRecords(accesslog.Collection, dbx.HashExp{
					"action": accesslog.ActionOpen, "record": s.fixture[domain.Persons][c.team], "device": s.device[c.as.key]})
				if err != nil {
					return err
				}
				if want := status == http.StatusOK && c.as.member(c.team); (n > 0) != want {
					return fmt.Errorf("got %d open rows, want some: %v", n, want)
				}
				return nil
			}},

		// Erasure: a supervisor of the person's team, or a superuser.
		{route: "POST /api/persons/{id}/erase", name: "erase a person", scoped: true, write: true,
			build: func(s *server, c cell) request {
				return request{method: http.MethodPost, path: "/api/persons/" + s.spare(domain.Persons, c.team) + "/erase",
					body: `{"reason":"richiesta dell'interessato"}`}
			},
			want: func(c cell) outcome { return supervisor(c.as, c.team) },
			effect: func(s *server, c cell, status int, body string) error {
				if status == http.StatusOK && strings.Contains(body, `"alreadyErased":true`) {
					return fmt.Errorf("got an erasure of an erased person: %s", body)
				}
				return nil
			}},

		// The supervisors' dashboard.
		{route: "GET /api/dashboard/summary", name: "summary", build: get("/api/dashboard/summary"), want: supervisorAccount},
		{route: "GET /api/dashboard/summary", name: "summary of a team", scoped: true,
			build: func(s *server, c cell) request {
				return request{method: http.MethodGet, path: "/api/dashboard/summary?team=" + s.team[c.team]}
			},
			want: supervisorOfTeam},
		{route: "GET /api/dashboard/records", name: "persons of a team", scoped: true,
			build: func(s *server, c cell) request {
				return request{method: http.MethodGet, path: "/api/dashboard/records?block=persons&team=" + s.team[c.team]}
			},
			want: supervisorOfTeam},
		{route: "GET /api/dashboard/export.csv", name: "monthly export of a team", scoped: true,
			build: func(s *server, c cell) request {
				return request{method: http.MethodGet, path: "/api/dashboard/export.csv?month=2026-11&team=" + s.team[c.team]}
			},
			want: supervisorOfTeam},
		{route: "POST /api/dashboard/stream-ticket", name: "stream ticket", build: post("/api/dashboard/stream-ticket", ""), want: supervisorAccount},
		{route: "GET /api/dashboard/stream", name: "live stream with the account's ticket", do: dashboardStream, want: supervisorAccount},
	}
	// The records API of every collection.
	for _, p := range policies {
		rows = append(rows, recordRows(p)...)
	}
	for _, name := range systemCollections {
		rows = append(rows, recordRows(systemPolicy(name))...)
	}
	return rows
}

// unknownEmail is an identity no account has.
const unknownEmail = "nessuno@example.org"

func emailOr(c cell) string {
	if c.as.user() {
		return c.as.email
	}
	return unknownEmail
}

// cells returns the cells of r.
func (r row) cells() []cell {
	var out []cell
	for _, a := range accounts {
		if !r.scoped {
			out = append(out, cell{as: a})
			continue
		}
		for _, team := range teamKeys {
			out = append(out, cell{as: a, team: team})
		}
	}
	return out
}

// run makes the request of c and checks its answer, the data it left and
// what it reveals.
func (s *server) run(t *testing.T, r row, c cell) {
	t.Helper()
	var req request
	if r.build != nil {
		req = r.build(s, c)
	}
	before := s.state()
	leaks := s.leaksFor(c.as, before)
	var status int
	var got string
	if r.do != nil {
		status, got = r.do(s, c)
	} else {
		status, got = s.send(c.as, req)
	}
	want := r.want(c)
	if !want.holds(status) {
		t.Errorf("%s: got %d, want %s: %.300s", c, status, want, got)
	}
	success := status >= 200 && status < 300
	if after := s.state(); after != before && !(r.write && success) {
		t.Errorf("%s: got %d and the data changed, want it untouched:\nbefore %s\nafter  %s", c, status, before, after)
	}
	sent := req.path + " " + req.body
	for _, tok := range leaks {
		if tok != "" && strings.Contains(got, tok) && !strings.Contains(sent, tok) {
			t.Errorf("%s: got %q in the answer, which this account may not receive: %.300s", c, tok, got)
		}
	}
	if success && want == ok && r.sees != nil {
		for _, tok := range r.sees(s, c) {
			if !strings.Contains(got, tok) {
				t.Errorf("%s: got no %q in the answer, want it: %.300s", c, tok, got)
			}
		}
	}
	if r.effect != nil {
		if err := r.effect(s, c, status, got); err != nil {
			t.Errorf("%s: %v", c, err)
		}
	}
}

// TestMatrix runs every row of the matrix in every cell, on one server.
func TestMatrix(t *testing.T) {
	s := newServer(t)
	for _, r := range routeRows() {
		t.Run(r.route+" "+r.name, func(t *testing.T) {
			for _, c := range r.cells() {
				s.run(t, r, c)
			}
		})
	}
}

// TestMatrixCoversEveryRoute keeps the matrix complete: every route the
// server registers has a row, every row names a registered route, and every
// collection has a policy.
func TestMatrixCoversEveryRoute(t *testing.T) {
	s := newServer(t)
	rows := map[string]bool{}
	for _, r := range routeRows() {
		rows[r.route] = true
		if !slices.Contains(s.routes, r.route) {
			t.Errorf("row %q names %s, which the server does not register", r.name, r.route)
		}
	}
	for _, route := range s.routes {
		if !rows[route] {
			t.Errorf("route %s has no row in the matrix; add the policy's answer for it", route)
		}
	}
	collections, err := s.app.FindAllCollections()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range collections {
		if policyOf(c.Name) == nil {
			t.Errorf("collection %s has no policy in the matrix; add one", c.Name)
		}
	}
}
