package changelog

import (
	"context"

	"github.com/pocketbase/pocketbase/core"
)

// Actor says who made a change: the signed-in user, and for changes that
// arrive through the sync API the device and the client-made mutation id.
type Actor struct {
	User     string `json:"user,omitempty"`
	Device   string `json:"device,omitempty"`
	Mutation string `json:"mutation,omitempty"`
}

type actorKey struct{}

type purgeKey struct{}

type receiptKey struct{}

// Receipt receives the change log position of a write of one record.
type Receipt struct {
	RecordID string
	Seq      int64
	Version  int
}

// WithReceipt returns a context whose write of r.RecordID fills r with the
// sequence and version of its change row.
func WithReceipt(ctx context.Context, r *Receipt) context.Context {
	return context.WithValue(ctx, receiptKey{}, r)
}

func receiptFor(ctx context.Context, recordID string) *Receipt {
	if ctx == nil {
		return nil
	}
	r, _ := ctx.Value(receiptKey{}).(*Receipt)
	if r == nil || r.RecordID != recordID {
		return nil
	}
	return r
}

// WithPurge returns a context whose deletes are logged as purges: erasure,
// after which devices drop every copy and pending edit of the record.
func WithPurge(ctx context.Context) context.Context {
	return context.WithValue(ctx, purgeKey{}, true)
}

func purging(ctx context.Context) bool {
	if ctx == nil {
		return false
	}
	p, _ := ctx.Value(purgeKey{}).(bool)
	return p
}

// WithActor returns a context that carries a into the record hooks of every
// save or delete made with it.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor carried by ctx, or the zero Actor.
func ActorFrom(ctx context.Context) Actor {
	if ctx == nil {
		return Actor{}
	}
	a, _ := ctx.Value(actorKey{}).(Actor)
	return a
}

// actorApp is a core.App whose saves and deletes carry an Actor. PocketBase's
// record API saves through the app of the request event and does not pass
// the request context down, so the record hooks learn who acted from here.
type actorApp struct {
	core.App
	actor Actor
}

// AppWithActor wraps app so that every Save and Delete made through it
// carries a to the change log.
func AppWithActor(app core.App, a Actor) core.App {
	if inner, ok := app.(*actorApp); ok {
		app = inner.App
	}
	return &actorApp{App: app, actor: a}
}

func (a *actorApp) ctx(ctx context.Context) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	return WithActor(ctx, a.actor)
}

func (a *actorApp) Save(m core.Model) error {
	return a.App.SaveWithContext(a.ctx(nil), m)
}

func (a *actorApp) SaveWithContext(ctx context.Context, m core.Model) error {
	return a.App.SaveWithContext(a.ctx(ctx), m)
}

func (a *actorApp) SaveNoValidate(m core.Model) error {
	return a.App.SaveNoValidateWithContext(a.ctx(nil), m)
}

func (a *actorApp) SaveNoValidateWithContext(ctx context.Context, m core.Model) error {
	return a.App.SaveNoValidateWithContext(a.ctx(ctx), m)
}

func (a *actorApp) Delete(m core.Model) error {
	return a.App.DeleteWithContext(a.ctx(nil), m)
}

func (a *actorApp) DeleteWithContext(ctx context.Context, m core.Model) error {
	return a.App.DeleteWithContext(a.ctx(ctx), m)
}

// RunInTransaction keeps the actor on the transaction's app.
func (a *actorApp) RunInTransaction(fn func(txApp core.App) error) error {
	return a.App.RunInTransaction(func(txApp core.App) error {
		return fn(AppWithActor(txApp, a.actor))
	})
}
