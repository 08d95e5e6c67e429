package devidp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configure one simulated provider.
type Options struct {
	Issuer       string           // full issuer URL, e.g. http://127.0.0.1:8080/dev/idp/zheliban (no trailing slash)
	App          string           // app id, e.g. "zheliban": only citizens with an account in this app can sign in
	ClientID     string           // the one registered client (Tongban)
	ClientSecret string           // its secret, for client_secret_basic or client_secret_post
	RedirectURIs []string         // exact match required at /authorize and /token; empty = any http(s) URI
	Citizens     []Citizen        // nil = Fixtures(Now())
	Now          func() time.Time // nil = time.Now; drives iat, exp and code and token expiry
	Algorithm    string           // alg of the first signing key: "RS256" (default), "ES256", "PS256" or "ES384"
	OmitIssParam bool             // false = the authorization response carries iss (RFC 9207)
	// BackchannelLogoutURI is the client's back-channel logout endpoint (OpenID Connect
	// Back-Channel Logout 1.0), e.g. {public_url}/oidc/{app}/backchannel-logout; POST /logout
	// sends logout tokens there. "" = the provider does not do back-channel logout.
	BackchannelLogoutURI string
	// HTTPClient sends the logout tokens. nil = a client with a 5 s timeout that follows no
	// redirects.
	HTTPClient *http.Client
	// Federation, when set, makes the provider an OpenID Federation OP (federation.go): it
	// serves its entity configuration and registers relying parties automatically. ClientID
	// and ClientSecret may then be empty (no registered client, only federation ones).
	Federation *FederationOptions
}

// Provider is one app's simulated OpenID Connect provider. It is an http.Handler that matches
// request paths relative to the issuer URL's path, so it can be mounted under that path
// without http.StripPrefix, or served at the root of an httptest server.
type Provider struct {
	issuer       string
	path         string // the issuer URL's path, "" when the issuer is a bare origin
	app          string
	clientID     string
	clientSecret string
	redirectURIs []string
	citizens     []Citizen
	now          func() time.Time
	firstAlg     string
	omitIss      bool
	logoutURI    string
	client       *http.Client

	mu          sync.Mutex
	published   []*signingKey          // oldest first; generated lazily, see keysLocked
	current     *signingKey            // the signer, always among published
	foreign     map[string]*signingKey // unpublished keys by alg, for MintRequest.ForeignKey
	codes       map[string]*authCode
	tokens      map[string]*accessGrant
	hook        func(*MintRequest)
	jwksFetches int
	logins      map[string][]login // citizen key -> their logins' sids, oldest first (logout.go)

	fed  *fedState            // nil unless a federation OP
	jtis map[string]time.Time // used request object and assertion jtis, until they expire
}

