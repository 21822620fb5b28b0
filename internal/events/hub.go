package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

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
// event, whichever process committed it. It passes on only the events its
// Verifier vouches for: a message anyone else put on the subjects reaches
// no subscriber. Delivery is a hint: a slow subscriber loses its oldest
// undelivered events, never the newest, and learns of what it missed by
// pulling.
type Hub struct {
	logger *slog.Logger

	mu   sync.Mutex
	subs map[*Subscription]struct{}
	sub  *nats.Subscription

	// rejected counts the messages refused; lastWarn throttles the log.
	rejected atomic.Uint64
	lastWarn time.Time
}

// Verifier vouches for messages read from NATS: it returns the event of a
// message the relay of this process's change log published, and an error
// (ErrForeign for a message it did not) otherwise. *Codec is one.
type Verifier interface {
	Verify(subject string, header nats.Header, data []byte) (Event, error)
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

// Listen subscribes the hub to every change subject on nc; v vouches for
// each message before it reaches a subscriber.
func (h *Hub) Listen(nc *nats.Conn, v Verifier) error {
	sub, err := nc.Subscribe(SubjectPrefix+".>", func(m *nats.Msg) {
		ev, err := v.Verify(m.Subject, m.Header, m.Data)
		if err != nil {
			h.reject(m.Subject, err)
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

// reject counts a message refused by the verifier and logs it, at most
// once a minute: a flood of forged messages must not flood the log too.
// It runs on the subscription's goroutine only.
func (h *Hub) reject(subject string, err error) {
	n := h.rejected.Add(1)
	if time.Since(h.lastWarn) < time.Minute {
		return
	}
	h.lastWarn = time.Now()
	if errors.Is(err, ErrForeign) {
		h.logger.Warn("event hub: ignored messages that are not events of this change log", "subject", subject, "total", n)
		return
	}
	h.logger.Warn("event hub: could not verify an event", "subject", subject, "error", err, "total", n)
}

// Rejected is the number of messages on the change subjects that the hub
// did not pass on.
func (h *Hub) Rejected() uint64 { return h.rejected.Load() }

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
