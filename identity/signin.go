package identity

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/tongban/tongban/internal/audit"
	"github.com/tongban/tongban/internal/opaque"
	"github.com/tongban/tongban/internal/redisx"
)

// stateTTL is how long a begun sign-in may take to complete.
const stateTTL = 10 * time.Minute

// Service is the identity side as the API sees it: sign-in, sessions, linking.
type Service struct {
	Registry *Registry
	Persons  *Persons
	Sessions *Sessions

	store  *redisx.Store
	keys   Keys
	client *http.Client
	now    func() time.Time
	// signinKey derives each sign-in's PKCE verifier and nonce from its state, so neither is
	// stored: the state alone, held by the app, reproduces them.
	signinKey []byte
	// audit hears of every session opened, for the person's trail; nil hears nothing.
	audit *audit.Trail
}

// NewService wires the identity side. Every session opened is recorded in trail (nil: none).
func NewService(store *redisx.Store, keys Keys, reg *Registry, sessions *Sessions, trail *audit.Trail) *Service {
	return &Service{
		Registry: reg, Sessions: sessions, Persons: NewPersons(store, keys, reg.opts.Now),
		store: store, keys: keys, client: reg.opts.HTTPClient, now: reg.opts.Now, audit: trail,
		signinKey: keys.derive("signin"),
	}
}

// Challenge is a begun sign-in: the app sends the citizen to AuthorizationURL and keeps State.
type Challenge struct {
	AuthorizationURL string
	State            string
}

func (s *Service) stateKey(state string) string {
	sum := sha256.Sum256([]byte(state))
	return s.store.Key("signin:" + base64.RawURLEncoding.EncodeToString(sum[:]))
}

