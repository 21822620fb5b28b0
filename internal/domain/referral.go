package domain

import "fmt"

// Referral statuses.
const (
	StatusDraft      = "draft"
	StatusSent       = "sent"
	StatusAccepted   = "accepted"
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"
	StatusDeclined   = "declined"
	StatusCancelled  = "cancelled"
)

// ReferralStatuses lists every status in the order of a referral's life.
var ReferralStatuses = []string{
	StatusDraft, StatusSent, StatusAccepted, StatusInProgress,
	StatusCompleted, StatusDeclined, StatusCancelled,
}

// referralTransitions is the referral state machine: for each status, the
// statuses it may move to. Completed, declined and cancelled are final.
var referralTransitions = map[string][]string{
	StatusDraft:      {StatusSent, StatusCancelled},
	StatusSent:       {StatusAccepted, StatusDeclined, StatusCancelled},
	StatusAccepted:   {StatusInProgress, StatusCompleted, StatusCancelled},
	StatusInProgress: {StatusCompleted, StatusCancelled},
}

// workerTransitions are the moves a worker may make; a supervisor may make
// every move of the state machine. Workers prepare and send referrals and may
// withdraw one; the service's answer is recorded by a supervisor.
var workerTransitions = map[string][]string{
	StatusDraft: {StatusSent, StatusCancelled},
	StatusSent:  {StatusCancelled},
}

// TransitionError explains why a referral may not move between two statuses.
type TransitionError struct {
	From, To string
	Reason   string
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("referral status cannot change from %q to %q: %s", e.From, e.To, e.Reason)
}

// CheckReferralTransition returns nil when a user of role may move a
// referral from status from to status to, and a *TransitionError naming both
// states otherwise. An empty from means a new referral, which must start as
// draft or sent.
func CheckReferralTransition(role, from, to string) error {
	if !contains(ReferralStatuses, to) {
		return &TransitionError{From: from, To: to, Reason: "unknown status"}
	}
	if from == "" {
		if to == StatusDraft || to == StatusSent {
			return nil
		}
		return &TransitionError{From: from, To: to, Reason: "a new referral starts as draft or sent"}
	}
	if from == to {
		return nil
	}
	if !contains(referralTransitions[from], to) {
		return &TransitionError{From: from, To: to, Reason: "not a permitted transition"}
	}
	if role != RoleSupervisor && !contains(workerTransitions[from], to) {
		return &TransitionError{From: from, To: to, Reason: "only a supervisor records this change"}
	}
	return nil
}
