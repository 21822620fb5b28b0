// Package fieldpolicy holds the rules on field values that every write path
// applies before anything reaches the database: text without control
// characters, and multi-value fields no longer than the field allows. The
// records API guard and the sync push both call it, so a value refused on
// one path is refused on the other with the same code.
package fieldpolicy

import (
	"fmt"
	"unicode/utf8"

	"github.com/pocketbase/pocketbase/core"
)

// Error codes of refused values, shared by the REST guard and the push.
const (
	CodeControlCharacter = "validation_control_character"
	CodeTooManyValues    = "validation_too_many_values"
)

// Error is a refused value: Code is one of the codes above.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Text refuses text with control characters: NUL and the other C0 controls
// except tab, line feed and carriage return, DEL, and the C1 controls
// (U+0080 to U+009F). They have no place in notes and names, and NUL cuts
// strings short in the tools that read exports.
func Text(s string) error {
	for i, r := range s {
		if IsControl(r) {
			return &Error{Code: CodeControlCharacter,
				Message: fmt.Sprintf("must not contain control characters (U+%04X at byte %d)", r, i)}
		}
	}
	return nil
}

// IsControl reports whether r is a control character that Text refuses.
func IsControl(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r':
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	}
	return false
}

// MaxValues is how many values a multi-value field (select or relation)
// holds at most; 1 for a single-value field; 0 for any other field.
func MaxValues(f core.Field) int {
	switch f := f.(type) {
	case *core.SelectField:
		return max(f.MaxSelect, 1)
	case *core.RelationField:
		return max(f.MaxSelect, 1)
	}
	return 0
}

// Values refuses a list of n values for field f when f holds fewer. It
// runs before the values are looked up, so that a list of thousands of
// ids is refused by its length and never becomes a query.
func Values(f core.Field, n int) error {
	if limit := MaxValues(f); limit > 0 && n > limit {
		return &Error{Code: CodeTooManyValues,
			Message: fmt.Sprintf("holds at most %d values; got %d", limit, n)}
	}
	return nil
}

// Chars reports whether s has at most limit characters (not bytes), as
// PocketBase counts them for a text field's maximum.
func Chars(s string, limit int) bool {
	return utf8.RuneCountInString(s) <= limit
}
