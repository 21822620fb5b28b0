// Package schemadoc renders the reference of the collections a field device
// receives, and the referral transitions each role may make, from the live
// schema and the domain's state machine, so that the protocol document
// cannot drift from what the server does.
package schemadoc

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/pocketbase/pocketbase/core"

	"strada/internal/domain"
	"strada/internal/syncapi"
)

// Markers delimit the generated section of a Markdown document.
const (
	BeginMarker = "<!-- BEGIN GENERATED: collections -->"
	EndMarker   = "<!-- END GENERATED: collections -->"
)

// ErrNoMarkers is returned by [Splice] when a document lacks the markers of
// the generated section, or has them out of order.
var ErrNoMarkers = errors.New("generated section markers missing or out of order")

// Render returns the generated section: one table per collection a pull
// carries (hidden fields left out, as a pull leaves them out), the users as
// a pull carries them, and the referral transitions by role.
func Render(app core.App) (string, error) {
	var b strings.Builder
	b.WriteString("Generated from the schema and `internal/domain`; regenerate with\n")
	b.WriteString("`go test ./internal/schemadoc -update`.\n")
	for _, name := range domain.Logged {
		c, err := app.FindCollectionByNameOrId(name)
		if err != nil {
			return "", fmt.Errorf("find collection %s: %w", name, err)
		}
		if err := renderCollection(&b, app, c, nil); err != nil {
			return "", err
		}
	}
	users, err := app.FindCollectionByNameOrId(domain.Users)
	if err != nil {
		return "", fmt.Errorf("find collection %s: %w", domain.Users, err)
	}
	if err := renderCollection(&b, app, users, colleagueFields()); err != nil {
		return "", err
	}
	renderTransitions(&b)
	return b.String(), nil
}

// Splice returns doc with the text between its markers replaced by section.
func Splice(doc, section string) (string, error) {
	begin := strings.Index(doc, BeginMarker)
	end := strings.Index(doc, EndMarker)
	if begin < 0 || end < begin {
		return "", ErrNoMarkers
	}
	return doc[:begin+len(BeginMarker)] + "\n" + section + doc[end:], nil
}

// Section returns the text between the markers of doc.
func Section(doc string) (string, error) {
	begin := strings.Index(doc, BeginMarker)
	end := strings.Index(doc, EndMarker)
	if begin < 0 || end < begin {
		return "", ErrNoMarkers
	}
	return strings.TrimPrefix(doc[begin+len(BeginMarker):end], "\n"), nil
}

