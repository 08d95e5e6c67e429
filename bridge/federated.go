package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"
)

// Federated clients (OpenID Federation 1.0 §12): a member app that is not configured under
// clients uses its entity id as client_id. The bridge resolves its trust chain through
// Options.Federation and builds the client from the chain's resolved openid_relying_party
// metadata, kept in memory until the chain expires. Such a client registers either
// automatically (§12.1: its authorization requests carry a request object signed with a key of
// its metadata's jwks, requestobject.go) or explicitly (§12.2: registration.go, whose record in
// Redis every replica reads first). It authenticates at the token endpoint with
// private_key_jwt (clientassertion.go). Otherwise it is a client like a configured one: it
// receives switches, consent, ID tokens, logout tokens.

// Federation is what the bridge needs of OpenID Federation. federation.Resolver (ResolveType
// with "openid_relying_party") and a signer holding the federation key implement it; nil
// (Options.Federation) turns federated clients off.
type Federation interface {
	// EntityID is Tongban's own entity id: accepted as an audience beside the issuer, and the
	// issuer of registration responses.
	EntityID() string
	// RelyingParty resolves entityID's trust chain to a configured anchor and returns the
	// resolved openid_relying_party metadata. An error means the entity is not trusted as a
	// relying party (its chain does not resolve, or has no such metadata).
	RelyingParty(ctx context.Context, entityID string) (RelyingParty, error)
	// SignRegistration signs the claims of an explicit registration response with the
	// federation key (not a token key), header typ explicit-registration-response+jwt and kid.
	SignRegistration(claims map[string]any) (string, error)
}

// RelyingParty is a resolved trust chain of a relying party, as the bridge uses it.
type RelyingParty struct {
	// Metadata is the resolved openid_relying_party metadata (§6.1.4.2).
	Metadata map[string]any
	// Expires is the chain's expiry (§10.4; federation.TrustChain.Expiry or ValidUntil).
	Expires time.Time
	// TrustAnchor is the anchor the chain ends at; Superior the entity's immediate superior
	// in it (ES[1]'s iss), the authority_hints of a registration response.
	TrustAnchor string
	Superior    string
	// Keys are the entity's federation keys as its immediate superior vouches for them: the
	// jwks of the subordinate statement about it (federation.TrustChain.Statements[1].JWKS),
	// not its own configuration's, which whoever posts a registration can write. An explicit
	// registration request must be signed with one of them.
	Keys jose.JSONWebKeySet
}

// Registration types of a federated client.
const (
	registrationAutomatic = "automatic"
	registrationExplicit  = "explicit"
)

// maxEntityIDLength bounds an entity id used as client_id: it is part of keys and refs.
const maxEntityIDLength = 256

// ErrBadEntityID means a client id cannot be an entity id the bridge accepts as a client.
var ErrBadEntityID = errors.New("bridge: not an acceptable entity id")

