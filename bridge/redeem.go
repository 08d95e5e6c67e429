package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/audit"
	"github.com/tongban/tongban/internal/opaque"
)

// redeemScript takes an authorization code once and, in the same step, checks what the token
// request presents against it and creates the grant the code stands for. A code whose checks
// fail is used up all the same, as RFC 6749 §4.1.2 wants of a code presented once.
//
// The grant records the hash of the code it was made from: a code presented again finds no
// code but a grant that names it, and ends it (RFC 6749 §4.1.2: a replay revokes the tokens
// issued from the code). Taking the code and creating the grant in one step leaves no moment
// in which a replay finds the one gone and the other not made.
//
// The checks are string equalities: the client id, the redirect URI and the S256 challenge of
// the presented verifier, which the caller computes (a challenge is public, so comparing it in
// variable time tells nothing about the verifier).
//
// A redemption sent twice (its reply timed out after the script ran, and the client, a cluster
// redirect or a retry sent it again) is not a replay: the grant it finds holds the access-token
// hash of this very request (ARGV[6], fresh to it), so the script answers what the first run
// did, from the grant, which also keeps the code's nonce and source app for that.
//
// KEYS[1] code record oc:{gid}, KEYS[2] grant g:{gid}; ARGV[1] hash of the code's secret,
// ARGV[2] client, ARGV[3] redirect_uri, ARGV[4] S256(code_verifier), ARGV[5] grant ttl ms,
// ARGV[6] the hash of the access token this request issues, then the grant's own field, value
// pairs (token hashes, the access token's under "at"). Returns {1, person, scopes, assurance,
// auth_time, session, amr, nonce, source_app}, {2, person, client} for a replay (the grant is
// deleted), {3, what} for a failed check, or {0} for an unknown code.
var redeemScript = redis.NewScript(`
local c = redis.call('HMGET', KEYS[1], 'hash', 'client', 'redirect_uri', 'challenge', 'person', 'scopes',
  'assurance', 'auth_time', 'session', 'amr', 'nonce', 'source_app', 'dead')
if not c[1] then
  local g = redis.call('HMGET', KEYS[2], 'code', 'at', 'person', 'client', 'scopes', 'assurance', 'auth_time',
    'session', 'amr', 'nonce', 'source_app')
  if g[1] ~= ARGV[1] then return {0} end
  if g[2] == ARGV[6] then return {1, g[3], g[5], g[6], g[7], g[8], g[9], g[10] or '', g[11] or ''} end
  redis.call('DEL', KEYS[2])
  return {2, g[3] or '', g[4] or ''}
end
if c[1] ~= ARGV[1] then return {0} end
redis.call('DEL', KEYS[1])
if c[13] then return {0} end
if c[2] ~= ARGV[2] then return {3, 'client'} end
if c[3] ~= ARGV[3] then return {3, 'redirect_uri'} end
if c[4] ~= ARGV[4] then return {3, 'code_verifier'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {0} end
redis.call('HSET', KEYS[2], 'kind', 'user', 'client', c[2], 'person', c[5], 'scopes', c[6], 'assurance', c[7],
  'auth_time', c[8], 'session', c[9], 'amr', c[10], 'code', c[1], 'nonce', c[11] or '', 'source_app', c[12] or '',
  unpack(ARGV, 7))
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return {1, c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12]}
`)

