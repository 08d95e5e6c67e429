package bridge

import (
	"encoding/base64"
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/opaque"
)

// acrValues are the assurance levels 1–4 as acr claims.
var acrValues = []string{"urn:tongban:loa:1", "urn:tongban:loa:2", "urn:tongban:loa:3", "urn:tongban:loa:4"}

func acr(level int) string {
	if level < 1 || level > 4 {
		return acrValues[0]
	}
	return acrValues[level-1]
}

func jsonEncoder(w io.Writer) *json.Encoder { return json.NewEncoder(w) }

// code is what an authorization code stands for, under oc:<sha256(code)> for CodeTTL.
type codeGrant struct {
	Client      string   `json:"client"`
	RedirectURI string   `json:"redirect_uri"`
	Challenge   string   `json:"challenge"`
	Nonce       string   `json:"nonce,omitempty"`
	Person      string   `json:"person"`
	Scopes      []string `json:"scopes"`
	Assurance   int      `json:"assurance"`
	AuthTime    int64    `json:"auth_time"`
	Session     string   `json:"session"`
	SourceApp   string   `json:"source_app"`
	AMR         []string `json:"amr,omitempty"`
}

// A code and the marker of its use share a hash tag, so one script consumes the one and sets
// the other.
func (b *Bridge) codeKey(code string) string { return b.store.Key("oc:{" + opaque.Hash(code) + "}") }

func (b *Bridge) codeUsedKey(code string) string { return b.codeKey(code) + ":used" }

// usedCodeTTL keeps the marker of a used code for the first refresh lifetime of the grant it
// issued: a replay within it revokes the grant. (A grant refreshed past that outlives the
// marker; a code replayed a month later finds no code and no marker and is simply refused.)
const usedCodeTTL = RefreshTokenTTL