func (s *Service) derived(purpose, state string) string {
	m := hmac.New(sha256.New, s.signinKey)
	m.Write([]byte(purpose + "\x00" + state))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// BeginSignIn starts an authorization-code sign-in with PKCE S256 at app's provider. The state
// is one-time and bound to the app and redirect URI.
//
// codeChallenge is the app's own PKCE S256 challenge, or "". With it, the challenge goes to the
// provider as it is and only the app's verifier, given to CompleteSignIn, redeems the code: the
// code and state that travel through the browser are then worth nothing to whoever intercepts
// them. Without it, Tongban derives a verifier from the state, which binds the code to this
// sign-in but not to the app.
func (s *Service) BeginSignIn(ctx context.Context, app, redirectURI, codeChallenge string) (Challenge, error) {
	p, err := s.Registry.Get(app)
	if err != nil {
		return Challenge{}, err
	}
	if msg := checkRedirect(p.Config.RedirectURIs, redirectURI); msg != "" {
		return Challenge{}, inputErr("redirectUri", "%s", msg)
	}
	if codeChallenge != "" && !pkceValue(codeChallenge) {
		return Challenge{}, inputErr("codeChallenge", "must be an S256 challenge: base64url of a SHA-256 hash, 43 characters")
	}
	up, err := p.state()
	if err != nil {
		return Challenge{}, err
	}
	state, err := opaque.Random(32)
	if err != nil {
		return Challenge{}, err
	}
	_, err = s.store.Client.TxPipelined(ctx, func(pl redis.Pipeliner) error {
		pl.HSet(ctx, s.stateKey(state), "app", app, "redirect_uri", redirectURI, "code_challenge", codeChallenge)
		pl.Expire(ctx, s.stateKey(state), stateTTL)
		return nil
	})
	if err != nil {
		return Challenge{}, fmt.Errorf("identity: store sign-in state: %w", err)
	}
	if codeChallenge == "" {
		codeChallenge = oauth2.S256ChallengeFromVerifier(s.derived("pkce", state))
	}
	conf := s.oauth(p, up, redirectURI)
	if up.federated {
		u, err := s.requestObjectURL(p, up, conf, state, codeChallenge)
		if err != nil {
			return Challenge{}, err
		}
		return Challenge{AuthorizationURL: u, State: state}, nil
	}
	u := conf.AuthCodeURL(state,
		oauth2.SetAuthURLParam("code_challenge", codeChallenge),
		oauth2.SetAuthURLParam("code_challenge_method", "S256"),
		oauth2.SetAuthURLParam("nonce", s.derived("nonce", state)))
	return Challenge{AuthorizationURL: u, State: state}, nil
}

// oauth is Tongban's client at the provider. A federated provider gets no secret: Tongban
// authenticates with a client assertion (private_key_jwt), sent in the form.
func (s *Service) oauth(p *Provider, up *upstream, redirectURI string) *oauth2.Config {
	conf := &oauth2.Config{
		ClientID: up.clientID, ClientSecret: p.Config.ClientSecret,
		Endpoint: up.endpoint, RedirectURL: redirectURI, Scopes: p.Config.Scopes,
	}
	if up.federated {
		conf.ClientSecret = ""
		conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	return conf
}

// CompleteSignIn redeems the code the provider sent to the redirect URI. iss is the iss
// parameter of the authorization response (RFC 9207), "" when there was none; a provider that
// announces the parameter must send it. codeVerifier is the app's PKCE verifier, required when
// BeginSignIn was given a challenge.
func (s *Service) CompleteSignIn(ctx context.Context, state, code, iss, codeVerifier string) (Tokens, Person, error) {
	if state == "" || len(state) > 128 {
		return Tokens{}, Person{}, inputErr("state", "unknown or expired sign-in; begin again")
	}
	if code == "" || len(code) > 2048 {
		return Tokens{}, Person{}, inputErr("code", "must be the code from the provider's redirect (1 to 2048 characters)")
	}
	var rec *redis.MapStringStringCmd
	_, err := s.store.Client.TxPipelined(ctx, func(pl redis.Pipeliner) error {
		rec = pl.HGetAll(ctx, s.stateKey(state))
		pl.Del(ctx, s.stateKey(state))
		return nil
	})
	if err != nil {
		return Tokens{}, Person{}, fmt.Errorf("identity: read sign-in state: %w", err)
	}
	app, redirectURI, challenge := rec.Val()["app"], rec.Val()["redirect_uri"], rec.Val()["code_challenge"]
	if app == "" {
		return Tokens{}, Person{}, inputErr("state", "unknown, used or expired sign-in; begin again")
	}
	verifier := s.derived("pkce", state)
	if challenge != "" {
		// Checked here for a clear answer; the provider checks it again on the code.
		if codeVerifier == "" || oauth2.S256ChallengeFromVerifier(codeVerifier) != challenge {
			return Tokens{}, Person{}, inputErr("codeVerifier", "does not match the codeChallenge this sign-in began with; begin again")
		}
		verifier = codeVerifier
	}
	p, err := s.Registry.Get(app)
	if err != nil {
		return Tokens{}, Person{}, err
	}
	up, err := p.state()
	if err != nil {
		return Tokens{}, Person{}, err
	}
	switch {
	case iss != "" && iss != up.issuer:
		return Tokens{}, Person{}, tokenErr(ReasonIssuerMismatch, "the authorization response names another issuer than %s", up.issuer)
	case iss == "" && up.issParam:
		return Tokens{}, Person{}, inputErr("iss", "%s sends the iss parameter (RFC 9207); pass it from the redirect", app)
	}
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}
	if up.federated {
		assertion, err := s.clientAssertion(p, up)
		if err != nil {
			return Tokens{}, Person{}, err
		}
		opts = append(opts, oauth2.SetAuthURLParam("client_assertion_type", clientAssertionType),
			oauth2.SetAuthURLParam("client_assertion", assertion))
	}
	tok, err := s.oauth(p, up, redirectURI).Exchange(
		context.WithValue(ctx, oauth2.HTTPClient, s.client), code, opts...)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" {
			return Tokens{}, Person{}, inputErr("code", "%s refused the code (%s); begin again", app, re.ErrorCode)
		}
		return Tokens{}, Person{}, &ProviderError{App: app, Err: err}
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Tokens{}, Person{}, tokenErr(ReasonMalformed, "%s returned no ID token", app)
	}
	v, err := p.verify(ctx, raw, expectation{nonce: s.derived("nonce", state), accessToken: tok.AccessToken})
	if err != nil {
		return Tokens{}, Person{}, err
	}
	return s.open(ctx, p, v, false)
}

// SignInWithIDToken signs in with an ID token the app obtained itself (native SDK flow). The
// same token is accepted only once.
func (s *Service) SignInWithIDToken(ctx context.Context, app, raw, nonce string) (Tokens, Person, error) {
	p, v, err := s.verifyDirect(ctx, app, raw, nonce)
	if err != nil {
		return Tokens{}, Person{}, err
	}
	return s.open(ctx, p, v, true)
}

// verifyDirect verifies an ID token presented directly (not from our own code exchange).
func (s *Service) verifyDirect(ctx context.Context, app, raw, nonce string) (*Provider, *verified, error) {
	p, err := s.Registry.Get(app)
	if err != nil {
		return nil, nil, err
	}
	if len(nonce) > 512 {
		return nil, nil, inputErr("nonce", "must be at most 512 characters")
	}
	v, err := p.verify(ctx, raw, expectation{nonce: nonce})
	if err != nil {
		return nil, nil, err
	}
	return p, v, nil
}

