package bridge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

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

// An authorization code is an opaque credential of the grant it will be redeemed for
// (tbc_<gid><secret>): the code's record is oc:{<gid>}, in the grant's slot, so one script takes
// the code, checks the client, redirect URI and PKCE verifier, and creates the grant g:{<gid>}.
// The record holds the grant's fields as the grant will hold them (person, scopes, assurance,
// auth_time, session, amr) and the code's own (hash, client, redirect_uri, challenge, nonce,
// source_app); TTL CodeTTL.
const codePrefix = "tbc_"

func (b *Bridge) codeKey(gid string) string { return b.store.Key("oc:{" + gid + "}") }

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
	for _, p := range []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "login_hint", "request", "request_uri"} {
		if len(q[p]) > 1 {
			b.badAuthorize(w, "parameter "+p+" is repeated")
			return
		}
	}
	ctx := r.Context()
	// Until the client and its redirect URI are known good, errors are shown, never redirected:
	// redirecting to an unregistered URI would make the bridge an open redirector.
	// A client id that is neither configured nor registered is resolved (a trust chain fetched
	// and verified) only for a request carrying a request object that claims to be the client's
	// (its unverified iss is the client_id): cheap checks before the costly one, and the
	// signature verified with the resolved keys after.
	id := q.Get("client_id")
	iss, _, _ := unverifiedClaims(q.Get("request"))
	c, ok, err := b.lookupReceiverResolving(ctx, id, iss != "" && iss == id)
	if err != nil {
		b.badAuthorize(w, "the client could not be looked up; try again")
		return
	}
	if !ok {
		b.badAuthorize(w, "unknown client_id (a federated client not registered explicitly sends a request object it signed, iss = client_id)")
		return
	}
	if q.Get("request_uri") != "" {
		b.badAuthorize(w, "request_uri is not supported; send the request object by value (request)")
		return
	}
	// A federated client's request object is its request (RFC 9101 §6.3): its parameters
	// replace those outside it, which only had to name the same client_id. Its errors are shown,
	// not redirected: the redirect URI would come from what failed to verify.
	switch raw := q.Get("request"); {
	case raw != "":
		if !c.federated {
			b.badAuthorize(w, "request objects are accepted only from federated clients (request_not_supported)")
			return
		}
		params, err := b.requestObject(ctx, c, raw)
		if jerr, ok := errors.AsType[*ClientJWTError](err); ok {
			b.badAuthorize(w, "invalid_request_object: "+jerr.Reason)
			return
		}
		if err != nil {
			b.badAuthorize(w, "the request object could not be checked; try again")
			return
		}
		q = params
	case c.registration == registrationAutomatic:
		b.badAuthorize(w, "invalid_request: a client that registers automatically sends its authorization request as a request object signed with a key of its metadata (request)")
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
	tk, ok, err := b.consumeTicket(ctx, hint, c.ID)
	if err != nil {
		fail("server_error", "try again")
		return
	}
	if !ok {
		fail("login_required", "the switch ticket is unknown, used, expired or for another app")
		return
	}
	// What the code may give: what the client asked for, of what the ticket's login releases.
	// The consent is applied where the grant is made (redeemCode), read in the transaction
	// that indexes it: consent only grows until it is revoked, so reading it here as well would
	// decide nothing that one does not.
	granted := []string{"openid"}
	for _, s := range scopes {
		if s != "openid" {
			granted = append(granted, s)
		}
	}
	granted = c.releasable(granted, tk.Assurance)
	gid, err := opaque.ID()
	if err != nil {
		fail("server_error", "try again")
		return
	}
	code, hash, err := opaque.New(codePrefix, gid)
	if err != nil {
		fail("server_error", "try again")
		return
	}
	key := b.codeKey(gid)
	// The ticket speaks for the session it was issued from: a citizen who signed out there
	// since has taken it back. The code's grant is bound to the session in the round trip that
	// stores the code, so that the session's ending ends it (SessionsEnded), the code too while
	// unredeemed; a code stored for an ended session is deleted before it is handed out.
	//
	// Every code is bound, an offline one too: whether its grant keeps offline_access is decided
	// at redemption, by the consent as it is then, and SessionsEnded leaves a grant that kept it
	// alone. Deciding here would cost a round trip of its own to read the consent first.
	var alive func() (bool, error)
	var stored *redis.BoolCmd
	//
	// The code is written before the bind: an ending that finds the ref bound then finds the
	// code too (on one Redis, a pipeline's commands run in order), where the other order would
	// let an ending slip between them and leave a code that outlives its session.
	_, _ = b.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "hash", hash, "client", c.ID, "redirect_uri", redirect, "challenge", challenge,
			"nonce", q.Get("nonce"), "source_app", tk.SourceApp, "person", tk.Person, "scopes", strings.Join(granted, " "),
			"assurance", tk.Assurance, "auth_time", tk.AuthTime, "session", tk.Session, "amr", strings.Join(tk.AMR, " "))
		stored = p.PExpire(ctx, key, CodeTTL)
		if b.sessions != nil {
			alive = b.sessions.QueueBind(ctx, p, tk.Session, indexMember(c.ID, gid))
		}
		return nil
	}) // each answer below reports its own command's error
	if err := stored.Err(); err != nil {
		_ = b.store.Client.Del(context.WithoutCancel(ctx), key).Err() // best effort: nobody holds the code
		fail("server_error", "try again")
		return
	}
	if alive != nil {
		ok, err := alive()
		if err == nil && !ok {
			err = b.store.Client.Del(ctx, key).Err()
			if err == nil {
				fail("login_required", "the session the switch came from has ended")
				return
			}
		}
		if err != nil {
			fail("server_error", "try again")
			return
		}
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
