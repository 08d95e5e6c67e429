package bridge

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/opaque"
)

// serveIntrospect is token introspection (RFC 7662). A client sees only its own tokens: for
// another client's token, and for an unknown, expired or revoked one, the answer is just
// {"active": false}, so it tells nothing about other clients. An active access token shows
// scope, client_id, sub (the subject this client sees: pairwise or public for a person, the
// client id for a machine), exp, iat, token_type, aud, iss and, for an exchanged token, act
// (RFC 8693 §4.1). A refresh token is active while its grant lives and the person's consent
// still covers it, which is when it would refresh.
func (b *Bridge) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	c, rec, ok := b.clientToken(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	inactive := map[string]any{"active": false}
	if rec == nil || (!rec.refresh && !b.now().Before(rec.exp)) {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	g := rec.grant
	if rec.refresh {
		consent, err := b.Consents.Get(ctx, g.Person, c.ID)
		if err != nil {
			writeOAuthError(w, serverError())
			return
		}
		if !consent.holds(c, g.Scopes) {
			writeJSON(w, http.StatusOK, inactive)
			return
		}
	}
	resp := map[string]any{
		"active":    true,
		"scope":     strings.Join(c.releasable(g.Scopes, g.Assurance), " "),
		"client_id": c.ID,
		"aud":       c.ID,
		"iss":       b.issuer,
	}
	if g.Kind == "machine" {
		resp["sub"] = c.ID
	} else {
		resp["sub"] = b.Subject(c, g.Person)
	}
	if !rec.exp.IsZero() {
		resp["exp"] = rec.exp.Unix()
	}
	if !rec.refresh {
		resp["token_type"] = "Bearer"
		// An access token's exp is its issue time (to the second) plus the fixed lifetime.
		resp["iat"] = rec.exp.Add(-AccessTokenTTL).Unix()
	}
	if rec.act != nil {
		resp["act"] = rec.act
	}
	writeJSON(w, http.StatusOK, resp)
}

// tokenRecord is what lookupToken finds.
type tokenRecord struct {
	grant   Grant
	refresh bool
	exp     time.Time // an access token's own; a refresh token's is its grant's expiry
	act     *Actor
}

// lookupToken finds the grant a bridge token stands for, an access token (tbo_, current or
// the one before the last refresh) or a refresh token (tbq_, the current one only), by
// comparing the token's hash in constant time. found is false for a malformed, unknown, revoked
// or rotated-away token; an access token past its exp is found, and callers judge its exp.
func (b *Bridge) lookupToken(ctx context.Context, token string) (rec tokenRecord, found bool, err error) {
	prefix := accessPrefix
	if strings.HasPrefix(token, refreshPrefix) {
		prefix, rec.refresh = refreshPrefix, true
	}
	gid, hash, ok := opaque.Parse(prefix, token)
	if !ok {
		return tokenRecord{}, false, nil
	}
	key := b.grantKey(gid)
	fields := append(slicesClone(grantFields), "at", "at_exp", "at_prev", "at_prev_exp", "rt", actField)
	var hm *redis.SliceCmd
	var ttl *redis.DurationCmd
	if _, err := b.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		hm = p.HMGet(ctx, key, fields...)
		ttl = p.PTTL(ctx, key)
		return nil
	}); err != nil {
		return tokenRecord{}, false, fmt.Errorf("bridge: look up token: %w", err)
	}
	v := hm.Val()
	g, ok := grantFrom(gid, v[:len(grantFields)])
	if !ok {
		return tokenRecord{}, false, nil
	}
	tail := v[len(grantFields):]
	str := func(i int) string { s, _ := tail[i].(string); return s }
	match := func(h string) bool { return h != "" && subtle.ConstantTimeCompare([]byte(hash), []byte(h)) == 1 }
	var exp string
	switch {
	case rec.refresh:
		if g.Kind != "user" || !match(str(4)) {
			return tokenRecord{}, false, nil
		}
		if d := ttl.Val(); d > 0 {
			rec.exp = b.now().Add(d).UTC().Truncate(time.Second)
		}
	case match(str(0)):
		exp = str(1)
	case match(str(2)):
		exp = str(3)
	default:
		return tokenRecord{}, false, nil
	}
	if !rec.refresh {
		n, err := strconv.ParseInt(exp, 10, 64)
		if err != nil {
			return tokenRecord{}, false, nil
		}
		rec.exp = time.Unix(n, 0).UTC()
	}
	if rec.act, err = decodeActor(str(5)); err != nil {
		return tokenRecord{}, false, err
	}
	g.ExpiresAt = rec.exp
	rec.grant = g
	return rec, true, nil
}
