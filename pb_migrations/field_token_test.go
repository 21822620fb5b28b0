package migrations_test

import (
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/security"

	"strada/internal/apptest"
	"strada/internal/domain"
	migrations "strada/pb_migrations"
)

// fieldTokenMigration is the file of the migration that sets the token
// lifetime of users accounts.
const fieldTokenMigration = "1764100110_field_token.go"

func usersTokenDuration(t *testing.T, app core.App) time.Duration {
	t.Helper()
	users, err := app.FindCollectionByNameOrId(domain.Users)
	if err != nil {
		t.Fatalf("find users: %v", err)
	}
	return time.Duration(users.AuthToken.Duration) * time.Second
}

func TestFieldTokenLastsTwoWeeksOfflineWithMargin(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)

	if got, min := migrations.FieldTokenDuration, 14*24*time.Hour; got <= min {
		t.Fatalf("got FieldTokenDuration %s, want more than two weeks (%s)", got, min)
	}
	if got, want := usersTokenDuration(t, app), migrations.FieldTokenDuration; got != want {
		t.Fatalf("got users token duration %s, want %s", got, want)
	}

	user := apptest.User(t, app, apptest.CampWorker)
	minted := time.Now()
	token, err := user.NewAuthToken()
	if err != nil {
		t.Fatalf("mint token: %v", err)
	}
	claims, err := security.ParseUnverifiedJWT(token)
	if err != nil {
		t.Fatalf("parse token: %v", err)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		t.Fatalf("token expiry: got %v (err %v), want a time", exp, err)
	}
	if got, want := exp.Sub(minted), migrations.FieldTokenDuration-time.Minute; got < want {
		t.Fatalf("got a token valid for %s, want at least %s", got, want)
	}
	found, err := app.FindAuthRecordByToken(token, core.TokenTypeAuth)
	if err != nil {
		t.Fatalf("verify token: %v", err)
	}
	if found.Id != user.Id {
		t.Fatalf("got token of %s, want %s", found.Id, user.Id)
	}

	// The superusers keep PocketBase's own lifetime: only field accounts
	// are meant to work for weeks without a connection.
	supers, err := app.FindCollectionByNameOrId(core.CollectionNameSuperusers)
	if err != nil {
		t.Fatalf("find superusers: %v", err)
	}
	if got := time.Duration(supers.AuthToken.Duration) * time.Second; got >= migrations.FieldTokenDuration {
		t.Fatalf("got superuser token duration %s, want less than %s", got, migrations.FieldTokenDuration)
	}
}

func TestFieldTokenMigrationDown(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	var found *core.Migration
	for _, m := range core.AppMigrations.Items() {
		if m.File == fieldTokenMigration {
			found = m
		}
	}
	if found == nil {
		t.Fatalf("got no migration %s, want it registered", fieldTokenMigration)
	}
	if err := found.Down(app); err != nil {
		t.Fatalf("migrate down: %v", err)
	}
	if got, want := usersTokenDuration(t, app), 5*24*time.Hour; got != want {
		t.Fatalf("after down: got users token duration %s, want PocketBase's default %s", got, want)
	}
	if err := found.Up(app); err != nil {
		t.Fatalf("migrate up: %v", err)
	}
	if got, want := usersTokenDuration(t, app), migrations.FieldTokenDuration; got != want {
		t.Fatalf("after up: got users token duration %s, want %s", got, want)
	}
}
