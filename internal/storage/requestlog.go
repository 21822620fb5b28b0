package storage

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

// ErasedMark replaces the id of an erased record in the request log.
const ErasedMark = "[erased]"

// BindRequestLog holds PocketBase's request log (the _logs table of
// auxiliary.db) to what it may keep: method, path, status, timing and the
// kind of account. Query strings (filters name persons), the referer's
// query and the error details (they can echo a submitted value) are never
// written, and an id for which erased reports true is written as
// [ErasedMark]. erased may be nil.
func BindRequestLog(app core.App, erased func(id string) bool) {
	app.OnModelCreate(core.LogsTableName).BindFunc(func(e *core.ModelEvent) error {
		if l, ok := e.Model.(*core.Log); ok {
			Redact(l, erased)
		}
		return e.Next()
	})
}

// Redact brings one log entry under the request log's rule (see
// [BindRequestLog]) and reports whether it changed it. Entries that are
// not requests keep their data; erased ids are replaced in every entry's
// message.
func Redact(l *core.Log, erased func(id string) bool) bool {
	changed := false
	set := func(key, v string) {
		if old, ok := l.Data[key].(string); ok && old != v {
			l.Data[key] = v
			changed = true
		}
	}
	if t, _ := l.Data["type"].(string); t == "request" {
		if u, ok := l.Data["url"].(string); ok {
			set("url", withoutQuery(u))
		}
		if r, ok := l.Data["referer"].(string); ok {
			set("referer", withoutQuery(r))
		}
		if _, ok := l.Data["details"]; ok {
			delete(l.Data, "details")
			changed = true
		}
		if m := withoutQuery(l.Message); m != l.Message {
			l.Message = m
			changed = true
		}
	}
	if erased != nil {
		if m := redactIDs(l.Message, erased); m != l.Message {
			l.Message = m
			changed = true
		}
		for _, key := range []string{"url", "referer", "error"} {
			if s, ok := l.Data[key].(string); ok {
				set(key, redactIDs(s, erased))
			}
		}
	}
	return changed
}

func withoutQuery(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		return s[:i]
	}
	return s
}

// idToken matches the words of a path or message, among them record ids
// (UUIDs of field work, 15-character PocketBase ids).
var idToken = regexp.MustCompile(`[0-9A-Za-z_-]+`)

func redactIDs(s string, erased func(string) bool) string {
	return idToken.ReplaceAllStringFunc(s, func(tok string) string {
		if erased(tok) {
			return ErasedMark
		}
		return tok
	})
}

// ScrubRequestLog brings the request log rows written before
// [BindRequestLog] under its rule and returns how many it changed.
func ScrubRequestLog(app core.App) (int, error) {
	var logs []*core.Log
	err := app.AuxNonconcurrentDB().Select("*").From(core.LogsTableName).
		Where(dbx.NewExp(`json_extract([[data]], '$.type') = 'request' AND (
			instr(coalesce(json_extract([[data]], '$.url'), ''), '?') > 0 OR
			instr(coalesce(json_extract([[data]], '$.referer'), ''), '?') > 0 OR
			instr(coalesce(json_extract([[data]], '$.referer'), ''), '#') > 0 OR
			json_type([[data]], '$.details') IS NOT NULL OR
			instr([[message]], '?') > 0)`)).
		All(&logs)
	if err != nil {
		return 0, fmt.Errorf("read request log: %w", err)
	}
	n := 0
	err = app.AuxRunInTransaction(func(tx core.App) error {
		for _, l := range logs {
			if !Redact(l, nil) {
				continue
			}
			if err := updateLog(tx, l); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// RedactRequestLog replaces ids in the request log, wherever a row holds
// them, with [ErasedMark] and returns how many rows it changed.
func RedactRequestLog(app core.App, ids []string) (int, error) {
	n := 0
	err := app.AuxRunInTransaction(func(tx core.App) error {
		for _, id := range ids {
			if id == "" {
				continue
			}
			res, err := tx.AuxNonconcurrentDB().NewQuery(`UPDATE {{` + core.LogsTableName + `}}
				SET [[message]] = replace([[message]], {:id}, {:mark}), [[data]] = replace([[data]], {:id}, {:mark})
				WHERE instr([[message]], {:id}) > 0 OR instr([[data]], {:id}) > 0`).
				Bind(dbx.Params{"id": id, "mark": ErasedMark}).Execute()
			if err != nil {
				return fmt.Errorf("redact %s in the request log: %w", id, err)
			}
			rows, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("redact %s in the request log: %w", id, err)
			}
			n += int(rows)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func updateLog(tx core.App, l *core.Log) error {
	_, err := tx.AuxNonconcurrentDB().Update(core.LogsTableName,
		dbx.Params{"message": l.Message, "data": l.Data}, dbx.HashExp{"id": l.Id}).Execute()
	if err != nil {
		return fmt.Errorf("rewrite request log row %s: %w", l.Id, err)
	}
	return nil
}
