package identity

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"
)

// Back-channel logout from the providers (OpenID Connect Back-Channel Logout 1.0, Tongban as
// relying party): a provider whose login ended POSTs a logout token, and the Tongban sessions
// that login opened end.

// Reasons a logout token is refused, the error_description of the 400 answer (spec §2.8).
// Refusals that come from the signature step shared with ID tokens keep that step's reasons
// (malformed, unsupported_algorithm, unknown_key, bad_signature).
const (
	LogoutUnknownProvider = "unknown_provider" // no provider has this id (404)
	LogoutNotEnabled      = "not_enabled"      // the provider does not send logout tokens (404)
	LogoutIssuerMismatch  = ReasonIssuerMismatch
	LogoutAudMismatch     = ReasonAudienceMismatch
	LogoutTooOld          = "too_old"         // iat older than LogoutTokenMaxAge
	LogoutNotYetValid     = ReasonNotYetValid // iat further in the future than Leeway
	LogoutExpired         = ReasonExpired
	LogoutWrongTyp        = "wrong_typ"      // a typ header other than logout+jwt
	LogoutMissingEvents   = "missing_events" // no back-channel logout event
	LogoutNoncePresent    = "nonce_present"
	LogoutNoSIDOrSub      = "no_sid_or_sub"
	LogoutMissingJTI      = "missing_jti"
	LogoutReplayedJTI     = "replayed_jti"
)

// LogoutTokenMaxAge is how old (by iat) a logout token may be. The spec leaves the window to the
// relying party; a provider delivers at once or retries within minutes, and a short window is
// what keeps the record of seen jti values small.
const LogoutTokenMaxAge = 5 * time.Minute

// maxLogoutBody bounds the request body: a form with one token no larger than an ID token.
const maxLogoutBody = 16 << 10

// maxUpstreamSessions bounds how many sessions one logout reads per round; a login has a few.
const maxUpstreamSessions = 256

// backchannelEvent is the member of events that makes a JWT a logout token (spec §2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutToken is a logout token that passed every check.
type logoutToken struct {
	sid, sub, jti string
	iat           time.Time
}

// ServeBackchannelLogout is POST {public_url}/oidc/{provider}/backchannel-logout: the
// back-channel logout endpoint of the provider named by the path value "provider". It answers
// 200 (Cache-Control: no-store) once the sessions of the login the token names have ended, or
// none were open; 400 with {"error":"invalid_request","error_description":<reason>} for a
// token it refuses; 404 for a provider that does not send logout tokens; 503 when Tongban
// cannot check or act now, so that the provider retries.
func (s *Service) ServeBackchannelLogout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	id := r.PathValue("provider")
	log := s.Registry.opts.Log.With("provider", id)
	p, ok := s.Registry.providers[id]
	switch {
	case !ok:
		logoutRefused(w, http.StatusNotFound, LogoutUnknownProvider)
		return
	case !p.Config.BackchannelLogout:
		logoutRefused(w, http.StatusNotFound, LogoutNotEnabled)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLogoutBody)
	if err := r.ParseForm(); err != nil {
		logoutRefused(w, http.StatusBadRequest, ReasonMalformed)
		return
	}
	raw := r.PostForm["logout_token"]
	if len(raw) != 1 || raw[0] == "" {
		logoutRefused(w, http.StatusBadRequest, ReasonMalformed)
		return
	}
	scope, ended, err := s.backchannelLogout(r.Context(), p, raw[0])
	var te *TokenError
	switch {
	case errors.As(err, &te):
		log.Info("back-channel logout refused", "reason", te.Reason, "why", te.Message)
		logoutRefused(w, http.StatusBadRequest, te.Reason)
	case err != nil:
		log.Warn("back-channel logout failed; the provider is asked to retry", "err", err)
		w.Header().Set("Retry-After", "5")
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
	default:
		if scope == "login" {
			log.Info("back-channel logout", "scope", scope, "sessions_ended", ended)
		} else {
			log.Info("back-channel logout", "scope", scope)
		}
		w.WriteHeader(http.StatusOK)
	}
}

