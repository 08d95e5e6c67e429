package devidp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxLoginsPerCitizen bounds the logins remembered per citizen: the oldest is forgotten (and
// can then no longer be logged out) when a citizen signs in more often than this.
const maxLoginsPerCitizen = 32

// logoutTokenLifetime is the exp of a logout token, counted from its iat: it is delivered at
// once or not at all.
const logoutTokenLifetime = 2 * time.Minute

// BackchannelLogoutEvent is the member of events that makes a JWT a logout token.
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// login is one login of a citizen at this provider: the sid its ID token carried and the
// audience it was issued to, which its logout token is for.
type login struct {
	sid string
	aud []string
}

// recordLogin remembers the login an ID token minted for citizen stands for, when it names one
// (a sid claim, not deleted by the request's overrides).
func (p *Provider) recordLogin(citizen string, claims map[string]any) {
	sid, _ := claims["sid"].(string)
	if citizen == "" || sid == "" {
		return
	}
	var aud []string
	switch a := claims["aud"].(type) {
	case string:
		aud = []string{a}
	case []string:
		aud = a
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ls := append(p.logins[citizen], login{sid: sid, aud: aud})
	if len(ls) > maxLoginsPerCitizen {
		ls = ls[len(ls)-maxLoginsPerCitizen:]
	}
	p.logins[citizen] = ls
}

// LogoutDelivery is what became of one logout token.
type LogoutDelivery struct {
	SID    string `json:"sid"`
	Status int    `json:"status"`          // the client's HTTP status, 0 when it could not be reached
	Error  string `json:"error,omitempty"` // why it could not be reached, or the client's error_description
}

// Logout ends every login of citizen at this provider: for each, it signs a logout token
// (Back-Channel Logout 1.0 §2.4: typ logout+jwt; iss, aud, iat, exp, jti, events, sid, sub;
// never nonce) and POSTs it to the back-channel logout URI, one after the other. The logins
// are forgotten whatever the deliveries' outcome, as a real provider's logins end whether or
// not its clients hear of it.
func (p *Provider) Logout(ctx context.Context, citizen string) ([]LogoutDelivery, error) {
	if p.logoutURI == "" {
		return nil, ErrNoBackchannel
	}
	_, acct, err := p.citizenInApp(citizen)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	logins := p.logins[citizen]
	delete(p.logins, citizen)
	p.mu.Unlock()
	out := make([]LogoutDelivery, 0, len(logins))
	for _, l := range logins {
		tok, err := p.logoutToken(acct.Subject, l)
		if err != nil {
			return out, err
		}
		out = append(out, p.deliver(ctx, l.sid, tok))
	}
	return out, nil
}

// ErrNoBackchannel means the provider has no back-channel logout URI to send logout tokens to.
var ErrNoBackchannel = errors.New("devidp: no back-channel logout URI is configured")

func (p *Provider) logoutToken(sub string, l login) (string, error) {
	jti, err := randomToken()
	if err != nil {
		return "", err
	}
	now := p.now()
	return p.Mint(MintRequest{
		Type:     "logout+jwt",
		Audience: l.aud,
		Claims: map[string]any{
			"sub": sub, "sid": l.sid, "jti": jti,
			"exp":       now.Add(logoutTokenLifetime).Unix(),
			"events":    map[string]any{BackchannelLogoutEvent: map[string]any{}},
			"auth_time": nil, // an ID token's claim, not a logout token's
		},
	})
}

// deliver POSTs one logout token as the form parameter logout_token (§2.5).
func (p *Provider) deliver(ctx context.Context, sid, tok string) LogoutDelivery {
	d := LogoutDelivery{SID: sid}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.logoutURI,
		strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		d.Error = err.Error()
		return d
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.client.Do(req)
	if err != nil {
		d.Error = err.Error()
		return d
	}
	defer resp.Body.Close()
	d.Status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		d.Error = strings.TrimSpace(string(body))
	}
	return d
}

// serveLogout is POST /logout with the form field citizen (a sample citizen's key, as
// login_hint and /mint take it): the citizen's logins at this provider end, and Tongban hears
// of each through its back-channel logout endpoint. The answer says how many logout tokens
// were sent and what Tongban answered to each.
func (p *Provider) serveLogout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, formBodyLimit)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body must be a form under 64 KiB"})
		return
	}
	keys := r.PostForm["citizen"]
	switch {
	case len(keys) > 1:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "citizen is repeated"})
		return
	case len(keys) == 0 || keys[0] == "":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "citizen is required (a form field with a sample citizen's key); " + p.whoIsHere()})
		return
	}
	out, err := p.Logout(r.Context(), keys[0])
	switch {
	case errors.Is(err, ErrNoBackchannel):
		writeJSON(w, http.StatusNotImplemented, map[string]string{"error": err.Error()})
		return
	case errors.Is(err, ErrUnknownCitizen) || errors.Is(err, ErrNoAccount):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error() + "; " + p.whoIsHere()})
		return
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, struct {
		Citizen    string           `json:"citizen"`
		Sent       int              `json:"sent"`
		Deliveries []LogoutDelivery `json:"deliveries"`
	}{keys[0], len(out), out})
}
