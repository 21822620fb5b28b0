package syncapi

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/domain"
	"strada/internal/fieldpolicy"
	"strada/internal/httpbody"
)

type registerRequest struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Platform   string `json:"platform"`
	AppVersion string `json:"appVersion"`
}

// registerResponse is the answer to a registration. Secret is the
// device's credential; the server keeps only its hash, so it is in this
// answer and nowhere else.
type registerResponse struct {
	ID     string        `json:"id"`
	Secret string        `json:"secret"`
	Policy *DevicePolicy `json:"policy"`
}

// The device credential. Every successful registration call issues the
// device a new random secret and keeps only its SHA-256 (hex) in the
// hidden DeviceSecretField, replacing the previous one. A sync call may
// carry the secret in DeviceSecretHeader: it is how a revoked device whose
// owner's tokens are invalidated still learns that it must wipe its data.
const (
	DeviceSecretHeader = "X-Strada-Device-Secret"
	DeviceSecretField  = "secret_hash"
	// deviceSecretBytes is the entropy of a device secret.
	deviceSecretBytes = 32
)

// newDeviceSecret returns a fresh device secret (base64url, no padding)
// and the hash to store.
func newDeviceSecret() (secret, hash string, err error) {
	b := make([]byte, deviceSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("make device secret: %w", err)
	}
	secret = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(secret))
	return secret, hex.EncodeToString(sum[:]), nil
}

// secretMatches reports, in constant time, whether presented is the secret
// whose hash the device keeps. A device without a hash matches nothing.
func secretMatches(device *core.Record, presented string) bool {
	stored, err := hex.DecodeString(device.GetString(DeviceSecretField))
	sum := sha256.Sum256([]byte(presented))
	if err != nil || len(stored) != len(sum) {
		return false
	}
	return subtle.ConstantTimeCompare(sum[:], stored) == 1
}

// revokedByCredential reports whether the request names a revoked device
// (DeviceHeader) and proves to be it (DeviceSecretHeader). It is asked
// only of requests without a valid token; any other outcome, an unknown
// device included, is false, so that such requests all get the same 401.
func revokedByCredential(e *core.RequestEvent) bool {
	id := e.Request.Header.Get(DeviceHeader)
	secret := e.Request.Header.Get(DeviceSecretHeader)
	if id == "" || secret == "" {
		return false
	}
	device, err := e.App.FindRecordById(domain.Devices, id)
	if err != nil {
		if !errors.Is(err, sql.ErrNoRows) {
			e.App.Logger().Error("look up device of a signed-out sync call", "error", err)
		}
		return false
	}
	return secretMatches(device, secret) && device.GetBool("revoked")
}

// unauthorized is the answer to a sync call without a valid users token,
// the same whatever the call says about a device.
func unauthorized(e *core.RequestEvent) error {
	return fail(e, http.StatusUnauthorized, "unauthorized", "Sign in with a users account.")
}

// maxSmallBody is the body limit of requests other than push.
const maxSmallBody = 16 << 10

// Character limits of a device's descriptive fields, as the devices
// collection declares them.
const (
	maxDeviceName     = 100
	maxDevicePlatform = 100
	maxAppVersion     = 50
)

// decodeStrict decodes a JSON body of at most limit bytes into dst,
// refusing unknown fields and trailing data. It returns the answer to give
// when the body cannot be used, nil when dst holds it.
func decodeStrict(e *core.RequestEvent, limit int64, dst any) *Error {
	body, err := httpbody.Read(e.Response, e.Request, limit)
	if errors.Is(err, httpbody.ErrTooLarge) {
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: httpbody.CodeTooLarge, Message: "The request body is too large."}
	}
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Code: "unreadable_body", Message: "The request body could not be read."}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return &Error{Status: http.StatusBadRequest, Code: "malformed_json", Message: "The request body is not valid: " + err.Error()}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &Error{Status: http.StatusBadRequest, Code: "malformed_json", Message: "The request body has trailing data."}
	}
	return nil
}

// answer writes a sync error.
func answer(e *core.RequestEvent, er *Error) error {
	return e.JSON(er.Status, er)
}

