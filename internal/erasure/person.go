package erasure

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/changelog"
	"strada/internal/domain"
)

// PersonOf returns the person a record is about, for the change log (see
// [changelog.Log.SetPersonOf]): a person is about themself, a contact and a
// referral about their person, a referral's history about the referral's
// person. Visits (about a household) and reference data are about no one.
func PersonOf(app core.App, rec *core.Record) (string, error) {
	switch rec.Collection().Name {
	case domain.Persons:
		return rec.Id, nil
	case domain.SecretariatContacts, domain.Referrals:
		return rec.GetString("person"), nil
	case domain.ReferralEvents:
		referral := rec.GetString("referral")
		var person string
		err := app.NonconcurrentDB().Select("person").From(domain.Referrals).
			Where(dbx.HashExp{"id": referral}).Row(&person)
		if err == nil {
			return person, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", fmt.Errorf("read person of referral %s: %w", referral, err)
		}
		// Deleted with its referral, which goes first: the referral's
		// log rows still name the person.
		last, err := changelog.LastOf(app, domain.Referrals, referral)
		if err != nil {
			return "", err
		}
		return last.Person, nil
	}
	return "", nil
}
