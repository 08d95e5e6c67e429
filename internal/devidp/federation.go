package devidp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/federation"
)

// The provider as an OpenID Federation OP (opt-in, Options.Federation): it publishes an entity
// configuration, and registers relying parties automatically (§12.1): a client_id that is an
// entity id is resolved as openid_relying_party, its request object and client assertion
// checked with the keys of its resolved metadata.

// FederationOptions make the provider an OpenID Federation OP.
type FederationOptions struct {
	// AuthorityHints are the entity ids of its superiors, in its entity configuration.
	AuthorityHints []string
	// Resolver resolves the trust chains of relying parties that register automatically
	// (a *federation.Resolver). Required.
	Resolver RPResolver
	// Keys is how the openid_provider metadata publishes the ID token keys: "jwks" (inline,
	// the default), "jwks_uri" (the /jwks endpoint) or "signed_jwks_uri" (/signed-jwks, a
	// jwk-set+jwt signed with the federation key, §5.2.1).
	Keys string
	// Lifetime of its entity configuration and signed JWK set; 0 = one hour.
	Lifetime time.Duration
}

// RPResolver resolves a relying party's trust chain; *federation.Resolver is one.
type RPResolver interface {
	ResolveType(ctx context.Context, entityID, entityType string) (*federation.TrustChain, map[string]any, error)
}

// Bounds on what a relying party sends.
const (
	maxRequestObjectBytes = 16 << 10
	maxAssertionLifetime  = 5 * time.Minute
	maxJTIs               = 10000
	jtiLeeway             = time.Minute
	jwtBearer             = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// rpAlgs are the algorithms request objects and client assertions may be signed with.
var rpAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.PS256, jose.EdDSA}

// fedState is the federation side of a provider.
type fedState struct {
	opts FederationOptions
	key  jose.JSONWebKey // the federation key, private
}

func newFedState(o FederationOptions) (*fedState, error) {
	if o.Resolver == nil {
		return nil, errors.New("devidp: Federation.Resolver is required to register relying parties")
	}
	switch o.Keys {
	case "":
		o.Keys = "jwks"
	case "jwks", "jwks_uri", "signed_jwks_uri":
	default:
		return nil, fmt.Errorf("devidp: Federation.Keys %q: want jwks, jwks_uri or signed_jwks_uri", o.Keys)
	}
	for _, h := range o.AuthorityHints {
		if !isHTTPURI(h) {
			return nil, fmt.Errorf("devidp: authority hint %q is not an http(s) entity id", h)
		}
	}
	if o.Lifetime <= 0 {
		o.Lifetime = time.Hour
	}
	o.AuthorityHints = slices.Clone(o.AuthorityHints)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devidp: federation key: %w", err)
	}
	jwk := jose.JSONWebKey{Key: k, Algorithm: string(jose.ES256), Use: "sig"}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("devidp: federation key: %w", err)
	}
	jwk.KeyID = "fed-" + base64.RawURLEncoding.EncodeToString(tp)[:12]
	return &fedState{opts: o, key: jwk}, nil
}

// EntityID is the provider's entity id, its issuer; "" unless it is a federation OP.
func (p *Provider) EntityID() string {
	if p.fed == nil {
		return ""
	}
	return p.issuer
}

// FederationJWKS is the provider's federation key set, for a superior's subordinate
// statement about it; empty unless it is a federation OP.
func (p *Provider) FederationJWKS() jose.JSONWebKeySet {
	if p.fed == nil {
		return jose.JSONWebKeySet{}
	}
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{p.fed.key.Public()}}
}

// publishedJWKS is the published signing keys.
func (p *Provider) publishedJWKS() (jose.JSONWebKeySet, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var set jose.JSONWebKeySet
	if err := p.keysLocked(); err != nil {
		return set, err
	}
	for _, k := range p.published {
		set.Keys = append(set.Keys, k.public())
	}
	return set, nil
}

