package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/opaque"
	"github.com/tongban/tongban/internal/redisx"
)

// revocations tells every replica that a session ended, so that what a replica holds for it
// (an open websocket, a subscription, a request in flight) ends at once instead of at its next
// check. Every session end publishes the session id on one Redis channel; every replica
// subscribes to it once (Listen) and calls the callbacks registered for that id here (Watch).
// In a Redis Cluster a PUBLISH reaches every node, so the same holds there.
//
// Pub/sub is at most once: a replica that is reconnecting to Redis when a session ends misses
// the message. What it holds is then ended by the periodic check of its holder, as before.
type revocations struct {
	store *redisx.Store

	mu       sync.Mutex
	watchers map[string]map[*watcher]struct{}
}

type watcher struct{ ended func() }

func newRevocations(store *redisx.Store) *revocations {
	return &revocations{store: store, watchers: map[string]map[*watcher]struct{}{}}
}

func (r *revocations) channel() string { return r.store.Key(revokedChannel) }

// revokedChannel carries the ids of ended sessions.
const revokedChannel = "revoked"

// queuePublish queues on p the news that session sid ended.
func (r *revocations) queuePublish(ctx context.Context, p redis.Pipeliner, sid string) {
	p.Publish(ctx, r.channel(), sid)
}

// publish tells every replica that session sid ended.
func (r *revocations) publish(ctx context.Context, sid string) error {
	return r.store.Client.Publish(ctx, r.channel(), sid).Err()
}

// watch calls ended (once, on its own goroutine) when session sid ends anywhere, until stop is
// called.
func (r *revocations) watch(sid string, ended func()) (stop func()) {
	w := &watcher{ended: ended}
	r.mu.Lock()
	if r.watchers[sid] == nil {
		r.watchers[sid] = map[*watcher]struct{}{}
	}
	r.watchers[sid][w] = struct{}{}
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.remove(sid, w)
	}
}

// remove forgets w; r.mu is held.
func (r *revocations) remove(sid string, w *watcher) {
	set := r.watchers[sid]
	delete(set, w)
	if len(set) == 0 {
		delete(r.watchers, sid)
	}
}

// ended calls the watchers of sid, each once.
func (r *revocations) ended(sid string) {
	r.mu.Lock()
	set := r.watchers[sid]
	delete(r.watchers, sid)
	r.mu.Unlock()
	for w := range set {
		// A watcher closes a socket, which may block on the network; the next message must not
		// wait for it.
		go w.ended()
	}
}

// revocationResubscribe is how long Listen waits before subscribing again after Redis refused.
const revocationResubscribe = time.Second

// listen subscribes to the channel and hands each ended session to its watchers until ctx
// ends. ready is called once the first subscription is confirmed, so a caller can tell that
// nothing published after that point is missed.
func (r *revocations) listen(ctx context.Context, log *slog.Logger, ready func()) error {
	if ready != nil {
		ready = sync.OnceFunc(ready) // each resubscription confirms again; the caller hears once
	}
	for {
		err := r.listenOnce(ctx, ready)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("identity: the revocation channel failed; ended sessions reach this replica's websockets at their next check until it is back", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(revocationResubscribe):
		}
	}
}

func (r *revocations) listenOnce(ctx context.Context, ready func()) error {
	ps := r.store.Client.Subscribe(ctx, r.channel())
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		return fmt.Errorf("identity: subscribe to revocations: %w", err)
	}
	if ready != nil {
		ready()
	}
	// go-redis resubscribes on its own after a broken connection; the channel closes only
	// when ps does.
	msgs := ps.Channel()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m, ok := <-msgs:
			if !ok {
				return errors.New("identity: the revocation subscription closed")
			}
			if len(m.Payload) == opaque.IDLen {
				r.ended(m.Payload)
			}
		}
	}
}

// Watch calls ended, once and on a goroutine of its own, when the session of the access token
// ends on any replica: signed out, revoked, ended by a refresh-token reuse, by an unlink or a
// merge, or evicted by the per-person limit. It needs Listen running. Tokens that are not
// access tokens are never watched. The returned stop must be called when the caller no longer
// holds anything for the token.
//
// The session id is read from the token without checking it, so a caller may watch before it
// authenticates and miss no end that happens in between.
func (s *Sessions) Watch(token string, ended func()) (stop func()) {
	sid, _, ok := opaque.Parse(accessTokenPrefix, token)
	if !ok {
		return func() {}
	}
	return s.revoked.watch(sid, ended)
}

// Listen delivers ended sessions to this replica's watchers until ctx ends; a replica runs it
// once. ready (may be nil) is called when the subscription is first confirmed. Redis failures
// are logged and retried; it returns nil when ctx ends.
func (s *Sessions) Listen(ctx context.Context, log *slog.Logger, ready func()) error {
	return s.revoked.listen(ctx, log, ready)
}
