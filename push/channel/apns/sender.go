package apns

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"

	"github.com/tongban/tongban/push/channel"
)

// batch is the most messages one Send takes: a few rounds of Concurrency at the default, and
// the most a worker's crash can leave to be sent twice (the collapse id and notification_id
// make such a duplicate harmless).
const batch = 256

// Sender sends notifications to iOS devices through APNs with token-based authentication. It
// is safe for concurrent use; one Sender keeps one provider token and one HTTP/2 connection
// for all its calls, as Apple asks.
type Sender struct {
	client  *apns2.Client
	token   *token.Token
	topics  map[string]string
	now     func() time.Time
	log     *slog.Logger
	timeout time.Duration
	slots   chan struct{} // a push in flight holds one
	backoff backoff
}

var _ channel.Sender = (*Sender)(nil)

// New checks opts, parses the key and signs a first provider token, so that a bad key or id
// is found at start-up rather than at the first push.
func New(opts Options) (*Sender, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	key, err := ParseKey(opts.KeyPEM)
	if err != nil {
		return nil, err
	}
	base, err := host(opts.Endpoint)
	if err != nil {
		return nil, err
	}
	tok := newToken(key, opts.KeyID, opts.TeamID)
	if _, err := tok.Generate(); err != nil {
		return nil, fmt.Errorf("apns: signing a provider token: %w", err)
	}
	client := apns2.NewTokenClient(tok)
	client.Host = base
	client.HTTPClient = opts.HTTPClient
	if client.HTTPClient == nil {
		client.HTTPClient = newHTTPClient(opts.RootCAs)
	}

	s := &Sender{
		client:  client,
		token:   tok,
		topics:  make(map[string]string, len(opts.Topics)),
		now:     opts.Now,
		log:     opts.Logger,
		timeout: opts.Timeout,
		slots:   make(chan struct{}, max(opts.Concurrency, 1)),
	}
	for app, topic := range opts.Topics {
		s.topics[app] = topic // a copy: the caller's map may change after New
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.timeout == 0 {
		s.timeout = defaultTimeout
	}
	if opts.Concurrency == 0 {
		s.slots = make(chan struct{}, defaultConcurrency)
	}
	return s, nil
}

// Close closes the Sender's idle connections to APNs. Pushes in flight finish; a later Send
// connects again.
func (s *Sender) Close() {
	if c, ok := s.client.HTTPClient.Transport.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func newToken(key *ecdsa.PrivateKey, keyID, teamID string) *token.Token {
	return &token.Token{AuthKey: key, KeyID: keyID, TeamID: teamID}
}

// Kind is channel.APNs.
func (s *Sender) Kind() channel.Kind { return channel.APNs }

// Batch is the most messages one Send takes.
func (s *Sender) Batch() int { return batch }

// Send pushes each message, as many at once as Concurrency allows across the Sender, and
// answers their results in order. A message it could not start before ctx ended is Retry
// "transport".
func (s *Sender) Send(ctx context.Context, msgs []channel.Message) []channel.Result {
	results := make([]channel.Result, len(msgs))
	var wg sync.WaitGroup
	for i := range msgs {
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			for j := i; j < len(msgs); j++ {
				results[j] = channel.Result{Outcome: channel.Retry, Reason: reasonTransport}
			}
			wg.Wait()
			return results
		}
		wg.Go(func() {
			defer func() { <-s.slots }()
			defer func() {
				// apns2 reads APNs' answers on this goroutine; whatever it makes of an odd
				// one must not take the process down.
				if p := recover(); p != nil {
					s.log.Error("apns: push panicked", "app", msgs[i].To.App, "panic", fmt.Sprint(p))
					results[i] = channel.Result{Outcome: channel.Retry, Reason: reasonBadAnswer}
				}
			}()
			results[i] = s.send(ctx, &msgs[i])
		})
	}
	wg.Wait()
	return results
}

// send pushes one message.
func (s *Sender) send(ctx context.Context, m *channel.Message) channel.Result {
	if m.To.Kind != channel.APNs {
		// Delivery's mistake, not the endpoint's: an FCM token here would fail ValidToken and
		// be dropped, and the device with it.
		s.log.Error("apns: a message for another kind of endpoint", "kind", string(m.To.Kind), "app", m.To.App)
		return channel.Result{Outcome: channel.Fail, Reason: reasonWrongKind}
	}
	topic, ok := s.topics[m.To.App]
	if !ok {
		s.log.Warn("apns: no bundle id for the app; add it to Topics", "app", m.To.App)
		return channel.Result{Outcome: channel.Fail, Reason: reasonNoTopic}
	}
	tokenText := m.To.Address
	if ValidToken(tokenText) != nil {
		// Not a device token APNs would take (and not safe in a URL path): the device record
		// is wrong, as APNs' own BadDeviceToken would say.
		return channel.Result{Outcome: channel.Drop, Reason: apns2.ReasonBadDeviceToken}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	r, status := s.push(ctx, notification(m.Note, tokenText, topic, s.now()))
	switch {
	case r.Outcome == channel.Sent:
		s.backoff.sent(tokenText)
	case r.Reason == apns2.ReasonTooManyRequests:
		r.Wait = s.backoff.tooMany(tokenText, s.now())
	case r.Outcome == channel.Fail || status == http.StatusForbidden ||
		r.Reason == apns2.ReasonTooManyProviderTokenUpdates:
		// Refusals of the request or of our credentials are configuration to mend, not a
		// device's state: say so once per message, with the app and never the token.
		s.log.Warn("apns: push refused", "app", m.To.App, "topic", topic, "reason", r.Reason, "outcome", r.Outcome.String())
	}
	return r
}

// push sends n, and once more with a new provider token if APNs calls the one sent expired or
// invalid. apns2's token.Token signs anew only when its own clock says the token is 50
// minutes old; APNs may think otherwise (a clock off, a token revoked), so the Sender makes a
// new one itself, but only if no other push has done so since this one's was taken: many
// pushes in flight that meet the same refusal make one new token, not one each, which Apple
// would refuse as TooManyProviderTokenUpdates.
func (s *Sender) push(ctx context.Context, n *apns2.Notification) (channel.Result, int) {
	bearer := s.token.GenerateIfExpired()
	r, status := s.pushOnce(ctx, n)
	if status != http.StatusForbidden || !providerRefusal(r.Reason) {
		return r, status
	}
	s.remakeToken(bearer, r.Reason)
	return s.pushOnce(ctx, n)
}

func (s *Sender) remakeToken(refused, reason string) {
	s.token.Lock()
	defer s.token.Unlock()
	if s.token.Bearer != refused {
		return // another push has made a new one already
	}
	if _, err := s.token.Generate(); err != nil {
		s.log.Error("apns: re-making the provider token", "err", err)
		return
	}
	s.log.Info("apns: provider token re-made", "reason", reason)
}

// pushOnce sends n and reads the answer; the status is 0 when there was none to read.
func (s *Sender) pushOnce(ctx context.Context, n *apns2.Notification) (channel.Result, int) {
	resp, err := s.client.PushWithContext(ctx, n)
	switch {
	case err != nil && resp != nil:
		// apns2 answers an empty Response with the error when the body is not JSON.
		return channel.Result{Outcome: channel.Retry, Reason: reasonBadAnswer}, 0
	case err != nil:
		return channel.Result{Outcome: channel.Retry, Reason: reasonTransport}, 0
	}
	return classify(resp.StatusCode, resp.Reason), resp.StatusCode
}