var badRequestPage = template.Must(template.New("bad").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Invalid request</title></head>
<body><h1>This sign-in request cannot be handled</h1><p>{{.}}</p><p>The app that sent you here is misconfigured; nothing was sent back to it.</p></body></html>`))

// serveAuthorize is the authorization endpoint: code flow with PKCE S256 only, no UI. A
// login_hint holding a valid switch ticket for this client is consumed and a code issued at
// once; anything else is login_required, since the bridge signs nobody in itself.
func (b *Bridge) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	if !b.allowAuthorize(w, r) {
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		b.badAuthorize(w, "the request could not be parsed")
		return
	}
	q := r.Form
	for _, p := range []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "login_hint"} {
		if len(q[p]) > 1 {
			b.badAuthorize(w, "parameter "+p+" is repeated")
			return
		}
	}
	// Until the client and its redirect URI are known good, errors are shown, never redirected:
	// redirecting to an unregistered URI would make the bridge an open redirector.
	c, ok := b.clients.Get(q.Get("client_id"))
	if !ok || c.Machine {
		b.badAuthorize(w, "unknown client_id")
		return
	}
	redirect := q.Get("redirect_uri")
	if !slices.Contains(c.RedirectURIs, redirect) {
		b.badAuthorize(w, "redirect_uri is not registered for this client")
		return
	}
	fail := func(code, desc string) { b.redirectError(w, r, redirect, q.Get("state"), code, desc) }
	if q.Get("response_type") != "code" {
		fail("unsupported_response_type", "only response_type=code is supported")
		return
	}
	scopes := splitScope(q.Get("scope"))
	if !slices.Contains(scopes, "openid") {
		fail("invalid_scope", "scope must contain openid")
		return
	}
	if !c.allows(scopes) {
		fail("invalid_scope", "scope asks for more than the client may have")
		return
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "":
		fail("invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256")
		return
	case method != "S256":
		fail("invalid_request", "code_challenge_method must be S256")
		return
	case len(challenge) != 43 || !base64url(challenge):
		fail("invalid_request", "code_challenge must be an S256 challenge (43 base64url characters)")
		return
	}
	if len(q.Get("nonce")) > 512 || len(q.Get("state")) > 1024 {
		fail("invalid_request", "state or nonce is too long")
		return
	}
	hint := q.Get("login_hint")
	if hint == "" {
		fail("login_required", "the bridge signs citizens in only through a switch ticket in login_hint")
		return
	}
	tk, ok, err := b.consumeTicket(r.Context(), hint, c.ID)
	if err != nil {
		fail("server_error", "try again")
		return
	}
	if !ok || tk.Client != c.ID {
		fail("login_required", "the switch ticket is unknown, used, expired or for another app")
		return
	}
	// The ticket speaks for the session it was issued from: a citizen who signed out there
	// since has taken it back. The session and the consent are read in one round trip.
	var (
		alive   func() (bool, error)
		consent func() (Consent, error)
	)
	_, _ = b.store.Client.Pipelined(r.Context(), func(p redis.Pipeliner) error {
		if b.sessions != nil {
			alive = b.sessions.QueueAlive(r.Context(), p, tk.Session)
		}
		consent = b.Consents.queueGet(r.Context(), p, tk.Person, c.ID)
		return nil
	}) // each answer below reports its own command's error
	if alive != nil {
		ok, err := alive()
		if err != nil {
			fail("server_error", "try again")
			return
		}
		if !ok {
			fail("login_required", "the session the switch came from has ended")
			return
		}
	}
	cons, err := consent()
	if err != nil {
		fail("server_error", "try again")
		return
	}
	// What the client gets: what it asked for, of what the person consented to.
	granted := []string{"openid"}
	for _, s := range scopes {
		if s != "openid" && (s == "offline_access" || slices.Contains(cons.Scopes, s)) {
			granted = append(granted, s)
		}
	}
	granted = c.releasable(granted, tk.Assurance)
	code, err := opaque.Random(32)
	if err != nil {
		fail("server_error", "try again")
		return
	}
	blob, _ := json.Marshal(codeGrant{
		Client: c.ID, RedirectURI: redirect, Challenge: challenge, Nonce: q.Get("nonce"), Person: tk.Person,
		Scopes: granted, Assurance: tk.Assurance, AuthTime: tk.AuthTime.Unix(), Session: tk.Session, SourceApp: tk.SourceApp,
		AMR: tk.AMR,
	})
	if err := b.store.Client.Set(r.Context(), b.codeKey(code), blob, CodeTTL).Err(); err != nil {
		fail("server_error", "try again")
		return
	}
	b.redirectTo(w, r, redirect, url.Values{"code": {code}, "state": optional(q.Get("state")), "iss": {b.issuer}})
}

func optional(v string) []string {
	if v == "" {
		return nil
	}
	return []string{v}
}

func base64url(s string) bool {
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

func (b *Bridge) badAuthorize(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	_ = badRequestPage.Execute(w, msg)
}

func (b *Bridge) redirectError(w http.ResponseWriter, r *http.Request, redirect, state, code, desc string) {
	b.redirectTo(w, r, redirect, url.Values{"error": {code}, "error_description": {desc}, "state": optional(state), "iss": {b.issuer}})
}

// redirectTo sends the browser back to a registered redirect URI with params added to its query.
func (b *Bridge) redirectTo(w http.ResponseWriter, r *http.Request, redirect string, params url.Values) {
	u, err := url.Parse(redirect)
	if err != nil {
		b.badAuthorize(w, "redirect_uri cannot be parsed")
		return
	}
	q := u.Query()
	for k, v := range params {
		if len(v) > 0 {
			q[k] = v
		}
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// consumeScript takes a code once and, in the same step, marks it used by the grant that will
// be issued for it. KEYS[1] code, KEYS[2] its used marker; ARGV[1] grant id, ARGV[2] marker ttl
// ms. Returns {1, code grant}, {2, grant id of the earlier redemption} or {0}.
var consumeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  return {1, v}
end
local u = redis.call('GET', KEYS[2])
if u then return {2, u} end
return {0}
`)

// consumeCode takes an authorization code once for the grant gid. A code already used answers
// with the grant it was redeemed for, so the caller can revoke it (RFC 6749 §4.1.2); the marker
// is set in the same step as the code is taken, so even a replay racing with the first
// redemption finds it.
func (b *Bridge) consumeCode(r *http.Request, code, gid string) (codeGrant, string, bool, error) {
	res, err := consumeScript.Run(r.Context(), b.store.Client, []string{b.codeKey(code), b.codeUsedKey(code)},
		gid, usedCodeTTL.Milliseconds()).Slice()
	if err != nil {
		return codeGrant{}, "", false, err
	}
	kind, _ := res[0].(int64)
	switch kind {
	case 1:
		raw, _ := res[1].(string)
		var g codeGrant
		if err := json.Unmarshal([]byte(raw), &g); err != nil {
			return codeGrant{}, "", false, err
		}
		return g, "", true, nil
	case 2:
		usedBy, _ := res[1].(string)
		return codeGrant{}, usedBy, false, nil
	}
	return codeGrant{}, "", false, nil
}
