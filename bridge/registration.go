package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/internal/opaque"
)

// Explicit registration (OpenID Federation 1.0 §12.2): a relying party POSTs its entity
// configuration, addressed to Tongban (aud = our entity id), to RegistrationPath. The bridge
// verifies it is self-signed with one of the entity's federation keys, resolves the entity's
// trust chain, makes a client of the resolved openid_relying_party metadata, records it in
// Redis (fr:<sha256(entity id)>, until the chain expires, so every replica honours it) and
// answers an explicit-registration-response+jwt signed with the federation key.

// RegistrationPath is the federation_registration_endpoint's path under the issuer.
const RegistrationPath = "/oauth2/federation_register"

// Media types of explicit registration (§15).
const (
	contentTypeRegistrationResponse = "application/explicit-registration-response+jwt"
	typRegistrationResponse         = "explicit-registration-response+jwt"
)

// maxRegistrationRequest bounds a registration request's body: an entity configuration.
const maxRegistrationRequest = 64 << 10

// reasonClientRemoved is why EndClient ends a client's grants.
const reasonClientRemoved = "client_removed"

// registration is the record of a federated client, as stored in fr:<sha256(entity id)>: the
// metadata it registered with (explicitly, or automatically by resolution), and until when. No
// secret: a federated client's keys are public.
//
// Field order matters to the scripts below: Go writes md, exp, type, departed in this order, so
// a departed record, and only one, ends with ',"departed":true}' (md comes first and cannot
// spell it at the end of the top-level object).
type registration struct {
	Metadata map[string]any `json:"md"`
	Expires  int64          `json:"exp"`
	// Type is how it registered: registrationAutomatic, or "" (records written before the
	// field) and registrationExplicit for an explicit registration.
	Type string `json:"type,omitempty"`
	// Departed marks a client EndClient removed: kept only so that its logout tokens are
	// delivered, for as long as its grants' tombstones live; Metadata may be empty (a client
	// EndClient could not find).
	Departed bool `json:"departed,omitempty"`
}

// departedSuffix ends a departed record's JSON, and only such a record's (see registration).
const departedSuffix = `,"departed":true}`

