package syncapi

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/pocketbase/pocketbase/core"
)

// Caps on open hint streams. A device normally holds one stream; a few more
// cover a reconnect while the server has not yet noticed the old
// connection is gone. A user may sync from several devices and browsers.
const (
	MaxStreamsPerDevice = 3
	MaxStreamsPerUser   = 10
	// CodeTooManyStreams answers a stream over a cap.
	CodeTooManyStreams = "too_many_streams"
	// streamRetryAfter is the Retry-After (seconds) of that answer.
	streamRetryAfter = 30
)

// streamCaps counts the open streams of each device and user in this
// process.
type streamCaps struct {
	mu      sync.Mutex
	devices map[string]int
	users   map[string]int
}

// acquire counts one more stream of device and user and returns true, or
// returns false when either is at its cap.
func (c *streamCaps) acquire(device, user string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.devices == nil {
		c.devices, c.users = map[string]int{}, map[string]int{}
	}
	if c.devices[device] >= MaxStreamsPerDevice || c.users[user] >= MaxStreamsPerUser {
		return false
	}
	c.devices[device]++
	c.users[user]++
	return true
}

// release counts a stream of device and user as closed.
func (c *streamCaps) release(device, user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	decrement(c.devices, device)
	decrement(c.users, user)
}

func decrement(counts map[string]int, key string) {
	if counts[key] <= 1 {
		delete(counts, key)
		return
	}
	counts[key]--
}

// tooManyStreams answers a stream request over a cap.
func tooManyStreams(e *core.RequestEvent) error {
	e.Response.Header().Set("Retry-After", strconv.Itoa(streamRetryAfter))
	return fail(e, http.StatusTooManyRequests, CodeTooManyStreams,
		"Too many open streams for this device or account; close one or retry later.")
}