// queueReplaySlot queues the taking of a directly presented token's one-time slot. It is taken
// only after every check passed, so forged tokens cannot fill the store, and lives until the
// token could no longer pass the expiry check anyway.
//
// The slot is keyed by the signed claims, not by the token's text: one signed token has many
// spellings (base64url's unused low bits, ECDSA's s and n-s), and each would otherwise be a
// fresh token. Two genuinely different tokens always differ in their claims (iat, nonce).
//
// The slot holds its claimant, fresh for each presentation (redisx.Claimant): a claim sent twice (its
// first reply timed out, and the client, a cluster redirect or a caller sent it again) finds its
// own claimant there and is this sign-in's, not a replay.
func (s *Service) queueReplaySlot(ctx context.Context, pl redis.Pipeliner, v *verified) *replaySlot {
	ttl := v.expiry.Add(Leeway).Sub(s.now())
	sum := sha256.Sum256(v.payload)
	key := s.store.Key("idt:" + base64.RawURLEncoding.EncodeToString(sum[:]))
	slot := &replaySlot{claimant: redisx.Claimant(ctx)}
	slot.cmd = pl.SetArgs(ctx, key, slot.claimant, redis.SetArgs{Mode: "NX", Get: true, TTL: max(ttl, time.Second)})
	return slot
}

// replaySlot is a queued claim of a token's one-time slot.
type replaySlot struct {
	claimant string
	cmd      *redis.StatusCmd
}

// ours reports whether the slot is this presentation's once the claim ran: it was free, or it
// holds our own claimant.
func (r *replaySlot) ours() (bool, error) {
	old, err := r.cmd.Result()
	switch {
	case errors.Is(err, redis.Nil):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("identity: take the token's one-time slot: %w", err)
	}
	return old == r.claimant, nil
}

var errReplayed = tokenErr(ReasonReplayed, "this ID token was already used; get a new one")

// open turns a verified token into a session in two round trips: take the replay slot (for
// tokens presented directly) with the person lookup; then write the person, the session and the
// audit record, reading the person back only when this sign-in did not create them. A new account
// is claimed in the second round trip when it becomes a person of its own, and in a round trip
// of its own before it when it joins the person of its ID number.
func (s *Service) open(ctx context.Context, p *Provider, v *verified, oneTime bool) (Tokens, Person, error) {
	id, err := p.identityFrom(v)
	if err != nil {
		return Tokens{}, Person{}, err
	}
	var slot *replaySlot
	var l *lookup
	_, err = s.store.Client.Pipelined(ctx, func(pl redis.Pipeliner) error {
		if oneTime {
			slot = s.queueReplaySlot(ctx, pl, v)
		}
		var err error
		l, err = s.Persons.queueLookup(ctx, pl, id, p.Config.AutoLinkMinAssurance)
		return err
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Tokens{}, Person{}, fmt.Errorf("identity: sign-in: %w", err)
	}
	if slot != nil {
		ours, err := slot.ours()
		if err != nil {
			return Tokens{}, Person{}, err
		}
		if !ours {
			if err := s.Persons.abandon(ctx, l); err != nil {
				return Tokens{}, Person{}, err
			}
			return Tokens{}, Person{}, errReplayed
		}
	}
	return s.resolveAndWriteLogin(ctx, l, id, upstreamSID(p, v))
}

// resolveAndWrite settles the person of a looked-up account and opens the session.
func (s *Service) resolveAndWrite(ctx context.Context, l *lookup, id Identity) (Tokens, Person, error) {
	return s.resolveAndWriteLogin(ctx, l, id, "")
}

// resolveAndWriteLogin is resolveAndWrite for a login the provider named with sid (its ID
// token's sid claim, "" when it had none): the session opened is indexed under it, so that
// the provider's back-channel logout of that login ends it (backchannel.go).
func (s *Service) resolveAndWriteLogin(ctx context.Context, l *lookup, id Identity, sid string) (Tokens, Person, error) {
	pid, pending, err := s.Persons.decide(ctx, l)
	if err != nil {
		return Tokens{}, Person{}, err
	}
	t, person, owner, err := s.write(ctx, l, id, pid, pending, sid)
	if err != nil {
		return Tokens{}, Person{}, err
	}
	if owner != pid {
		// Another first sign-in of the account claimed it between the lookup and the write: the
		// session just opened for the candidate ends before anyone saw it, and the sign-in
		// joins the account's person.
		// The candidate's session stays in the upstream login's index until that login ends;
		// ending a session that is gone ends nothing.
		if err := errors.Join(s.Sessions.end(ctx, pid, t.Session.ID), s.Persons.discard(ctx, l), s.Persons.claimed(ctx, l, owner)); err != nil {
			return Tokens{}, Person{}, err
		}
		if t, person, _, err = s.write(ctx, l, id, owner, false, sid); err != nil {
			return Tokens{}, Person{}, err
		}
	}
	return t, person, nil
}

// write is the last round trip of a sign-in: it writes the person and the session, reads the
// person back unless this sign-in creates them, and records the sign-in in the audit trail. For
// a pending account (a new person of its own, see decide) it also claims the account, and owner
// is whom the account belongs to: pid, unless another sign-in claimed it first. upstreamSID,
// when not "", is the provider's sid of the login: the session joins its index in the same
// round trip. Only the sign-in's own commands can fail it.
func (s *Service) write(ctx context.Context, l *lookup, id Identity, pid string, pending bool, upstreamSID string) (t Tokens, person Person, owner string, err error) {
	var (
		claim   func() (string, error)
		opened  *opening
		read    func() (Person, error)
		audited func()
	)
	fresh := pid == l.cand
	pl := s.store.Client.Pipeline()
	if pending {
		claim = s.Persons.queueClaim(ctx, pl, l)
	}
	if person, err = s.Persons.queueRecord(ctx, pl, pid, id, l.lk, fresh); err != nil {
		return Tokens{}, Person{}, "", err
	}
	if opened, err = s.Sessions.queueOpen(ctx, pl, Grant{PersonID: pid, App: id.App, Assurance: id.Assurance, AuthTime: id.AuthTime, AMR: id.AMR}); err != nil {
		return Tokens{}, Person{}, "", err
	}
	if upstreamSID != "" {
		s.queueUpstreamSession(ctx, pl, id.App, upstreamSID, opened.tokens.Session.ID)
	}
	if !fresh {
		read = s.Persons.queueGet(ctx, pl, pid)
	}
	own := pl.Len()
	audited = s.audit.Queue(ctx, pl, audit.Activity{Kind: audit.SignedIn, Person: pid, ToApp: id.App, At: s.now()})
	cmds, err := pl.Exec(ctx)
	if err != nil && len(cmds) >= own {
		err = firstError(cmds[:own]) // the audit trail's failure is its own to report
	}
	if err != nil {
		return Tokens{}, Person{}, "", fmt.Errorf("identity: sign-in: %w", err)
	}
	owner = pid
	if claim != nil {
		if owner, err = claim(); err != nil {
			return Tokens{}, Person{}, "", err
		}
	}
	if t, err = opened.finish(ctx); err != nil {
		return Tokens{}, Person{}, "", err
	}
	if read != nil {
		if person, err = read(); err != nil {
			return Tokens{}, Person{}, "", err
		}
	}
	audited()
	return t, person, owner, nil
}

// firstError is the first error of cmds other than redis.Nil.
func firstError(cmds []redis.Cmder) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	return nil
}