// checkDeviceText refuses a descriptive field of a device that is too long
// (in characters) or holds control characters.
func checkDeviceText(field, value string, limit int) *Error {
	if !fieldpolicy.Chars(value, limit) {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: field,
			Message: fmt.Sprintf("%s is at most %d characters.", field, limit)}
	}
	var pe *fieldpolicy.Error
	if errors.As(fieldpolicy.Text(value), &pe) {
		return &Error{Status: http.StatusBadRequest, Code: pe.Code, Field: field, Message: field + " " + pe.Message + "."}
	}
	return nil
}

// RegisterDevice answers POST /api/sync/devices. A device that sends the id
// it made at install time gets the same device back on a retry. Every
// successful answer carries a new device secret and the previous one stops
// working, so that a device whose answer was lost registers again and
// holds the only valid secret. A request that is refused writes nothing.
func (a *API) RegisterDevice(e *core.RequestEvent) error {
	if e.Auth == nil || e.Auth.Collection().Name != domain.Users {
		return unauthorized(e)
	}
	var req registerRequest
	if er := decodeStrict(e, maxSmallBody, &req); er != nil {
		return answer(e, er)
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" {
		return answer(e, &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: "name", Message: "name is required."})
	}
	for _, f := range []struct {
		name, value string
		limit       int
	}{
		{"name", req.Name, maxDeviceName},
		{"platform", req.Platform, maxDevicePlatform},
		{"appVersion", req.AppVersion, maxAppVersion},
	} {
		if er := checkDeviceText(f.name, f.value, f.limit); er != nil {
			return answer(e, er)
		}
	}
	if req.ID != "" {
		if _, err := uuid.Parse(req.ID); err != nil || strings.ToLower(req.ID) != req.ID || len(req.ID) != 36 {
			return e.JSON(http.StatusBadRequest, Error{Status: 400, Code: "invalid_field", Field: "id", Message: "id must be a lowercase UUID."})
		}
	}
	secret, hash, err := newDeviceSecret()
	if err != nil {
		return e.InternalServerError("", err)
	}
	var (
		refusal *Error
		saveErr error
		created bool
		id      = req.ID
	)
	// One transaction: a retry that finds its device and a revocation, or
	// two registrations of one id, cannot interleave.
	err = e.App.RunInTransaction(func(tx core.App) error {
		if req.ID != "" {
			existing, err := tx.FindRecordById(domain.Devices, req.ID)
			switch {
			case err == nil:
				switch {
				case existing.GetString("user") != e.Auth.Id:
					refusal = &Error{Status: http.StatusConflict, Code: "device_id_taken", Message: "This device id belongs to another user."}
				case existing.GetBool("revoked"):
					refusal = &Error{Status: http.StatusForbidden, Code: "device_revoked", Message: "This device has been revoked: delete its local data.", Wipe: true}
				default:
					// A retry: the device gets a new secret, the one it
					// may have missed stops working.
					if _, err := tx.NonconcurrentDB().Update(domain.Devices, dbx.Params{DeviceSecretField: hash},
						dbx.HashExp{"id": existing.Id}).Execute(); err != nil {
						return fmt.Errorf("replace secret of device %s: %w", existing.Id, err)
					}
				}
				return nil
			case !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("find device %s: %w", req.ID, err)
			}
		}
		collection, err := tx.FindCachedCollectionByNameOrId(domain.Devices)
		if err != nil {
			return fmt.Errorf("find devices collection: %w", err)
		}
		device := core.NewRecord(collection)
		if req.ID != "" {
			device.Id = req.ID
		}
		device.Set("user", e.Auth.Id)
		device.Set("name", req.Name)
		device.Set("platform", req.Platform)
		device.Set("app_version", req.AppVersion)
		device.Set(DeviceSecretField, hash)
		if err := tx.Save(device); err != nil {
			saveErr = err
			return err
		}
		id, created = device.Id, true
		return nil
	})
	switch {
	case saveErr != nil:
		return fail(e, http.StatusBadRequest, "invalid_device", "The device could not be registered: "+saveErr.Error())
	case err != nil:
		return e.InternalServerError("", fmt.Errorf("register device: %w", err))
	case refusal != nil:
		return answer(e, refusal)
	case created:
		return e.JSON(http.StatusCreated, registerResponse{ID: id, Secret: secret, Policy: a.policy()})
	}
	return e.JSON(http.StatusOK, registerResponse{ID: id, Secret: secret, Policy: a.policy()})
}
