// Package ratelimit turns on PocketBase's per-address rate limits with
// Strada's rules, once per database: sign-in and account e-mails tight,
// the sync API generous enough for a thousand field devices syncing at
// once behind one carrier NAT, the rest of the API in between. The rules
// are stored in PocketBase's settings; an operator's later change (admin UI
// → Settings → Rate limiting) is kept, because they are applied only once.
package ratelimit

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

// Rules are Strada's rate limit rules, per client address and window
// (seconds). PocketBase takes the first rule whose label matches, so the
// more specific ones come first. Superusers are not limited.
var Rules = []core.RateLimitRule{
	// Password, OTP and OAuth2 sign-ins of every auth collection.
	{Label: "*:auth", MaxRequests: 30, Duration: 60},
	// Requests that send an e-mail.
	{Label: "*:requestPasswordReset", MaxRequests: 5, Duration: 60},
	{Label: "*:requestVerification", MaxRequests: 5, Duration: 60},
	{Label: "*:requestEmailChange", MaxRequests: 5, Duration: 60},
	{Label: "*:requestOTP", MaxRequests: 5, Duration: 60},
	// Device registration happens once per installation.
	{Label: "POST /api/sync/devices", MaxRequests: 120, Duration: 60},
	// Push, pull and stream of many devices behind one address.
	{Label: "/api/sync/", MaxRequests: 6000, Duration: 10},
	{Label: "/api/batch", MaxRequests: 20, Duration: 10},
	// Everything else of the API: records, realtime, erasure, files.
	{Label: "/api/", MaxRequests: 1000, Duration: 10},
}

// stateKey is the row of strada_state that records that the rules were
// applied to this database.
const stateKey = "ratelimit.defaults"

// ApplyDefaults enables Rules on a database where Strada has not done so
// before, unless rate limits are enabled there already (an operator's own
// rules). It reports whether it changed the settings.
func ApplyDefaults(app core.App) (bool, error) {
	var done string
	err := app.ConcurrentDB().Select("value").From("strada_state").
		Where(dbx.HashExp{"key": stateKey}).Row(&done)
	switch {
	case err == nil:
		return false, nil
	case !errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("read rate limit state: %w", err)
	}
	// Saved before the mark: a crash in between finds rate limits enabled
	// on the next start and only sets the mark.
	changed := false
	if !app.Settings().RateLimits.Enabled {
		settings, err := app.Settings().Clone()
		if err != nil {
			return false, fmt.Errorf("copy settings: %w", err)
		}
		settings.RateLimits.Enabled = true
		settings.RateLimits.Rules = append([]core.RateLimitRule(nil), Rules...)
		if err := app.Save(settings); err != nil {
			return false, fmt.Errorf("save rate limits: %w", err)
		}
		changed = true
	}
	_, err = app.NonconcurrentDB().NewQuery(`INSERT OR IGNORE INTO strada_state (key, value) VALUES ({:k}, 'applied')`).
		Bind(dbx.Params{"k": stateKey}).Execute()
	if err != nil {
		return false, fmt.Errorf("record rate limit state: %w", err)
	}
	if changed {
		app.Logger().Info("rate limits enabled with Strada's rules", "rules", len(Rules))
	}
	return changed, nil
}
