package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/identity"
)

// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) at /oauth2/logout: a member app
// sends the citizen's browser with the ID token it holds (id_token_hint); the bridge ends the
// Tongban session behind that token's sid (the grant, g:{sid}, names it), which through
// SessionsEnded ends every app's grants from that session, with their logout tokens; then it
// sends the browser back to a registered post_logout_redirect_uri, or answers a plain
// "signed out". There is no UI: the bridge has no cookie of its own to ask whose session, so the
// hint is what names it, and a request without one ends nothing.
//
// Nothing invalid is redirected: a bad hint or an unregistered redirect is a 400 with a plain
// reason, since a redirect decided by an unchecked request would make the bridge an open
// redirector.

// HintMaxAge is how long after its expiry an ID token is still accepted as an id_token_hint: an
// app usually holds an ID token long expired (they live IDTokenTTL) when its user signs out.
const HintMaxAge = 24 * time.Hour

// hintLeeway is the clock skew allowed around HintMaxAge and iat.
const hintLeeway = time.Minute

// hintClaims are the claims of an id_token_hint the logout reads.
type hintClaims struct {
	Iss    string          `json:"iss"`
	Aud    json.RawMessage `json:"aud"`
	Exp    int64           `json:"exp"`
	Sid    string          `json:"sid"`
	Events json.RawMessage `json:"events"`
}

// audience is the single audience of an ID token we signed (a string, or an array of one).
func (h hintClaims) audience() (string, bool) {
	var one string
	if json.Unmarshal(h.Aud, &one) == nil {
		return one, one != ""
	}
	var many []string
	if json.Unmarshal(h.Aud, &many) == nil && len(many) == 1 {
		return many[0], many[0] != ""
	}
	return "", false
}

func (b *Bridge) serveLogout(w http.ResponseWriter, r *http.Request) {
	if !b.allowAuthorize(w, r) {
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		badLogout(w, "the request could not be parsed")
		return
	}
	q := r.Form
	for _, p := range []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state"} {
		if len(q[p]) > 1 {
			badLogout(w, "parameter "+p+" is repeated")
			return
		}
	}
	if len(q.Get("state")) > 1024 || len(q.Get("id_token_hint")) > 16<<10 {
		badLogout(w, "state or id_token_hint is too long")
		return
	}
	var client *Client
	if id := q.Get("client_id"); id != "" {
		// Anyone can type a client_id here: a federated client is found in memory or by its
		// record (every client that signed a person in has one), never by resolving a chain.
		c, ok, err := b.lookupReceiverResolving(r.Context(), id, false)
		if err != nil {
			badLogout(w, "the client could not be looked up; try again")
			return
		}
		if !ok {
			badLogout(w, "unknown client_id")
			return
		}
		client = c
	}
	var sid string
	if hint := q.Get("id_token_hint"); hint != "" {
		h, hinted, reason := b.checkHint(r.Context(), hint)
		if reason != "" {
			badLogout(w, reason)
			return
		}
		if client != nil && client.ID != hinted.ID {
			badLogout(w, "the id_token_hint was issued to another client than client_id")
			return
		}
		client = hinted
		sid = h.Sid
	}
	redirect := q.Get("post_logout_redirect_uri")
	if redirect != "" {
		if client == nil {
			badLogout(w, "post_logout_redirect_uri needs the client: send id_token_hint or client_id")
			return
		}
		if !slices.Contains(client.PostLogoutRedirectURIs, redirect) {
			badLogout(w, "post_logout_redirect_uri is not registered for this client")
			return
		}
		if _, err := url.Parse(redirect); err != nil {
			badLogout(w, "post_logout_redirect_uri cannot be parsed")
			return
		}
	}
	if sid != "" {
		if err := b.endHintSession(r, client, sid); err != nil {
			slog.ErrorContext(r.Context(), "bridge: rp-initiated logout", "client", client.ID, "err", err)
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "the sign-out could not be completed; try again", http.StatusInternalServerError)
			return
		}
	}
	if redirect != "" {
		b.redirectTo(w, r, redirect, url.Values{"state": optional(q.Get("state"))})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("signed out\n"))
}

// checkHint verifies an id_token_hint: an ID token signed by one of our published keys, issued
// by us to a client that receives switches, expired no longer than HintMaxAge ago, naming a
// grant (sid). It answers the reason it refuses the hint, or "".
func (b *Bridge) checkHint(ctx context.Context, hint string) (hintClaims, *Client, string) {
	payload, err := b.keys.Verify(hint)
	if err != nil {
		return hintClaims{}, nil, "the id_token_hint is not an ID token signed by this issuer"
	}
	var h hintClaims
	if err := json.Unmarshal(payload, &h); err != nil {
		return hintClaims{}, nil, "the id_token_hint's claims cannot be read"
	}
	switch aud, ok := h.audience(); {
	case h.Iss != b.issuer:
		return h, nil, "the id_token_hint was issued by another issuer"
	case len(h.Events) > 0:
		// Our logout tokens are signed with the same keys; one is no ID token.
		return h, nil, "the id_token_hint is not an ID token"
	case !ok:
		return h, nil, "the id_token_hint has no single audience"
	case h.Exp == 0:
		return h, nil, "the id_token_hint has no expiry"
	case b.now().After(time.Unix(h.Exp, 0).Add(HintMaxAge + hintLeeway)):
		return h, nil, "the id_token_hint is too old"
	case h.Sid == "":
		return h, nil, "the id_token_hint names no session (sid)"
	default:
		c, known, err := b.lookupReceiver(ctx, aud)
		if err != nil {
			return h, nil, "the id_token_hint's client could not be looked up; try again"
		}
		if !known {
			return h, nil, "the id_token_hint was issued to an unknown client"
		}
		return h, c, ""
	}
}

// endHintSession ends the Tongban session behind grant sid of client, when the grant still
// exists: one that has ended already (its session too, or the person's consent) has nothing
// left to end, and neither has a session that ended since.
func (b *Bridge) endHintSession(r *http.Request, client *Client, sid string) error {
	if b.ender == nil {
		return nil
	}
	ctx := r.Context()
	v, err := b.store.Client.HMGet(ctx, b.grantKey(sid), "client", "person", "session").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	owner, _ := v[0].(string)
	person, _ := v[1].(string)
	session, _ := v[2].(string)
	if owner != client.ID || person == "" || session == "" {
		return nil
	}
	if err := b.ender.End(ctx, person, session, identity.EndRPLogout); err != nil && !errors.Is(err, identity.ErrInvalidSession) {
		return err
	}
	return nil
}

func badLogout(w http.ResponseWriter, reason string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte(reason + "\n"))
}