// opMetadata is the provider's openid_provider metadata (OpenID Federation §5.1).
func (p *Provider) opMetadata() (map[string]any, error) {
	d, err := p.discoveryDoc()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	var md map[string]any
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, err
	}
	methods := []string{"private_key_jwt"}
	if p.clientID != "" {
		methods = append(methods, "client_secret_basic", "client_secret_post")
	}
	md["client_registration_types_supported"] = []string{"automatic"}
	md["request_parameter_supported"] = true
	md["request_object_signing_alg_values_supported"] = algNames(rpAlgs)
	md["token_endpoint_auth_methods_supported"] = methods
	md["token_endpoint_auth_signing_alg_values_supported"] = algNames(rpAlgs)
	switch p.fed.opts.Keys {
	case "jwks":
		set, err := p.publishedJWKS()
		if err != nil {
			return nil, err
		}
		delete(md, "jwks_uri")
		md["jwks"] = set
	case "signed_jwks_uri":
		delete(md, "jwks_uri")
		md["signed_jwks_uri"] = p.issuer + "/signed-jwks"
	}
	return md, nil
}

func algNames(algs []jose.SignatureAlgorithm) []string {
	out := make([]string, len(algs))
	for i, a := range algs {
		out[i] = string(a)
	}
	return out
}

// serveEntityConfiguration serves the self-signed entity configuration (§9).
func (p *Provider) serveEntityConfiguration(w http.ResponseWriter) {
	md, err := p.opMetadata()
	if err != nil {
		http.Error(w, "devidp: "+err.Error(), http.StatusInternalServerError)
		return
	}
	now := p.now()
	jwks := p.FederationJWKS()
	st := &federation.EntityStatement{
		Issuer: p.issuer, Subject: p.issuer, IssuedAt: now.Unix(), ExpiresAt: now.Add(p.fed.opts.Lifetime).Unix(),
		JWKS: &jwks, AuthorityHints: p.fed.opts.AuthorityHints,
		Metadata: federation.Metadata{"openid_provider": md},
	}
	jws, err := federation.SignStatement(st, p.fed.key)
	if err != nil {
		http.Error(w, "devidp: "+err.Error(), http.StatusInternalServerError)
		return
	}
	federation.WriteStatement(w, jws)
}

// serveSignedJWKS serves the signing keys as a jwk-set+jwt signed with the federation key
// (§5.2.1).
func (p *Provider) serveSignedJWKS(w http.ResponseWriter) {
	set, err := p.publishedJWKS()
	if err != nil {
		http.Error(w, "devidp: "+err.Error(), http.StatusInternalServerError)
		return
	}
	now := p.now()
	claims, err := json.Marshal(map[string]any{
		"iss": p.issuer, "sub": p.issuer, "iat": now.Unix(), "exp": now.Add(p.fed.opts.Lifetime).Unix(), "keys": set.Keys,
	})
	if err != nil {
		http.Error(w, "devidp: "+err.Error(), http.StatusInternalServerError)
		return
	}
	opts := (&jose.SignerOptions{}).WithType("jwk-set+jwt").WithHeader(jose.HeaderKey("kid"), p.fed.key.KeyID)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: p.fed.key.Key}, opts)
	var jws *jose.JSONWebSignature
	if err == nil {
		jws, err = signer.Sign(claims)
	}
	var out string
	if err == nil {
		out, err = jws.CompactSerialize()
	}
	if err != nil {
		http.Error(w, "devidp: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+jwt")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(out))
}

// relyingParty is a client registered automatically: its entity id and what its resolved
// metadata says.
type relyingParty struct {
	id           string
	redirectURIs []string
	keys         jose.JSONWebKeySet
}

// resolveRP resolves entityID's trust chain as openid_relying_party and reads its keys and
// redirect URIs. Only inline jwks are read: a dev provider does not fetch a relying party's
// jwks_uri.
func (p *Provider) resolveRP(ctx context.Context, entityID string) (*relyingParty, error) {
	if !isHTTPURI(entityID) {
		return nil, fmt.Errorf("client_id %q is neither the registered client nor an entity id", entityID)
	}
	_, md, err := p.fed.opts.Resolver.ResolveType(ctx, entityID, "openid_relying_party")
	if err != nil {
		return nil, fmt.Errorf("the trust chain of %s does not resolve: %w", entityID, err)
	}
	rp := &relyingParty{id: entityID}
	b, err := json.Marshal(md["jwks"])
	if err == nil {
		err = json.Unmarshal(b, &rp.keys)
	}
	if err != nil || len(rp.keys.Keys) == 0 {
		return nil, fmt.Errorf("the openid_relying_party metadata of %s has no jwks", entityID)
	}
	uris, _ := md["redirect_uris"].([]any)
	for _, u := range uris {
		if s, ok := u.(string); ok {
			rp.redirectURIs = append(rp.redirectURIs, s)
		}
	}
	if len(rp.redirectURIs) == 0 {
		return nil, fmt.Errorf("the openid_relying_party metadata of %s has no redirect_uris", entityID)
	}
	return rp, nil
}