// checkEntityID reports whether id may be a federated client's id: an https URL (http on a
// loopback host when allowLoopback) without query or fragment, at most 256 bytes, and none of
// the characters that would break the bridge's key formats ('|' separates refs "<client>|<gid>";
// '{' and '}' are hash tags) or whitespace (scopes and lists are space-separated).
func checkEntityID(id string, allowLoopback bool) error {
	if id == "" || len(id) > maxEntityIDLength {
		return fmt.Errorf("%w: empty or longer than %d bytes", ErrBadEntityID, maxEntityIDLength)
	}
	if strings.ContainsAny(id, "|{}\\") || strings.IndexFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 ||
		strings.ContainsFunc(id, func(r rune) bool { return r > 0x7e }) {
		return fmt.Errorf("%w: contains '|', '{', '}', a backslash, whitespace or a non-ASCII character", ErrBadEntityID)
	}
	u, err := url.Parse(id)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("%w: not an absolute URL without query or fragment", ErrBadEntityID)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowLoopback && isLoopback(u.Hostname()):
	default:
		return fmt.Errorf("%w: the scheme must be https", ErrBadEntityID)
	}
	// One entity, one client id: federation's resolver takes "https://a.example/" and
	// "https://a.example" (and other spellings of one URL) for the same entity, and a member
	// known under two ids would have two grant indexes, consents and sectors, one of which
	// outlives its removal. Only the canonical spelling is accepted.
	if strings.HasSuffix(id, "/") {
		return fmt.Errorf("%w: a trailing slash (the entity id without it names the same entity)", ErrBadEntityID)
	}
	if u.RawPath != "" || strings.Contains(id, "%") {
		return fmt.Errorf("%w: percent-encoding (another spelling of the same entity id)", ErrBadEntityID)
	}
	if u.Path != "" {
		for _, seg := range strings.Split(u.Path[1:], "/") {
			if seg == "" || seg == "." || seg == ".." {
				return fmt.Errorf("%w: an empty, '.' or '..' path segment", ErrBadEntityID)
			}
		}
	}
	if u.Host != strings.ToLower(u.Host) {
		return fmt.Errorf("%w: an upper-case host (hosts are case-insensitive: another spelling)", ErrBadEntityID)
	}
	if port := u.Port(); port == "443" && u.Scheme == "https" || port == "80" && u.Scheme == "http" || strings.HasSuffix(u.Host, ":") {
		return fmt.Errorf("%w: the scheme's default port spelled out (another spelling)", ErrBadEntityID)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// offeredScopes are the scopes a federated client can have: what the bridge releases to member
// apps (configured clients are given theirs in configuration).
var offeredScopes = []string{"openid", "profile", "phone", "id_number", "offline_access"}

// MetadataError is resolved relying-party metadata the bridge cannot make a client of
// (invalid_client_metadata / invalid_metadata at registration).
type MetadataError struct {
	Client, Reason string
}

func (e *MetadataError) Error() string {
	return fmt.Sprintf("bridge: openid_relying_party metadata of %s: %s", e.Client, e.Reason)
}

// clientFromMetadata builds a federated client from its resolved openid_relying_party
// metadata. algs are the ID-token algorithms the bridge holds keys for; allowLoopback
// (Options.FederationAllowLoopback) lets its URIs be http on a loopback host.
func clientFromMetadata(id string, md map[string]any, algs []string, registration string, allowLoopback bool) (*Client, error) {
	bad := func(format string, args ...any) error {
		return &MetadataError{Client: id, Reason: fmt.Sprintf(format, args...)}
	}
	str := func(k string) (string, error) {
		v, ok := md[k]
		if !ok || v == nil {
			return "", nil
		}
		s, ok := v.(string)
		if !ok || len(s) > 2048 {
			return "", bad("%s is not a string (of at most 2048 bytes)", k)
		}
		return s, nil
	}
	uris := func(k string, need bool) ([]string, error) {
		raw, ok := md[k].([]any)
		if md[k] != nil && !ok {
			return nil, bad("%s is not an array", k)
		}
		if need && len(raw) == 0 {
			return nil, bad("%s is required", k)
		}
		if len(raw) > 32 {
			return nil, bad("%s lists more than 32 URIs", k)
		}
		out := make([]string, 0, len(raw))
		for _, v := range raw {
			s, ok := v.(string)
			if !ok {
				return nil, bad("%s holds %v, not a string", k, v)
			}
			if err := checkClientURL(s, allowLoopback); err != nil {
				return nil, bad("%s holds %q: %v", k, s, err)
			}
			out = append(out, s)
		}
		return out, nil
	}
	c := &Client{ID: id, Name: id, sector: id, federated: true, registration: registration, md: md}
	var err error
	if c.RedirectURIs, err = uris("redirect_uris", true); err != nil {
		return nil, err
	}
	if c.PostLogoutRedirectURIs, err = uris("post_logout_redirect_uris", false); err != nil {
		return nil, err
	}
	for k, dst := range map[string]*string{"initiate_login_uri": &c.InitiateLoginURI, "backchannel_logout_uri": &c.BackchannelLogoutURI} {
		if *dst, err = str(k); err != nil {
			return nil, err
		}
		if *dst == "" {
			continue
		}
		if err := checkClientURL(*dst, allowLoopback); err != nil {
			return nil, bad("%s: %v", k, err)
		}
	}
	if name, err := str("client_name"); err != nil {
		return nil, err
	} else if name != "" {
		c.Name = name
	}
	scope, err := str("scope")
	if err != nil {
		return nil, err
	}
	c.Scopes = []string{"openid"}
	for _, s := range strings.Fields(scope) {
		if s != "openid" && slices.Contains(offeredScopes, s) && !slices.Contains(c.Scopes, s) {
			c.Scopes = append(c.Scopes, s)
		}
	}
	// A federated client is always pairwise, in its own sector (its entity id): subject_type
	// public in its metadata is ignored. That metadata is self-asserted by whoever runs the
	// entity, and a public subject (the person's id, the same in every app) would let any member
	// correlate people across the alliance; honouring it would need the anchor's vouching for it
	// (a metadata_policy value enforced by a superior), which the bridge does not model.
	switch st, err := str("subject_type"); {
	case err != nil:
		return nil, err
	case st == "" || st == "pairwise" || st == "public":
		c.SubjectType = "pairwise"
	default:
		return nil, bad("subject_type %q is neither pairwise nor public", st)
	}
	switch alg, err := str("id_token_signed_response_alg"); {
	case err != nil:
		return nil, err
	case alg == "" || alg == "ES256":
	case slices.Contains(algs, alg):
		c.IDTokenAlg = alg
	default:
		return nil, bad("id_token_signed_response_alg %q is not one the bridge signs with (%s)", alg, strings.Join(algs, ", "))
	}
	switch m, err := str("token_endpoint_auth_method"); {
	case err != nil:
		return nil, err
	case m != "" && m != "private_key_jwt":
		return nil, bad("token_endpoint_auth_method must be private_key_jwt, not %q", m)
	}
	raw, ok := md["jwks"]
	if !ok {
		return nil, bad("jwks is required (its keys sign request objects and client assertions; jwks_uri is not supported)")
	}
	blob, err := json.Marshal(raw)
	if err != nil {
		return nil, bad("jwks cannot be encoded: %v", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(blob, &set); err != nil {
		return nil, bad("jwks is not a JWK set: %v", err)
	}
	keys := jose.JSONWebKeySet{}
	for _, k := range set.Keys {
		if k.KeyID == "" || !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") || len(set.Key(k.KeyID)) != 1 {
			continue // a key without a unique kid, a private or an encryption key verifies nothing here
		}
		keys.Keys = append(keys.Keys, k)
	}
	if len(keys.Keys) == 0 || len(keys.Keys) > 16 {
		return nil, bad("jwks must hold between 1 and 16 public signing keys, each with a unique kid")
	}
	c.jwks = &keys
	return c, nil
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598), and thisNetwork
// 0.0.0.0/8 (RFC 1122 "this host on this network"): neither is a public host.
var (
	cgnat       = netip.MustParsePrefix("100.64.0.0/10")
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
)

// checkClientURL checks a URL of a federated client's self-asserted metadata, which the bridge
// redirects browsers to or (backchannel_logout_uri) POSTs to from inside its network: https
// (http only on a loopback host with allowLoopback), absolute, no fragment or user info, at most
// 2048 bytes, and no IP-literal host that is private, link-local, CGNAT, multicast or
// unspecified (loopback only with allowLoopback). A name that resolves to such an address is
// the sender's to refuse (logout checks the endpoint it dials).
func checkClientURL(s string, allowLoopback bool) error {
	if len(s) > 2048 {
		return errors.New("longer than 2048 bytes")
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return errors.New("not an absolute URL")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return errors.New("has a fragment")
	}
	if u.User != nil {
		return errors.New("has user information")
	}
	host := u.Hostname()
	loopback := isLoopback(host)
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback && allowLoopback:
	default:
		return errors.New("not https")
	}
	if loopback && !allowLoopback {
		return errors.New("a loopback host")
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		if strings.Contains(host, ":") || strings.Contains(host, "%") {
			return errors.New("a host that is not a name or a plain IP address")
		}
		return nil // a name
	}
	ip = ip.Unmap()
	switch {
	case ip.Zone() != "":
		return errors.New("an IP address with a zone")
	case ip.IsLoopback():
		if !allowLoopback {
			return errors.New("a loopback address")
		}
	case ip.IsUnspecified() || thisNetwork.Contains(ip):
		return errors.New("an unspecified address")
	case ip.IsPrivate():
		return errors.New("a private address")
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return errors.New("a link-local address")
	case cgnat.Contains(ip):
		return errors.New("a carrier-grade NAT address")
	case ip.IsMulticast() || ip.IsInterfaceLocalMulticast():
		return errors.New("a multicast address")
	}
	return nil
}

// clientCache holds federated clients until their chain (or registration) expires. It is
// bounded: when full, expired entries go first, then an arbitrary one.
type clientCache struct {
	mu      sync.RWMutex
	max     int
	entries map[string]cachedClient
}

type cachedClient struct {
	c     *Client
	until time.Time
	// checked is when the registration record was last read for it (FederatedRecheck).
	checked time.Time
}

func (cc *clientCache) get(id string, now time.Time) (*Client, bool) {
	e, ok := cc.entry(id, now)
	return e.c, ok
}

func (cc *clientCache) entry(id string, now time.Time) (cachedClient, bool) {
	cc.mu.RLock()
	defer cc.mu.RUnlock()
	e, ok := cc.entries[id]
	if !ok || !now.Before(e.until) {
		return cachedClient{}, false
	}
	return e, true
}

func (cc *clientCache) put(c *Client, until, now time.Time) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if _, ok := cc.entries[c.ID]; !ok && len(cc.entries) >= cc.max {
		for id, e := range cc.entries {
			if !now.Before(e.until) {
				delete(cc.entries, id)
			}
		}
		for id := range cc.entries {
			if len(cc.entries) < cc.max {
				break
			}
			delete(cc.entries, id)
		}
	}
	cc.entries[c.ID] = cachedClient{c: c, until: until, checked: now}
}

