package accesslog

import (
	"fmt"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"
)

// PruneJob is the id of the scheduled job that prunes the access log, and
// PruneSchedule its cron expression: every night at 03:17.
const (
	PruneJob      = "strada_access_log_prune"
	PruneSchedule = "17 3 * * *"
)

// pruneBatch bounds one DELETE, so that pruning a large backlog never holds
// the write lock for long. Rows are appended in time order, so the oldest
// are found first when the table is read in rowid order.
const pruneBatch = 5000

// Prune deletes the rows logged before cutoff and returns how many.
func Prune(app core.App, cutoff time.Time) (int64, error) {
	return prune(app, cutoff, pruneBatch)
}

func prune(app core.App, cutoff time.Time, batch int64) (int64, error) {
	dt, err := types.ParseDateTime(cutoff.UTC())
	if err != nil {
		return 0, fmt.Errorf("prune access log: cutoff %v: %w", cutoff, err)
	}
	var total int64
	for {
		res, err := app.NonconcurrentDB().NewQuery(`
			DELETE FROM ` + Collection + ` WHERE rowid IN (
				SELECT rowid FROM ` + Collection + ` WHERE at < {:cutoff} ORDER BY rowid LIMIT {:batch})`).
			Bind(dbx.Params{"cutoff": dt.String(), "batch": batch}).Execute()
		if err != nil {
			return total, fmt.Errorf("prune access log before %s: %w", dt, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("prune access log: %w", err)
		}
		total += n
		if n < batch {
			return total, nil
		}
	}
}

// SchedulePrune adds the nightly job that deletes the rows older than keep.
// A keep of zero or less keeps every row and schedules nothing.
func SchedulePrune(app core.App, keep time.Duration) {
	if keep <= 0 {
		app.Cron().Remove(PruneJob)
		return
	}
	app.Cron().MustAdd(PruneJob, PruneSchedule, func() {
		n, err := Prune(app, time.Now().Add(-keep))
		if err != nil {
			app.Logger().Error("access log pruning failed", "error", err, "pruned", n)
			return
		}
		app.Logger().Info("access log pruned", "rows", n, "keep", keep.String())
	})
}
