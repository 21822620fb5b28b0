package accesslog

import (
	"github.com/pocketbase/pocketbase/core"
)

// failed is the answer when a read cannot be logged: the read is refused,
// so that no person's data leaves the server unaccounted for.
const failed = "The read could not be recorded in the access log."

// OnView is bound to OnRecordViewRequest of the subject collections: the
// viewed record is logged before it is sent.
func OnView(e *core.RecordRequestEvent) error {
	if err := Write(e.App, ReaderOf(e.Auth), ActionView, EntriesOf([]*core.Record{e.Record})); err != nil {
		return e.InternalServerError(failed, err)
	}
	return e.Next()
}

// OnList is bound to OnRecordsListRequest of the subject collections: every
// record of the page is logged, in one statement, before the page is sent.
func OnList(e *core.RecordsListRequestEvent) error {
	if err := Write(e.App, ReaderOf(e.Auth), ActionList, EntriesOf(e.Records)); err != nil {
		return e.InternalServerError(failed, err)
	}
	return e.Next()
}

// OnEnrich is bound to OnRecordEnrich of the subject collections: a record
// sent as an expanded relation or as a realtime message is logged before it
// is sent. Records of views and lists are logged by [OnView] and [OnList];
// records returned by a write are the writer's own and are in the change
// log. When the row cannot be written the record is not sent (PocketBase
// drops the expansion or the realtime message).
func OnEnrich(e *core.RecordEnrichEvent) error {
	if e.RequestInfo == nil {
		return e.Next()
	}
	var action string
	switch e.RequestInfo.Context {
	case core.RequestInfoContextExpand:
		action = ActionExpand
	case core.RequestInfoContextRealtime:
		action = ActionRealtime
	default:
		return e.Next()
	}
	if err := Write(e.App, ReaderOf(e.RequestInfo.Auth), action, EntriesOf([]*core.Record{e.Record})); err != nil {
		e.App.Logger().Error("access log write failed; record withheld",
			"collection", e.Record.Collection().Name, "action", action, "error", err)
		return err
	}
	return e.Next()
}

// RefuseWrite is bound to the create, update and delete request hooks of
// the access log: it is written by the server only, and no account, not
// even a superuser, edits it through the API.
func RefuseWrite(e *core.RecordRequestEvent) error {
	return e.ForbiddenError("The access log is written by the server only.", nil)
}
