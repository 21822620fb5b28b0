package migrations

import (
	m "github.com/pocketbase/pocketbase/migrations"

	"strada/internal/dashboard/rollup"
)

// The dashboard's rollups: counts kept as the records change, so that a
// summary sums a few hundred rows instead of reading every record
// (internal/dashboard/rollup, docs/dashboard.md). The tables are filled
// from the records already there.
func init() {
	m.Register(rollup.Create, rollup.Drop)
}
