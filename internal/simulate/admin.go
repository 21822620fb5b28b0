package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// admin is the simulation's superuser: it prepares the simulated workers,
// signs them in, revokes a device, erases persons and reads the server's
// state for the checks, through PocketBase's records API and Strada's
// erasure API. Its traffic is not counted with the devices'.
type admin struct {
	base  string
	token string
	http  *http.Client
}

func (a *admin) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", a.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// signIn signs the superuser in.
func (a *admin) signIn(ctx context.Context, email, password string) error {
	var out struct {
		Token string `json:"token"`
	}
	err := a.call(ctx, http.MethodPost, "/api/collections/_superusers/auth-with-password",
		map[string]string{"identity": email, "password": password}, &out)
	if err != nil {
		return fmt.Errorf("sign in as superuser %s: %w", email, err)
	}
	a.token = out.Token
	return nil
}

// list returns every record of a collection that matches filter ("" for
// all), page by page.
func (a *admin) list(ctx context.Context, collection, filter string) ([]Record, error) {
	var all []Record
	for page := 1; ; page++ {
		q := url.Values{"page": {strconv.Itoa(page)}, "perPage": {"500"}, "skipTotal": {"1"}, "sort": {"id"}}
		if filter != "" {
			q.Set("filter", filter)
		}
		var out struct {
			Items []Record `json:"items"`
		}
		if err := a.call(ctx, http.MethodGet, "/api/collections/"+collection+"/records?"+q.Encode(), nil, &out); err != nil {
			return nil, fmt.Errorf("list %s: %w", collection, err)
		}
		all = append(all, out.Items...)
		if len(out.Items) < 500 {
			return all, nil
		}
	}
}

func (a *admin) create(ctx context.Context, collection string, fields map[string]any) (Record, error) {
	var out Record
	if err := a.call(ctx, http.MethodPost, "/api/collections/"+collection+"/records", fields, &out); err != nil {
		return nil, fmt.Errorf("create %s: %w", collection, err)
	}
	return out, nil
}

func (a *admin) update(ctx context.Context, collection, id string, fields map[string]any) error {
	if err := a.call(ctx, http.MethodPatch, "/api/collections/"+collection+"/records/"+id, fields, nil); err != nil {
		return fmt.Errorf("update %s/%s: %w", collection, id, err)
	}
	return nil
}

// impersonate returns a token of a users account, as if its worker had
// signed in, without a password and outside the sign-in rate limits.
func (a *admin) impersonate(ctx context.Context, userID string, valid time.Duration) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	err := a.call(ctx, http.MethodPost, "/api/collections/users/impersonate/"+userID,
		map[string]any{"duration": int(valid.Seconds())}, &out)
	if err != nil {
		return "", fmt.Errorf("sign in worker %s: %w", userID, err)
	}
	return out.Token, nil
}

// erasure is the answer of the erasure API.
type erasure struct {
	Person        string `json:"person"`
	Records       int    `json:"records"`
	VisitsUpdated int    `json:"visitsUpdated"`
}

func (a *admin) erase(ctx context.Context, personID, reason string) (erasure, error) {
	var out erasure
	err := a.call(ctx, http.MethodPost, "/api/persons/"+personID+"/erase", map[string]string{"reason": reason}, &out)
	if err != nil {
		return out, fmt.Errorf("erase person %s: %w", personID, err)
	}
	return out, nil
}
