package push

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
)

// hub delivers notifications to this replica's live subscribers. Every replica subscribes once
// to one Redis channel and hands each message to the subscribers of its person here, so a
// subscription held on one replica hears a notification created on any other. In a Redis
// Cluster a PUBLISH reaches every node, so the same holds there.
type hub struct {
	store *redisx.Store
	log   *slog.Logger

	mu     sync.Mutex
	subs   map[string]map[chan Notification]struct{}
	pubsub *redis.PubSub
	closed bool
}

func newHub(store *redisx.Store, log *slog.Logger) *hub {
	return &hub{store: store, log: log, subs: map[string]map[chan Notification]struct{}{}}
}

type wireNote struct {
	Person string       `json:"p"`
	Note   Notification `json:"n"`
}

func (h *hub) channel() string { return h.store.Key(notifyChannel) }

func (h *hub) queuePublish(ctx context.Context, p redis.Pipeliner, n Notification) {
	blob, err := json.Marshal(wireNote{Person: n.Person, Note: n})
	if err != nil {
		return // a Notification always encodes
	}
	p.Publish(ctx, h.channel(), blob)
}

// subscriberBuffer is how many notifications wait for a slow subscriber; past it they are
// dropped for that subscriber, who still finds them in the inbox.
const subscriberBuffer = 16

// subscribe returns the person's live notifications until ctx ends. The Redis subscription is
// confirmed before it returns, so nothing created after the call is missed.
func (h *hub) subscribe(ctx context.Context, pid string) (<-chan Notification, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, fmt.Errorf("push: shutting down")
	}
	if h.pubsub == nil {
		ps := h.store.Client.Subscribe(context.WithoutCancel(ctx), h.channel())
		if _, err := ps.Receive(ctx); err != nil {
			ps.Close()
			return nil, fmt.Errorf("push: subscribe to notifications: %w", err)
		}
		h.pubsub = ps
		go h.run(ps.Channel())
	}
	ch := make(chan Notification, subscriberBuffer)
	if h.subs[pid] == nil {
		h.subs[pid] = map[chan Notification]struct{}{}
	}
	h.subs[pid][ch] = struct{}{}
	go func() {
		<-ctx.Done()
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[pid][ch]; ok {
			delete(h.subs[pid], ch)
			if len(h.subs[pid]) == 0 {
				delete(h.subs, pid)
			}
			close(ch)
		}
	}()
	return ch, nil
}

func (h *hub) run(msgs <-chan *redis.Message) {
	for m := range msgs {
		var w wireNote
		if err := json.Unmarshal([]byte(m.Payload), &w); err != nil {
			h.log.Warn("push: a live notification could not be read", "err", err)
			continue
		}
		w.Note.Person = w.Person
		h.mu.Lock()
		for ch := range h.subs[w.Person] {
			select {
			case ch <- w.Note:
			default:
				h.log.Warn("push: a live subscriber is too slow; a notification waits in its inbox", "notification", w.Note.ID)
			}
		}
		h.mu.Unlock()
	}
}

// close ends every subscription and the Redis one.
func (h *hub) close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for pid, chans := range h.subs {
		for ch := range chans {
			close(ch)
		}
		delete(h.subs, pid)
	}
	if h.pubsub != nil {
		return h.pubsub.Close()
	}
	return nil
}
