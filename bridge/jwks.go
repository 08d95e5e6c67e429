package bridge

// The published keys: the JWKS relying parties fetch, and the check of a token against it.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// jwksCacheControl lets relying parties (and proxies: the keys are public) keep the JWKS for
// JWKSMaxAge; rotation publishes a key that long, and more, before it signs.
var jwksCacheControl = "public, max-age=" + strconv.Itoa(int(JWKSMaxAge.Seconds()))

// PublicKeys is the JWKS: current, next and retained keys of every algorithm, public parts
// only, each with kid, alg and use "sig"; by algorithm (ES256, RS256, EdDSA), newest first.
func (k *KeyManager) PublicKeys() jose.JSONWebKeySet {
	v, now := k.view.Load(), k.now()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, sk := range v.sorted {
		if sk.published(now) {
			set.Keys = append(set.Keys, sk.mat.pub)
		}
	}
	return set
}

// published reports whether the key is in the JWKS (and verifies tokens) at now.
func (sk *signingKey) published(now time.Time) bool {
	return sk.rec.State != keyStateRetired || now.Before(sk.rec.DropAt)
}

// Verify checks a compact JWS signed by one of our published keys (any algorithm we hold; the
// header must name the kid) and returns the payload. It checks no claims.
func (k *KeyManager) Verify(token string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(token, keyAlgOrder)
	if err != nil {
		if _, ok := errors.AsType[*jose.ErrUnexpectedSignatureAlgorithm](err); ok {
			return nil, fmt.Errorf("%w: %v", ErrSigningAlg, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrJWSMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: %d signatures", ErrJWSMalformed, len(jws.Signatures))
	}
	h := jws.Signatures[0].Header
	if h.KeyID == "" {
		return nil, fmt.Errorf("%w: the header names no kid", ErrUnknownKid)
	}
	sk := k.view.Load().keys[h.KeyID]
	if sk == nil || !sk.published(k.now()) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKid, h.KeyID)
	}
	if h.Algorithm != sk.rec.Alg {
		return nil, fmt.Errorf("%w: kid %s is an %s key, the header says %s", ErrSigningAlg, sk.kid, sk.rec.Alg, h.Algorithm)
	}
	payload, err := jws.Verify(sk.mat.pub.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: kid %s: %v", ErrJWSSignature, sk.kid, err)
	}
	return payload, nil
}

// ServeJWKS serves PublicKeys at /oauth2/jwks as application/json, cacheable for JWKSMaxAge,
// with a strong ETag (a hash of the body) so a relying party can revalidate with
// If-None-Match. GET and HEAD only.
func (k *KeyManager) ServeJWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	set := k.PublicKeys()
	body, err := json.Marshal(set)
	if err != nil {
		k.log.Error("bridge: encode JWKS", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	sum := sha256.Sum256(body)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
	h := w.Header()
	if len(set.Keys) == 0 {
		// Not loaded yet: a relying party must not keep an empty set for ten minutes.
		h.Set("Cache-Control", "no-store")
	} else {
		h.Set("Cache-Control", jwksCacheControl)
	}
	h.Set("ETag", etag)
	if jwksETagMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// jwksETagMatch is the weak comparison RFC 9110 §13.1.2 asks of If-None-Match.
func jwksETagMatch(header, etag string) bool {
	for tag := range strings.SplitSeq(header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
			return true
		}
	}
	return false
}