// Refresh rotates a refresh token.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (Tokens, Person, error) {
	t, err := s.Sessions.Refresh(ctx, refreshToken)
	if err != nil {
		return Tokens{}, Person{}, err
	}
	person, err := s.Persons.Get(ctx, t.Session.PersonID)
	return t, person, err
}

// Link joins the account behind idToken to the session's person.
func (s *Service) Link(ctx context.Context, sess Session, app, raw, nonce string) (Person, error) {
	p, v, err := s.verifyDirect(ctx, app, raw, nonce)
	if err != nil {
		return Person{}, err
	}
	var slot *replaySlot
	if _, err := s.store.Client.Pipelined(ctx, func(pl redis.Pipeliner) error {
		slot = s.queueReplaySlot(ctx, pl, v)
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return Person{}, fmt.Errorf("identity: link: %w", err)
	}
	ours, err := slot.ours()
	if err != nil {
		return Person{}, err
	}
	if !ours {
		return Person{}, errReplayed
	}
	id, err := p.identityFrom(v)
	if err != nil {
		return Person{}, err
	}
	if err := s.Persons.Link(ctx, sess.PersonID, id, s.Sessions); err != nil {
		return Person{}, err
	}
	return s.Persons.Get(ctx, sess.PersonID)
}

// Unlink detaches the session person's account in app.
func (s *Service) Unlink(ctx context.Context, sess Session, app string) (Person, error) {
	if err := s.Persons.Unlink(ctx, sess.PersonID, sess.App, app, s.Sessions); err != nil {
		return Person{}, err
	}
	return s.Persons.Get(ctx, sess.PersonID)
}

// pkceValue reports whether v is an S256 code challenge: 43 base64url characters.
func pkceValue(v string) bool {
	if len(v) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil
}

// checkRedirect returns what is wrong with a redirect URI, "" when nothing is.
func checkRedirect(registered []string, uri string) string {
	if len(registered) > 0 {
		if !slices.Contains(registered, uri) {
			return "is not a redirect URI registered for this app"
		}
		return ""
	}
	u, err := url.Parse(uri)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || strings.Contains(uri, "#") {
		return "must be an absolute URL without a fragment"
	}
	host := u.Hostname()
	loopback := host == "localhost" || host == "127.0.0.1" || host == "::1" || strings.HasPrefix(host, "127.")
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback) {
		return "must be https (http only on a loopback host)"
	}
	return ""
}
