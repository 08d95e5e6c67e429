package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/federation"
)

// Providers named by OpenID Federation entity id (config.Provider.EntityID): their metadata
// comes from their resolved trust chain, Tongban is their relying party by automatic
// registration (§12.1), its entity id its client_id.

// Federation is what identity needs of OpenID Federation: the providers' resolved metadata and
// Tongban's relying-party key. The app implements it with federation.Resolver and its key
// manager.
type Federation interface {
	// EntityID is Tongban's entity id: its client_id at every federated provider, and the
	// audience their ID tokens must carry.
	EntityID() string
	// OpenIDProvider resolves entityID's trust chain to a configured trust anchor and returns
	// its resolved openid_provider metadata (policies applied), the time the resolution
	// expires (the chain's expiry, §10.4, or earlier), and the entity's federation keys, the
	// ones its superior vouches for in the chain (they sign its signed_jwks_uri document).
	// It is called again before expires; a call near expires should resolve afresh.
	OpenIDProvider(ctx context.Context, entityID string) (md map[string]any, expires time.Time, federationKeys jose.JSONWebKeySet, err error)
	// Sign signs claims (JSON-marshalled) as a compact JWS with Tongban's relying-party key,
	// the one published in the jwks of its openid_relying_party metadata, with typ in the
	// header ("" for none) and the key's kid.
	Sign(typ string, claims any) (string, error)
}

// Bounds on what a federated provider's metadata may bring.
const (
	maxSignedJWKSBytes = 1 << 20
	maxProviderKeys    = 100
	// signedJWKSType is the typ of a signed_jwks_uri document (§5.2.1).
	signedJWKSType = "jwk-set+jwt"
)

// checkFederated returns what makes c unusable with fed, nil when nothing does.
func checkFederated(c config.Provider, fed Federation) error {
	if c.EntityID == "" {
		return nil
	}
	switch {
	case fed == nil:
		return fmt.Errorf("identity: provider %s names entity_id %s, but OpenID Federation is not configured (federation.trust_anchors): its trust chain cannot be resolved", c.ID, c.EntityID)
	case c.ClientSecret != "" || c.ClientSecretFile != "":
		return fmt.Errorf("identity: provider %s names entity_id %s and a client secret: a federated provider is signed in with Tongban's relying-party key (private_key_jwt), so remove client_secret", c.ID, c.EntityID)
	case c.ClientID != "" && c.ClientID != fed.EntityID():
		return fmt.Errorf("identity: provider %s names entity_id %s: its client_id must be Tongban's entity id %s or empty, not %q", c.ID, c.EntityID, fed.EntityID(), c.ClientID)
	}
	return nil
}

// opMetadata is the part of a resolved openid_provider metadata Tongban uses.
type opMetadata struct {
	issuer, authorizationEndpoint, tokenEndpoint, userinfoEndpoint string
	jwks                                                           *jose.JSONWebKeySet
	jwksURI, signedJWKSURI                                         string
	issParam                                                       bool
	idTokenAlgs                                                    []string
}

// MetadataError is a federated provider's resolved metadata that Tongban cannot use.
type MetadataError struct {
	EntityID  string
	Parameter string
	Message   string
}

func (e *MetadataError) Error() string {
	return fmt.Sprintf("identity: openid_provider metadata of %s: %s %s", e.EntityID, e.Parameter, e.Message)
}

