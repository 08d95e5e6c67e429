package graph

import (
	"context"
	"net/http"
	"time"

	"github.com/vektah/gqlparser/v2/gqlerror"
)

// postSubscriptionWait bounds how long a subscription sent as POST waits for its first event.
// A POST holds a handler, a resolver and a hub listener while it waits; past this it answers
// "subscribe again", before the server's write timeout would cut it without an answer.
const postSubscriptionWait = 55 * time.Second

// holdPostSubscription takes the places a subscription sent as POST occupies while it waits:
// one of its address's and one of its person's, counted with their websockets. Without them a
// session could hold thousands of waiting subscriptions, the flood the websocket caps close,
// by sending POSTs instead. It returns what gives the places back, or the refusal.
func (h *Handler) holdPostSubscription(ctx context.Context, r *http.Request) (release func(), refusal *gqlerror.Error) {
	ip := h.clientIP(r)
	if !h.ips.acquire(ip) {
		return nil, newError(CodeRateLimited, "%s: close a websocket or a waiting subscription first", reasonTooManyForIP)
	}
	release = func() { h.ips.release(ip) }
	s, _ := sessionFrom(ctx)
	if s == nil || h.persons == nil {
		return release, nil
	}
	actx, cancel := context.WithTimeout(ctx, authTimeout)
	personRelease, ok, err := h.persons.acquire(actx, s.PersonID)
	cancel()
	switch {
	case err != nil:
		release()
		return nil, newError(CodeInternal, internalMessage)
	case !ok:
		release()
		return nil, newError(CodeRateLimited, "%s", reasonTooManyForPerson)
	}
	return func() { personRelease(); h.ips.release(ip) }, nil
}