// verifyJWT checks raw's signature with the relying party's key of its kid and returns its
// claims. typ, when not "", must be the header's typ.
func (rp *relyingParty) verifyJWT(raw, typ string) (map[string]any, error) {
	jws, err := jose.ParseSignedCompact(raw, rpAlgs)
	if err != nil {
		return nil, fmt.Errorf("not a signed JWT: %w", err)
	}
	hdr := jws.Signatures[0].Header
	if typ != "" {
		if got, _ := hdr.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(strings.TrimPrefix(got, "application/"), typ) {
			return nil, fmt.Errorf("typ %q, want %s", got, typ)
		}
	}
	keys := rp.keys.Keys
	if hdr.KeyID != "" {
		keys = rp.keys.Key(hdr.KeyID)
	}
	for _, k := range keys {
		if payload, err := jws.Verify(k); err == nil {
			var claims map[string]any
			if err := json.Unmarshal(payload, &claims); err != nil || claims == nil {
				return nil, errors.New("the payload is not a JSON object")
			}
			return claims, nil
		}
	}
	return nil, fmt.Errorf("the signature does not verify with the keys in the metadata of %s", rp.id)
}

// checkTimes checks exp (required, in the future, at most maxLife away when maxLife > 0),
// iat (when present, not in the future) and jti (required), which it records when once: a
// client assertion is good once. A request object is not spent: the dev sign-in page repeats
// it in each of its links, and its short exp bounds its reuse.
func (p *Provider) checkTimes(claims map[string]any, maxLife time.Duration, once bool) error {
	now := p.now()
	exp, ok := claims["exp"].(float64)
	switch {
	case !ok:
		return errors.New("exp is missing")
	case !now.Before(time.Unix(int64(exp), 0).Add(jtiLeeway)):
		return errors.New("expired")
	case maxLife > 0 && time.Unix(int64(exp), 0).After(now.Add(maxLife+jtiLeeway)):
		return fmt.Errorf("exp is more than %s away", maxLife)
	}
	if iat, ok := claims["iat"].(float64); ok && time.Unix(int64(iat), 0).After(now.Add(jtiLeeway)) {
		return errors.New("iat is in the future")
	}
	jti, _ := claims["jti"].(string)
	if jti == "" {
		return errors.New("jti is missing")
	}
	if !once {
		return nil
	}
	iss, _ := claims["iss"].(string)
	return p.spendJTI(iss+"\x00"+jti, time.Unix(int64(exp), 0).Add(jtiLeeway))
}

// spendJTI records a JWT's jti until it expires, refusing it the second time.
func (p *Provider) spendJTI(key string, until time.Time) error {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, seen := p.jtis[key]; seen {
		return errors.New("jti was already used")
	}
	if len(p.jtis) >= maxJTIs {
		for k, t := range p.jtis {
			if now.After(t) {
				delete(p.jtis, k)
			}
		}
		if len(p.jtis) >= maxJTIs {
			return errors.New("too many JWTs in flight; try again later")
		}
	}
	p.jtis[key] = until
	return nil
}

func audienceHas(v any, want ...string) bool {
	switch a := v.(type) {
	case string:
		return slices.Contains(want, a)
	case []any:
		for _, x := range a {
			if s, ok := x.(string); ok && slices.Contains(want, s) {
				return true
			}
		}
	}
	return false
}

