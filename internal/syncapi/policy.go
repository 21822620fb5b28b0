package syncapi

import (
	"fmt"
	"time"
)

// The idle lock of the field app: how long a device stays unlocked without
// use (or hidden) before it asks for the password again. The server sets it
// (--lock-after) and every device receives it with its registration and
// with every pull page, so a change reaches the devices at their next sync.
const (
	DefaultLockAfter = 15 * time.Minute
	MinLockAfter     = time.Minute
	MaxLockAfter     = 60 * time.Minute
)

// DevicePolicy is what the server asks of its field devices, sent with the
// registration and every pull page.
type DevicePolicy struct {
	// LockAfterSeconds is the idle lock time in whole seconds.
	LockAfterSeconds int `json:"lockAfterSeconds"`
}

// CheckLockAfter refuses an idle lock time outside MinLockAfter–MaxLockAfter.
func CheckLockAfter(d time.Duration) error {
	if d < MinLockAfter || d > MaxLockAfter {
		return fmt.Errorf("lock time %s is out of range: it must be from %s to %s", d, fmtMinutes(MinLockAfter), fmtMinutes(MaxLockAfter))
	}
	return nil
}

func fmtMinutes(d time.Duration) string {
	return fmt.Sprintf("%dm", int(d/time.Minute))
}

// LockAfterValue is the --lock-after flag: a duration that Set refuses
// outside MinLockAfter–MaxLockAfter, so a bad value stops the server at
// start with the reason.
type LockAfterValue struct{ D *time.Duration }

// String returns the current value.
func (v LockAfterValue) String() string {
	if v.D == nil {
		return DefaultLockAfter.String()
	}
	return v.D.String()
}

// Set parses and checks s ("15m", "1h").
func (v LockAfterValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 15m: %w", s, err)
	}
	if err := CheckLockAfter(d); err != nil {
		return err
	}
	*v.D = d
	return nil
}

// Type names the flag's value in the help.
func (LockAfterValue) Type() string { return "duration" }

// policy returns the device policy of this server. A zero LockAfter (an
// API made without one, as in tests) is DefaultLockAfter.
func (a *API) policy() *DevicePolicy {
	d := a.LockAfter
	if d == 0 {
		d = DefaultLockAfter
	}
	return &DevicePolicy{LockAfterSeconds: int(d / time.Second)}
}