// colleagueFields are the users fields a pull carries: the JSON names of
// [syncapi.Colleague].
func colleagueFields() []string {
	t := reflect.TypeOf(syncapi.Colleague{})
	out := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

func renderCollection(b *strings.Builder, app core.App, c *core.Collection, only []string) error {
	fmt.Fprintf(b, "\n#### `%s`\n\n%s\n\n", c.Name, describe(c.Name))
	b.WriteString("| field | type | required | values and limits |\n| --- | --- | --- | --- |\n")
	for _, f := range c.Fields {
		if f.GetHidden() {
			continue
		}
		if only != nil && !contains(only, f.GetName()) {
			continue
		}
		notes, err := notesOf(app, f)
		if err != nil {
			return fmt.Errorf("describe %s.%s: %w", c.Name, f.GetName(), err)
		}
		if _, auto := f.(*core.AutodateField); auto || (domain.IsServerManaged(f.GetName()) && domain.IsFieldWork(c.Name)) {
			notes = append([]string{"set by the server"}, notes...)
		}
		required := ""
		if isRequired(f) {
			required = "yes"
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", f.GetName(), f.Type(), required, strings.Join(notes, "; "))
	}
	return nil
}

func describe(name string) string {
	switch {
	case name == domain.Users:
		return "Not in the change log: every pull page carries the users who share a team with the device's user (`users` of the answer), with these fields only."
	case domain.IsFieldWork(name):
		return "Field work: devices create and edit these records with push; a pull carries those of the user's teams."
	case domain.IsReference(name):
		return "Reference data: every signed-in user pulls it; only superusers change it."
	default:
		return "Written by the server; a pull carries those of the user's teams."
	}
}

// isRequired reads the Required option that most field types have.
func isRequired(f core.Field) bool {
	v := reflect.Indirect(reflect.ValueOf(f))
	if v.Kind() != reflect.Struct {
		return false
	}
	r := v.FieldByName("Required")
	return r.IsValid() && r.Kind() == reflect.Bool && r.Bool()
}

func notesOf(app core.App, f core.Field) ([]string, error) {
	var notes []string
	if f.GetSystem() && f.GetName() == core.FieldNameId {
		notes = append(notes, "record id")
	}
	switch f := f.(type) {
	case *core.TextField:
		if f.Pattern != "" {
			notes = append(notes, "pattern `"+f.Pattern+"`")
		}
		switch {
		case f.Min > 0 && f.Min == f.Max:
			notes = append(notes, "exactly "+strconv.Itoa(f.Min)+" characters")
		case f.Min > 0 && f.Max > 0:
			notes = append(notes, strconv.Itoa(f.Min)+" to "+strconv.Itoa(f.Max)+" characters")
		case f.Min > 0:
			notes = append(notes, "at least "+strconv.Itoa(f.Min)+" characters")
		case f.Max > 0:
			notes = append(notes, "at most "+strconv.Itoa(f.Max)+" characters")
		}
	case *core.EditorField:
		if f.MaxSize > 0 {
			notes = append(notes, "at most "+strconv.FormatInt(f.MaxSize, 10)+" bytes")
		}
	case *core.JSONField:
		if f.MaxSize > 0 {
			notes = append(notes, "at most "+strconv.FormatInt(f.MaxSize, 10)+" bytes")
		}
	case *core.NumberField:
		if f.OnlyInt {
			notes = append(notes, "integer")
		}
		if f.Min != nil {
			notes = append(notes, "min "+strconv.FormatFloat(*f.Min, 'f', -1, 64))
		}
		if f.Max != nil {
			notes = append(notes, "max "+strconv.FormatFloat(*f.Max, 'f', -1, 64))
		}
	case *core.SelectField:
		values := make([]string, len(f.Values))
		for i, v := range f.Values {
			values[i] = "`" + v + "`"
		}
		notes = append(notes, cardinality(f.MaxSelect)+" of "+strings.Join(values, ", "))
	case *core.RelationField:
		target, err := app.FindCollectionByNameOrId(f.CollectionId)
		if err != nil {
			return nil, fmt.Errorf("find related collection %s: %w", f.CollectionId, err)
		}
		notes = append(notes, cardinality(f.MaxSelect)+" `"+target.Name+"` id")
	}
	return notes, nil
}

func cardinality(maxSelect int) string {
	if maxSelect > 1 {
		return "up to " + strconv.Itoa(maxSelect)
	}
	return "one"
}

// renderTransitions lists, for each role, the statuses a referral may move
// to from each status, as [domain.CheckReferralTransition] decides.
func renderTransitions(b *strings.Builder) {
	b.WriteString("\n#### Referral transitions by role\n\n")
	b.WriteString("A status change outside these is rejected with `validation_invalid_transition`. ")
	b.WriteString("A new referral starts as the statuses in the first row.\n\n")
	b.WriteString("| from |")
	for _, role := range domain.Roles {
		fmt.Fprintf(b, " %s |", role)
	}
	b.WriteString("\n| --- |")
	for range domain.Roles {
		b.WriteString(" --- |")
	}
	b.WriteString("\n")
	for _, from := range append([]string{""}, domain.ReferralStatuses...) {
		label := "(new)"
		if from != "" {
			label = "`" + from + "`"
		}
		cells := make([]string, len(domain.Roles))
		final := true
		for i, role := range domain.Roles {
			var to []string
			for _, s := range domain.ReferralStatuses {
				if s != from && domain.CheckReferralTransition(role, from, s) == nil {
					to = append(to, "`"+s+"`")
				}
			}
			if len(to) > 0 {
				final = false
				cells[i] = strings.Join(to, ", ")
			}
		}
		for i := range cells {
			if cells[i] == "" && final {
				cells[i] = "none (final)"
			} else if cells[i] == "" {
				cells[i] = "none"
			}
		}
		fmt.Fprintf(b, "| %s | %s |\n", label, strings.Join(cells, " | "))
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
