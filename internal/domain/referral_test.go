package domain

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckReferralTransition(t *testing.T) {
	t.Parallel()
	cases := []struct {
		role, from, to string
		ok             bool
	}{
		{RoleWorker, "", StatusDraft, true},
		{RoleWorker, "", StatusSent, true},
		{RoleWorker, "", StatusAccepted, false},
		{RoleWorker, StatusDraft, StatusSent, true},
		{RoleWorker, StatusDraft, StatusDraft, true},
		{RoleWorker, StatusSent, StatusAccepted, false},
		{RoleSupervisor, StatusSent, StatusAccepted, true},
		{RoleSupervisor, StatusAccepted, StatusInProgress, true},
		{RoleSupervisor, StatusInProgress, StatusCompleted, true},
		{RoleSupervisor, StatusCompleted, StatusSent, false},
		{RoleSupervisor, StatusDeclined, StatusAccepted, false},
		{RoleSupervisor, StatusDraft, StatusCompleted, false},
		{RoleSupervisor, StatusDraft, "lost", false},
		{RoleWorker, StatusSent, StatusCancelled, true},
	}
	for _, c := range cases {
		err := CheckReferralTransition(c.role, c.from, c.to)
		if (err == nil) != c.ok {
			t.Errorf("%s %q->%q: got err %v, want ok=%v", c.role, c.from, c.to, err, c.ok)
		}
		var te *TransitionError
		if err != nil {
			if !errors.As(err, &te) {
				t.Fatalf("got %T, want *TransitionError", err)
			}
			if !strings.Contains(err.Error(), c.to) || (c.from != "" && !strings.Contains(err.Error(), c.from)) {
				t.Errorf("error %q does not name both states", err)
			}
		}
	}
}