// parseOPMetadata reads and checks the resolved openid_provider metadata of entityID.
func parseOPMetadata(entityID string, md map[string]any) (*opMetadata, error) {
	bad := func(param, format string, args ...any) error {
		return &MetadataError{EntityID: entityID, Parameter: param, Message: fmt.Sprintf(format, args...)}
	}
	str := func(param string, required bool) (string, error) {
		v, present := md[param]
		s, ok := v.(string)
		switch {
		case !present && !required:
			return "", nil
		case !present:
			return "", bad(param, "is missing")
		case !ok || s == "":
			return "", bad(param, "is not a non-empty string")
		case !endpointURL(s):
			return "", bad(param, "%q is not an https URL (http only on loopback) without fragment", s)
		}
		return s, nil
	}
	m := &opMetadata{}
	var err error
	if m.issuer, err = str("issuer", true); err != nil {
		return nil, err
	}
	if u, _ := url.Parse(m.issuer); u.RawQuery != "" {
		return nil, bad("issuer", "%q has a query", m.issuer)
	}
	if m.authorizationEndpoint, err = str("authorization_endpoint", true); err != nil {
		return nil, err
	}
	if m.tokenEndpoint, err = str("token_endpoint", true); err != nil {
		return nil, err
	}
	if m.userinfoEndpoint, err = str("userinfo_endpoint", false); err != nil {
		return nil, err
	}
	if m.jwksURI, err = str("jwks_uri", false); err != nil {
		return nil, err
	}
	if m.signedJWKSURI, err = str("signed_jwks_uri", false); err != nil {
		return nil, err
	}
	if v, ok := md["jwks"]; ok {
		set, err := keySetOf(v)
		if err != nil {
			return nil, bad("jwks", "%v", err)
		}
		m.jwks = set
	}
	if m.jwks == nil && m.jwksURI == "" && m.signedJWKSURI == "" {
		return nil, bad("jwks", "is missing, and so are jwks_uri and signed_jwks_uri: the provider publishes no keys")
	}
	if types, ok := stringList(md["client_registration_types_supported"]); !ok || !slices.Contains(types, "automatic") {
		return nil, bad("client_registration_types_supported", "does not list automatic: Tongban registers by automatic registration (§12.1)")
	}
	if methods, ok := stringList(md["token_endpoint_auth_methods_supported"]); !ok || !slices.Contains(methods, "private_key_jwt") {
		return nil, bad("token_endpoint_auth_methods_supported", "does not list private_key_jwt, the only way Tongban authenticates to a federated provider")
	}
	m.issParam, _ = md["authorization_response_iss_parameter_supported"].(bool)
	m.idTokenAlgs, _ = stringList(md["id_token_signing_alg_values_supported"])
	return m, nil
}

// stringList reads a JSON array of strings.
func stringList(v any) ([]string, bool) {
	list, ok := v.([]any)
	if !ok {
		if s, ok := v.([]string); ok {
			return s, true
		}
		return nil, false
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// endpointURL reports whether s may be a provider's endpoint or issuer: https, or http on a
// loopback host (tests and dev mode), with a host and no fragment or user info.
func endpointURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Fragment != "" || u.User != nil || strings.Contains(s, "#") {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		host := u.Hostname()
		return host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.")
	}
	return false
}

// keySetOf reads a JWK set given as decoded JSON: public keys only, at most maxProviderKeys,
// at least one for signatures, each with a kid when there are several.
func keySetOf(v any) (*jose.JSONWebKeySet, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("is not JSON: %w", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("is not a JWK set: %w", err)
	}
	if len(set.Keys) == 0 || len(set.Keys) > maxProviderKeys {
		return nil, fmt.Errorf("has %d keys, want 1 to %d", len(set.Keys), maxProviderKeys)
	}
	signing := 0
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return nil, fmt.Errorf("key %q is not a public key", k.KeyID)
		}
		if len(set.Keys) > 1 && k.KeyID == "" {
			return nil, errors.New("has several keys, one without kid")
		}
		if k.Use == "" || k.Use == "sig" {
			signing++
		}
	}
	if signing == 0 {
		return nil, errors.New("has no signing key")
	}
	return &set, nil
}

// discoverFederated resolves the provider's trust chain through the Federation and builds its
// state from the resolved metadata.
func (p *Provider) discoverFederated(ctx context.Context) (*upstream, error) {
	fed := p.opts.Federation
	md, expires, fedKeys, err := fed.OpenIDProvider(ctx, p.Config.EntityID)
	if err != nil {
		return nil, fmt.Errorf("identity: trust chain of %s: %w", p.Config.EntityID, err)
	}
	now := p.opts.Now()
	if !expires.After(now) {
		return nil, fmt.Errorf("identity: trust chain of %s: expired at %s", p.Config.EntityID, expires.UTC().Format(time.RFC3339))
	}
	m, err := parseOPMetadata(p.Config.EntityID, md)
	if err != nil {
		return nil, err
	}
	if p.Config.Issuer != "" && p.Config.Issuer != m.issuer {
		return nil, &MetadataError{EntityID: p.Config.EntityID, Parameter: "issuer",
			Message: fmt.Sprintf("%q is not the configured issuer %q", m.issuer, p.Config.Issuer)}
	}
	up := &upstream{
		issuer: m.issuer, clientID: fed.EntityID(), issParam: m.issParam,
		endpoint:  oauth2.Endpoint{AuthURL: m.authorizationEndpoint, TokenURL: m.tokenEndpoint},
		federated: true, expires: expires,
	}
	up.algs = p.algorithms()
	if len(p.Config.Algorithms) == 0 && len(m.idTokenAlgs) > 0 {
		up.algs = asymmetric(m.idTokenAlgs)
	}
	// Keys inline are the chain's own; a signed set is verified with the entity's federation
	// keys, so it is as good as inline; a plain jwks_uri is trusted as TLS makes it.
	switch {
	case m.jwks != nil:
		up.keys, up.keyInfo = staticKeys(m.jwks)
	case m.signedJWKSURI != "":
		set, exp, err := p.signedJWKS(ctx, m.signedJWKSURI, fedKeys)
		if err != nil {
			return nil, err
		}
		if !exp.IsZero() && exp.Before(up.expires) {
			up.expires = exp
		}
		up.keys, up.keyInfo = staticKeys(set)
	default:
		up.keys, up.guard = p.remoteKeys(m.jwksURI)
		up.keyInfo = up.guard
	}
	return up, nil
}

