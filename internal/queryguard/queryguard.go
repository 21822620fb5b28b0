// Package queryguard holds the one policy for what a request that is not a
// superuser's may put into the query options that PocketBase turns into SQL:
// the filter, sort and expand of the records API, of the auth routes, of the
// requests of a batch and of realtime subscriptions.
//
// PocketBase v0.39 applies a collection's list rule to the joins a filter or
// sort makes through a relation, but not to the NOT EXISTS subquery its
// "all" operators (!=, !~, <, >, ...) build over multiple relations and
// back-relations, and it drops the rows whose related records the rule hides
// when it sorts through one. An expand through a back-relation reads the
// first 1000 related ids before any rule. Each of these tells a user
// something about records of a team they are not in. So a filter and a sort
// may name only the collection's own fields, and an expand may follow only
// the collection's own relation fields, whose ids the user already reads in
// the record; each related record is then read under its view rule.
// PocketBase itself refuses @request and @collection in such a filter or
// sort with 403; the guard refuses them too, with the 400 that names them.
package queryguard

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/ganigeorgiev/fexpr"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
)

// Query parameters the policy applies to. Other parameters (page, perPage,
// skipTotal, fields) only page or shape what the rules already let through.
const (
	ParamFilter = "filter"
	ParamSort   = "sort"
	ParamExpand = "expand"
)

// Error codes of a refused query option, found in the answer's data under
// the parameter's name.
const (
	// CodeSyntax: the filter cannot be parsed.
	CodeSyntax = "validation_query_syntax"
	// CodeIdentifier: a filter or sort names something other than a field
	// of the collection: a relation path, a back-relation, another
	// collection, the request, or no field at all.
	CodeIdentifier = "validation_query_identifier"
	// CodeExpand: an expand path leaves the collection's own relation
	// fields.
	CodeExpand = "validation_query_expand"
	// CodeOptions: the options of a realtime subscription cannot be read.
	CodeOptions = "validation_query_options"
)

// Modifiers a filter or sort may put on a field of the collection. (PocketBase
// reads :isset and :changed only on @request.body fields; on a field of the
// collection it drops them and compares the field itself.)
var fieldModifiers = []string{"lower", "length", "each"}

// Special sort keys of PocketBase.
var sortKeys = []string{"@random", "@rowid"}

// Datetime macros of PocketBase's filter grammar: values, not references.
var macros = []string{
	"@now", "@yesterday", "@tomorrow",
	"@second", "@minute", "@hour", "@day", "@month", "@weekday", "@year",
	"@todayStart", "@todayEnd", "@monthStart", "@monthEnd", "@yearStart", "@yearEnd",
}

// Identifiers PocketBase reads as literals when no field has their name.
var literals = []string{"null", "true", "false"}

// backRelation is PocketBase's form of a back-relation: collection_via_field.
var backRelation = regexp.MustCompile(`^\w+_via_\w+$`)

