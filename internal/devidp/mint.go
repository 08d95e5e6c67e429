package devidp

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Errors of Mint and of the endpoints that look citizens up; callers branch on them.
var (
	ErrUnknownCitizen = errors.New("no sample citizen has this key")
	ErrNoAccount      = errors.New("the citizen has no account in this app")
	ErrNoSubject      = errors.New("devidp: mint needs a citizen or a sub claim")
)

// idTokenLifetime is how long a standard ID token is valid.
const idTokenLifetime = 10 * time.Minute

// maxMintSize bounds MintRequest.Size so that a typo cannot make the provider build a token of
// gigabytes.
const maxMintSize = 16 << 20

// MintRequest says which ID token to mint and how it should misbehave.
type MintRequest struct {
	Citizen     string         // fixture key; required unless Claims supplies sub
	Nonce       string         // "" = no nonce claim
	Audience    []string       // nil or empty = [ClientID]; a single value is written as a string, several as an array
	AccessToken string         // when set, at_hash of it is added (OIDC Core 3.1.3.6, hash by the alg)
	Claims      map[string]any // set or override any claim after the standard ones; a nil value deletes that claim
	// Alg "" = the current signing key's alg; "none" = unsigned (alg none, empty signature);
	// "HS256" = HMAC-signed with the bytes of the current key's public JWK JSON (the classic
	// key-confusion attack); another published alg = signed by the newest published key of it.
	Alg        string
	ForeignKey bool    // sign with a fresh key of the same alg that is NOT published (bad signature); kid = current kid
	KeyID      *string // non-nil: use this kid in the header instead of the key's; pointer to "" = omit kid
	Size       int     // > 0: pad with a "pad" claim so the compact token is at least this many bytes
	Type       string  // the typ header: "" = "JWT"; "-" = none; e.g. "logout+jwt" for a logout token
	// NoSubject mints a token without sub (no Citizen, no sub in Claims), e.g. a logout token
	// that names its login by sid only, or one that names nothing.
	NoSubject bool
}

// Mint signs an ID token as the provider would, then applies the request's overrides.
func (p *Provider) Mint(m MintRequest) (string, error) {
	if m.Size > maxMintSize {
		return "", fmt.Errorf("devidp: mint: size %d is over %d", m.Size, maxMintSize)
	}
	plan, err := p.signPlan(m)
	if err != nil {
		return "", err
	}
	claims, err := p.claims(m, plan.hash)
	if err != nil {
		return "", err
	}
	tok, err := plan.sign(claims)
	if err != nil {
		return "", err
	}
	p.recordLogin(m.Citizen, claims)
	if len(tok) < m.Size {
		if tok, err = pad(plan, claims, m.Size); err != nil {
			return "", err
		}
	}
	return tok, nil
}

// pad adds a "pad" claim of the fewest bytes that make the token at least size long, so tests
// of size limits can aim at the limit exactly. The token's length grows with the claim by the
// 4/3 of base64 and the signature's length is fixed, so an estimate lands within a byte or two.
func pad(pl plan, claims map[string]any, size int) (string, error) {
	signWith := func(n int) (string, error) {
		claims["pad"] = strings.Repeat("x", n)
		return pl.sign(claims)
	}
	tok, err := signWith(0)
	if err != nil {
		return "", err
	}
	n := max(0, (size-len(tok))*3/4)
	if tok, err = signWith(n); err != nil {
		return "", err
	}
	for len(tok) < size {
		n++
		if tok, err = signWith(n); err != nil {
			return "", err
		}
	}
	for n > 0 {
		shorter, err := signWith(n - 1)
		if err != nil {
			return "", err
		}
		if len(shorter) < size {
			break
		}
		n, tok = n-1, shorter
	}
	return tok, nil
}

// claims builds the standard claims of m's citizen, then applies m's overrides.
func (p *Provider) claims(m MintRequest, atHash crypto.Hash) (map[string]any, error) {
	now := p.now()
	c := map[string]any{
		"iss":       p.issuer,
		"iat":       now.Unix(),
		"exp":       now.Add(idTokenLifetime).Unix(),
		"auth_time": now.Unix(),
	}
	if m.Citizen != "" {
		citizen, acct, err := p.citizenInApp(m.Citizen)
		if err != nil {
			return nil, err // it names the citizen and the app already
		}
		c["sub"] = acct.Subject
		c["acr"] = acct.ACR
		c["amr"] = amrOf(acct.ACR)
		c["name"] = citizen.Name
		c["phone_number"] = citizen.Phone
		c["id_number"] = citizen.IDNumber
		// Each token minted for a citizen is a login of its own, named by sid (Back-Channel
		// Logout 1.0 §2.1), which POST /logout ends.
		sid, err := randomToken()
		if err != nil {
			return nil, err
		}
		c["sid"] = sid[:22]
	} else if m.Claims["sub"] == nil && !m.NoSubject {
		return nil, fmt.Errorf("devidp: mint: %w", ErrNoSubject)
	}
	aud := m.Audience
	if len(aud) == 0 {
		aud = []string{p.clientID}
	}
	if len(aud) == 1 {
		c["aud"] = aud[0]
	} else {
		c["aud"] = aud
		c["azp"] = p.clientID // OIDC Core §2: azp when the token has several audiences
	}
	if m.Nonce != "" {
		c["nonce"] = m.Nonce
	}
	if m.AccessToken != "" {
		h := atHash.New()
		h.Write([]byte(m.AccessToken))
		sum := h.Sum(nil)
		c["at_hash"] = base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
	}
	for k, v := range m.Claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c, nil
}