func (cc *clientCache) forget(id string) {
	cc.mu.Lock()
	delete(cc.entries, id)
	cc.mu.Unlock()
}

// DefaultFederatedClientCache bounds the federated clients held in memory.
const DefaultFederatedClientCache = 1000

// FederatedRecheck is how long a replica uses a federated client from memory before it reads
// the client's registration record again (one GET): how long another replica's explicit
// registration or EndClient takes to reach it.
const FederatedRecheck = 30 * time.Second

// metadata is the openid_relying_party metadata a federated client was made from.
func (c *Client) metadata() map[string]any { return c.md }

// LookupClient finds a client by id: a configured client first, exactly as configured; else,
// with federation on, a federated client, from memory, from its explicit registration record,
// or by resolving its trust chain. It answers an error wrapping ErrUnknownClient for an id that
// is neither (a federated refusal says why), other errors for a store that failed.
func (b *Bridge) LookupClient(ctx context.Context, id string) (*Client, error) {
	return b.lookupClient(ctx, id, true)
}

// errNotResolved is why a client id that needs resolving is refused where resolve was false.
var errNotResolved = errors.New("not a registered client, and the request carries no JWT it signed (iss = client_id) to resolve its trust chain for")

// lookupClient is LookupClient, resolving a trust chain only when resolve: an unauthenticated
// caller must not make the bridge fetch and verify a chain for any id it types, so a public
// endpoint passes resolve true only when the request carries a JWT whose (unverified) iss is
// the client id; the signature is verified with the resolved keys after.
func (b *Bridge) lookupClient(ctx context.Context, id string, resolve bool) (*Client, error) {
	if c, ok := b.clients.Get(id); ok {
		return c, nil
	}
	if b.fed == nil {
		return nil, ErrUnknownClient
	}
	// The warm path first: a client in memory was checked when it was put there.
	now := b.now()
	e, cached := b.fedCache.entry(id, now)
	if cached && now.Sub(e.checked) < FederatedRecheck {
		return e.c, nil
	}
	if err := checkEntityID(id, b.fedLoopback); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnknownClient, err)
	}
	c, until, found, err := b.registeredClient(ctx, id)
	if err != nil {
		return nil, err
	}
	if found {
		if c.departed {
			b.fedCache.forget(id)
			return nil, fmt.Errorf("%w: %s was removed", ErrUnknownClient, id)
		}
		b.fedCache.put(c, until, now)
		return c, nil
	}
	// No record: never resolved, expired, or forgotten (ForgetRegistration) since this replica
	// resolved it: resolve again.
	b.fedCache.forget(id)
	if !resolve {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnknownClient, id, errNotResolved)
	}
	rp, err := b.fed.RelyingParty(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnknownClient, id, err)
	}
	if !now.Before(rp.Expires) {
		return nil, fmt.Errorf("%w: the trust chain of %s has expired", ErrUnknownClient, id)
	}
	c, err = clientFromMetadata(id, rp.Metadata, b.keys.algs, registrationAutomatic, b.fedLoopback)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnknownClient, err)
	}
	// The resolution is recorded like an explicit registration, so that every replica (and
	// EndClient on any of them) finds the client's metadata, its backchannel_logout_uri and
	// sector, even once its chain no longer resolves. SET NX GET: a record written meanwhile
	// (an explicit registration, or EndClient's departed one) wins, and is what is used.
	blob, err := json.Marshal(registration{Metadata: rp.Metadata, Expires: rp.Expires.Unix(), Type: registrationAutomatic})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: metadata cannot be recorded: %w", ErrUnknownClient, id, err)
	}
	prev, err := b.store.Client.SetArgs(ctx, b.registrationKey(id), blob,
		redis.SetArgs{Mode: "NX", Get: true, TTL: max(rp.Expires.Sub(now), time.Second)}).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return nil, fmt.Errorf("bridge: record the registration of %s: %w", id, err)
	default:
		pc, puntil, found, err := b.parseRegistration(id, prev)
		switch {
		case err != nil:
			return nil, err
		case found && pc.departed:
			return nil, fmt.Errorf("%w: %s was removed", ErrUnknownClient, id)
		case found:
			c, rp.Expires = pc, puntil
		}
	}
	b.fedCache.put(c, rp.Expires, now)
	return c, nil
}

