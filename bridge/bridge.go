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
	"github.com/tongban/tongban/logout"
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

// SessionBinder binds what the bridge issues to the citizen's session it came from, queued with
// the bridge's own commands (so on the bridge's Redis, like PersonSource): when the session
// exists, ref joins what ends with it (handed back to SessionsEnded) and the answer is true;
// when it has ended, nothing is bound and the answer is false. identity.Sessions satisfies it.
type SessionBinder interface {
	QueueBind(ctx context.Context, p redis.Pipeliner, sid, ref string) func() (bool, error)
}

// SessionEnder ends a citizen's session for a reason, and with it (through the hooks, among
// them SessionsEnded) what was bound to it. It answers identity.ErrInvalidSession when sid is
// not pid's live session. identity.Sessions satisfies it.
type SessionEnder interface {
	End(ctx context.Context, pid, sid string, reason identity.EndReason) error
}

// LogoutQueue queues back-channel logout tokens for delivery on the bridge's pipeline (so on the
// bridge's Redis). logout.Service satisfies it.
type LogoutQueue interface {
	QueueSend(ctx context.Context, p redis.Pipeliner, jobs ...logout.Job)
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
	// Sessions binds each code's grant to the session its ticket came from (and refuses the code
	// of a session that has ended); nil binds nothing, so grants outlive sessions.
	Sessions SessionBinder
	// Ender ends the Tongban session behind an ID token at /oauth2/logout; nil makes RP-initiated
	// logout end nothing (it still validates and redirects).
	Ender SessionEnder
	// Logout queues back-channel logout tokens for grants that end; nil sends none.
	Logout  LogoutQueue
	Catalog Catalog
	// Audit records tickets, redemptions, exchanges and consent changes; nil records nothing.
	Audit *audit.Trail
	// Pepper is secrets.pepper; the bridge derives the key of its pairwise subjects from it, so
	// a person's subject at a client stays the same for as long as the pepper does.
	Pepper []byte
	Now    func() time.Time
	// Limits holds the authorize and client_auth_failures limits; nil limits nothing.
	Limits *ratelimit.Limiter
	// Federation lets member apps not under clients use their entity id as client_id, trusted
	// through their trust chain (federated.go); nil turns federated clients off.
	Federation Federation
	// FederationAllowLoopback accepts http entity ids on loopback hosts (dev and tests only).
	FederationAllowLoopback bool
	// FederatedClientCache bounds the federated clients held in memory; 0 means
	// DefaultFederatedClientCache.
	FederatedClientCache int
}

// Bridge is the OpenID provider member apps receive switched citizens from.
type Bridge struct {
	issuer   string
	store    *redisx.Store
	keys     *KeyManager
	clients  *Clients
	persons  PersonSource
	sessions SessionBinder
	ender    SessionEnder
	logout   LogoutQueue
	catalog  Catalog
	Consents *Consents
	audit    *audit.Trail
	subject  []byte
	now      func() time.Time
	limits   *ratelimit.Limiter

	fed         Federation
	fedLoopback bool
	fedCache    *clientCache
}

// New builds the bridge.
func New(o Options) *Bridge {
	b := newBridge(o)
	b.Consents.endGrants = b.revokeClientGrants
	b.Consents.lookup = b.lookupReceiver
	return b
}

func newBridge(o Options) *Bridge {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FederatedClientCache <= 0 {
		o.FederatedClientCache = DefaultFederatedClientCache
	}
	b := &Bridge{
		issuer: strings.TrimRight(o.Issuer, "/"), store: o.Store, keys: o.Keys, clients: o.Clients,
		persons: o.Persons, sessions: o.Sessions, ender: o.Ender, logout: o.Logout, catalog: o.Catalog, subject: subjectKey(o.Pepper), now: o.Now, audit: o.Audit, limits: o.Limits,
		Consents: &Consents{store: o.Store, clients: o.Clients, now: o.Now, audit: o.Audit},
	}
	if o.Federation != nil {
		b.fed, b.fedLoopback = o.Federation, o.FederationAllowLoopback
		b.fedCache = &clientCache{max: o.FederatedClientCache, entries: map[string]cachedClient{}}
	}
	return b
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
	route("/oauth2/logout", "oauth2_logout", http.HandlerFunc(b.serveLogout))
	if b.fed != nil {
		route("POST "+RegistrationPath, "oauth2_federation_register", http.HandlerFunc(b.serveRegistration))
	}
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