// plan is how a token is signed: by which alg and key, with which kid.
type plan struct {
	alg     string
	key     any // crypto.Signer, or []byte for HS256, nil for none
	kid     string
	omitKid bool
	hash    crypto.Hash // for at_hash
	typ     string      // "" = "JWT", "-" = no typ header
}

// signPlan chooses the alg, key and kid of m.
func (p *Provider) signPlan(m MintRequest) (plan, error) {
	cur, err := p.currentKey()
	if err != nil {
		return plan{}, fmt.Errorf("devidp: mint: %w", err)
	}
	pl := plan{alg: m.Alg, kid: cur.kid, hash: crypto.SHA256, typ: m.Type}
	switch {
	case m.Alg == "none" || m.Alg == "HS256":
		if m.ForeignKey {
			return plan{}, fmt.Errorf("devidp: mint: ForeignKey needs an asymmetric alg, not %s", m.Alg)
		}
		if m.Alg == "HS256" {
			// The secret is exactly the JWK a verifier fetched from /jwks, which is what a
			// verifier that trusts the header's alg would feed to HMAC.
			if pl.key, err = json.Marshal(cur.public()); err != nil {
				return plan{}, fmt.Errorf("devidp: mint: public JWK: %w", err)
			}
		}
	default:
		alg := m.Alg
		if alg == "" {
			alg = cur.alg
		}
		spec, ok := algs[alg]
		if !ok {
			return plan{}, fmt.Errorf("devidp: mint: algorithm %q: %w", alg, ErrUnsupportedAlg)
		}
		k := cur
		switch {
		case m.ForeignKey:
			if k, err = p.foreignKey(alg); err != nil {
				return plan{}, fmt.Errorf("devidp: mint: %w", err)
			}
		case alg != cur.alg:
			if k, ok = p.publishedKeyFor(alg); !ok {
				return plan{}, fmt.Errorf("devidp: mint: no published %s key (AddKey or Rotate one)", alg)
			}
			pl.kid = k.kid
		}
		pl.alg, pl.key, pl.hash = alg, k.priv, spec.hash
	}
	if m.KeyID != nil {
		pl.kid = *m.KeyID
		pl.omitKid = *m.KeyID == ""
	}
	return pl, nil
}

// typHeader is the typ header the plan writes, "" for none.
func (pl plan) typHeader() string {
	switch pl.typ {
	case "":
		return "JWT"
	case "-":
		return ""
	}
	return pl.typ
}

// sign serializes claims and signs them into a compact JWS.
func (pl plan) sign(claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("devidp: mint: encoding claims: %w", err)
	}
	if pl.alg == "none" {
		// go-jose will not produce an unsecured JWS, so this one is assembled by hand; there is
		// no signature to compute.
		h := map[string]string{"alg": "none"}
		if typ := pl.typHeader(); typ != "" {
			h["typ"] = typ
		}
		if !pl.omitKid {
			h["kid"] = pl.kid
		}
		hb, err := json.Marshal(h)
		if err != nil {
			return "", fmt.Errorf("devidp: mint: encoding header: %w", err)
		}
		b64 := base64.RawURLEncoding.EncodeToString
		return b64(hb) + "." + b64(payload) + ".", nil
	}
	opts := &jose.SignerOptions{}
	if typ := pl.typHeader(); typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	key := pl.key
	switch {
	case pl.omitKid:
		// A bare key gives go-jose no kid to write.
	case pl.alg == "HS256":
		opts = opts.WithHeader(jose.HeaderKey("kid"), pl.kid)
	default:
		key = jose.JSONWebKey{Key: pl.key, KeyID: pl.kid, Algorithm: pl.alg}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(pl.alg), Key: key}, opts)
	if err != nil {
		return "", fmt.Errorf("devidp: mint: signer for %s: %w", pl.alg, err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("devidp: mint: signing: %w", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("devidp: mint: serializing: %w", err)
	}
	return tok, nil
}

// mintBodyLimit bounds the /mint request body.
const mintBodyLimit = 64 << 10

// serveMint is POST /mint: a signed ID token for a fixture citizen without the code flow,
// for scripts and tests that exercise Tongban's verification directly.
func (p *Provider) serveMint(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Citizen string `json:"citizen"`
		Nonce   string `json:"nonce"`
		Aud     string `json:"aud"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, mintBodyLimit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be a JSON object {citizen, nonce, aud} under 64 KiB: " + err.Error()})
		return
	}
	if dec.More() {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must hold one JSON object"})
		return
	}
	if body.Citizen == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "citizen is required"})
		return
	}
	m := MintRequest{Citizen: body.Citizen, Nonce: body.Nonce}
	if body.Aud != "" {
		m.Audience = []string{body.Aud}
	}
	tok, err := p.Mint(m)
	switch {
	case errors.Is(err, ErrUnknownCitizen) || errors.Is(err, ErrNoAccount):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error() + "; " + p.whoIsHere()})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	default:
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, map[string]string{"id_token": tok})
	}
}

// amrOf is what a simulated login's methods were (RFC 8176): a face check for the highest
// level, a password and a one-time code for level 3, a password below.
func amrOf(acr string) []string {
	switch acr {
	case ACRFace:
		return []string{"face"}
	case ACRLevel3:
		return []string{"pwd", "otp"}
	}
	return []string{"pwd"}
}

// whoIsHere names the sample citizens with an account in this provider's app, for a mint that
// named someone else.
func (p *Provider) whoIsHere() string {
	var keys []string
	for _, c := range p.citizens {
		if _, ok := c.Accounts[p.app]; ok {
			keys = append(keys, c.Key)
		}
	}
	return p.app + "'s sample citizens are " + strings.Join(keys, ", ")
}
