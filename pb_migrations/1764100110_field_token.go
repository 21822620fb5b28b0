package migrations

import (
	"fmt"
	"time"

	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"

	"strada/internal/domain"
)

// FieldTokenDuration is how long an auth token of a users account is valid.
// A worker may spend two weeks without a connection (holidays, a long run of
// days inside a prison) and must find the app still signed in when they come
// back: two weeks plus one week of margin. The token never leaves the device
// in clear: the field app keeps it sealed with the data key, which is wrapped
// by the worker's password (docs/field-app.md), and a revocation or a change
// of password invalidates it at once.
const FieldTokenDuration = 21 * 24 * time.Hour

// pocketBaseTokenDuration is PocketBase's default token lifetime of an auth
// collection, restored by the down migration.
const pocketBaseTokenDuration = 5 * 24 * time.Hour

func init() {
	m.Register(upFieldToken, downFieldToken)
}

func upFieldToken(app core.App) error {
	return setUsersTokenDuration(app, FieldTokenDuration)
}

func downFieldToken(app core.App) error {
	return setUsersTokenDuration(app, pocketBaseTokenDuration)
}

func setUsersTokenDuration(app core.App, d time.Duration) error {
	users, err := app.FindCollectionByNameOrId(domain.Users)
	if err != nil {
		return fmt.Errorf("find users: %w", err)
	}
	users.AuthToken.Duration = int64(d / time.Second)
	if err := app.Save(users); err != nil {
		return fmt.Errorf("set users token duration to %s: %w", d, err)
	}
	return nil
}
