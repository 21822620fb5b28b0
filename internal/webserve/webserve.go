// Package webserve serves the built web client with the headers a field app
// needs: a strict Content-Security-Policy (scripts, styles, images and
// connections from this server only; no frames, plugins or inline code),
// no referrer, no content sniffing; no caching of the entry points (the
// page, the service worker, the manifest), so that an update is seen at the
// next load, and permanent caching of the content-hashed files under
// assets/. The admin UI (/_/) and the API (/api/) are not served here.
package webserve

import (
	"io/fs"
	"path"
	"strings"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
)

// ContentSecurityPolicy is the policy of every web client response.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

// Cache-Control values.
const (
	CacheEntryPoint = "no-cache"
	CacheImmutable  = "public, max-age=31536000, immutable"
)

// assetsDir holds the build's content-hashed files: a new version has a new
// name, so a file there never changes.
const assetsDir = "assets/"

// Handler serves fsys at /{path...}: a file when it exists, index.html for
// any other page path (the app routes on the client). A missing file under
// assets/ or an unknown API path is answered 404, never with the page.
func Handler(fsys fs.FS) func(*core.RequestEvent) error {
	static := apis.Static(fsys, true)
	return func(e *core.RequestEvent) error {
		name := strings.TrimPrefix(path.Clean("/"+e.Request.PathValue(apis.StaticWildcardParam)), "/")
		if name == "api" || strings.HasPrefix(name, "api/") {
			return e.NotFoundError("", nil)
		}
		h := e.Response.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if strings.HasPrefix(name, assetsDir) {
			if fi, err := fs.Stat(fsys, name); err != nil || fi.IsDir() {
				return e.NotFoundError("", nil)
			}
			h.Set("Cache-Control", CacheImmutable)
		} else {
			h.Set("Cache-Control", CacheEntryPoint)
		}
		return static(e)
	}
}