// New checks o and returns a provider. Signing keys are generated on first use, not here,
// because a 2048-bit RSA key takes long enough to slow down a dev server that starts three
// providers, and tests that never sign.
func New(o Options) (*Provider, error) {
	u, err := url.Parse(o.Issuer)
	if err != nil {
		return nil, fmt.Errorf("devidp: issuer: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" ||
		u.Fragment != "" || u.User != nil || strings.HasSuffix(o.Issuer, "/") {
		// go-oidc compares the discovered issuer with the URL it was given byte for byte, so a
		// trailing slash here would make every client fail in a way that is hard to trace.
		return nil, fmt.Errorf("devidp: issuer %q must be an http(s) URL without query, fragment or trailing slash", o.Issuer)
	}
	if o.App == "" || (o.Federation == nil && (o.ClientID == "" || o.ClientSecret == "")) || (o.ClientID == "") != (o.ClientSecret == "") {
		return nil, errors.New("devidp: App, ClientID and ClientSecret are required (ClientID and ClientSecret may both be empty for a federation OP)")
	}
	var fed *fedState
	if o.Federation != nil {
		if fed, err = newFedState(*o.Federation); err != nil {
			return nil, err
		}
	}
	for _, ru := range o.RedirectURIs {
		if !isHTTPURI(ru) {
			return nil, fmt.Errorf("devidp: redirect URI %q is not an absolute http(s) URI without fragment", ru)
		}
	}
	alg := o.Algorithm
	if alg == "" {
		alg = "RS256"
	}
	if _, ok := algs[alg]; !ok {
		return nil, fmt.Errorf("devidp: algorithm %q: %w", alg, ErrUnsupportedAlg)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	citizens := o.Citizens
	if citizens == nil {
		citizens = Fixtures(now())
	}
	seen := make(map[string]bool, len(citizens))
	for _, c := range citizens {
		if c.Key == "" || seen[c.Key] {
			return nil, fmt.Errorf("devidp: citizen key %q is empty or repeated", c.Key)
		}
		seen[c.Key] = true
	}
	if o.BackchannelLogoutURI != "" && !isHTTPURI(o.BackchannelLogoutURI) {
		return nil, fmt.Errorf("devidp: back-channel logout URI %q is not an absolute http(s) URI without fragment", o.BackchannelLogoutURI)
	}
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{
			Timeout: 5 * time.Second,
			// Back-Channel Logout 1.0 §2.5: a logout token goes to the registered URI, nowhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &Provider{
		issuer:       o.Issuer,
		path:         u.Path,
		app:          o.App,
		clientID:     o.ClientID,
		clientSecret: o.ClientSecret,
		redirectURIs: append([]string(nil), o.RedirectURIs...),
		citizens:     slices.Clone(citizens), // a caller's later edits must not change who can sign in
		now:          now,
		firstAlg:     alg,
		omitIss:      o.OmitIssParam,
		logoutURI:    o.BackchannelLogoutURI,
		client:       client,
		logins:       map[string][]login{},
		foreign:      map[string]*signingKey{},
		codes:        map[string]*authCode{},
		tokens:       map[string]*accessGrant{},
		fed:          fed,
		jtis:         map[string]time.Time{},
	}, nil
}

// Issuer is the issuer URL the provider was created with.
func (p *Provider) Issuer() string { return p.issuer }

// ServeHTTP routes on the path relative to the issuer URL's path.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, p.path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch rest {
	case "/.well-known/openid-configuration":
		if allowMethods(w, r, http.MethodGet, http.MethodHead) {
			p.serveDiscovery(w)
		}
	case "/jwks":
		if allowMethods(w, r, http.MethodGet, http.MethodHead) {
			p.serveJWKS(w, r)
		}
	case "/authorize":
		if allowMethods(w, r, http.MethodGet, http.MethodPost) {
			p.serveAuthorize(w, r)
		}
	case "/token":
		if allowMethods(w, r, http.MethodPost) {
			p.serveToken(w, r)
		}
	case "/userinfo":
		if allowMethods(w, r, http.MethodGet, http.MethodPost) {
			p.serveUserinfo(w, r)
		}
	case "/mint":
		if allowMethods(w, r, http.MethodPost) {
			p.serveMint(w, r)
		}
	case "/logout":
		if allowMethods(w, r, http.MethodPost) {
			p.serveLogout(w, r)
		}
	case "/.well-known/openid-federation":
		if p.fed != nil && allowMethods(w, r, http.MethodGet) {
			p.serveEntityConfiguration(w)
		} else if p.fed == nil {
			http.NotFound(w, r)
		}
	case "/signed-jwks":
		if p.fed != nil && allowMethods(w, r, http.MethodGet) {
			p.serveSignedJWKS(w)
		} else if p.fed == nil {
			http.NotFound(w, r)
		}
	default:
		http.NotFound(w, r)
	}
}

// discovery is the provider metadata (OpenID Connect Discovery 1.0 §3).
type discovery struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	UserinfoEndpoint      string   `json:"userinfo_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	ResponseTypes         []string `json:"response_types_supported"`
	SubjectTypes          []string `json:"subject_types_supported"`
	IDTokenAlgs           []string `json:"id_token_signing_alg_values_supported"`
	Scopes                []string `json:"scopes_supported"`
	TokenAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
	CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
	GrantTypes            []string `json:"grant_types_supported"`
	Claims                []string `json:"claims_supported"`
	ACRValues             []string `json:"acr_values_supported"`
	IssParamSupported     bool     `json:"authorization_response_iss_parameter_supported"`
	// Back-Channel Logout 1.0 §2.1: the provider sends logout tokens, with sid. Both false
	// when no back-channel logout URI is configured, since then it sends none.
	BackchannelLogout        bool `json:"backchannel_logout_supported"`
	BackchannelLogoutSession bool `json:"backchannel_logout_session_supported"`
}

func (p *Provider) serveDiscovery(w http.ResponseWriter) {
	d, err := p.discoveryDoc()
	if err != nil {
		http.Error(w, "devidp: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, d)
}

func (p *Provider) discoveryDoc() (discovery, error) {
	algs, err := p.publishedAlgs()
	if err != nil {
		return discovery{}, err
	}
	return discovery{
		Issuer:                   p.issuer,
		AuthorizationEndpoint:    p.issuer + "/authorize",
		TokenEndpoint:            p.issuer + "/token",
		UserinfoEndpoint:         p.issuer + "/userinfo",
		JWKSURI:                  p.issuer + "/jwks",
		ResponseTypes:            []string{"code"},
		SubjectTypes:             []string{"public"},
		IDTokenAlgs:              algs,
		Scopes:                   []string{"openid", "profile", "phone", "id_number"},
		TokenAuthMethods:         []string{"client_secret_basic", "client_secret_post"},
		CodeChallengeMethods:     []string{"S256"},
		GrantTypes:               []string{"authorization_code"},
		Claims:                   []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "acr", "amr", "azp", "at_hash", "name", "phone_number", "id_number"},
		ACRValues:                []string{ACRLevel1, ACRLevel2, ACRLevel3, ACRFace},
		IssParamSupported:        !p.omitIss,
		BackchannelLogout:        p.logoutURI != "",
		BackchannelLogoutSession: p.logoutURI != "",
	}, nil
}

// citizenInApp finds the citizen with key and their account in this provider's app.
func (p *Provider) citizenInApp(key string) (Citizen, Account, error) {
	c, ok := FindCitizen(p.citizens, key)
	if !ok {
		return Citizen{}, Account{}, fmt.Errorf("devidp: citizen %q: %w", key, ErrUnknownCitizen)
	}
	a, ok := c.Accounts[p.app]
	if !ok {
		return Citizen{}, Account{}, fmt.Errorf("devidp: citizen %q in %s: %w", key, p.app, ErrNoAccount)
	}
	return c, a, nil
}

// allowMethods answers 405 with Allow unless r's method is one of methods.
func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "devidp: encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// isHTTPURI reports whether s may be a redirect URI: absolute http(s) with a host and, as
// RFC 6749 §3.1.2 requires, no fragment.
func isHTTPURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		!strings.Contains(s, "#")
}