// redeemCode exchanges a code for tokens. A code works once; presenting it again revokes every
// token issued from it (RFC 6749 §4.1.2), since either the client or a thief replayed it.
//
// Three round trips: the code is taken and the grant made (one script on the grant's slot);
// the grant is indexed, and the consent and the person's claims read, in one transaction on
// the person's slot; the audit entry. A withdrawal of consent either is seen by that
// transaction, or comes after it and finds the grant in the index and ends it.
func (b *Bridge) redeemCode(r *http.Request, c *Client) (map[string]any, *OAuthError) {
	if c.Machine {
		return nil, oauthErr(http.StatusBadRequest, "unauthorized_client", "machine clients use client_credentials")
	}
	ctx := r.Context()
	code := r.PostForm.Get("code")
	if code == "" || len(code) > 100 {
		return nil, invalidRequest("code is required")
	}
	gid, hash, ok := opaque.Parse(codePrefix, code)
	if !ok {
		return nil, invalidGrant("unknown or expired code")
	}
	access, ah, err := opaque.New(accessPrefix, gid)
	if err != nil {
		return nil, serverError()
	}
	refresh, rh, err := opaque.New(refreshPrefix, gid)
	if err != nil {
		return nil, serverError()
	}
	exp := b.now().Add(AccessTokenTTL).UTC().Truncate(time.Second)
	res, err := redeemScript.Run(ctx, b.store.Client, []string{b.codeKey(gid), b.grantKey(gid)},
		hash, c.ID, r.PostForm.Get("redirect_uri"), s256(r.PostForm.Get("code_verifier")), RefreshTokenTTL.Milliseconds(), ah,
		"at", ah, "at_exp", exp.Unix(), "rt", rh, "departments", "", "issued", b.now().Unix()).Slice()
	if err != nil {
		return nil, serverError()
	}
	f := make([]string, len(res))
	for i, v := range res {
		switch v := v.(type) {
		case int64:
			f[i] = strconv.FormatInt(v, 10)
		case string:
			f[i] = v
		}
	}
	switch {
	case len(f) == 3 && f[0] == "2":
		if err := b.endReplayed(ctx, gid, f[1], f[2]); err != nil {
			return nil, serverError()
		}
		return nil, invalidGrant("the code was already used; every token issued from it is revoked")
	case len(f) == 2 && f[0] == "3" && f[1] == "client":
		return nil, invalidGrant("the code was issued to another client")
	case len(f) == 2 && f[0] == "3" && f[1] == "redirect_uri":
		return nil, invalidGrant("redirect_uri differs from the authorization request's")
	case len(f) == 2 && f[0] == "3":
		return nil, invalidGrant("code_verifier does not match the code_challenge")
	case len(f) != 9 || f[0] != "1":
		return nil, invalidGrant("unknown or expired code")
	}
	assurance, _ := strconv.Atoi(f[3])
	authTime, _ := strconv.ParseInt(f[4], 10, 64)
	g := Grant{
		ID: gid, Kind: "user", Client: c.ID, Person: f[1], Scopes: strings.Fields(f[2]), Assurance: assurance,
		AuthTime: time.Unix(authTime, 0).UTC(), Session: f[5], AMR: strings.Fields(f[6]), ExpiresAt: exp,
	}
	nonce, sourceApp := f[7], f[8]

	var (
		indexed func() error
		consent func() (Consent, error)
		person  func() (identity.Claims, error)
	)
	_, _ = b.store.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		indexed = b.queueIndex(ctx, p, g.Person, c.ID, gid, b.now().Add(RefreshTokenTTL))
		consent = b.Consents.queueGet(ctx, p, g.Person, c.ID)
		if releasesPersonClaims(g.Scopes) {
			person = b.persons.QueueClaims(ctx, p, g.Person)
		}
		return nil
	}) // the index's own commands decide; the reads report their own errors below
	cons, err := consent()
	if err := errors.Join(indexed(), err); err != nil {
		_ = b.revoke(ctx, gid)
		return nil, serverError()
	}
	// Of the code's scopes, the grant keeps those the consent covers as it is now.
	scopes := consentedScopes(g.Scopes, cons)
	if !cons.holds(c, scopes) {
		_ = b.revoke(ctx, gid)
		return nil, invalidGrant("the person withdrew consent for this app; ask them to switch again")
	}
	if c.federated {
		// EndClient finds a federated client's grants through this index: a grant it could not
		// find would outlive the client's removal, so it is not issued.
		if err := b.indexClientGrant(ctx, c.ID, g.Person, gid, b.now().Add(RefreshTokenTTL)); err != nil {
			_ = b.revoke(ctx, gid)
			return nil, serverError()
		}
	}
	if len(scopes) != len(g.Scopes) {
		if err := b.store.Client.HSet(ctx, b.grantKey(gid), "scopes", strings.Join(scopes, " ")).Err(); err != nil {
			_ = b.revoke(ctx, gid)
			return nil, serverError()
		}
		g.Scopes = scopes
	}
	var claims *identity.Claims
	if person != nil {
		p, err := person()
		if err != nil {
			_ = b.revoke(ctx, gid)
			return nil, serverError()
		}
		claims = &p
	}
	_ = b.audit.Record(ctx, audit.Activity{Kind: audit.SwitchRedeemed, Person: g.Person, FromApp: sourceApp, ToApp: c.ID, At: b.now()})
	idToken, err := b.idToken(c, g, nonce, access, claims)
	if err != nil {
		return nil, serverError()
	}
	return tokenResponse(issued{access: access, refresh: refresh, grant: g}, idToken), nil
}

// consentedScopes are the scopes of a code that consent covers: openid, which releases nothing
// about the person, and those the person consented to. offline_access must be consented to as
// well: it releases nothing, but a grant holding it outlives the session it came from (the
// person signing out of Tongban), which is theirs to allow.
func consentedScopes(scopes []string, consent Consent) []string {
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		if s == "openid" || slices.Contains(consent.Scopes, s) {
			out = append(out, s)
		}
	}
	return out
}

// s256 is the S256 code challenge of a verifier (RFC 7636 §4.2), or "" for a verifier of a
// length RFC 7636 §4.1 does not allow, which matches no challenge.
func s256(verifier string) string {
	if len(verifier) < 43 || len(verifier) > 128 {
		return ""
	}
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// endReplayed finishes what the redemption script began for a replayed code: the grant is
// deleted; what was exchanged from it ends too, and its index entry goes.
func (b *Bridge) endReplayed(ctx context.Context, gid, person, client string) error {
	if person != "" {
		if err := b.unindex(ctx, person, client, gid); err != nil {
			return err
		}
	}
	if err := b.revokeChildren(ctx, gid); err != nil {
		return fmt.Errorf("bridge: revoke replayed grant: %w", err)
	}
	return nil
}
