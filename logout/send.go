package logout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The outcomes of an attempt, the outcome label of tongban_logout_sends_total.
const (
	outcomeSent       = "sent"        // the member app answered 200 or 204
	outcomeRetry      = "retry"       // 5xx, 429, a timeout, a connection error: tried again later
	outcomeRejected   = "rejected"    // another status (3xx, 4xx) or an endpoint not allowed: dead letter at once
	outcomeDead       = "dead"        // retried MaxAttempts times: dead letter
	outcomeNoGrant    = "no_grant"    // the Check key was gone at the first attempt: nothing to log out
	outcomeNoEndpoint = "no_endpoint" // the client has no backchannel_logout_uri (any more)
	// Not counted: a malformed entry, acknowledged and logged; and an entry put back on the
	// stream unsent (its worker is stopping, or its batch ran long), to be read anew.
	outcomeDropped = ""
	outcomeRequeue = "requeue"
	// Nor a first look that found the Check key missing: on a Redis Cluster the job's XADD and
	// the tombstone's SET, queued in that order on one pipeline, go to different nodes and may
	// land in either order, so the job is looked at again after CheckGrace before it is dropped.
	outcomeRecheck = "recheck"
)

// bodyLimit bounds what is read of a member app's answer: it is read only so the connection
// can be reused, and discarded.
const bodyLimit = 4 << 10

// result is what one attempt came to.
type result struct {
	outcome string
	reason  string        // why it failed, for the dead letters and the logs
	after   time.Duration // a retry's Retry-After, 0 when none
	leave   bool          // not settled: the entry stays pending (the store failed)
}

// newClient is the HTTP client of the sends: Timeout per POST, no redirect followed (a 3xx is
// returned as it is, and counts as a rejection: a logout token must not travel to wherever a
// member app's server points), and idle connections kept for every worker.
func newClient(o Options) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = o.Workers
	return &http.Client{
		Transport:     tracedTransport(t, o.Tracer),
		Timeout:       o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// attempt makes one delivery attempt of a, whose grant check (if any) has passed, as a span
// of the trace that queued it.
func (s *Service) attempt(ctx context.Context, a attempt) result {
	ctx, span := s.traceSpan(ctx, a)
	r := s.send(ctx, a)
	endSpan(span, r)
	return r
}

// send is attempt's work: mint a's token and POST it.
func (s *Service) send(ctx context.Context, a attempt) result {
	uri, ok := s.opts.Endpoints.BackchannelLogoutURI(a.Client)
	if !ok || uri == "" {
		return result{outcome: outcomeNoEndpoint}
	}
	if err := allowedEndpoint(uri); err != nil {
		return result{outcome: outcomeRejected, reason: err.Error()}
	}
	tok, err := s.opts.Minter.LogoutToken(a.Client, a.Subject, a.SID, a.JTI)
	if err != nil {
		return result{outcome: outcomeRetry, reason: fmt.Sprintf("mint the logout token: %v", err)}
	}
	return s.post(ctx, uri, tok)
}

// post sends the token and reads the answer into a result.
func (s *Service) post(ctx context.Context, uri, tok string) result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		return result{outcome: outcomeRejected, reason: fmt.Sprintf("build the request: %v", err)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		// Timeouts, refused or reset connections, TLS failures: the member app may be back
		// soon. (A certificate it will not fix is retried to the end, then dead-lettered.)
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // without the URL: the reason names the client already
		}
		return result{outcome: outcomeRetry, reason: fmt.Sprintf("POST: %v", err)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, bodyLimit))
	_ = resp.Body.Close()
	switch code := resp.StatusCode; {
	case code == http.StatusOK || code == http.StatusNoContent:
		return result{outcome: outcomeSent}
	case code == http.StatusTooManyRequests || code >= 500:
		after, _ := retryAfter(resp.Header.Get("Retry-After"), s.now())
		return result{outcome: outcomeRetry, reason: "HTTP " + strconv.Itoa(code), after: after}
	case code >= 300 && code < 400:
		return result{outcome: outcomeRejected, reason: fmt.Sprintf("HTTP %d: redirect to %q not followed", code, resp.Header.Get("Location"))}
	default:
		return result{outcome: outcomeRejected, reason: "HTTP " + strconv.Itoa(code)}
	}
}

// allowedEndpoint refuses an endpoint a token must not go to: anything but https, except http
// to a loopback host (dev mode's simulated apps), as everywhere else in Tongban.
func allowedEndpoint(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("backchannel_logout_uri unparsable: %v", err)
	case u.Host == "":
		return errors.New("backchannel_logout_uri has no host")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	default:
		return fmt.Errorf("backchannel_logout_uri %s://%s refused: https only (http only to a loopback host)", u.Scheme, u.Host)
	}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// retryAfter reads a Retry-After header: delay seconds or an HTTP date (RFC 9110 §10.2.3).
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, int64(1<<31))) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// backoff is how long attempt n (1 = the first, which just failed) waits before the next:
// the member app's Retry-After when it gave one, else a random time up to MinBackoff·2^(n-1)
// (full jitter, so that the retries of many tokens after one outage spread out); never more
// than MaxBackoff.
func (s *Service) backoff(n int, after time.Duration) time.Duration {
	if after > 0 {
		return min(after, s.opts.MaxBackoff)
	}
	ceil := s.opts.MaxBackoff
	if n-1 < 40 {
		ceil = min(ceil, s.opts.MinBackoff<<(n-1))
	}
	if ceil <= 0 {
		ceil = s.opts.MaxBackoff
	}
	return time.Duration(rand.Int64N(int64(ceil) + 1))
}