// asymmetric keeps the algorithms a provider may sign ID tokens with: never none or HMAC.
func asymmetric(names []string) []jose.SignatureAlgorithm {
	var out []jose.SignatureAlgorithm
	for _, a := range names {
		if a != "none" && !strings.HasPrefix(strings.ToUpper(a), "HS") && a != "" {
			out = append(out, jose.SignatureAlgorithm(a))
		}
	}
	if len(out) == 0 {
		out = []jose.SignatureAlgorithm{jose.RS256}
	}
	return out
}

// signedJWKS fetches and verifies a signed_jwks_uri document (§5.2.1): a jwk-set+jwt signed
// with one of the entity's federation keys, iss and sub the entity, iat present, exp (when
// present) in the future. It returns the keys and the document's exp (zero when none).
func (p *Provider) signedJWKS(ctx context.Context, uri string, fedKeys jose.JSONWebKeySet) (*jose.JSONWebKeySet, time.Time, error) {
	fail := func(format string, args ...any) (*jose.JSONWebKeySet, time.Time, error) {
		return nil, time.Time{}, &MetadataError{EntityID: p.Config.EntityID, Parameter: "signed_jwks_uri", Message: fmt.Sprintf(format, args...)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return fail("%q: %v", uri, err)
	}
	req.Header.Set("Accept", "application/jwk-set+jwt")
	resp, err := p.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("identity: signed_jwks_uri of %s: %w", p.Config.EntityID, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSignedJWKSBytes+1))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("identity: signed_jwks_uri of %s: read: %w", p.Config.EntityID, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, time.Time{}, fmt.Errorf("identity: signed_jwks_uri of %s answered %s", p.Config.EntityID, resp.Status)
	}
	if len(body) > maxSignedJWKSBytes {
		return fail("answered more than %d bytes", maxSignedJWKSBytes)
	}
	set, exp, err := verifySignedJWKS(strings.TrimSpace(string(body)), p.Config.EntityID, fedKeys, p.opts.Now())
	if err != nil {
		return fail("%v", err)
	}
	return set, exp, nil
}

// verifySignedJWKS checks a signed JWK set of entityID against its federation keys.
func verifySignedJWKS(raw, entityID string, fedKeys jose.JSONWebKeySet, now time.Time) (*jose.JSONWebKeySet, time.Time, error) {
	jws, err := jose.ParseSignedCompact(raw, signedJWKSAlgs)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("is not a signed JWT: %w", err)
	}
	hdr := jws.Signatures[0].Header
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); typ != signedJWKSType {
		return nil, time.Time{}, fmt.Errorf("has typ %q, want %s", typ, signedJWKSType)
	}
	if hdr.KeyID == "" {
		return nil, time.Time{}, errors.New("names no kid")
	}
	keys := fedKeys.Key(hdr.KeyID)
	if len(keys) == 0 {
		return nil, time.Time{}, fmt.Errorf("is signed with key %q, not one of the entity's federation keys", hdr.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("signature does not verify with the entity's federation key %q", hdr.KeyID)
	}
	claims, err := decodeClaims(payload)
	if err != nil {
		return nil, time.Time{}, err
	}
	iss, _ := claims["iss"].(string)
	sub, _ := claims["sub"].(string)
	if iss != entityID || sub != entityID {
		return nil, time.Time{}, fmt.Errorf("has iss %q and sub %q, want both %s", iss, sub, entityID)
	}
	iat, ok := numericDate(claims["iat"])
	if !ok {
		return nil, time.Time{}, errors.New("has no iat")
	}
	if iat.After(now.Add(Leeway)) {
		return nil, time.Time{}, errors.New("is issued in the future")
	}
	var exp time.Time
	if v, present := claims["exp"]; present {
		if exp, ok = numericDate(v); !ok || !now.Before(exp.Add(Leeway)) {
			return nil, time.Time{}, errors.New("expired, or its exp is not a date")
		}
	}
	set, err := keySetOf(map[string]any{"keys": claims["keys"]})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("keys: %w", err)
	}
	return set, exp, nil
}

