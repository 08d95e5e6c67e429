package devpartner

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/federation"
)

// Federation makes the simulated apps OpenID Federation 1.0 entities: each publishes an entity
// configuration naming Tongban as its superior, and the apps in Apps, which no configuration
// lists as clients, sign in at the bridge through automatic registration (§12.1) once Tongban
// vouches for them.
type Federation struct {
	// EntityID is Tongban's entity id: every app's authority hint, and where the alliance's
	// trust mark endpoint is found (its federation_entity metadata). "" means the public URL.
	EntityID string
	// TrustMarkType is the alliance's trust mark type each app asks Tongban for and presents;
	// "" means the apps present no trust mark.
	TrustMarkType string
	// Apps are the partner apps known only by entity id (<public_url>/dev/apps/<id>).
	Apps []FedApp
	// FetchTimeout bounds getting a trust mark (Tongban's configuration and its trust mark
	// endpoint together), so that an app's configuration is served in time even when Tongban is
	// slow: its resolver gives a fetch 5 s. 0 means 2 s.
	FetchTimeout time.Duration
	// RetryAfter is how long an app serves its configuration without a trust mark after Tongban
	// did not issue one, before asking again. 0 means 10 s: an operator who just added the app
	// as a subordinate waits at most that long.
	RetryAfter time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives why a trust mark could not be obtained; nil discards.
	Log *slog.Logger
}

// FedApp is a partner app that joins through the federation instead of the configuration.
type FedApp struct {
	ID     string // path segment: lower-case letters, digits and '-'
	Name   string // client_name and organization_name; "" means ID
	Region string
	// Scopes it asks for; nil means openid profile phone.
	Scopes []string
}

// fedScopes are what a federated app asks for unless told otherwise: no id_number, which a
// partner should get only once the alliance's policy grants it.
var fedScopes = []string{"openid", "profile", "phone"}

// configLifetime is how long an app's entity configuration is valid; Tongban's resolver caches a
// chain no longer than that, nor than the trust mark it requires.
const configLifetime = time.Hour

var appID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// newKey returns a fresh ES256 private JWK, its kid the key's RFC 7638 thumbprint so that a
// key set never holds two keys under one kid.
func newKey(use string) (*jose.JSONWebKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devpartner: generate %s key: %w", use, err)
	}
	jwk := jose.JSONWebKey{Key: k, Algorithm: string(jose.ES256), Use: "sig"}
	pub := jwk.Public()
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("devpartner: %s key thumbprint: %w", use, err)
	}
	jwk.KeyID = use + "-" + base64.RawURLEncoding.EncodeToString(tp)[:16]
	return &jwk, nil
}

func publicSet(k *jose.JSONWebKey) jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.Public()}}
}

// EntityID is the app's entity id, <public_url>/dev/apps/<id>; "" for an app it does not
// simulate.
func (d *Partners) EntityID(app string) string {
	if m, ok := d.member(app); ok {
		return m.entityID
	}
	return ""
}

// FederationJWKS is the app's federation entity key set (public), what a superior's
// subordinate statement about it carries; false for an app it does not simulate.
func (d *Partners) FederationJWKS(app string) (jose.JSONWebKeySet, bool) {
	m, ok := d.member(app)
	if !ok || m.fedKey == nil {
		return jose.JSONWebKeySet{}, false
	}
	return publicSet(m.fedKey), true
}

// Federated returns the apps that join through the federation, as given.
func (d *Partners) Federated() []FedApp {
	var out []FedApp
	for _, id := range d.order {
		if m := d.apps[id]; m.federated {
			out = append(out, FedApp{ID: m.id, Name: m.name, Region: m.region, Scopes: m.scopes})
		}
	}
	return out
}

// metadata is the app's openid_relying_party and federation_entity metadata (§5.1): what
// Tongban's automatic registration reads instead of a client entry in the configuration.
func (m *member) metadata() federation.Metadata {
	keys := publicSet(m.rpKey)
	return federation.Metadata{
		"openid_relying_party": {
			"client_name":                     m.name,
			"client_registration_types":       []any{"automatic"},
			"redirect_uris":                   strs(m.redirectURIs),
			"initiate_login_uri":              m.initiateLogin,
			"backchannel_logout_uri":          m.backchannel,
			"post_logout_redirect_uris":       strs(m.postLogouts),
			"scope":                           strings.Join(m.scopes, " "),
			"response_types":                  []any{"code"},
			"grant_types":                     []any{"authorization_code", "refresh_token"},
			"token_endpoint_auth_method":      "private_key_jwt",
			"token_endpoint_auth_signing_alg": string(jose.ES256),
			"request_object_signing_alg":      string(jose.ES256),
			"subject_type":                    "pairwise",
			"jwks":                            keys,
		},
		"federation_entity": {"organization_name": m.name},
	}
}

func strs(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// ServeEntityConfiguration (GET /dev/apps/{app}/.well-known/openid-federation) is the app's
// entity configuration (§9): self-signed with its federation key, Tongban as its only
// authority hint, its relying-party metadata, and the alliance's trust mark when Tongban issues
// one. Getting the trust mark is bounded by FetchTimeout and never fails the answer: an app not
// yet a subordinate publishes its configuration without it.
func (d *Partners) ServeEntityConfiguration(w http.ResponseWriter, r *http.Request) {
	m, ok := d.member(r.PathValue("app"))
	if !ok || m.fedKey == nil {
		federation.WriteError(w, "not_found", "no such app")
		return
	}
	now := d.fed.now()
	fedKeys := publicSet(m.fedKey)
	st := &federation.EntityStatement{
		Issuer: m.entityID, Subject: m.entityID,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(configLifetime).Unix(),
		JWKS:           &fedKeys,
		AuthorityHints: []string{d.fed.anchor},
		Metadata:       m.metadata(),
	}
	if mark := d.trustMark(r.Context(), m); mark != "" {
		st.TrustMarks = []federation.TrustMarkRef{{TrustMarkType: d.fed.markType, TrustMark: mark}}
	}
	jws, err := federation.SignStatement(st, *m.fedKey)
	if err != nil {
		federation.WriteError(w, "server_error", "the configuration could not be signed")
		return
	}
	federation.WriteStatement(w, jws)
}

// fedSettings are Federation with its defaults applied.
type fedSettings struct {
	anchor, markType  string
	timeout, retry    time.Duration
	clock             func() time.Time
	log               *slog.Logger
	maxResponse       int64
	markRefresh       time.Duration
	requestObjectLife time.Duration
}

func (f *fedSettings) now() time.Time {
	if f.clock != nil {
		return f.clock()
	}
	return time.Now()
}

func settings(issuer string, f Federation) fedSettings {
	s := fedSettings{anchor: strings.TrimRight(f.EntityID, "/"), markType: f.TrustMarkType,
		timeout: f.FetchTimeout, retry: f.RetryAfter, clock: f.Now, log: f.Log,
		maxResponse: 64 << 10, markRefresh: time.Hour, requestObjectLife: 5 * time.Minute}
	if s.anchor == "" {
		s.anchor = issuer
	}
	if s.timeout <= 0 {
		s.timeout = 2 * time.Second
	}
	if s.retry <= 0 {
		s.retry = 10 * time.Second
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}