// Check applies the policy to the filter, sort and expand values of query
// for a request to collection c. Every value of a repeated parameter is
// checked. It returns nil, or validation.Errors keyed by parameter.
func Check(app core.App, c *core.Collection, query url.Values) error {
	errs := validation.Errors{}
	for _, v := range query[ParamFilter] {
		if err := CheckFilter(c, v); err != nil {
			errs[ParamFilter] = err
			break
		}
	}
	for _, v := range query[ParamSort] {
		if err := CheckSort(c, v); err != nil {
			errs[ParamSort] = err
			break
		}
	}
	for _, v := range query[ParamExpand] {
		if err := CheckExpand(app, c, v); err != nil {
			errs[ParamExpand] = err
			break
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// CheckFilter parses filter with PocketBase's grammar and refuses it unless
// every identifier in it, function arguments included, is a field of c (with
// an optional modifier), a datetime macro or null, true or false.
func CheckFilter(c *core.Collection, filter string) error {
	if strings.TrimSpace(filter) == "" {
		return nil // PocketBase ignores an empty filter
	}
	groups, err := fexpr.Parse(filter)
	if err != nil {
		return validation.NewError(CodeSyntax, fmt.Sprintf("The filter cannot be parsed: %v.", err))
	}
	return checkGroups(c, groups)
}

func checkGroups(c *core.Collection, groups []fexpr.ExprGroup) error {
	for _, g := range groups {
		var err error
		switch item := g.Item.(type) {
		case fexpr.Expr:
			if err = checkToken(c, item.Left); err == nil {
				err = checkToken(c, item.Right)
			}
		case fexpr.ExprGroup:
			err = checkGroups(c, []fexpr.ExprGroup{item})
		case []fexpr.ExprGroup:
			err = checkGroups(c, item)
		default:
			err = validation.NewError(CodeSyntax, fmt.Sprintf("The filter has an expression of unknown kind %T.", item))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func checkToken(c *core.Collection, t fexpr.Token) error {
	switch t.Type {
	case fexpr.TokenText, fexpr.TokenNumber:
		return nil
	case fexpr.TokenIdentifier:
		if slices.Contains(macros, t.Literal) {
			return nil
		}
		if c.Fields.GetByName(t.Literal) == nil && containsFold(literals, t.Literal) {
			return nil
		}
		return checkField(c, t.Literal)
	case fexpr.TokenFunction:
		args, _ := t.Meta.([]fexpr.Token)
		for _, arg := range args {
			if err := checkToken(c, arg); err != nil {
				return err
			}
		}
		return nil
	}
	return validation.NewError(CodeSyntax, fmt.Sprintf("The filter has an operand %q of unknown kind %s.", t.Literal, t.Type))
}

// CheckSort refuses sort unless each of its comma-separated keys, after an
// optional "-" or "+", is @random, @rowid or a field of c with an optional
// modifier.
func CheckSort(c *core.Collection, sort string) error {
	if sort == "" {
		return nil // PocketBase ignores an empty sort
	}
	for _, key := range strings.Split(sort, ",") {
		key = strings.TrimSpace(key)
		if strings.HasPrefix(key, "-") {
			key = strings.TrimPrefix(key, "-")
		} else {
			key = strings.TrimPrefix(key, "+")
		}
		if slices.Contains(sortKeys, key) {
			continue
		}
		if err := checkField(c, key); err != nil {
			return err
		}
	}
	return nil
}

// checkField accepts name when it is a visible field of c, optionally
// followed by one modifier: nothing that joins another row.
func checkField(c *core.Collection, name string) error {
	refuse := func(why string) error {
		return validation.NewError(CodeIdentifier, fmt.Sprintf(
			"%q %s; filter and sort may name only fields of %s.", name, why, c.Name))
	}
	switch {
	case name == "":
		return refuse("is empty")
	case strings.HasPrefix(name, "@collection."):
		return refuse("refers to another collection")
	case strings.HasPrefix(name, "@"):
		return refuse("refers to the request or is not a known macro")
	case strings.Contains(name, "."):
		return refuse("goes through a relation")
	}
	field, modifier, hasModifier := strings.Cut(name, ":")
	if hasModifier && !slices.Contains(fieldModifiers, modifier) {
		return refuse(fmt.Sprintf("has the modifier %q (allowed: %s)", modifier, strings.Join(fieldModifiers, ", ")))
	}
	f := c.Fields.GetByName(field)
	if f == nil && backRelation.MatchString(field) {
		return refuse("is a back-relation")
	}
	if f == nil {
		return refuse(fmt.Sprintf("is not a field of %s", c.Name))
	}
	if f.GetHidden() {
		return refuse("is a hidden field")
	}
	return nil
}

// CheckExpand refuses expand unless each of its comma-separated paths
// follows relation fields only: the first of c, each next one of the
// collection the previous one points to. Back-relations (x_via_y, and the
// old x(y) form) are refused: PocketBase reads their ids without any rule.
// Spaces and leading or trailing dots are dropped, as PocketBase does.
func CheckExpand(app core.App, c *core.Collection, expand string) error {
	for _, path := range strings.Split(expand, ",") {
		path = strings.Trim(strings.ReplaceAll(path, " ", ""), ".")
		if path == "" {
			continue
		}
		at := c
		for _, step := range strings.Split(path, ".") {
			refuse := func(why string) error {
				return validation.NewError(CodeExpand, fmt.Sprintf(
					"%q in the expand path %q %s; expand may follow only relation fields.", step, path, why))
			}
			if backRelation.MatchString(step) || strings.Contains(step, "(") {
				return refuse("is a back-relation")
			}
			f := at.Fields.GetByName(step)
			if f == nil {
				return refuse(fmt.Sprintf("is not a field of %s", at.Name))
			}
			rel, ok := f.(*core.RelationField)
			if !ok {
				return refuse(fmt.Sprintf("is not a relation field of %s", at.Name))
			}
			if rel.GetHidden() {
				return refuse("is a hidden field")
			}
			next, err := app.FindCachedCollectionByNameOrId(rel.CollectionId)
			if err != nil {
				return refuse(fmt.Sprintf("points to a missing collection (%v)", err))
			}
			at = next
		}
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
