// Package syncapi is the HTTP sync protocol between field devices and the
// server: device registration, idempotent push of mutations with
// field-level merge and a conflict journal, scoped and paged pull with
// signed cursors, live hints over Server-Sent Events, and device revocation.
// docs/sync-protocol.md is its specification.
package syncapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"strada/internal/domain"
	"strada/internal/events"
	"strada/internal/httpbody"
	"strada/internal/teamscope"
)

// Protocol limits.
const (
	MaxMutations   = 500
	MaxPushBytes   = httpbody.MaxBytes
	MaxPullLimit   = 1000
	DefaultLimit   = 200
	DeviceHeader   = "X-Strada-Device"
	PendingHeader  = "X-Strada-Pending"
	deviceStoreKey = "strada.device"
)

// API serves the sync protocol.
type API struct {
	hub     *events.Hub
	logger  *slog.Logger
	cursors cursorCodec
	streams streamCaps
	// Heartbeat is the interval of stream heartbeats.
	Heartbeat time.Duration
	// LockAfter is the field app's idle lock time sent to devices (see
	// policy.go); zero is DefaultLockAfter.
	LockAfter time.Duration
	// BulkCreated does, in the push's transaction, what other packages'
	// record hooks do on a create, for the records the push's bulk path
	// inserts without running record hooks (see bulkCreatable); nil: none.
	BulkCreated func(tx core.App, rec *core.Record) error
}

// New returns the sync API fed by hub for live hints.
func New(hub *events.Hub, logger *slog.Logger) *API {
	return &API{hub: hub, logger: logger, Heartbeat: 25 * time.Second}
}

// Error is the body of every sync error answer.
type Error struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	Wipe    bool   `json:"wipe,omitempty"`
}

func fail(e *core.RequestEvent, status int, code, message string) error {
	return e.JSON(status, Error{Status: status, Code: code, Message: message})
}

// RequireDevice admits a request only from a signed-in user (users
// collection) with a registered, non-revoked device of theirs named in the
// X-Strada-Device header. A device secret sent in X-Strada-Device-Secret
// must be the device's. A revoked device of the user is told to wipe its
// data. A request that is not signed in is told to wipe only when it names
// a revoked device and proves to be it with the device's secret; every
// other one gets the same 401, which says nothing about any device.
func (a *API) RequireDevice(e *core.RequestEvent) error {
	if e.Auth == nil || e.Auth.Collection().Name != domain.Users {
		if revokedByCredential(e) {
			return revokedAnswer(e)
		}
		return unauthorized(e)
	}
	id := e.Request.Header.Get(DeviceHeader)
	if id == "" {
		return fail(e, http.StatusBadRequest, "device_required", "The "+DeviceHeader+" header is required.")
	}
	device, err := e.App.FindRecordById(domain.Devices, id)
	if err != nil || device.GetString("user") != e.Auth.Id {
		return fail(e, http.StatusForbidden, "device_unknown", "This device is not registered to this user.")
	}
	if secret := e.Request.Header.Get(DeviceSecretHeader); secret != "" && !secretMatches(device, secret) {
		return unauthorized(e)
	}
	if device.GetBool("revoked") {
		return revokedAnswer(e)
	}
	e.Set(deviceStoreKey, device)
	return e.Next()
}

func deviceOf(e *core.RequestEvent) *core.Record {
	d, _ := e.Get(deviceStoreKey).(*core.Record)
	return d
}

// errDeviceRevoked is returned by touchDevice for a device revoked while
// its request ran.
var errDeviceRevoked = errors.New("device revoked")

// touchDevice records that the device was seen, its cursor (when known) and
// the size of its outbox as it reported it. It writes those columns only,
// and only while the device is not revoked, so that a request that began
// before a revocation can never undo it.
func touchDevice(app core.App, e *core.RequestEvent, cursor string) error {
	device := deviceOf(e)
	if device == nil {
		return errors.New("no device in request")
	}
	cols := dbx.Params{"last_seen": types.NowDateTime().String()}
	if cursor != "" {
		cols["last_cursor"] = cursor
	}
	if p := e.Request.Header.Get(PendingHeader); p != "" {
		if n, err := strconv.Atoi(p); err == nil && n >= 0 {
			cols["pending"] = n
		}
	}
	res, err := app.NonconcurrentDB().Update(domain.Devices, cols,
		dbx.HashExp{"id": device.Id, "revoked": false}).Execute()
	if err != nil {
		return fmt.Errorf("record device activity: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errDeviceRevoked
	}
	return nil
}

func revokedAnswer(e *core.RequestEvent) error {
	return e.JSON(http.StatusForbidden, Error{
		Status: http.StatusForbidden, Code: "device_revoked",
		Message: "This device has been revoked: delete its local data.", Wipe: true,
	})
}

// CodeRevocationFinal is the validation code of an update that would
// restore a revoked device.
const CodeRevocationFinal = "validation_revocation_final"

// OnDeviceUpdateExecute is bound to OnRecordUpdateExecute of devices. A
// revocation is final: an update that would set a revoked device's revoked
// back to false is refused, whoever sends it (superusers included, through
// the records API, the batch API or the admin UI). When a device is
// revoked, its owner's tokens are invalidated in the same transaction, so
// the revoked device can no longer use the records API, the realtime API or
// register itself again; the owner signs in again on their other devices.
func OnDeviceUpdateExecute(e *core.RecordEvent) error {
	outer := e.App
	defer func() { e.App = outer }()
	return outer.RunInTransaction(func(tx core.App) error {
		e.App = tx
		var wasRevoked bool
		if err := tx.NonconcurrentDB().Select("revoked").From(domain.Devices).
			Where(dbx.HashExp{"id": e.Record.Id}).Row(&wasRevoked); err != nil {
			return fmt.Errorf("read device %s: %w", e.Record.Id, err)
		}
		if wasRevoked && !e.Record.GetBool("revoked") {
			return validation.Errors{"revoked": validation.NewError(CodeRevocationFinal,
				"A revoked device cannot be restored; register the device again.")}
		}
		if err := e.Next(); err != nil {
			return err
		}
		if wasRevoked || !e.Record.GetBool("revoked") {
			return nil
		}
		owner, err := tx.FindRecordById(domain.Users, e.Record.GetString("user"))
		if err != nil {
			return fmt.Errorf("find owner of device %s: %w", e.Record.Id, err)
		}
		owner.RefreshTokenKey()
		if err := tx.Save(owner); err != nil {
			return fmt.Errorf("invalidate tokens of %s: %w", owner.Id, err)
		}
		return nil
	})
}

// scopeOf is what a user may receive: the teams whose records the team
// policy lets them read.
type userScope struct {
	who         teamscope.Subject
	teams       []string
	role        string
	fingerprint string
}

func scopeOf(user *core.Record) userScope {
	who := teamscope.Of(user)
	teams := who.TeamsAllowing(teamscope.Read, domain.Logged...)
	role := user.GetString("role")
	return userScope{who: who, teams: teams, role: role, fingerprint: scopeFingerprint(role, teams)}
}
