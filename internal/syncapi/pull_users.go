package syncapi

import (
	"fmt"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/domain"
)

// Colleague is a user who shares a team with the device's user, as a pull
// carries them: the id and the display name a device needs to show and
// choose the workers of a visit, nothing more.
type Colleague struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// teamColleagues returns the users who share one of the scope's teams,
// ordered by name. Users are not in the change log, so every pull page
// carries the whole list and a device replaces its copy with it.
func teamColleagues(app core.App, scope userScope) ([]Colleague, error) {
	out := []Colleague{}
	if len(scope.teams) == 0 {
		return out, nil
	}
	users, err := app.FindCollectionByNameOrId(domain.Users)
	if err != nil {
		return nil, fmt.Errorf("find users collection: %w", err)
	}
	conds := make([]dbx.Expression, 0, len(scope.teams))
	for i, team := range scope.teams {
		p := fmt.Sprintf("team%d", i)
		conds = append(conds, dbx.NewExp(
			"EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid([[teams]]) THEN [[teams]] ELSE json_array([[teams]]) END) WHERE json_each.value = {:"+p+"})",
			dbx.Params{p: team}))
	}
	var rows []struct {
		ID   string `db:"id"`
		Name string `db:"name"`
	}
	err = app.DB().Select("id", "name").From(users.Name).
		Where(dbx.Or(conds...)).OrderBy("name ASC", "id ASC").All(&rows)
	if err != nil {
		return nil, fmt.Errorf("list team colleagues: %w", err)
	}
	for _, r := range rows {
		out = append(out, Colleague{ID: r.ID, Name: r.Name})
	}
	return out, nil
}
