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

// registration is the record of a federated client, explicit (or removed), as stored in
// fr:<sha256(entity id)>: the metadata it registered with, and until when. No secret: a
// federated client's keys are public.
type registration struct {
	Metadata map[string]any `json:"md"`
	Expires  int64          `json:"exp"`
	// Departed marks a client EndClient removed: kept only so that its logout tokens are
	// delivered, for as long as its grants' tombstones live.
	Departed bool `json:"departed,omitempty"`
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
	var reg registration
	if err := json.Unmarshal(raw, &reg); err != nil {
		return nil, time.Time{}, false, fmt.Errorf("bridge: corrupt registration of %s: %w", id, err)
	}
	until := time.Unix(reg.Expires, 0)
	if !b.now().Before(until) {
		return nil, time.Time{}, false, nil
	}
	c, err := clientFromMetadata(id, reg.Metadata, b.keys.algs, registrationExplicit)
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
		return "", "invalid_trust_chain", "no valid trust chain for the entity: " + err.Error()
	}
	now := b.now()
	if !now.Before(rp.Expires) {
		return "", "invalid_trust_chain", "the trust chain has expired"
	}
	// The configuration posted must be the entity's: signed with a key its chain vouches for,
	// not merely self-signed by whoever typed the entity id.
	if keys := rp.Keys.Key(st.KeyID); len(keys) != 1 {
		return "", "invalid_request", "the entity configuration is not signed with a federation key of the entity's trust chain"
	} else if err := st.VerifySignature(&rp.Keys); err != nil {
		return "", "invalid_request", "the entity configuration is not signed with a federation key of the entity's trust chain"
	}
	c, err := clientFromMetadata(id, rp.Metadata, b.keys.algs, registrationExplicit)
	if err != nil {
		return "", "invalid_metadata", err.Error()
	}
	md := make(map[string]any, len(rp.Metadata)+1)
	for k, v := range rp.Metadata {
		md[k] = v
	}
	md["client_id"] = c.ID
	blob, err := json.Marshal(registration{Metadata: md, Expires: rp.Expires.Unix()})
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
	if err := b.store.Client.Set(ctx, b.registrationKey(id), blob, rp.Expires.Sub(now)).Err(); err != nil {
		return "", "server_error", "the registration could not be stored"
	}
	// This replica reads the record from now on; others hold the automatic client until they
	// read it (their cached entry expires with the same chain).
	b.fedCache.forget(id)
	return jws, "", ""
}
