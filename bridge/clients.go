package bridge

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/config"
)

// Client is a member app the bridge is the OpenID provider of, or a machine client (a data
// platform or service owner) that only uses client credentials.
type Client struct {
	ID               string
	Name             string
	RedirectURIs     []string
	InitiateLoginURI string
	Scopes           []string
	SubjectType      string // pairwise or public
	IDTokenAlg       string
	Machine          bool
	Departments      []string
	// MinAssuranceForIDNumber is the login assurance from which the client receives id_number
	// (see releasable); 0 means DefaultMinAssuranceForIDNumber.
	MinAssuranceForIDNumber int
	// BackchannelLogoutURI receives the client's logout tokens; "" sends none.
	BackchannelLogoutURI string
	// PostLogoutRedirectURIs are where /oauth2/logout may send the browser back (exact match).
	PostLogoutRedirectURIs []string
	// sector is the pairwise subject's sector. Each client is its own sector: member apps of
	// different provinces often share hosting (and in dev mode one host), and OIDC's default of
	// the redirect URIs' host would give them the same subjects to join their users on.
	sector     string
	secretHash [sha256.Size]byte
	// federated marks a client known by its entity id through Options.Federation (federated.go):
	// jwks holds the keys of its request objects and client assertions, registration says how
	// it registered (automatic or explicit), departed that EndClient removed it (its logout
	// tokens are still delivered).
	federated    bool
	registration string
	departed     bool
	jwks         *jose.JSONWebKeySet
	md           map[string]any
}

// Federated reports whether the client is known by its entity id through the federation rather
// than from configuration.
func (c *Client) Federated() bool { return c.federated }

// Clients is the registry of clients from configuration. Secrets are held only as SHA-256.
type Clients struct {
	byID  map[string]*Client
	order []string
}

// NewClients builds the registry from clients and machine_clients.
func NewClients(cfg *config.Config) (*Clients, error) {
	cs := &Clients{byID: map[string]*Client{}}
	add := func(c *Client, secret, secretSHA string) error {
		switch {
		case secretSHA != "":
			b, err := hex.DecodeString(secretSHA)
			if err != nil || len(b) != sha256.Size {
				return fmt.Errorf("bridge: client %s: secret_sha256 is not 64 hex characters", c.ID)
			}
			copy(c.secretHash[:], b)
		case secret != "":
			c.secretHash = sha256.Sum256([]byte(secret))
		default:
			return fmt.Errorf("bridge: client %s has no secret", c.ID)
		}
		if _, dup := cs.byID[c.ID]; dup {
			return fmt.Errorf("bridge: client id %s is used twice", c.ID)
		}
		cs.byID[c.ID] = c
		cs.order = append(cs.order, c.ID)
		return nil
	}
	for _, cl := range cfg.Clients {
		c := &Client{
			ID: cl.ID, Name: cl.Name, RedirectURIs: cl.RedirectURIs, InitiateLoginURI: cl.InitiateLoginURI,
			Scopes: cl.Scopes, SubjectType: cl.SubjectType, IDTokenAlg: cl.IDTokenAlg, sector: cl.ID,
			MinAssuranceForIDNumber: cl.MinAssuranceForIDNumber,
			BackchannelLogoutURI:    cl.BackchannelLogoutURI, PostLogoutRedirectURIs: cl.PostLogoutRedirectURIs,
		}
		if err := add(c, cl.Secret, cl.SecretSHA256); err != nil {
			return nil, err
		}
	}
	for _, m := range cfg.MachineClients {
		c := &Client{ID: m.ID, Name: m.ID, Scopes: m.Scopes, Machine: true, Departments: m.Departments}
		if err := add(c, m.Secret, m.SecretSHA256); err != nil {
			return nil, err
		}
	}
	return cs, nil
}

// Get returns a client by id.
func (cs *Clients) Get(id string) (*Client, bool) {
	c, ok := cs.byID[id]
	return c, ok
}

// BackchannelLogoutURI is where a client receives its logout tokens (logout.Endpoints); false
// for a client that has none, or no such client.
func (cs *Clients) BackchannelLogoutURI(client string) (string, bool) {
	c, ok := cs.byID[client]
	if !ok || c.BackchannelLogoutURI == "" {
		return "", false
	}
	return c.BackchannelLogoutURI, true
}

// Algorithms lists the ID-token algorithms some client uses, ES256 first.
func (cs *Clients) Algorithms() []string {
	algs := []string{"ES256"}
	for _, id := range cs.order {
		if a := cs.byID[id].IDTokenAlg; a != "" && !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	return algs
}

// Authenticate identifies the client of a token-endpoint request by client_secret_basic or
// client_secret_post (exactly one of them). The secret is compared by its SHA-256 in constant
// time; the answer never says whether the client id exists.
func (cs *Clients) Authenticate(r *http.Request) (*Client, *OAuthError) {
	id, secret, basic := r.BasicAuth()
	postID, postSecret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	switch {
	case basic && postSecret != "":
		return nil, invalidRequest("use one client authentication method, not both")
	case basic:
		// RFC 6749 §2.3.1: both parts are form-encoded before Basic encoding.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, invalidClient("client credentials are not form-encoded")
		}
		if postID != "" && postID != id {
			return nil, invalidRequest("client_id differs from the authenticated client")
		}
	case postSecret != "":
		id, secret = postID, postSecret
	default:
		return nil, invalidClient("client authentication is required (client_secret_basic or client_secret_post)")
	}
	c, ok := cs.byID[id]
	sum := sha256.Sum256([]byte(secret))
	var want [sha256.Size]byte
	if ok {
		want = c.secretHash
	}
	if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 || !ok {
		return nil, invalidClient("unknown client or wrong secret")
	}
	return c, nil
}

// allows reports whether the client may ask for every scope in scopes.
func (c *Client) allows(scopes []string) bool {
	for _, s := range scopes {
		if !slices.Contains(c.Scopes, s) {
			return false
		}
	}
	return true
}

// consentScopes are the client's scopes that need the person's consent: all but openid and
// offline_access, which release nothing about the person.
func (c *Client) consentScopes() []string {
	var out []string
	for _, s := range c.Scopes {
		if s != "openid" && s != "offline_access" {
			out = append(out, s)
		}
	}
	return out
}

// grantableScopes are the scopes a person can consent to for the client: those that need consent
// and offline_access when the client may have it. offline_access releases nothing about the
// person, but it keeps the app connected after the person signs out of Tongban, so it is
// theirs to give (and never needed for a switch).
func (c *Client) grantableScopes() []string {
	out := c.consentScopes()
	if slices.Contains(c.Scopes, "offline_access") {
		out = append(out, "offline_access")
	}
	return out
}

func splitScope(s string) []string { return strings.Fields(s) }
