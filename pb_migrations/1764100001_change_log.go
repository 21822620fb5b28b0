package migrations

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// The change log is a plain table, not a collection: it is never exposed
// through the records API and is written only by the server's hooks.
func init() {
	m.Register(func(app core.App) error {
		_, err := app.DB().NewQuery(`
			CREATE TABLE strada_changes (
				seq          INTEGER PRIMARY KEY AUTOINCREMENT,
				collection   TEXT    NOT NULL,
				record_id    TEXT    NOT NULL,
				op           TEXT    NOT NULL,
				version      INTEGER NOT NULL DEFAULT 0,
				team         TEXT    NOT NULL DEFAULT '',
				site         TEXT    NOT NULL DEFAULT '',
				fields       TEXT    NOT NULL DEFAULT '[]',
				actor_user   TEXT    NOT NULL DEFAULT '',
				actor_device TEXT    NOT NULL DEFAULT '',
				mutation_id  TEXT    NOT NULL DEFAULT '',
				at           TEXT    NOT NULL
			);
			CREATE INDEX idx_strada_changes_team_seq ON strada_changes (team, seq);
			CREATE INDEX idx_strada_changes_record ON strada_changes (collection, record_id, seq);
			CREATE TABLE strada_state (
				key   TEXT PRIMARY KEY NOT NULL,
				value TEXT NOT NULL
			);
		`).Execute()
		return err
	}, func(app core.App) error {
		_, err := app.DB().NewQuery(`DROP TABLE IF EXISTS strada_changes; DROP TABLE IF EXISTS strada_state;`).Execute()
		return err
	})
}