// signedJWKSAlgs are the algorithms a signed JWK set may use: those of federation statements.
var signedJWKSAlgs = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512, jose.RS256, jose.RS384, jose.RS512, jose.EdDSA,
}

// staticSet is a key set fixed for a resolution: the jwks of the metadata or of its signed
// JWK set.
type staticSet struct {
	kids  map[string]bool
	nkeys int
}

func (s staticSet) known(kid string) (bool, int) { return s.kids[kid], s.nkeys }
func (s staticSet) failing() error               { return nil }

// staticKeys is go-oidc's static key set of set's signing keys.
func staticKeys(set *jose.JSONWebKeySet) (oidc.KeySet, keyInfo) {
	info := staticSet{kids: map[string]bool{}}
	ks := &oidc.StaticKeySet{}
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		ks.PublicKeys = append(ks.PublicKeys, k.Key)
		info.kids[k.KeyID] = true
		info.nkeys++
	}
	return ks, info
}

// ChainResolver is what NewFederation needs of a *federation.Resolver.
type ChainResolver interface {
	ResolveType(ctx context.Context, entityID, entityType string) (*federation.TrustChain, map[string]any, error)
	Invalidate(entityID string) int
}

// NewFederation is the Federation of a trust-chain resolver, Tongban's entity id and a signer
// with Tongban's relying-party key (JWKSigner makes one of a private JWK).
func NewFederation(r ChainResolver, entityID string, sign func(typ string, claims any) (string, error)) Federation {
	return &resolverFederation{r: r, id: entityID, sign: sign}
}

type resolverFederation struct {
	r    ChainResolver
	id   string
	sign func(typ string, claims any) (string, error)
}

func (f *resolverFederation) EntityID() string { return f.id }

func (f *resolverFederation) Sign(typ string, claims any) (string, error) { return f.sign(typ, claims) }

// OpenIDProvider resolves afresh, not from the resolver's cache: the registry asks only at
// start and when its last answer is halfway to expiring, and the cache would hand back the
// same chain until it expired.
func (f *resolverFederation) OpenIDProvider(ctx context.Context, entityID string) (map[string]any, time.Time, jose.JSONWebKeySet, error) {
	f.r.Invalidate(entityID)
	tc, md, err := f.r.ResolveType(ctx, entityID, "openid_provider")
	if err != nil {
		return nil, time.Time{}, jose.JSONWebKeySet{}, err
	}
	// The resolver takes ids differing by a trailing slash for one entity; the configured
	// entity_id is one string.
	if tc.Subject != entityID {
		return nil, time.Time{}, jose.JSONWebKeySet{}, fmt.Errorf("identity: the trust chain is %s's, not %s's", tc.Subject, entityID)
	}
	// The entity's federation keys as its superior vouches for them; its own configuration's
	// for an entity that is itself the trust anchor.
	keys := tc.Statements[0].JWKS
	if len(tc.Statements) > 1 {
		keys = tc.Statements[1].JWKS
	}
	if keys == nil {
		return nil, time.Time{}, jose.JSONWebKeySet{}, fmt.Errorf("identity: the trust chain of %s carries no keys for it", entityID)
	}
	return md, tc.ValidUntil, *keys, nil
}

// JWKSigner signs with key, a private JWK with a kid, in its own algorithm (ES256 for a P-256
// key when it names none).
func JWKSigner(key jose.JSONWebKey) func(typ string, claims any) (string, error) {
	return func(typ string, claims any) (string, error) {
		b, err := json.Marshal(claims)
		if err != nil {
			return "", fmt.Errorf("identity: sign: %w", err)
		}
		alg := jose.SignatureAlgorithm(key.Algorithm)
		if alg == "" {
			alg = jose.ES256
		}
		opts := (&jose.SignerOptions{}).WithHeader(jose.HeaderKey("kid"), key.KeyID)
		if typ != "" {
			opts = opts.WithType(jose.ContentType(typ))
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key.Key}, opts)
		if err != nil {
			return "", fmt.Errorf("identity: sign: %w", err)
		}
		jws, err := s.Sign(b)
		if err != nil {
			return "", fmt.Errorf("identity: sign: %w", err)
		}
		return jws.CompactSerialize()
	}
}