func logoutRefused(w http.ResponseWriter, status int, reason string) {
	b, _ := json.Marshal(map[string]string{"error": "invalid_request", "error_description": reason})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// backchannelLogout validates raw as p's logout token, records its jti, and ends the sessions
// of the login it names. It returns what it ended: "login" and how many sessions (by sid), or
// "account" (by sub: every session of the account's person with p, not counted). The error is
// a *TokenError for a refused token, anything else for Tongban's own failure (the provider
// should retry).
func (s *Service) backchannelLogout(ctx context.Context, p *Provider, raw string) (scope string, ended int, err error) {
	tok, err := p.verifyLogoutToken(ctx, raw)
	if err != nil {
		return "", 0, err
	}
	// One round trip: the jti's one-time slot with the first read of what the token ends. The
	// slot is taken only now, after every check, so forged tokens cannot fill the store.
	jtiKey := s.logoutJTIKey(p.Config.ID, tok.jti)
	ttl := max(tok.iat.Add(LogoutTokenMaxAge+Leeway).Sub(s.now()), time.Second)
	var (
		slot    *redis.BoolCmd
		members *redis.StringSliceCmd
		owner   *redis.StringCmd
	)
	// The pipeline's own error is its first failed command's; each command is judged below.
	_, _ = s.store.Client.Pipelined(ctx, func(pl redis.Pipeliner) error {
		slot = pl.SetNX(ctx, jtiKey, "1", ttl)
		if tok.sid != "" {
			members = pl.SRandMemberN(ctx, s.upstreamKey(p.Config.ID, tok.sid), maxUpstreamSessions)
		} else {
			owner = pl.Get(ctx, s.Persons.accountKey(p.Config.ID, tok.sub))
		}
		return nil
	})
	release := func() {
		// The provider retries a 503 with the same token: its jti must not be refused then. A
		// slot whose reply was lost may have been taken all the same, so it is released too;
		// should that free another delivery's slot, both end the same sessions, which is no harm.
		_ = s.store.Client.Del(context.WithoutCancel(ctx), jtiKey).Err()
	}
	if fresh, err := slot.Result(); err != nil {
		release()
		return "", 0, fmt.Errorf("identity: back-channel logout: record jti: %w", err)
	} else if !fresh {
		return "", 0, tokenErr(LogoutReplayedJTI, "this logout token (jti) was already received")
	}
	if tok.sid != "" {
		scope = "login"
		ended, err = s.endUpstreamLogin(ctx, p.Config.ID, tok.sid, members)
	} else {
		scope = "account"
		err = s.endUpstreamAccount(ctx, p.Config.ID, owner)
	}
	if err != nil {
		release()
		return "", 0, err
	}
	return scope, ended, nil
}

func (s *Service) logoutJTIKey(provider, jti string) string {
	sum := sha256.Sum256([]byte(provider + "\x00" + jti))
	return s.store.Key("bljti:" + base64.RawURLEncoding.EncodeToString(sum[:]))
}

// endUpstreamLogin ends the sessions indexed under the provider login sid, first ones being
// those read with the jti slot, and drops the index once it is empty.
func (s *Service) endUpstreamLogin(ctx context.Context, provider, sid string, first *redis.StringSliceCmd) (int, error) {
	key := s.upstreamKey(provider, sid)
	batch, err := first.Result()
	ended := 0
	for round := 0; ; round++ {
		if err != nil {
			return ended, fmt.Errorf("identity: back-channel logout: read the login's sessions: %w", err)
		}
		if len(batch) == 0 {
			return ended, nil
		}
		if round == 16 {
			return ended, fmt.Errorf("identity: back-channel logout: more than %d sessions under one login", 16*maxUpstreamSessions)
		}
		n, err := s.endSessionsOf(ctx, provider, batch)
		ended += n
		if err != nil {
			return ended, err
		}
		if err := s.store.Client.SRem(ctx, key, toAny(batch)...).Err(); err != nil {
			return ended, fmt.Errorf("identity: back-channel logout: %w", err)
		}
		if len(batch) < maxUpstreamSessions {
			return ended, nil
		}
		batch, err = s.store.Client.SRandMemberN(ctx, key, maxUpstreamSessions).Result()
	}
}

// endSessionsOf ends the live sessions among sids that were opened with provider. Each
// session's person is read from its record: the index keeps only session ids.
func (s *Service) endSessionsOf(ctx context.Context, provider string, sids []string) (int, error) {
	recs := make([]*redis.SliceCmd, len(sids))
	if _, err := s.store.Client.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for i, sid := range sids {
			recs[i] = pl.HMGet(ctx, s.Sessions.sessionKey(sid), "person", "app")
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("identity: back-channel logout: read sessions: %w", err)
	}
	var ends []ending
	for i, sid := range sids {
		v := recs[i].Val()
		pid, _ := v[0].(string)
		app, _ := v[1].(string)
		if pid == "" || app != provider {
			continue // ended already (or not this provider's, which the index never holds)
		}
		ends = append(ends, ending{sid: sid, pid: pid, app: app, reason: EndUpstreamLogout})
	}
	// One batch: the same round trips for every session of the login, and their grants' logout
	// tokens queued with them.
	ended, err := s.Sessions.endSessions(ctx, ends, true)
	return len(ended), err
}

// endUpstreamAccount ends every session opened with the provider of the person owner names
// (the account's acct: key, read with the jti slot).
func (s *Service) endUpstreamAccount(ctx context.Context, provider string, owner *redis.StringCmd) error {
	pid, err := owner.Result()
	if errors.Is(err, redis.Nil) {
		return nil // an account that never signed in to Tongban
	}
	if err != nil {
		return fmt.Errorf("identity: back-channel logout: look up the account: %w", err)
	}
	return s.Sessions.EndAll(ctx, pid, provider, EndUpstreamLogout)
}

// verifyLogoutToken validates raw as a logout token from p (spec §2.6): the signature as an ID
// token's, then the claims. A refusal is a *TokenError whose Reason is the word the 400
// answer carries; a forged token is never told which claim gave it away, because claims are
// judged only once the signature is good.
func (p *Provider) verifyLogoutToken(ctx context.Context, raw string) (*logoutToken, error) {
	hdr, c, _, up, err := p.verifySignature(ctx, raw, "logout token")
	if err != nil {
		return nil, err
	}
	if typ, ok := hdr.ExtraHeaders[jose.HeaderType]; ok {
		t, _ := typ.(string)
		t = strings.TrimPrefix(strings.ToLower(t), "application/") // RFC 7515 §4.1.9
		if t != "logout+jwt" {
			return nil, tokenErr(LogoutWrongTyp, "a logout token's typ must be logout+jwt")
		}
	}
	if iss, _ := c["iss"].(string); iss != up.issuer {
		return nil, tokenErr(LogoutIssuerMismatch, "the logout token was not issued by %s", up.issuer)
	}
	if aud, ok := audience(c["aud"]); !ok || !slices.Contains(aud, up.clientID) {
		return nil, tokenErr(LogoutAudMismatch, "the logout token is not for client %q", up.clientID)
	}
	iat, ok := numericDate(c["iat"])
	if !ok {
		return nil, tokenErr(ReasonMalformed, "the logout token has no iat")
	}
	now := p.opts.Now()
	switch {
	case iat.After(now.Add(Leeway)):
		return nil, tokenErr(LogoutNotYetValid, "the logout token is issued in the future")
	case now.Sub(iat) > LogoutTokenMaxAge:
		return nil, tokenErr(LogoutTooOld, "the logout token was issued more than %s ago", LogoutTokenMaxAge)
	}
	if v, present := c["exp"]; present {
		exp, ok := numericDate(v)
		if !ok {
			return nil, tokenErr(ReasonMalformed, "the logout token's exp is not a date")
		}
		if now.After(exp.Add(Leeway)) {
			return nil, tokenErr(LogoutExpired, "the logout token expired")
		}
	}
	events, _ := c["events"].(map[string]any)
	if _, ok := events[backchannelEvent].(map[string]any); !ok {
		return nil, tokenErr(LogoutMissingEvents, "the logout token's events has no %s object", backchannelEvent)
	}
	t := &logoutToken{iat: iat}
	if v, present := c["sid"]; present {
		if t.sid, _ = v.(string); t.sid == "" || len(t.sid) > maxUpstreamSIDBytes {
			return nil, tokenErr(ReasonMalformed, "the logout token's sid is not a string of 1 to %d bytes", maxUpstreamSIDBytes)
		}
	}
	if v, present := c["sub"]; present {
		if t.sub, _ = v.(string); t.sub == "" {
			return nil, tokenErr(ReasonMalformed, "the logout token's sub is not a string")
		}
	}
	if t.sid == "" && t.sub == "" {
		return nil, tokenErr(LogoutNoSIDOrSub, "the logout token names neither a login (sid) nor an account (sub)")
	}
	if _, present := c["nonce"]; present {
		return nil, tokenErr(LogoutNoncePresent, "a logout token must not carry a nonce")
	}
	if t.jti, _ = c["jti"].(string); t.jti == "" {
		return nil, tokenErr(LogoutMissingJTI, "the logout token has no jti")
	}
	if len(t.jti) > 255 {
		return nil, tokenErr(ReasonMalformed, "the logout token's jti is longer than 255 bytes")
	}
	return t, nil
}
