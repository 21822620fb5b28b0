package syncapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/domain"
	"strada/internal/httpbody"
)

type registerRequest struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Platform   string `json:"platform"`
	AppVersion string `json:"appVersion"`
}

type registerResponse struct {
	ID string `json:"id"`
}

// maxSmallBody is the body limit of requests other than push.
const maxSmallBody = 16 << 10

// decodeStrict decodes a JSON body of at most limit bytes, refusing unknown
// fields and trailing data.
func decodeStrict(e *core.RequestEvent, limit int64, dst any) error {
	body, err := httpbody.Read(e.Response, e.Request, limit)
	if errors.Is(err, httpbody.ErrTooLarge) {
		return fail(e, http.StatusRequestEntityTooLarge, "body_too_large", "The request body is too large.")
	}
	if err != nil {
		return fail(e, http.StatusBadRequest, "unreadable_body", "The request body could not be read.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fail(e, http.StatusBadRequest, "malformed_json", "The request body is not valid: "+err.Error())
	}
	if dec.More() {
		return fail(e, http.StatusBadRequest, "malformed_json", "The request body has trailing data.")
	}
	return nil
}

// RegisterDevice answers POST /api/sync/devices. A device that sends the id
// it made at install time gets the same device back on a retry.
func (a *API) RegisterDevice(e *core.RequestEvent) error {
	if e.Auth == nil || e.Auth.Collection().Name != domain.Users {
		return fail(e, http.StatusUnauthorized, "unauthorized", "Sign in with a users account.")
	}
	var req registerRequest
	if err := decodeStrict(e, maxSmallBody, &req); err != nil {
		return err
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 100 {
		return e.JSON(http.StatusBadRequest, Error{Status: 400, Code: "invalid_field", Field: "name", Message: "name is required (at most 100 characters)."})
	}
	if len(req.Platform) > 100 || len(req.AppVersion) > 50 {
		return e.JSON(http.StatusBadRequest, Error{Status: 400, Code: "invalid_field", Message: "platform or appVersion is too long."})
	}
	if req.ID != "" {
		if _, err := uuid.Parse(req.ID); err != nil || strings.ToLower(req.ID) != req.ID || len(req.ID) != 36 {
			return e.JSON(http.StatusBadRequest, Error{Status: 400, Code: "invalid_field", Field: "id", Message: "id must be a lowercase UUID."})
		}
		if existing, err := e.App.FindRecordById(domain.Devices, req.ID); err == nil {
			if existing.GetString("user") != e.Auth.Id {
				return fail(e, http.StatusConflict, "device_id_taken", "This device id belongs to another user.")
			}
			if existing.GetBool("revoked") {
				return e.JSON(http.StatusForbidden, Error{Status: 403, Code: "device_revoked", Message: "This device has been revoked: delete its local data.", Wipe: true})
			}
			return e.JSON(http.StatusOK, registerResponse{ID: existing.Id})
		}
	}
	collection, err := e.App.FindCachedCollectionByNameOrId(domain.Devices)
	if err != nil {
		return e.InternalServerError("", err)
	}
	device := core.NewRecord(collection)
	if req.ID != "" {
		device.Id = req.ID
	}
	device.Set("user", e.Auth.Id)
	device.Set("name", req.Name)
	device.Set("platform", req.Platform)
	device.Set("app_version", req.AppVersion)
	if err := e.App.Save(device); err != nil {
		return fail(e, http.StatusBadRequest, "invalid_device", "The device could not be registered: "+err.Error())
	}
	return e.JSON(http.StatusCreated, registerResponse{ID: device.Id})
}
