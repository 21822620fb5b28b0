// Package httpguard keeps slow and greedy clients from holding the HTTP
// server: read timeouts for request headers and bodies well under
// PocketBase's five minutes, and caps on PocketBase's realtime connections.
// The read timeouts do not cut event streams: once a request has been read,
// Go's server lifts the read deadline while the handler runs, and the
// stream handlers lift the write deadline themselves.
package httpguard

import (
	"net/http"
	"strconv"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
)

// Read timeouts of the HTTP server. A request's headers must arrive within
// ReadHeaderTimeout and the whole request, body included (at most 1 MiB),
// within ReadTimeout: enough for a full push over a slow mobile link, far
// too little for a client that trickles bytes to hold a connection.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 60 * time.Second
)

// Caps on PocketBase's realtime (SSE) connections: in all, and per signed-in
// account when it subscribes. Field devices take their hints from the sync
// stream, which has its own caps; realtime serves dashboards and the admin UI.
const (
	MaxRealtimeClients = 1000
	MaxRealtimePerUser = 10
	// realtimeRetryAfter is the Retry-After (seconds) of a refused connection.
	realtimeRetryAfter = 30
)

// SetTimeouts sets the read timeouts of the server PocketBase is about to
// start.
func SetTimeouts(s *http.Server) {
	s.ReadHeaderTimeout = ReadHeaderTimeout
	s.ReadTimeout = ReadTimeout
}

// OnRealtimeConnect is bound to OnRealtimeConnectRequest: it refuses a
// connection beyond MaxRealtimeClients.
func OnRealtimeConnect(e *core.RealtimeConnectRequestEvent) error {
	if e.App.SubscriptionsBroker().TotalClients() >= MaxRealtimeClients {
		e.Response.Header().Set("Retry-After", strconv.Itoa(realtimeRetryAfter))
		return e.TooManyRequestsError("Too many realtime connections; retry later.", nil)
	}
	return e.Next()
}

// OnRealtimeSubscribe is bound to OnRealtimeSubscribeRequest: a signed-in
// account holds at most MaxRealtimePerUser realtime connections.
func OnRealtimeSubscribe(e *core.RealtimeSubscribeRequestEvent) error {
	if e.Auth == nil {
		return e.Next()
	}
	n := 0
	for id, c := range e.App.SubscriptionsBroker().Clients() {
		if id == e.Client.Id() {
			continue
		}
		if auth, _ := c.Get(apis.RealtimeClientAuthKey).(*core.Record); auth != nil &&
			auth.Id == e.Auth.Id && auth.Collection().Id == e.Auth.Collection().Id {
			n++
		}
	}
	if n >= MaxRealtimePerUser {
		return e.TooManyRequestsError("Too many realtime connections for this account; close one first.", nil)
	}
	return e.Next()
}
