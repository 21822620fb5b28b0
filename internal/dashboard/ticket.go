package dashboard

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/security"

	"strada/internal/domain"
)

// TicketType is the type claim of a stream ticket. PocketBase accepts no
// token of this type as an auth token, and a ticket is signed with a key of
// its own, so a ticket opens the dashboard stream and nothing else.
const TicketType = "dashboard_stream"

// ticketKeySuffix sets the ticket's signing key apart from the account's
// auth token key.
const ticketKeySuffix = ":strada-dashboard-stream"

// Ticket is the answer of POST /api/dashboard/stream-ticket.
type Ticket struct {
	Ticket    string    `json:"ticket"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// ticketKey is the key that signs and verifies a ticket of user: it
// changes when the user's tokens are invalidated (a new password, a
// revoked device), so their tickets end with their auth tokens.
func ticketKey(user *core.Record) string {
	return user.TokenKey() + user.Collection().AuthToken.Secret + ticketKeySuffix
}

// HandleStreamTicket answers POST /api/dashboard/stream-ticket: a
// supervisor signed in with the Authorization header gets a ticket that
// opens one dashboard stream (GET /api/dashboard/stream?ticket=...) within
// TicketTTL, for browsers whose EventSource cannot send headers.
func (d *Dashboard) HandleStreamTicket(e *core.RequestEvent) error {
	if _, er := supervisedTeams(e.Auth); er != nil {
		return answer(e, er)
	}
	claims := jwt.MapClaims{
		core.TokenClaimId:           e.Auth.Id,
		core.TokenClaimCollectionId: e.Auth.Collection().Id,
		core.TokenClaimType:         TicketType,
		"jti":                       security.RandomString(32),
	}
	token, err := security.NewJWT(claims, ticketKey(e.Auth), d.TicketTTL)
	if err != nil {
		return answer(e, internal(fmt.Errorf("sign stream ticket: %w", err)))
	}
	e.Response.Header().Set("Cache-Control", "no-store")
	return e.JSON(http.StatusOK, Ticket{Ticket: token, ExpiresAt: time.Now().Add(d.TicketTTL).UTC()})
}

var errBadTicket = errors.New("invalid stream ticket")

// redeemTicket returns the users account a ticket was made for and spends
// the ticket: a second use in this process is refused.
func (d *Dashboard) redeemTicket(app core.App, ticket string) (*core.Record, error) {
	unverified, err := security.ParseUnverifiedJWT(ticket)
	if err != nil {
		return nil, errBadTicket
	}
	id, _ := unverified[core.TokenClaimId].(string)
	kind, _ := unverified[core.TokenClaimType].(string)
	if id == "" || kind != TicketType {
		return nil, errBadTicket
	}
	user, err := app.FindRecordById(domain.Users, id)
	if err != nil {
		return nil, errBadTicket
	}
	claims, err := security.ParseJWT(ticket, ticketKey(user))
	if err != nil {
		return nil, errBadTicket
	}
	jti, _ := claims["jti"].(string)
	exp, err := claims.GetExpirationTime()
	if jti == "" || err != nil || exp == nil {
		return nil, errBadTicket
	}
	if !d.tickets.spend(jti, exp.Time) {
		return nil, errBadTicket
	}
	return user, nil
}

// usedTickets remembers the tickets spent in this process until they
// expire.
type usedTickets struct {
	mu   sync.Mutex
	used map[string]time.Time
}

// spend marks ticket id jti, valid until exp, as used; false when it was.
func (u *usedTickets) spend(jti string, exp time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.used == nil {
		u.used = map[string]time.Time{}
	}
	now := time.Now()
	for k, t := range u.used {
		if t.Before(now) {
			delete(u.used, k)
		}
	}
	if _, ok := u.used[jti]; ok {
		return false
	}
	u.used[jti] = exp
	return true
}

// streamCount counts the open streams of each user in this process.
type streamCount struct {
	mu    sync.Mutex
	users map[string]int
}

func (c *streamCount) acquire(user string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.users == nil {
		c.users = map[string]int{}
	}
	if c.users[user] >= MaxStreamsPerUser {
		return false
	}
	c.users[user]++
	return true
}

func (c *streamCount) release(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.users[user] <= 1 {
		delete(c.users, user)
		return
	}
	c.users[user]--
}
