package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/audit"
)

// RFC 8693 identifiers the bridge speaks.
const (
	grantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
)

// Actor is the act claim of RFC 8693 §4.1: who acts for the person. A token exchanged again
// nests the earlier actor.
type Actor struct {
	Sub string `json:"sub"`
	Act *Actor `json:"act,omitempty"`
}

// actField is the grant hash's field that holds the JSON Actor of an exchanged grant.
const actField = "act"

// tokenExchange is RFC 8693 token exchange for backend-to-backend delegation: app A's backend
// (the authenticated client) presents an access token the bridge issued to A and names app B
// in audience; it receives an access token for B, for the same person and login, which names A
// as actor. B must be a registered client of people (not a machine client) other than A, and
// the person must have consented to B; the new token's scopes are the requested ones (all by
// default) that B may have and the person consented to. It has no refresh token.
//
// A subject token that is unknown, expired, revoked or not A's is invalid_request, as RFC 8693
// §2.2.2 requires (not invalid_grant); an audience that may not have it is invalid_target.
func (b *Bridge) tokenExchange(r *http.Request, c *Client) (map[string]any, *OAuthError) {
	if c.Machine {
		return nil, oauthErr(http.StatusBadRequest, "unauthorized_client", "machine clients use client_credentials")
	}
	ctx := r.Context()
	f := r.PostForm
	subject, subjectType := f.Get("subject_token"), f.Get("subject_token_type")
	switch {
	case subject == "":
		return nil, invalidRequest("subject_token is required")
	case subjectType == "":
		return nil, invalidRequest("subject_token_type is required")
	case subjectType != tokenTypeAccessToken:
		return nil, invalidRequest("subject_token_type must be %s: the bridge exchanges only access tokens it issued", tokenTypeAccessToken)
	case f.Get("actor_token") != "" || f.Get("actor_token_type") != "":
		return nil, invalidRequest("actor_token is not supported: the authenticated client is the actor")
	case f.Get("requested_token_type") != "" && f.Get("requested_token_type") != tokenTypeAccessToken:
		return nil, invalidRequest("requested_token_type may only be %s", tokenTypeAccessToken)
	case f.Get("resource") != "":
		return nil, oauthErr(http.StatusBadRequest, "invalid_target", "resource is not supported: name the target app's client id in audience")
	case f.Get("audience") == "":
		return nil, invalidRequest("audience is required: the client id of the app the token is for")
	}

	g, err := b.Authenticate(ctx, subject)
	if err != nil {
		if !errors.Is(err, ErrInvalidToken) {
			return nil, serverError()
		}
		return nil, invalidRequest("the subject_token is unknown, expired or revoked")
	}
	if g.Kind != "user" || g.Client != c.ID {
		return nil, invalidRequest("the subject_token was not issued to this client")
	}
	// A person who revoked consent for A has taken back what A holds; A cannot pass it on.
	own, err := b.Consents.Get(ctx, g.Person, c.ID)
	if err != nil {
		return nil, serverError()
	}
	if !own.holds(c, g.Scopes) {
		return nil, invalidRequest("the subject_token's person revoked consent for this app")
	}

	aud := f.Get("audience")
	target, ok, err := b.lookupReceiver(ctx, aud)
	if err != nil {
		return nil, serverError()
	}
	switch {
	case !ok || target.Machine:
		return nil, oauthErr(http.StatusBadRequest, "invalid_target", "audience %q is not an app that can receive people", aud)
	case target.ID == c.ID:
		return nil, oauthErr(http.StatusBadRequest, "invalid_target", "the audience is the requesting client itself; refresh instead")
	}
	consent, err := b.Consents.Get(ctx, g.Person, target.ID)
	if err != nil {
		return nil, serverError()
	}
	if len(consent.Scopes) == 0 {
		return nil, oauthErr(http.StatusBadRequest, "invalid_target", "the person has not consented to %s", target.ID)
	}
	scopes := target.releasable(exchangeScopes(splitScope(f.Get("scope")), target, consent, g.Scopes), g.Assurance)
	if len(scopes) == 0 {
		return nil, oauthErr(http.StatusBadRequest, "invalid_scope", "none of the requested scopes is both allowed for %s and consented to", target.ID)
	}

	act, err := b.actorOf(ctx, g.ID)
	if err != nil {
		return nil, serverError()
	}
	act = &Actor{Sub: c.ID, Act: act}
	actJSON, err := json.Marshal(act)
	if err != nil {
		return nil, serverError()
	}
	out, err := b.issue(ctx, Grant{
		Kind: "user", Client: target.ID, Person: g.Person, Scopes: scopes, Assurance: g.Assurance,
		AuthTime: g.AuthTime, Session: g.Session, AMR: g.AMR, Act: string(actJSON), Parent: g.ID,
	}, false)
	if err != nil {
		return nil, serverError()
	}
	// A consent withdrawn while the grant was being issued may have missed it: look again.
	if again, err := b.Consents.Get(ctx, g.Person, target.ID); err != nil || !again.covers(scopes) {
		_ = b.revoke(ctx, out.grant.ID)
		return nil, oauthErr(http.StatusBadRequest, "invalid_target", "the person withdrew consent for %s", target.ID)
	}
	_ = b.audit.Record(ctx, audit.Activity{Kind: audit.TokenExchanged, Person: g.Person, FromApp: c.ID, ToApp: target.ID, At: b.now()})
	resp := tokenResponse(out, "")
	resp["issued_token_type"] = tokenTypeAccessToken
	return resp, nil
}

// exchangeScopes are the requested scopes (all the target's scopes when none are requested)
// that the subject token has, the target may have and the person consented to; openid needs no
// consent, and offline_access is never granted (an exchanged token has no refresh token). An
// exchange never widens what the requesting app already holds.
func exchangeScopes(requested []string, target *Client, consent Consent, held []string) []string {
	if len(requested) == 0 {
		requested = target.Scopes
	}
	var out []string
	for _, s := range requested {
		if s == "offline_access" || !slices.Contains(target.Scopes, s) || !slices.Contains(held, s) || slices.Contains(out, s) {
			continue
		}
		if s == "openid" || slices.Contains(consent.Scopes, s) {
			out = append(out, s)
		}
	}
	return out
}

// actorOf returns the actor of a grant; nil for one that was not exchanged.
func (b *Bridge) actorOf(ctx context.Context, gid string) (*Actor, error) {
	raw, err := b.store.Client.HGet(ctx, b.grantKey(gid), actField).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bridge: read actor: %w", err)
	}
	return decodeActor(raw)
}

func decodeActor(raw string) (*Actor, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	var a Actor
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		return nil, fmt.Errorf("bridge: corrupt actor: %w", err)
	}
	return &a, nil
}
