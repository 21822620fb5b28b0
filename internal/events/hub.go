package events

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/nats-io/nats.go"
)

// Scope selects the events a subscriber may see: those of its teams and,
// when Global is set, those of reference data.
type Scope struct {
	Teams  []string
	Global bool
	// All sees every event (superusers, operators).
	All bool
}

// Allows reports whether ev is inside the scope.
func (s Scope) Allows(ev Event) bool {
	if s.All {
		return true
	}
	if ev.Team == "" {
		return s.Global
	}
	return slices.Contains(s.Teams, ev.Team)
}

// Hub fans the event stream out to subscribers in this process. It listens
// on NATS, so with several server processes on one NATS each hub sees every
// event, whichever process committed it. Delivery is a hint: a slow
// subscriber loses its oldest undelivered events, never the newest, and
// learns of what it missed by pulling.
type Hub struct {
	logger *slog.Logger

	mu   sync.Mutex
	subs map[*Subscription]struct{}
	sub  *nats.Subscription
}

// Subscription receives the events of one scope.
type Subscription struct {
	C     <-chan Event
	c     chan Event
	scope Scope
}

// subscriptionBuffer is how many events wait for a slow subscriber.
const subscriptionBuffer = 256

// NewHub returns a hub not yet listening.
func NewHub(logger *slog.Logger) *Hub {
	return &Hub{logger: logger, subs: map[*Subscription]struct{}{}}
}

// Listen subscribes the hub to every change subject on nc.
func (h *Hub) Listen(nc *nats.Conn) error {
	sub, err := nc.Subscribe(SubjectPrefix+".>", func(m *nats.Msg) {
		var ev Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			h.logger.Warn("event hub: undecodable event", "subject", m.Subject, "error", err)
			return
		}
		h.Publish(ev)
	})
	if err != nil {
		return fmt.Errorf("subscribe to %s.>: %w", SubjectPrefix, err)
	}
	if err := sub.SetPendingLimits(-1, 64<<20); err != nil {
		return fmt.Errorf("event hub pending limits: %w", err)
	}
	h.mu.Lock()
	h.sub = sub
	h.mu.Unlock()
	return nil
}

// Close stops listening; subscribers' channels are closed.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sub != nil {
		_ = h.sub.Unsubscribe()
		h.sub = nil
	}
	for s := range h.subs {
		close(s.c)
		delete(h.subs, s)
	}
}

// Subscribe returns a subscription of scope that ends, and whose channel is
// closed, when ctx is done.
func (h *Hub) Subscribe(ctx context.Context, scope Scope) *Subscription {
	c := make(chan Event, subscriptionBuffer)
	s := &Subscription{C: c, c: c, scope: scope}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	go func() {
		<-ctx.Done()
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[s]; ok {
			delete(h.subs, s)
			close(s.c)
		}
	}()
	return s
}

// Subscribers is the number of live subscriptions.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Publish delivers ev to every subscriber whose scope allows it.
func (h *Hub) Publish(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if !s.scope.Allows(ev) {
			continue
		}
		for {
			select {
			case s.c <- ev:
			default:
				// Full: drop the oldest so the newest always arrives.
				select {
				case <-s.c:
				default:
				}
				continue
			}
			break
		}
	}
}