// openRequestObject registers the relying party of form's client_id and returns the
// authorization parameters of its request object (RFC 9101), with form's login_hint when the
// object has none (the dev sign-in page adds it to the request it was shown).
func (p *Provider) openRequestObject(ctx context.Context, form url.Values) (url.Values, *relyingParty, error) {
	clientID := form.Get("client_id")
	if form.Has("request_uri") {
		return nil, nil, errors.New("request_uri is not supported: send the request object in request")
	}
	raw := form.Get("request")
	if raw == "" || len(form["request"]) != 1 {
		return nil, nil, errors.New("automatic registration needs one signed request object (request)")
	}
	if len(raw) > maxRequestObjectBytes {
		return nil, nil, fmt.Errorf("the request object is larger than %d bytes", maxRequestObjectBytes)
	}
	rp, err := p.resolveRP(ctx, clientID)
	if err != nil {
		return nil, nil, err
	}
	claims, err := rp.verifyJWT(raw, "oauth-authz-req+jwt")
	if err != nil {
		return nil, nil, fmt.Errorf("request object: %w", err)
	}
	if iss, _ := claims["iss"].(string); iss != clientID {
		return nil, nil, errors.New("request object: iss is not the client_id")
	}
	if cid, _ := claims["client_id"].(string); cid != clientID {
		return nil, nil, errors.New("request object: client_id differs from the request's")
	}
	if !audienceHas(claims["aud"], p.issuer) {
		return nil, nil, errors.New("request object: aud is not this provider's issuer")
	}
	if err := p.checkTimes(claims, 0, false); err != nil {
		return nil, nil, fmt.Errorf("request object: %w", err)
	}
	params := url.Values{}
	for k, v := range claims {
		switch k {
		case "iss", "aud", "exp", "iat", "nbf", "jti", "request", "request_uri":
			continue
		}
		if s, ok := v.(string); ok {
			params.Set(k, s)
		}
	}
	if !params.Has("login_hint") && form.Get("login_hint") != "" {
		params.Set("login_hint", form.Get("login_hint"))
	}
	return params, rp, nil
}

// authenticateAssertion authenticates a relying party by private_key_jwt (RFC 7523 §2.2):
// the assertion's iss names it, its resolved metadata's keys check it. It returns the
// client's entity id.
func (p *Provider) authenticateAssertion(ctx context.Context, f url.Values) (string, *tokenError) {
	fail := func(desc string) (string, *tokenError) {
		return "", &tokenError{status: http.StatusUnauthorized, code: "invalid_client", desc: desc}
	}
	if p.fed == nil {
		return fail("private_key_jwt is accepted only from relying parties of the federation")
	}
	if f.Get("client_assertion_type") != jwtBearer {
		return fail("client_assertion_type must be " + jwtBearer)
	}
	raw := f.Get("client_assertion")
	if raw == "" || len(raw) > maxRequestObjectBytes {
		return fail("client_assertion is missing or too large")
	}
	if f.Has("client_secret") {
		return "", &tokenError{status: http.StatusBadRequest, code: "invalid_request", desc: "use one client authentication method"}
	}
	unverified, err := jose.ParseSignedCompact(raw, rpAlgs)
	if err != nil {
		return fail("client_assertion is not a signed JWT")
	}
	var peek struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(unverified.UnsafePayloadWithoutVerification(), &peek) != nil || peek.Iss == "" {
		return fail("client_assertion has no iss")
	}
	if f.Has("client_id") && f.Get("client_id") != peek.Iss {
		return "", &tokenError{status: http.StatusBadRequest, code: "invalid_request", desc: "client_id differs from the assertion's iss"}
	}
	rp, err := p.resolveRP(ctx, peek.Iss)
	if err != nil {
		return fail(err.Error())
	}
	claims, err := rp.verifyJWT(raw, "")
	if err != nil {
		return fail("client_assertion: " + err.Error())
	}
	if sub, _ := claims["sub"].(string); sub != peek.Iss {
		return fail("client_assertion: sub is not iss")
	}
	if !audienceHas(claims["aud"], p.issuer, p.issuer+"/token") {
		return fail("client_assertion: aud is neither this provider's issuer nor its token endpoint")
	}
	if err := p.checkTimes(claims, maxAssertionLifetime, true); err != nil {
		return fail("client_assertion: " + err.Error())
	}
	return peek.Iss, nil
}
