package entity

// Watching the registry: every replica learns of a change at once through a Redis channel,
// and, since pub/sub is at most once (a replica reconnecting misses messages), from a
// periodic check of the version counter too. Callbacks registered with OnRemoved and
// OnChanged run on the watching goroutine, in order.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// watcher is a replica's view of the registry and its callbacks.
type watcher struct {
	reg      *Registry
	interval time.Duration
	log      *slog.Logger

	mu                   sync.Mutex
	onRemoved, onChanged []func(entityID string)

	// Owned by the Run goroutine.
	view    map[string]string // entity id → fingerprint of what is said about it
	version int64
	loaded  bool

	ready     chan struct{} // closed when the first subscription is confirmed and the view read
	readyOnce sync.Once
}

func newWatcher(reg *Registry, interval time.Duration, log *slog.Logger) *watcher {
	return &watcher{reg: reg, interval: interval, log: log, ready: make(chan struct{})}
}

// run subscribes to the changes channel and checks the version every interval until ctx
// ends; it returns nil then. Redis failures are logged and retried.
func (w *watcher) run(ctx context.Context) error {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	var ps *redis.PubSub
	var msgs <-chan *redis.Message
	defer func() {
		if ps != nil {
			_ = ps.Close()
		}
	}()
	for {
		if ps == nil {
			var err error
			if ps, err = w.subscribe(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				w.log.Warn("federation/entity: subscribe to subordinate changes; retried, and versions checked meanwhile", "err", err)
			} else {
				// go-redis resubscribes by itself after a broken connection; this channel
				// closes only with ps.
				msgs = ps.Channel()
				// Whatever changed before the subscription is read now.
				w.refresh(ctx, "")
				w.readyOnce.Do(func() { close(w.ready) })
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				ps, msgs = nil, nil
				continue
			}
			op, id, _ := strings.Cut(m.Payload, " ")
			if op == "removed" && len(id) <= MaxEntityIDLen {
				w.refresh(ctx, id)
			} else {
				w.refresh(ctx, "")
			}
		case <-t.C:
			v, err := w.reg.version(ctx)
			if err != nil {
				w.log.Warn("federation/entity: check the subordinates' version", "err", err)
				continue
			}
			if !w.loaded || v != w.version {
				w.refresh(ctx, "")
			}
		}
	}
}

func (w *watcher) subscribe(ctx context.Context) (*redis.PubSub, error) {
	ps := w.reg.store.Client.Subscribe(ctx, w.reg.store.Key(changesCh))
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("federation/entity: subscribe: %w", err)
	}
	return ps, nil
}

// refresh rereads the registry and calls the callbacks for what differs from the last view.
// removed, when not "", was announced as removed: its callbacks run even if it has been added
// again since (what was trusted under the old statement must end all the same).
func (w *watcher) refresh(ctx context.Context, removed string) {
	subs, v, err := w.reg.snapshot(ctx)
	if err != nil {
		w.log.Warn("federation/entity: reread the subordinates", "err", err)
		return
	}
	view := make(map[string]string, len(subs))
	for _, s := range subs {
		view[s.EntityID] = fingerprint(s)
	}
	old, first := w.view, !w.loaded
	w.view, w.version, w.loaded = view, v, true
	if first {
		return
	}
	var gone, changed []string
	for id := range old {
		if _, ok := view[id]; !ok || id == removed {
			gone = append(gone, id)
		}
	}
	if _, ok := old[removed]; !ok && removed != "" {
		gone = append(gone, removed)
	}
	for id, fp := range view {
		if old[id] != fp && id != removed {
			changed = append(changed, id)
		}
	}
	w.mu.Lock()
	onRemoved, onChanged := w.onRemoved, w.onChanged
	w.mu.Unlock()
	for _, id := range gone {
		w.log.Info("federation/entity: subordinate removed", "sub", id)
		for _, f := range onRemoved {
			f(id)
		}
	}
	for _, id := range changed {
		for _, f := range onChanged {
			f(id)
		}
	}
}

// fingerprint is what a replica compares to tell a subordinate changed.
func fingerprint(s Subordinate) string {
	s.AddedAt = time.Time{}
	b, err := json.Marshal(s)
	if err != nil {
		return ""
	}
	return string(b)
}
