package bridge

import (
	"net/http"
	"net/url"

	"github.com/tongban/tongban/internal/ratelimit"
)

// errRateLimited is the OAuth error of a refusal by a rate limit, answered 429 with
// Retry-After. RFC 6749 has no code for "too many requests"; temporarily_unavailable is the
// one it defines for "try again later" (§4.1.2.1), which client libraries treat as transient.
// invalid_client would tell a client whose secret is right that it is wrong (and tell an
// attacker nothing more than a 429 does); slow_down is the device flow's polling signal
// (RFC 8628), which our clients never poll for.
const errRateLimited = "temporarily_unavailable"

func writeRateLimited(w http.ResponseWriter, d ratelimit.Decision) {
	ratelimit.SetRetryAfter(w, d)
	writeOAuthError(w, oauthErr(http.StatusTooManyRequests, errRateLimited,
		"too many requests; retry after %d s", d.RetryAfterSeconds()))
}

// allowAuthorize counts an /oauth2/authorize request against its IP and answers the refusal
// itself.
func (b *Bridge) allowAuthorize(w http.ResponseWriter, r *http.Request) bool {
	d, err := b.limits.Allow(r.Context(), ratelimit.Authorize, ratelimit.IPKey(ratelimit.IP(r.Context())))
	switch {
	case err != nil:
		writeOAuthError(w, serverError())
		return false
	case !d.Allowed:
		writeRateLimited(w, d)
		return false
	}
	return true
}

// authenticateClient is Clients.Authenticate under the client_auth_failures limit, which
// counts failures per client id and IP: a guesser locks out only the pair it guesses from,
// never the client elsewhere nor another client beside it. One failure is counted before the
// secret is compared and given back when it was right, so a thousand guesses sent at once
// cannot all be compared before the first is counted. It answers the error itself.
func (b *Bridge) authenticateClient(w http.ResponseWriter, r *http.Request) (*Client, bool) {
	ctx := r.Context()
	key := b.claimedClientID(r) + "|" + ratelimit.IPKey(ratelimit.IP(ctx))
	d, err := b.limits.Allow(ctx, ratelimit.ClientAuthFailures, key)
	switch {
	case err != nil:
		writeOAuthError(w, serverError())
		return nil, false
	case !d.Allowed:
		writeRateLimited(w, d)
		return nil, false
	}
	var c *Client
	var oerr *OAuthError
	if hasAssertion(r) && b.fed != nil {
		c, oerr = b.authenticateAssertion(r)
	} else {
		c, oerr = b.clients.Authenticate(r)
	}
	if oerr != nil {
		writeOAuthError(w, oerr)
		return nil, false
	}
	// Should the return fail, one unit stays counted and drains by itself within the period.
	_ = b.limits.Return(ctx, ratelimit.ClientAuthFailures, key)
	return c, true
}

// claimedClientID is the client id a request names, as Authenticate reads it, or "?" for one
// that names no registered client: made-up ids share one bucket per IP instead of each having
// its own.
func (b *Bridge) claimedClientID(r *http.Request) string {
	id, _, basic := r.BasicAuth()
	if b.fed != nil && hasAssertion(r) {
		// A federated client counts as itself once this replica knows it; until then, with the
		// made-up ids (resolving a chain to pick a bucket would let guesses cost fetches).
		iss, _, _ := unverifiedClaims(r.PostForm.Get("client_assertion"))
		if _, ok := b.clients.Get(iss); ok {
			return iss
		}
		if _, ok := b.fedCache.get(iss, b.now()); ok {
			return iss
		}
		return "?"
	}
	if basic {
		if u, err := url.QueryUnescape(id); err == nil {
			id = u
		}
	} else {
		id = r.PostForm.Get("client_id")
	}
	if _, ok := b.clients.Get(id); !ok {
		return "?"
	}
	return id
}
