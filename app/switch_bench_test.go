package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// BenchmarkSwitch measures the whole switch over real HTTP (switchApp on /graphql, the
// authorization request with the ticket, the code redemption with client authentication) at a
// fixed concurrency, and in the same run the bare cost of the one signature a flow needs (the
// ES256 ID token) on the same cores. Only the ratio is comparable across runs.
//
//	go test -run '^$' -bench Switch -benchtime 1x ./app
func BenchmarkSwitch(b *testing.B) {
	const (
		concurrency = 16
		flows       = 3000
	)
	h := startIdentity(b, countEverything)
	// One session per worker, every person having consented to suishenban's scopes.
	citizens := []string{"wang-fang", "zhou-ting", "xu-lei"}
	sessions := make([]string, concurrency)
	for i := range sessions {
		s := h.signIn(map[string]string{"wang-fang": "zheliban", "zhou-ting": "zheliban", "xu-lei": "sufuban"}[citizens[i%3]], citizens[i%3])
		if r := h.gql(grantConsent, map[string]any{"a": "suishenban", "s": []string{"profile", "phone", "id_number"}}, s.access); len(r.Errors) > 0 {
			b.Fatal(r.Raw)
		}
		sessions[i] = s.access
	}
	client := &http.Client{
		Transport:     &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	conf := &oauth2.Config{
		ClientID: "suishenban", ClientSecret: "dev-client-secret-suishenban", RedirectURL: h.url + "/dev/apps/suishenban/callback",
		Scopes:   []string{"openid", "profile", "phone", "id_number"},
		Endpoint: oauth2.Endpoint{AuthURL: h.url + "/oauth2/authorize", TokenURL: h.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader},
	}
	verifier := oauth2.GenerateVerifier()
	challenge := oauth2.S256ChallengeFromVerifier(verifier)

	items := make([]string, flows)
	for i := range items {
		items[i] = sessions[i%concurrency]
	}
	flow := func(session string) error {
		body, _ := json.Marshal(map[string]any{"query": `mutation { switchApp(target: "suishenban") { launchUrl } }`})
		req, _ := http.NewRequest(http.MethodPost, h.url+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+session)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		var out struct {
			Data struct {
				SwitchApp struct{ LaunchURL string } `json:"switchApp"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		launch, perr := url.Parse(out.Data.SwitchApp.LaunchURL)
		if err != nil || perr != nil || out.Data.SwitchApp.LaunchURL == "" {
			return fmt.Errorf("switchApp: %v %v", err, perr)
		}
		auth := conf.AuthCodeURL("s", oauth2.SetAuthURLParam("code_challenge", challenge),
			oauth2.SetAuthURLParam("code_challenge_method", "S256"), oauth2.SetAuthURLParam("nonce", "n"),
			oauth2.SetAuthURLParam("login_hint", launch.Query().Get("login_hint")))
		resp, err = client.Get(auth)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		back, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || back.Query().Get("code") == "" {
			return fmt.Errorf("authorize: %s %s", resp.Status, resp.Header.Get("Location"))
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")},
			"redirect_uri": {conf.RedirectURL}, "code_verifier": {verifier}}
		req, _ = http.NewRequest(http.MethodPost, conf.Endpoint.TokenURL, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(conf.ClientID, conf.ClientSecret)
		resp, err = client.Do(req)
		if err != nil {
			return err
		}
		tok, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Contains(tok, []byte(`"id_token"`)) {
			return fmt.Errorf("token: %s %s", resp.Status, tok)
		}
		return nil
	}
	switches := drive(concurrency, items, flow)

	// The bare cost: the ID token signature of a flow, with the claims a flow signs.
	claims := map[string]any{
		"iss": h.url, "sub": "pairwise-subject-of-43-characters-xxxxxxxxxx", "aud": "suishenban", "azp": "suishenban",
		"exp": time.Now().Add(5 * time.Minute).Unix(), "iat": time.Now().Unix(), "auth_time": time.Now().Unix(),
		"acr": "urn:tongban:loa:4", "sid": "grant-id-of-22-chars", "nonce": "n", "at_hash": "half-of-a-sha256-xxxxxx",
		"name": "王芳", "phone_number": "13905710001", "id_number": "330106198503121080",
	}
	signs := make([]string, flows*4)
	for i := range signs {
		signs[i] = strconv.Itoa(i)
	}
	bare := drive(concurrency, signs, func(string) error {
		_, err := h.app.Keys.Sign("ES256", "JWT", claims)
		return err
	})
	fmt.Printf("switch over HTTP (switchApp + authorize + token): %7.0f flows/s  p99 %6.2f ms  (concurrency %d, %d flows)\n",
		switches.rate, ms(switches.p99), concurrency, flows)
	fmt.Printf("bare ES256 ID-token signature:                     %7.0f signs/s  p99 %6.2f ms\n", bare.rate, ms(bare.p99))
	fmt.Printf("ratio: %.3f (target >= 0.2)\n", switches.rate/bare.rate)
	// A switch cannot do with less than one GraphQL request (switchApp), two plain HTTP
	// requests (authorize, token), the signature and four Redis round trips: the session
	// read, the ticket written, the ticket traded for a code, the code redeemed.
	f := measureFloor(b, h, client, concurrency, flows)
	ceiling := f.ceiling(1, 2, 4, bare.rate)
	fmt.Printf("floor in this run: %s\n", f)
	fmt.Printf("ceiling: %.3f, the ratio of a switch doing nothing but 1 GraphQL and 2 HTTP requests, 4 Redis round trips and the signature"+
		" (%.3f were GraphQL free: 3 bare HTTP requests)\n", ceiling, f.ceiling(0, 3, 4, bare.rate))
	b.ReportMetric(switches.rate, "flows/s")
	b.ReportMetric(bare.rate, "signs/s")
	b.ReportMetric(switches.rate/bare.rate, "ratio")
	b.ReportMetric(ceiling, "ceiling")
}
