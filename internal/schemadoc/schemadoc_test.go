package schemadoc_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/domain"
	"strada/internal/schemadoc"
)

var update = flag.Bool("update", false, "rewrite the generated section of docs/sync-protocol.md")

// protocolDoc is the document that holds the generated section.
var protocolDoc = filepath.Join("..", "..", "docs", "sync-protocol.md")

func TestMain(m *testing.M) { apptest.Main(m) }

func TestProtocolDocMatchesSchema(t *testing.T) {
	app := apptest.New(t)
	section, err := schemadoc.Render(app)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	raw, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatalf("read %s: %v", protocolDoc, err)
	}
	doc := string(raw)
	if *update {
		next, err := schemadoc.Splice(doc, section)
		if err != nil {
			t.Fatalf("splice %s: %v", protocolDoc, err)
		}
		if err := os.WriteFile(protocolDoc, []byte(next), 0o644); err != nil {
			t.Fatalf("write %s: %v", protocolDoc, err)
		}
		return
	}
	got, err := schemadoc.Section(doc)
	if err != nil {
		t.Fatalf("section of %s: %v", protocolDoc, err)
	}
	if got != section {
		t.Fatalf("the collection reference in %s differs from the schema; regenerate it with\n\tgo test ./internal/schemadoc -update\ngot:\n%s\nwant:\n%s", protocolDoc, got, section)
	}
}

func TestRenderCoversSyncedCollections(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	out, err := schemadoc.Render(app)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	for _, name := range append([]string{domain.Users}, domain.Logged...) {
		if !strings.Contains(out, "#### `"+name+"`\n") {
			t.Errorf("got no section for %s, want one", name)
		}
	}
	for _, status := range domain.ReferralStatuses {
		if !strings.Contains(out, "`"+status+"`") {
			t.Errorf("got no mention of referral status %s, want one", status)
		}
	}
	for _, want := range []string{
		"| `draft` | `sent`, `cancelled` | `sent`, `cancelled` |",
		"| `sent` | `cancelled` | `accepted`, `declined`, `cancelled` |",
		"| `completed` | none (final) | none (final) |",
		"| `consent` | select | yes |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("got no line %q in:\n%s", want, out)
		}
	}
	// Users carry their id and name only.
	users := out[strings.Index(out, "#### `users`"):]
	users = users[:strings.Index(users, "#### Referral")]
	for _, field := range []string{"email", "role", "teams", "locale", "password", "tokenKey"} {
		if strings.Contains(users, "| `"+field+"` |") {
			t.Errorf("got users.%s in the reference, want id and name only", field)
		}
	}
	for _, field := range []string{"id", "name"} {
		if !strings.Contains(users, "| `"+field+"` |") {
			t.Errorf("got no users.%s in the reference, want it", field)
		}
	}
}

func TestRenderLeavesOutHiddenFields(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	persons, err := app.FindCollectionByNameOrId(domain.Persons)
	if err != nil {
		t.Fatalf("find persons: %v", err)
	}
	persons.Fields.Add(&core.TextField{Name: "internal_marker", Hidden: true})
	if err := app.Save(persons); err != nil {
		t.Fatalf("add hidden field: %v", err)
	}
	out, err := schemadoc.Render(app)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	if strings.Contains(out, "internal_marker") {
		t.Errorf("got the hidden field persons.internal_marker in the reference, want it left out")
	}
	if strings.Contains(out, "secret_hash") || strings.Contains(out, "#### `devices`") {
		t.Errorf("got devices or their secret in the reference, want neither")
	}
}

func TestSpliceNeedsMarkers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, doc, want string
		err             error
	}{
		{"replaces between markers", "a\n" + schemadoc.BeginMarker + "\nold\n" + schemadoc.EndMarker + "\nz\n",
			"a\n" + schemadoc.BeginMarker + "\nnew\n" + schemadoc.EndMarker + "\nz\n", nil},
		{"no markers", "a\nb\n", "", schemadoc.ErrNoMarkers},
		{"end before begin", schemadoc.EndMarker + "\n" + schemadoc.BeginMarker + "\n", "", schemadoc.ErrNoMarkers},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := schemadoc.Splice(c.doc, "new\n")
			if !errors.Is(err, c.err) {
				t.Fatalf("got error %v, want %v", err, c.err)
			}
			if got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			if err == nil {
				section, err := schemadoc.Section(got)
				if err != nil || section != "new\n" {
					t.Fatalf("got section %q (err %v), want %q", section, err, "new\n")
				}
			}
		})
	}
}
