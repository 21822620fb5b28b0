// Package accesslog keeps the access log of person data (GDPR art. 30 and
// 32): who read which person's records, how (a REST view, a list, an
// expanded relation, a realtime message, a download to a device, a card
// opened on a device) and when. A row holds identifiers only, never the
// person's data: the person's and the record's opaque ids, the team, the
// reader and the device. The supervisors of the team read it; nobody writes
// it through the records API. Rows older than the retention window are
// pruned by a scheduled job.
package accesslog

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/security"
	"github.com/pocketbase/pocketbase/tools/types"

	"strada/internal/domain"
)

// Collection is the name of the access log collection.
const Collection = "person_access"

// Actions: how a person's record reached its reader.
const (
	// ActionView is a REST view of the record.
	ActionView = "view"
	// ActionList is the record returned by a REST list or search.
	ActionList = "list"
	// ActionExpand is the record returned as an expanded relation of
	// another record.
	ActionExpand = "expand"
	// ActionRealtime is the record sent to a PocketBase realtime
	// subscriber.
	ActionRealtime = "realtime"
	// ActionDownload is the record sent to a device by a sync pull.
	ActionDownload = "download"
	// ActionOpen is the record opened on a device, as the device reported
	// it.
	ActionOpen = "open"
)

// Actions lists every action, in the order of the select field.
var Actions = []string{ActionView, ActionList, ActionExpand, ActionRealtime, ActionDownload, ActionOpen}

// subjects names, for each collection whose records are about one person,
// the field that holds the person's id.
var subjects = map[string]string{
	domain.Persons:             "id",
	domain.SecretariatContacts: "person",
	domain.Referrals:           "person",
}

// Subjects lists the collections whose reads are logged: persons, and the
// records each about one person (secretariat contacts, referrals). Camp
// visits are about a household and are not logged.
func Subjects() []string {
	out := make([]string, 0, len(subjects))
	for c := range subjects {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// IsSubject reports whether reads of collection are logged.
func IsSubject(collection string) bool {
	_, ok := subjects[collection]
	return ok
}

// DefaultRetention is how long rows are kept: one year, long enough to
// answer a data subject's or a supervisor's question about the past year's
// reads, and no longer.
const DefaultRetention = 365 * 24 * time.Hour

// Reader is who read.
type Reader struct {
	User      string // users id; empty for a superuser
	Superuser string // _superusers id; empty for a user
	Device    string // the device, when known (sync)
}

// ReaderOf is the reader behind an auth record; nil is a reader signed out.
func ReaderOf(auth *core.Record) Reader {
	switch {
	case auth == nil:
		return Reader{}
	case auth.IsSuperuser():
		return Reader{Superuser: auth.Id}
	default:
		return Reader{User: auth.Id}
	}
}

// Entry is one record of one person that was read.
type Entry struct {
	Person     string `json:"person"`
	Team       string `json:"team"`
	Collection string `json:"collection"`
	Record     string `json:"record"`
	// ClientID and ClientTime are set for the opens a device reports: the
	// id the device made for the report, and when the card was opened.
	ClientID   string `json:"client_id"`
	ClientTime string `json:"client_time"`
}

// EntryOf returns the entry of a record read; false when reads of its
// collection are not logged.
func EntryOf(r *core.Record) (Entry, bool) {
	if r == nil || r.Collection() == nil {
		return Entry{}, false
	}
	return EntryOfData(r.Collection().Name, r.Id, r.Get)
}

// EntryOfData returns the entry of a record of collection with id whose
// fields get returns, as a pull page holds it.
func EntryOfData(collection, id string, get func(field string) any) (Entry, bool) {
	field, ok := subjects[collection]
	if !ok {
		return Entry{}, false
	}
	person := id
	if field != "id" {
		person, _ = get(field).(string)
	}
	team, _ := get("team").(string)
	return Entry{Person: person, Team: team, Collection: collection, Record: id}, true
}

// EntriesOf returns the entries of records read, skipping records whose
// reads are not logged.
func EntriesOf(records []*core.Record) []Entry {
	var out []Entry
	for _, r := range records {
		if en, ok := EntryOf(r); ok {
			out = append(out, en)
		}
	}
	return out
}

// maxRowsPerStatement bounds one INSERT; a pull page (at most 1,000
// records) is one statement.
const maxRowsPerStatement = 1000

// newID returns a record id of PocketBase's default form (15 characters of
// [a-z0-9]) that grows with time: ten characters of the time in
// microseconds, base 36, then five random ones, so that new rows go to the
// end of the primary key index instead of being scattered through it.
func newID() string {
	ts := strconv.FormatInt(time.Now().UnixMicro(), 36)
	return strings.Repeat("0", 10-len(ts)) + ts + security.PseudorandomStringWithAlphabet(5, core.DefaultIdAlphabet)
}

type row struct {
	Entry
	ID        string `json:"id"`
	User      string `json:"user"`
	Superuser string `json:"superuser"`
	Device    string `json:"device"`
	Action    string `json:"action"`
	At        string `json:"at"`
}

// Write logs that who read entries by action, in one INSERT statement per
// thousand entries. Entries of device reports whose ClientID is already
// logged are skipped, so a report sent again is logged once.
func Write(app core.App, who Reader, action string, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	if !slices.Contains(Actions, action) {
		return fmt.Errorf("write access log: unknown action %q", action)
	}
	at := types.NowDateTime().String()
	for chunk := range slices.Chunk(entries, maxRowsPerStatement) {
		rows := make([]row, len(chunk))
		for i, en := range chunk {
			rows[i] = row{Entry: en, ID: newID(), User: who.User,
				Superuser: who.Superuser, Device: who.Device, Action: action, At: at}
		}
		data, err := json.Marshal(rows)
		if err != nil {
			return fmt.Errorf("encode access log rows: %w", err)
		}
		_, err = app.NonconcurrentDB().NewQuery(`
			INSERT INTO ` + Collection + ` (id, person, team, collection, record, user, superuser, device, action, client_id, client_time, at)
			SELECT value->>'id', value->>'person', value->>'team', value->>'collection', value->>'record',
			       value->>'user', value->>'superuser', value->>'device', value->>'action',
			       value->>'client_id', value->>'client_time', value->>'at'
			FROM json_each({:rows}) WHERE true
			ON CONFLICT DO NOTHING`).Bind(dbx.Params{"rows": string(data)}).Execute()
		if err != nil {
			return fmt.Errorf("write %d access log rows: %w", len(rows), err)
		}
	}
	return nil
}