// setUnlessDeparted writes a registration record unless the current one is departed: a member
// removed stays removed until the integrator readmits it (Readmit), whatever it posts.
// KEYS[1] fr:…; ARGV[1] the record, ARGV[2] its TTL in ms, ARGV[3] departedSuffix. Returns 1 if
// written, 0 if departed.
var setUnlessDeparted = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, -string.len(ARGV[3])) == ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// delIfDeparted deletes a registration record if it is (ARGV[2] "1") or is not (ARGV[2] "0")
// departed. KEYS[1] fr:…; ARGV[1] departedSuffix. Returns 1 if deleted, 0 if absent, -1 if the
// record is of the other kind.
var delIfDeparted = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local departed = string.sub(v, -string.len(ARGV[1])) == ARGV[1]
if departed ~= (ARGV[2] == '1') then return -1 end
redis.call('DEL', KEYS[1])
return 1
`)

// bareFederatedClient is a federated client known only by its id: pairwise in its own sector
// (as every federated client is), no endpoint, no keys.
func bareFederatedClient(id string) *Client {
	return &Client{ID: id, Name: id, SubjectType: "pairwise", sector: id, federated: true, registration: registrationAutomatic}
}

// ErrDeparted means a federated client was removed (EndClient) and not readmitted.
var ErrDeparted = errors.New("bridge: the client was removed from the federation")

// Readmit lets a member EndClient removed register again: it deletes the client's departed
// record (its logout tokens not yet delivered are then dropped). The integrator calls it when
// the member is added back; until then neither resolution nor explicit registration makes the
// entity a client again. No record, or a record that is not departed, is left alone.
func (b *Bridge) Readmit(ctx context.Context, id string) error {
	if _, err := delIfDeparted.Run(ctx, b.store.Client, []string{b.registrationKey(id)}, departedSuffix, "1").Int(); err != nil {
		return fmt.Errorf("bridge: readmit %s: %w", id, err)
	}
	b.ForgetClient(id)
	return nil
}

// ForgetRegistration deletes a federated client's registration record (automatic or explicit),
// so that its next use resolves its trust chain again: the integrator calls it, beside
// Resolver.Invalidate, when a member's keys or metadata policy change. Other replicas reread
// within FederatedRecheck. A departed record is kept (ErrDeparted): use Readmit.
func (b *Bridge) ForgetRegistration(ctx context.Context, id string) error {
	n, err := delIfDeparted.Run(ctx, b.store.Client, []string{b.registrationKey(id)}, departedSuffix, "0").Int()
	if err != nil {
		return fmt.Errorf("bridge: forget registration of %s: %w", id, err)
	}
	if n < 0 {
		return fmt.Errorf("bridge: forget registration of %s: %w", id, ErrDeparted)
	}
	b.ForgetClient(id)
	return nil
}

func (b *Bridge) registrationKey(entityID string) string {
	return b.store.Key("fr:" + opaque.Hash(entityID))
}

// registeredClient reads a federated client's registration record.
func (b *Bridge) registeredClient(ctx context.Context, id string) (*Client, time.Time, bool, error) {
	raw, err := b.store.Client.Get(ctx, b.registrationKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, time.Time{}, false, nil
	}
	if err != nil {
		return nil, time.Time{}, false, fmt.Errorf("bridge: read registration: %w", err)
	}
	return b.parseRegistration(id, raw)
}

// parseRegistration makes the client of a registration record; found false for an expired one.
// A departed record whose metadata makes no client (EndClient found none) gives a bare departed
// client: pairwise in its own sector, with no endpoint.
func (b *Bridge) parseRegistration(id string, raw []byte) (*Client, time.Time, bool, error) {
	var reg registration
	if err := json.Unmarshal(raw, &reg); err != nil {
		return nil, time.Time{}, false, fmt.Errorf("bridge: corrupt registration of %s: %w", id, err)
	}
	until := time.Unix(reg.Expires, 0)
	if !b.now().Before(until) {
		return nil, time.Time{}, false, nil
	}
	kind := registrationExplicit
	if reg.Type == registrationAutomatic {
		kind = registrationAutomatic
	}
	c, err := clientFromMetadata(id, reg.Metadata, b.keys.algs, kind, b.fedLoopback)
	if err != nil && reg.Departed {
		c, err = bareFederatedClient(id), nil
		c.registration = kind
	}
	if _, bad := errors.AsType[*MetadataError](err); bad {
		// Recorded under rules since tightened: not a client any more, not a store failure.
		return nil, time.Time{}, false, fmt.Errorf("%w: registration of %s: %w", ErrUnknownClient, id, err)
	}
	if err != nil {
		return nil, time.Time{}, false, fmt.Errorf("bridge: registration of %s: %w", id, err)
	}
	c.departed = reg.Departed
	return c, until, true, nil
}

// serveRegistration is the federation_registration_endpoint (§12.2.1–§12.2.3).
func (b *Bridge) serveRegistration(w http.ResponseWriter, r *http.Request) {
	if b.fed == nil {
		http.NotFound(w, r)
		return
	}
	if !b.allowAuthorize(w, r) {
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		federation.WriteError(w, "invalid_request", "use POST")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != federation.ContentTypeEntityStatement {
		federation.WriteError(w, "invalid_request", "the body must be the entity configuration, "+federation.ContentTypeEntityStatement)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegistrationRequest))
	if err != nil {
		federation.WriteError(w, "invalid_request", fmt.Sprintf("the body could not be read (at most %d bytes)", maxRegistrationRequest))
		return
	}
	jws, code, desc := b.register(r.Context(), string(body))
	if code != "" {
		federation.WriteError(w, code, desc)
		return
	}
	w.Header().Set("Content-Type", contentTypeRegistrationResponse)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(jws))
}

// register does the registration of a request body: the signed response, or an error code and
// description of §8.9.
func (b *Bridge) register(ctx context.Context, body string) (jws, code, desc string) {
	v := federation.Verifier{Audience: b.fed.EntityID(), Now: b.now}
	st, err := v.VerifyConfiguration(body, "")
	if err != nil {
		return "", "invalid_request", "the entity configuration is refused: " + err.Error()
	}
	id := st.Subject
	if err := checkEntityID(id, b.fedLoopback); err != nil {
		return "", "invalid_request", err.Error()
	}
	if _, configured := b.clients.Get(id); configured {
		return "", "invalid_request", "the entity id is a configured client's id"
	}
	if st.Metadata["openid_relying_party"] == nil {
		return "", "invalid_metadata", "the entity configuration has no openid_relying_party metadata"
	}
	rp, err := b.fed.RelyingParty(ctx, id)
	if err != nil {
		// Only the reason's class: the resolver's text names the entities and addresses it
		// fetched, which an unauthenticated caller has no business learning.
		desc := "no valid trust chain for the entity"
		if reason := federation.ReasonOf(err); reason != "" {
			desc += " (" + string(reason) + ")"
		}
		return "", "invalid_trust_chain", desc
	}
	now := b.now()
	if !now.Before(rp.Expires) {
		return "", "invalid_trust_chain", "the trust chain has expired"
	}
	// The configuration posted must be the entity's: signed with a key its superior vouches
	// for (RelyingParty.Keys, the subordinate statement's jwks), not merely self-signed by
	// whoever typed the entity id.
	if keys := rp.Keys.Key(st.KeyID); len(keys) != 1 {
		return "", "invalid_request", "the entity configuration is not signed with a federation key of the entity's trust chain"
	} else if err := st.VerifySignature(&rp.Keys); err != nil {
		return "", "invalid_request", "the entity configuration is not signed with a federation key of the entity's trust chain"
	}
	c, err := clientFromMetadata(id, rp.Metadata, b.keys.algs, registrationExplicit, b.fedLoopback)
	if err != nil {
		return "", "invalid_metadata", err.Error()
	}
	md := make(map[string]any, len(rp.Metadata)+1)
	for k, v := range rp.Metadata {
		md[k] = v
	}
	md["client_id"] = c.ID
	blob, err := json.Marshal(registration{Metadata: md, Expires: rp.Expires.Unix(), Type: registrationExplicit})
	if err != nil {
		return "", "server_error", "the registration could not be stored"
	}
	claims := map[string]any{
		"iss": b.fed.EntityID(), "sub": id, "aud": id, "iat": now.Unix(), "exp": rp.Expires.Unix(),
		"metadata": map[string]any{"openid_relying_party": md}, "trust_anchor": rp.TrustAnchor,
	}
	if rp.Superior != "" {
		claims["authority_hints"] = []string{rp.Superior}
	}
	if st.JWKS != nil {
		claims["jwks"] = st.JWKS
	}
	jws, err = b.fed.SignRegistration(claims)
	if err != nil {
		return "", "server_error", "the registration could not be signed"
	}
	switch ok, err := setUnlessDeparted.Run(ctx, b.store.Client, []string{b.registrationKey(id)}, blob, rp.Expires.Sub(now).Milliseconds(), departedSuffix).Int(); {
	case err != nil:
		return "", "server_error", "the registration could not be stored"
	case ok == 0:
		return "", "invalid_request", "the entity was removed from the federation"
	}
	// This replica reads the record from now on; others hold the automatic client until they
	// read it (their cached entry expires with the same chain).
	b.fedCache.forget(id)
	return jws, "", ""
}
