package bridge

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/audit"
	"github.com/tongban/tongban/internal/ratelimit"
	"github.com/tongban/tongban/internal/redisx"
)

// Lifetimes of what the bridge issues.
const (
	TicketTTL       = 60 * time.Second
	CodeTTL         = 60 * time.Second
	AccessTokenTTL  = 15 * time.Minute
	IDTokenTTL      = 5 * time.Minute
	RefreshTokenTTL = 30 * 24 * time.Hour
)

// PersonSource is what the bridge needs of the identity side: the claims a person's record
// holds, read alone (userinfo) or queued with the bridge's own commands (the code
// redemption). identity.Persons satisfies it. Queued commands run on the bridge's pipeline,
// so the source must keep its keys on the bridge's Redis, as one store for both does.
type PersonSource interface {
	Claims(ctx context.Context, pid string) (identity.Claims, error)
	QueueClaims(ctx context.Context, p redis.Pipeliner, pid string) func() (identity.Claims, error)
}

// SessionChecker tells whether a citizen's session still exists, queued with the bridge's own
// reads (so on the bridge's Redis, like PersonSource). identity.Sessions satisfies it.
type SessionChecker interface {
	QueueAlive(ctx context.Context, p redis.Pipeliner, sid string) func() (bool, error)
}

// Service is one of the catalog's services (事项), as a switch needs it.
type Service struct {
	ID           string
	App          string
	Link         string
	MinAssurance int
}

// Catalog finds services. The push side's catalog satisfies it; nil means no services.
type Catalog interface {
	Service(id string) (Service, bool)
}

// Options configures a Bridge.
type Options struct {
	Issuer  string // public_url
	Store   *redisx.Store
	Keys    *KeyManager
	Clients *Clients
	Persons PersonSource
	// Sessions checks that a ticket's source session is still open at redemption; nil skips it.
	Sessions SessionChecker
	Catalog  Catalog
	// Audit records tickets, redemptions, exchanges and consent changes; nil records nothing.
	Audit *audit.Trail
	// Pepper is secrets.pepper; the bridge derives the key of its pairwise subjects from it, so
	// a person's subject at a client stays the same for as long as the pepper does.
	Pepper []byte
	Now    func() time.Time
	// Limits holds the authorize and client_auth_failures limits; nil limits nothing.
	Limits *ratelimit.Limiter
}

// Bridge is the OpenID provider member apps receive switched citizens from.
type Bridge struct {
	issuer   string
	store    *redisx.Store
	keys     *KeyManager
	clients  *Clients
	persons  PersonSource
	sessions SessionChecker
	catalog  Catalog
	Consents *Consents
	audit    *audit.Trail
	subject  []byte
	now      func() time.Time
	limits   *ratelimit.Limiter
}

// New builds the bridge.
func New(o Options) *Bridge {
	b := newBridge(o)
	b.Consents.endGrants = b.revokeClientGrants
	return b
}

func newBridge(o Options) *Bridge {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Bridge{
		issuer: strings.TrimRight(o.Issuer, "/"), store: o.Store, keys: o.Keys, clients: o.Clients,
		persons: o.Persons, sessions: o.Sessions, catalog: o.Catalog, subject: subjectKey(o.Pepper), now: o.Now, audit: o.Audit, limits: o.Limits,
		Consents: &Consents{store: o.Store, clients: o.Clients, now: o.Now, audit: o.Audit},
	}
}

// Issuer is the bridge's issuer identifier.
func (b *Bridge) Issuer() string { return b.issuer }

// Clients is the client registry.
func (b *Bridge) Clients() *Clients { return b.clients }

// Routes mounts the bridge's HTTP endpoints through route(pattern, name, handler).
func (b *Bridge) Routes(route func(pattern, name string, h http.Handler)) {
	route("GET /.well-known/openid-configuration", "oidc_discovery", http.HandlerFunc(b.serveDiscovery))
	route("/oauth2/jwks", "oauth2_jwks", http.HandlerFunc(b.keys.ServeJWKS))
	route("/oauth2/authorize", "oauth2_authorize", http.HandlerFunc(b.serveAuthorize))
	route("/oauth2/token", "oauth2_token", http.HandlerFunc(b.serveToken))
	route("/oauth2/userinfo", "oauth2_userinfo", http.HandlerFunc(b.serveUserinfo))
	route("/oauth2/revoke", "oauth2_revoke", http.HandlerFunc(b.serveRevoke))
	route("/oauth2/introspect", "oauth2_introspect", http.HandlerFunc(b.serveIntrospect))
}

// subjectKey keys the pairwise subjects: the pepper's HMAC of a purpose of its own, so that
// it is none of the pepper's other keys.
func subjectKey(pepper []byte) []byte {
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte("tongban/bridge/pairwise-subject"))
	return m.Sum(nil)
}

// Subject is the sub a client sees for a person: pairwise (an HMAC of the client's sector and
// the person, so two clients cannot join their users) or public (the person id).
func (b *Bridge) Subject(c *Client, pid string) string {
	if c.SubjectType == "public" {
		return pid
	}
	m := hmac.New(sha256.New, b.subject)
	m.Write([]byte(c.sector + "\x00" + pid))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
