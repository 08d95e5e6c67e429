package app

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tongban/tongban/app/devpartner"
)

// BenchmarkSignOutWithApps measures the target on a real dev server: a sign-out
// (GraphQL signOut over HTTP) of a session that switched into 5 member apps returns as fast as
// one of a session that switched into none, the 5 grants' logout tokens going through the
// stream. Each iteration prepares, with the timer stopped, one session with nothing bound and
// one with 5 grants (5 real switches: switchApp, authorize, code redemption), then signs both
// out, the order alternating from one iteration to the next so that neither always runs first.
//
// The logout tokens of an iteration's 5 grants are delivered in the background, after the
// sign-out returned; the next timed sign-out waits (untimed) until the member apps have them,
// so that the delivery's CPU on a small machine is not counted against either kind.
//
// It reports ns/op of each kind and ratio_apps5/apps0 = apps0 time / apps5 time (target
// >= 0.9): only the ratio compares across runs.
//
//	go test -run '^$' -bench SignOutWithApps -benchtime 300x ./app
//	REDIS_URL=redis://127.0.0.1:6379 go test -run '^$' -bench SignOutWithApps -benchtime 300x ./app
func BenchmarkSignOutWithApps(b *testing.B) {
	const citizen = "wang-fang" // signs in at zheliban
	targets := []string{"suishenban", "sufuban", "suishenban", "sufuban", "suishenban"}
	h := startIdentity(b, countEverything)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	first := h.signIn("zheliban", citizen)
	for _, app := range []string{"suishenban", "sufuban"} {
		if r := h.gql(grantConsent, map[string]any{"a": app, "s": []string{"profile", "phone", "id_number"}}, first.access); len(r.Errors) > 0 {
			b.Fatalf("grantConsent %s: %s", app, r.Raw)
		}
	}
	if err := sobSignOut(client, h.url, first.access); err != nil {
		b.Fatal(err)
	}

	var bareTime, boundTime time.Duration
	var pending []sobGrant // the grants of the last sign-out with apps, whose tokens are on their way
	settle := func() {
		if err := sobDelivered(h, pending, 10*time.Second); err != nil {
			b.Fatal(err)
		}
		pending = nil
	}
	signOut := func(access string, into *time.Duration) {
		settle()
		b.StartTimer()
		start := time.Now()
		err := sobSignOut(client, h.url, access)
		*into += time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ResetTimer()
	for i := range b.N {
		bare := h.signIn("zheliban", citizen)
		bound := h.signIn("zheliban", citizen)
		grants := make([]sobGrant, 0, len(targets))
		for _, app := range targets {
			g, err := sobSwitch(client, h, bound.access, app)
			if err != nil {
				b.Fatal(err)
			}
			grants = append(grants, g)
		}
		if i%2 == 0 {
			signOut(bare.access, &bareTime)
			signOut(bound.access, &boundTime)
			pending = grants
		} else {
			signOut(bound.access, &boundTime)
			pending = grants
			signOut(bare.access, &bareTime)
		}
	}
	settle()
	b.ReportMetric(float64(bareTime.Nanoseconds())/float64(b.N), "apps0-ns/op")
	b.ReportMetric(float64(boundTime.Nanoseconds())/float64(b.N), "apps5-ns/op")
	b.ReportMetric(bareTime.Seconds()/boundTime.Seconds(), "ratio_apps5/apps0")
}

// sobGrant is a grant a switch made: its client and its id, the sid of its ID token and of the
// logout token the client receives when the grant ends.
type sobGrant struct{ client, sid string }

// sobSignOut posts the signOut mutation as the bearer of access.
func sobSignOut(client *http.Client, base, access string) error {
	req, _ := http.NewRequest(http.MethodPost, base+"/graphql", strings.NewReader(`{"query":"mutation { signOut }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("signOut: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, []byte(`{"data":{"signOut":true}}`)) {
		return fmt.Errorf("signOut: %d %s %v", resp.StatusCode, body, err)
	}
	return nil
}

// sobSwitch runs a whole switch of the session access into app (switchApp, the authorization
// request with its ticket, the code redemption) and returns the grant it made.
func sobSwitch(client *http.Client, h *harness, access, app string) (sobGrant, error) {
	body, _ := json.Marshal(map[string]any{"query": switchApp, "variables": map[string]any{"t": app}})
	req, _ := http.NewRequest(http.MethodPost, h.url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := client.Do(req)
	if err != nil {
		return sobGrant{}, err
	}
	var sw struct {
		Data struct {
			SwitchApp struct{ LaunchURL string } `json:"switchApp"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&sw)
	resp.Body.Close()
	launch, perr := url.Parse(sw.Data.SwitchApp.LaunchURL)
	if err != nil || perr != nil || sw.Data.SwitchApp.LaunchURL == "" {
		return sobGrant{}, fmt.Errorf("switchApp %s: %v %v", app, err, perr)
	}
	r := &swrRig{h: h}
	verifier := oauth2.GenerateVerifier()
	a, err := swrAuthorize(h.url, r.authzParams(app, launch.Query().Get("login_hint"), verifier))
	if err != nil {
		return sobGrant{}, err
	}
	back, err := url.Parse(a.Location)
	if err != nil || back.Query().Get("code") == "" {
		return sobGrant{}, fmt.Errorf("authorize %s: %d %s %s", app, a.Status, a.Location, a.Body)
	}
	tok, err := swrPost(h.url+"/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")},
		"redirect_uri": {r.redirectURI(app)}, "code_verifier": {verifier}}, app, swrSecret(app))
	if err != nil {
		return sobGrant{}, err
	}
	if tok.Status != http.StatusOK {
		return sobGrant{}, fmt.Errorf("code redemption %s: %d %s", app, tok.Status, tok.Raw)
	}
	sid, err := sobSID(tok.str("id_token"))
	if err != nil {
		return sobGrant{}, err
	}
	return sobGrant{client: app, sid: sid}, nil
}

// sobSID reads the sid claim of an ID token the bridge just issued (no verification: the
// benchmark only needs to know which logout token to wait for).
func sobSID(idToken string) (string, error) {
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("ID token %q: not a JWS", idToken)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("ID token payload: %w", err)
	}
	var c struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(raw, &c); err != nil || c.SID == "" {
		return "", fmt.Errorf("ID token without sid: %s %v", raw, err)
	}
	return c.SID, nil
}

// sobDelivered waits until the simulated member apps have accepted a logout token for every
// grant in gs.
func sobDelivered(h *harness, gs []sobGrant, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		missing := 0
		for _, g := range gs {
			if !slices.ContainsFunc(h.app.devPartners.Logouts(g.client), func(l devpartner.Logout) bool { return l.SID == g.sid }) {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d logout tokens not delivered within %v", missing, len(gs), within)
		}
		time.Sleep(time.Millisecond)
	}
}