// lookupReceiver is LookupClient for the decisions about a client that receives people (not a
// machine client): ok false for an unknown or machine client, err only for a store failure.
func (b *Bridge) lookupReceiver(ctx context.Context, id string) (*Client, bool, error) {
	return b.lookupReceiverResolving(ctx, id, true)
}

// lookupReceiverResolving is lookupReceiver resolving a chain only when resolve (lookupClient).
func (b *Bridge) lookupReceiverResolving(ctx context.Context, id string, resolve bool) (*Client, bool, error) {
	c, err := b.lookupClient(ctx, id, resolve)
	switch {
	case errors.Is(err, ErrUnknownClient):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	case c.Machine:
		return nil, false, nil
	}
	return c, true, nil
}

// lookupForLogout finds the client a logout token goes to: like LookupClient, and a removed
// federated client too, for as long as the tombstones of its ended grants live, so that the
// logout tokens EndClient queued are still delivered.
func (b *Bridge) lookupForLogout(ctx context.Context, id string) (*Client, bool) {
	if c, ok := b.clients.Get(id); ok {
		return c, true
	}
	if b.fed == nil {
		return nil, false
	}
	if checkEntityID(id, b.fedLoopback) != nil {
		return nil, false
	}
	if c, ok := b.fedCache.get(id, b.now()); ok {
		return c, true
	}
	if c, _, found, err := b.registeredClient(ctx, id); err == nil && found {
		return c, true
	}
	c, err := b.LookupClient(ctx, id)
	return c, err == nil
}

// ForgetClient drops a federated client from this replica's memory, so that its next use
// resolves its trust chain again (the integrator calls it, with Resolver.Invalidate, when a
// subordinate is removed). EndClient also ends its grants and its registration.
func (b *Bridge) ForgetClient(id string) {
	if b.fedCache != nil {
		b.fedCache.forget(id)
	}
}

// logoutLookupTimeout bounds the lookup of a client for the logout package, which asks
// without a context.
const logoutLookupTimeout = 10 * time.Second

// BackchannelLogoutURI is where a client, configured or federated, receives its logout tokens
// (logout.Endpoints); false for a client that has none, or no such client.
func (b *Bridge) BackchannelLogoutURI(client string) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), logoutLookupTimeout)
	defer cancel()
	c, ok := b.lookupForLogout(ctx, client)
	if !ok || c.BackchannelLogoutURI == "" {
		return "", false
	}
	return c.BackchannelLogoutURI, true
}
