package queryguard_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	validation "github.com/pocketbase/ozzo-validation/v4"

	"strada/internal/apptest"
	"strada/internal/domain"
	"strada/internal/queryguard"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	cases := []struct {
		collection string
		param      string
		value      string
		code       string   // "" when accepted
		mentions   []string // in the error message
	}{
		// Accepted: the collection's own fields, modifiers, macros, literals.
		{domain.Persons, "filter", `team = "x" && created > "2026-01-01"`, "", nil},
		{domain.Persons, "filter", `(given_name:lower ~ "a" || family_name = null) && code != ""`, "", nil},
		{domain.Persons, "filter", `created >= @todayStart && updated <= @now && birth_year > 1990`, "", nil},
		{domain.Persons, "filter", `strftime('%Y', created) = "2026" && consent_date != ""`, "", nil},
		{domain.CampVisits, "filter", `persons_met:length > 1 && topics:each ?= "health" && persons_met ?= "x"`, "", nil},
		{domain.Users, "filter", `teams ~ "x" && role = "worker" && verified = TRUE`, "", nil},
		{domain.Persons, "filter", "", "", nil},
		{domain.Persons, "sort", "-created,+code, given_name:lower,@random,@rowid", "", nil},
		{domain.Persons, "sort", "", "", nil},
		{domain.CampVisits, "expand", "site,persons_met.site, team ,workers.teams", "", nil},
		{domain.Referrals, "expand", "person.site.team,source_visit.persons_met,.service.", "", nil},

		// Refused filters: every way out of the collection's own row.
		{domain.Users, "filter", `id = "x" && teams.persons_via_team.family_name != "Rossi"`,
			queryguard.CodeIdentifier, []string{`"teams.persons_via_team.family_name"`, "relation", "users"}},
		{domain.Services, "filter", `referrals_via_service.person.family_name !~ "Ro%"`,
			queryguard.CodeIdentifier, []string{`"referrals_via_service.person.family_name"`}},
		{domain.Teams, "filter", `secretariat_contacts_via_team.notes ?~ "x"`,
			queryguard.CodeIdentifier, []string{`"secretariat_contacts_via_team.notes"`}},
		{domain.Teams, "filter", `name != "" || sync_conflicts_via_team.overwritten_value != "x"`,
			queryguard.CodeIdentifier, []string{`"sync_conflicts_via_team.overwritten_value"`}},
		{domain.Persons, "filter", `site.name = "x"`, queryguard.CodeIdentifier, []string{`"site.name"`}},
		{domain.Persons, "filter", `team.id = "x"`, queryguard.CodeIdentifier, []string{`"team.id"`}},
		{domain.Persons, "filter", `"x" = referrals_via_person`, queryguard.CodeIdentifier, []string{"back-relation"}},
		{domain.Persons, "filter", `@collection.persons.family_name = "Rossi"`,
			queryguard.CodeIdentifier, []string{"another collection"}},
		{domain.Persons, "filter", `@request.auth.teams.name = "x"`, queryguard.CodeIdentifier, []string{`"@request.auth.teams.name"`}},
		{domain.Persons, "filter", `@request.auth.id = created_by`, queryguard.CodeIdentifier, []string{"request"}},
		{domain.Persons, "filter", `@request.body.person.family_name = "x"`, queryguard.CodeIdentifier, nil},
		{domain.Persons, "filter", `@request.query.x = "x"`, queryguard.CodeIdentifier, nil},
		{domain.Persons, "filter", `@request.headers.x = "x"`, queryguard.CodeIdentifier, nil},
		{domain.Persons, "filter", `@request.context = "default"`, queryguard.CodeIdentifier, nil},
		{domain.Persons, "filter", `((code = "x") && (strftime('%Y', site.created) = "2026"))`,
			queryguard.CodeIdentifier, []string{`"site.created"`}},
		{domain.Persons, "filter", `geoDistance(birth_year, 1, 2, strftime('%s', @collection.sites.created)) < 5`,
			queryguard.CodeIdentifier, []string{`"@collection.sites.created"`}},
		{domain.Persons, "filter", `colour = "red"`, queryguard.CodeIdentifier, []string{"not a field of persons"}},
		{domain.Persons, "filter", `notes:changed = true`, queryguard.CodeIdentifier, []string{`"changed"`}},
		{domain.Persons, "filter", `consent_date:isset = true`, queryguard.CodeIdentifier, []string{`"isset"`}},
		{domain.Users, "filter", `password != ""`, queryguard.CodeIdentifier, []string{"hidden"}},
		{domain.Persons, "filter", `code = `, queryguard.CodeSyntax, []string{"cannot be parsed"}},

		// Refused sorts.
		{domain.Sites, "sort", "persons_via_site.family_name", queryguard.CodeIdentifier, []string{`"persons_via_site.family_name"`}},
		{domain.Persons, "sort", "-created,-site.name", queryguard.CodeIdentifier, []string{`"site.name"`}},
		{domain.Persons, "sort", "@collection.persons.code", queryguard.CodeIdentifier, nil},
		{domain.Persons, "sort", "@request.auth.teams.name", queryguard.CodeIdentifier, nil},
		{domain.Persons, "sort", "created,", queryguard.CodeIdentifier, []string{"empty"}},

		// Refused expands.
		{domain.Persons, "expand", "referrals_via_person", queryguard.CodeExpand, []string{`"referrals_via_person"`, "back-relation"}},
		{domain.Persons, "expand", "site,site.persons_via_site", queryguard.CodeExpand, []string{`"site.persons_via_site"`}},
		{domain.Users, "expand", "teams.camp_visits_via_team.persons_met", queryguard.CodeExpand, nil},
		{domain.Persons, "expand", "referrals(person)", queryguard.CodeExpand, nil},
		{domain.Persons, "expand", "notes", queryguard.CodeExpand, []string{"not a relation field"}},
		{domain.Persons, "expand", "site.nothing", queryguard.CodeExpand, []string{"not a field of sites"}},
		{domain.Persons, "expand", "site..team", queryguard.CodeExpand, nil},
	}
	for _, tc := range cases {
		c, err := app.FindCachedCollectionByNameOrId(tc.collection)
		if err != nil {
			t.Fatalf("find %s: %v", tc.collection, err)
		}
		err = queryguard.Check(app, c, url.Values{tc.param: {tc.value}})
		name := tc.collection + "?" + tc.param + "=" + tc.value
		if tc.code == "" {
			if err != nil {
				t.Errorf("%s: got %v, want accepted", name, err)
			}
			continue
		}
		var errs validation.Errors
		if !errors.As(err, &errs) {
			t.Errorf("%s: got %v, want validation errors with %s", name, err, tc.code)
			continue
		}
		var verr validation.Error
		if !errors.As(errs[tc.param], &verr) || verr.Code() != tc.code {
			t.Errorf("%s: got %v, want %s under %q", name, errs, tc.code, tc.param)
			continue
		}
		for _, m := range tc.mentions {
			if !strings.Contains(verr.Error(), m) {
				t.Errorf("%s: message %q does not mention %s", name, verr.Error(), m)
			}
		}
	}
}

// TestCheckReadsEveryValue: PocketBase reads the first value of a repeated
// parameter; the guard reads them all, so no order slips one past it.
func TestCheckReadsEveryValue(t *testing.T) {
	t.Parallel()
	app := apptest.New(t)
	c, err := app.FindCachedCollectionByNameOrId(domain.Persons)
	if err != nil {
		t.Fatal(err)
	}
	for _, param := range []string{"filter", "sort", "expand"} {
		ok := map[string]string{"filter": `code != ""`, "sort": "created", "expand": "site"}[param]
		bad := map[string]string{"filter": `site.name != ""`, "sort": "site.name", "expand": "referrals_via_person"}[param]
		for _, values := range [][]string{{ok, bad}, {bad, ok}} {
			if err := queryguard.Check(app, c, url.Values{param: values}); err == nil {
				t.Errorf("%s=%q: got accepted, want refused", param, values)
			}
		}
	}
}
