package syncapi

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"strada/internal/domain"
	"strada/internal/fieldpolicy"
)

// Headers a device sends with a push or pull to report its health, shown
// on the supervisor dashboard. Each is optional; a value that cannot be
// used is ignored, never an error.
const (
	// DeviceTimeHeader is the device's clock when it sent the request
	// (RFC 3339, or milliseconds since the Unix epoch).
	DeviceTimeHeader = "X-Strada-Device-Time"
	// StorageHeader says whether the browser granted persistent storage:
	// "persisted" or "best_effort".
	StorageHeader = "X-Strada-Storage"
	// AppVersionHeader is the version of the app the device runs now.
	AppVersionHeader = "X-Strada-App-Version"
)

// Which exchange a device made, and the device field that keeps its time.
const (
	syncPush = "last_push"
	syncPull = "last_pull"
)

// maxClockSkew bounds the clock skew kept: a device clock further off than
// this is kept as this far off.
const maxClockSkew = 10 * 365 * 24 * time.Hour

// recordHealth records that the device of e pushed or pulled (kind) now,
// with the clock skew, storage mode and app version it reported. Like
// touchDevice it writes only while the device is not revoked.
func recordHealth(app core.App, e *core.RequestEvent, kind string) error {
	device := deviceOf(e)
	if device == nil {
		return fmt.Errorf("record device %s: no device in request", kind)
	}
	now := time.Now()
	cols := dbx.Params{kind: types.NowDateTime().String()}
	if at, ok := parseDeviceTime(e.Request.Header.Get(DeviceTimeHeader)); ok {
		skew := at.Sub(now)
		skew = max(-maxClockSkew, min(maxClockSkew, skew))
		cols["clock_skew_ms"] = skew.Milliseconds()
	}
	switch s := e.Request.Header.Get(StorageHeader); s {
	case "persisted", "best_effort":
		cols["storage"] = s
	}
	if v := strings.TrimSpace(e.Request.Header.Get(AppVersionHeader)); v != "" && fieldpolicy.Chars(v, maxAppVersion) && fieldpolicy.Text(v) == nil {
		cols["app_version"] = v
	}
	_, err := app.NonconcurrentDB().Update(domain.Devices, cols,
		dbx.HashExp{"id": device.Id, "revoked": false}).Execute()
	if err != nil {
		return fmt.Errorf("record device %s: %w", kind, err)
	}
	return nil
}

// parseDeviceTime reads the device time header.
func parseDeviceTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms > 0 {
		return time.UnixMilli(ms), true
	}
	return time.Time{}, false
}
