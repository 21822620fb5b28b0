package migrations

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"

	"strada/internal/domain"
	"strada/internal/teamscope"
)

// Person code indexes: codes were unique across teams, and are unique
// within a team, so that a code taken in one team neither refuses nor
// reveals anything in another.
const (
	idxPersonsCode     = "idx_persons_code"
	idxPersonsTeamCode = "idx_persons_team_code"
)

func init() {
	m.Register(upTeamPolicy, downTeamPolicy)
}

// upTeamPolicy sets the API rules of every collection the team policy
// governs from the policy, so that a database created before it follows
// the same rules as a new one, and makes person codes unique per team.
func upTeamPolicy(app core.App) error {
	for _, name := range teamscope.Governed() {
		c, err := app.FindCollectionByNameOrId(name)
		if err != nil {
			return fmt.Errorf("find %s: %w", name, err)
		}
		teamscope.RulesFor(name).Apply(c)
		if name == domain.Persons {
			c.RemoveIndex(idxPersonsCode)
			c.AddIndex(idxPersonsTeamCode, true, "team, code", "")
		}
		if err := app.Save(c); err != nil {
			return fmt.Errorf("apply team policy to %s: %w", name, err)
		}
	}
	return nil
}

// downTeamPolicy makes person codes unique across teams again; it fails,
// changing nothing, while two teams share a code. The rules stay: the
// earlier migrations set the same ones from the policy.
func downTeamPolicy(app core.App) error {
	persons, err := app.FindCollectionByNameOrId(domain.Persons)
	if err != nil {
		return fmt.Errorf("find persons: %w", err)
	}
	persons.RemoveIndex(idxPersonsTeamCode)
	persons.AddIndex(idxPersonsCode, true, "code", "")
	if err := app.Save(persons); err != nil {
		return fmt.Errorf("make person codes unique across teams: %w", err)
	}
	return nil
}
