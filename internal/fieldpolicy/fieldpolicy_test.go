package fieldpolicy

import (
	"errors"
	"testing"

	"github.com/pocketbase/pocketbase/core"
)

func TestText(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		text string
		ok   bool
	}{
		{"plain", "Visita al campo di Via Candoni", true},
		{"accents and emoji", "è già lì — ok 👍", true},
		{"tab, line feed, carriage return", "a\tb\nc\r\nd", true},
		{"empty", "", true},
		{"NUL", "Rossi\x00Mario", false},
		{"bell", "a\x07", false},
		{"escape", "\x1b[31mred", false},
		{"unit separator", "a\x1fb", false},
		{"DEL", "a\x7fb", false},
		{"C1 next line", "a\u0085b", false},
		{"C1 last", "a\u009fb", false},
		{"just after C1", "a\u00a0b", true},
	}
	for _, c := range cases {
		err := Text(c.text)
		var pe *Error
		if c.ok && err != nil {
			t.Errorf("%s: got %v, want no error", c.name, err)
		}
		if !c.ok && (!errors.As(err, &pe) || pe.Code != CodeControlCharacter) {
			t.Errorf("%s: got %v, want %s", c.name, err, CodeControlCharacter)
		}
	}
}

func TestValues(t *testing.T) {
	t.Parallel()
	workers := &core.RelationField{Name: "workers", MaxSelect: 20}
	site := &core.RelationField{Name: "site", MaxSelect: 1}
	topics := &core.SelectField{Name: "topics", MaxSelect: 8, Values: []string{"a"}}
	unset := &core.SelectField{Name: "kind"}
	notes := &core.TextField{Name: "notes"}
	cases := []struct {
		field core.Field
		n     int
		ok    bool
	}{
		{workers, 20, true},
		{workers, 21, false},
		{workers, 50_000, false},
		{site, 1, true},
		{site, 2, false},
		{topics, 8, true},
		{topics, 9, false},
		{unset, 1, true},
		{unset, 2, false},
		{notes, 1000, true}, // not a list field
	}
	for _, c := range cases {
		err := Values(c.field, c.n)
		var pe *Error
		if c.ok && err != nil {
			t.Errorf("%s with %d values: got %v, want no error", c.field.GetName(), c.n, err)
		}
		if !c.ok && (!errors.As(err, &pe) || pe.Code != CodeTooManyValues) {
			t.Errorf("%s with %d values: got %v, want %s", c.field.GetName(), c.n, err, CodeTooManyValues)
		}
	}
}

func TestChars(t *testing.T) {
	t.Parallel()
	cases := []struct {
		s     string
		limit int
		want  bool
	}{
		{"abc", 3, true},
		{"abcd", 3, false},
		{"èèè", 3, true}, // six bytes, three characters
		{"èèèè", 3, false},
	}
	for _, c := range cases {
		if got := Chars(c.s, c.limit); got != c.want {
			t.Errorf("Chars(%q, %d): got %v, want %v", c.s, c.limit, got, c.want)
		}
	}
}
