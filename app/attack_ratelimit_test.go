package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/testenv"
)

// The attack suite's rate-limit rows: each attack of issue 12 against a whole server, and the
// refusal it meets. Clients are told apart by address through X-Forwarded-For, which the
// servers believe from loopback (trusted_proxies), as they would from a load balancer.

const (
	attackerIP  = "203.0.113.66"
	bystanderIP = "198.51.100.7"
)

// behindProxy trusts loopback's X-Forwarded-For and sets the limits the test names.
func behindProxy(set func(*config.RateLimits)) func(*config.Config) {
	return func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.0/8"}
		if set != nil {
			set(&c.RateLimits)
		}
	}
}

// slowFailures is client_auth_failures with its default burst (20) and rate, per hour.
func slowFailures(r *config.RateLimits) {
	r.ClientAuthFailures = config.RateLimit{Rate: 20, Per: config.Duration(time.Hour), Burst: 20}
}

type tokenReply struct {
	status     int
	retryAfter string
	body       map[string]any
}

func (r tokenReply) err() string { s, _ := r.body["error"].(string); return s }

// clientCredentials asks /oauth2/token for a client-credentials token as client with secret,
// from ip.
func clientCredentials(t *testing.T, base, client, secret, ip string) tokenReply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", ip)
	req.SetBasicAuth(url.QueryEscape(client), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return tokenReply{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := tokenReply{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	if err := json.Unmarshal(raw, &out.body); err != nil {
		t.Errorf("token endpoint: %d %q is not JSON", resp.StatusCode, raw)
	}
	return out
}

// wantRetryAfter checks a Retry-After header: whole seconds, at least 1, at most max.
func wantRetryAfter(t *testing.T, v string, most int) {
	t.Helper()
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		t.Errorf("Retry-After %q, want whole seconds from 1 to %d", v, most)
	}
}

// wantRateLimited checks a GraphQL answer is RATE_LIMITED with extensions.retryAfter in whole
// seconds, at least 1.
func wantRateLimited(t *testing.T, r gqlResponse, what string) {
	t.Helper()
	if r.code() != "RATE_LIMITED" {
		t.Fatalf("%s: want RATE_LIMITED, got %s", what, r.Raw)
	}
	ext, _ := r.Errors[0]["extensions"].(map[string]any)
	n, ok := ext["retryAfter"].(float64)
	if !ok || n < 1 || n != float64(int(n)) {
		t.Fatalf("%s: extensions.retryAfter = %v, want whole seconds ≥ 1", what, ext["retryAfter"])
	}
}

// rateLimited reads tongban_rate_limited_total{class} from the server's /metrics.
func rateLimited(t *testing.T, h *harness, class string) int {
	t.Helper()
	resp, err := http.Get(h.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^tongban_rate_limited_total\{class="` + class + `"\} (\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no tongban_rate_limited_total{class=%q} in /metrics", class)
	}
	n, err := strconv.Atoi(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// 1,000 wrong secrets for one client from one address, 16 at a time: the first 20 (the burst)
// are compared and refused as invalid_client, every other one is answered 429 with
// Retry-After without being compared. Meanwhile the right secret of another client from the
// same address works, and so does the right secret of the attacked client from elsewhere.
func TestAttackWrongClientSecretsAreThrottled(t *testing.T) {
	t.Parallel()
	// The default burst, refilled hourly rather than every 3 s, so that a slow run (the race
	// detector) sees no slot come back in the middle of the attack.
	h := start(t, devConfig(t, behindProxy(slowFailures)))
	const guesses, workers = 1000, 16
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		next     = make(chan int, guesses)
		wg       sync.WaitGroup
	)
	for i := range guesses {
		next <- i
	}
	close(next)
	for range workers {
		wg.Go(func() {
			for i := range next {
				r := clientCredentials(t, h.url, "jiaxing-hrss", fmt.Sprintf("guess-%d", i), attackerIP)
				switch {
				case r.status == http.StatusUnauthorized && r.err() == "invalid_client":
				case r.status == http.StatusTooManyRequests && r.err() == "temporarily_unavailable":
					wantRetryAfter(t, r.retryAfter, 180) // one interval: an hour over 20
				default:
					t.Errorf("guess %d: %d %v", i, r.status, r.body)
				}
				mu.Lock()
				statuses[r.status]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if statuses[http.StatusUnauthorized] != 20 || statuses[http.StatusTooManyRequests] != guesses-20 {
		t.Fatalf("answers by status %v: want 20 compared (401) and %d refused unseen (429)", statuses, guesses-20)
	}
	if n := rateLimited(t, h, "client_auth_failures"); n != guesses-20 {
		t.Errorf("tongban_rate_limited_total{class=client_auth_failures} = %d, want %d", n, guesses-20)
	}

	// Successes are never counted: another client keeps getting tokens from the same address,
	// many more times than the burst.
	for i := range 50 {
		if r := clientCredentials(t, h.url, "jiaxing-data", clientSecretOf("jiaxing-data"), attackerIP); r.status != http.StatusOK {
			t.Fatalf("another client's right secret from the attacker's address, try %d: %d %v", i, r.status, r.body)
		}
	}
	if r := clientCredentials(t, h.url, "jiaxing-hrss", clientSecretOf("jiaxing-hrss"), bystanderIP); r.status != http.StatusOK {
		t.Fatalf("the attacked client's right secret from another address: %d %v", r.status, r.body)
	}
	// The pair under attack waits, right secret or not: otherwise a guess would say when it
	// was right.
	if r := clientCredentials(t, h.url, "jiaxing-hrss", clientSecretOf("jiaxing-hrss"), attackerIP); r.status != http.StatusTooManyRequests {
		t.Fatalf("the attacked client from the attacker's address: %d %v, want 429", r.status, r.body)
	}
	// Made-up client ids share one bucket per address, not one each.
	for i := range 25 {
		r := clientCredentials(t, h.url, fmt.Sprintf("made-up-%d", i), "x", bystanderIP)
		if want := http.StatusUnauthorized; i >= 20 {
			want = http.StatusTooManyRequests
			if r.status != want {
				t.Fatalf("made-up client %d: %d, want %d", i, r.status, want)
			}
		} else if r.status != want {
			t.Fatalf("made-up client %d: %d, want %d", i, r.status, want)
		}
	}
}

// Two replicas on one Redis keep one count for the shared classes: the burst of failures is
// spent across both, and the sign_in burst too.
func TestAttackLimitsHoldAcrossReplicas(t *testing.T) {
	t.Parallel()
	store := testenv.Redis(t)
	cfg := devConfig(t, behindProxy(func(r *config.RateLimits) {
		slowFailures(r)
		r.SignIn = config.RateLimit{Rate: 1, Per: config.Duration(time.Hour), Burst: 4}
	}))
	replicas := []*harness{start(t, cfg, WithStore(store)), start(t, cfg, WithStore(store))}
	for i := range 20 {
		r := clientCredentials(t, replicas[i%2].url, "jiaxing-hrss", "wrong", attackerIP)
		if r.status != http.StatusUnauthorized {
			t.Fatalf("failure %d of the burst on replica %d: %d %v", i, i%2, r.status, r.body)
		}
	}
	for i, h := range replicas {
		if r := clientCredentials(t, h.url, "jiaxing-hrss", "wrong", attackerIP); r.status != http.StatusTooManyRequests {
			t.Fatalf("replica %d after the burst was spent on both: %d %v", i, r.status, r.body)
		}
	}
	for i := range 4 {
		r := replicas[i%2].post(map[string]any{"query": `mutation { signInWithIdToken(app: "zheliban", idToken: "x") { accessToken } }`},
			"X-Forwarded-For", attackerIP)
		if r.code() == "RATE_LIMITED" {
			t.Fatalf("sign-in %d of the burst was refused: %s", i, r.Raw)
		}
	}
	for i, h := range replicas {
		r := h.post(map[string]any{"query": `mutation { signInWithIdToken(app: "zheliban", idToken: "x") { accessToken } }`},
			"X-Forwarded-For", attackerIP)
		wantRateLimited(t, r, fmt.Sprintf("sign-in on replica %d", i))
	}
}

// Every sign-in mutation counts against one per-IP budget; past it each answers RATE_LIMITED,
// and another address is not affected.
func TestAttackSignInIsLimitedPerIP(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, behindProxy(func(r *config.RateLimits) {
		r.SignIn = config.RateLimit{Rate: 1, Per: config.Duration(time.Hour), Burst: 4}
	}))
	ops := []struct{ name, query string }{
		{"beginSignIn", `mutation { beginSignIn(app: "zheliban", redirectUri: "https://nowhere.example/cb") { state } }`},
		{"completeSignIn", `mutation { completeSignIn(state: "guess", code: "guess") { accessToken } }`},
		{"signInWithIdToken", `mutation { signInWithIdToken(app: "zheliban", idToken: "guess") { accessToken } }`},
		{"linkAccount", `mutation { linkAccount(app: "zheliban", idToken: "guess") { id } }`},
	}
	for _, op := range ops {
		if r := h.post(map[string]any{"query": op.query}, "X-Forwarded-For", attackerIP); r.code() == "RATE_LIMITED" {
			t.Fatalf("%s within the burst: %s", op.name, r.Raw)
		}
	}
	for _, op := range ops {
		wantRateLimited(t, h.post(map[string]any{"query": op.query}, "X-Forwarded-For", attackerIP), op.name+" past the burst")
	}
	if r := h.post(map[string]any{"query": ops[0].query}, "X-Forwarded-For", bystanderIP); r.code() == "RATE_LIMITED" {
		t.Fatalf("another address was refused: %s", r.Raw)
	}
	if n := rateLimited(t, h, "sign_in"); n != len(ops) {
		t.Errorf("tongban_rate_limited_total{class=sign_in} = %d, want %d", n, len(ops))
	}
}

// Ticket guesses at /oauth2/authorize: past the per-IP burst, 429 with Retry-After and an
// OAuth JSON error, before anything of the request is looked at.
func TestAttackAuthorizeIsLimitedPerIP(t *testing.T) {
	t.Parallel()
	h := start(t, devConfig(t, behindProxy(func(r *config.RateLimits) {
		r.Authorize = config.RateLimit{Rate: 1, Per: config.Duration(time.Hour), Burst: 3}
	})))
	guess := "/oauth2/authorize?client_id=suishenban&response_type=code&login_hint=guess"
	for i := range 3 {
		if r := h.send(http.MethodGet, guess, "", "X-Forwarded-For", attackerIP); r.Status == http.StatusTooManyRequests {
			t.Fatalf("guess %d within the burst was refused", i)
		}
	}
	r := h.send(http.MethodGet, guess, "", "X-Forwarded-For", attackerIP)
	if r.Status != http.StatusTooManyRequests || !strings.Contains(r.Raw, `"error":"temporarily_unavailable"`) {
		t.Fatalf("past the burst: %d %s", r.Status, r.Raw)
	}
	wantRetryAfter(t, r.Header.Get("Retry-After"), 3600)
	if r := h.send(http.MethodGet, guess, "", "X-Forwarded-For", bystanderIP); r.Status == http.StatusTooManyRequests {
		t.Fatal("another address was refused")
	}
}

// Anonymous callers are limited per IP, with or without a made-up token; a session has its own
// budget, so a signed-in person behind the same NAT is not refused with the anonymous flood.
func TestAttackAnonymousAndSessionLimits(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, behindProxy(func(r *config.RateLimits) {
		r.GraphQLAnonymous = config.RateLimit{Rate: 1, Per: config.Duration(time.Hour), Burst: 5}
		r.GraphQLSession = config.RateLimit{Rate: 1, Per: config.Duration(time.Hour), Burst: 3}
	}))
	// The sign-in is an anonymous request too, from loopback (no X-Forwarded-For).
	in := h.signIn("zheliban", "wang-fang")

	apps := map[string]any{"query": `{ apps { id } }`}
	for i := range 5 {
		if r := h.post(apps, "X-Forwarded-For", attackerIP); r.code() != "" {
			t.Fatalf("anonymous request %d within the burst: %s", i, r.Raw)
		}
	}
	wantRateLimited(t, h.post(apps, "X-Forwarded-For", attackerIP), "anonymous past the burst")
	wantRateLimited(t, h.post(apps, "X-Forwarded-For", attackerIP, "Authorization", "Bearer made-up"), "a made-up token")
	wantRateLimited(t, h.post(map[string]any{"query": "{", "extensions": map[string]any{}}, "X-Forwarded-For", attackerIP),
		"an unparsable query (refused before parsing)")

	for i := range 3 {
		if r := h.post(apps, "X-Forwarded-For", attackerIP, "Authorization", "Bearer "+in.access); r.code() != "" {
			t.Fatalf("session request %d from the flooded address: %s", i, r.Raw)
		}
	}
	wantRateLimited(t, h.post(apps, "X-Forwarded-For", attackerIP, "Authorization", "Bearer "+in.access), "session past its burst")
	if r := h.post(apps, "X-Forwarded-For", bystanderIP); r.code() != "" {
		t.Fatalf("another anonymous address: %s", r.Raw)
	}
	if n := rateLimited(t, h, "graphql_anonymous"); n != 3 {
		t.Errorf("tongban_rate_limited_total{class=graphql_anonymous} = %d, want 3", n)
	}
}

// ingestEvents counts events, not calls, per machine client: a call that does not fit is
// refused whole.
func TestAttackIngestIsLimitedByEvents(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, behindProxy(func(r *config.RateLimits) {
		r.Ingest = config.RateLimit{Rate: 1, Per: config.Duration(time.Hour), Burst: 500}
	}))
	platform := machineToken(t, h, "jiaxing-data")
	events := func(from, n int) []map[string]any {
		out := make([]map[string]any, n)
		for i := range out {
			out[i] = map[string]any{"id": fmt.Sprintf("rl-%d", from+i), "type": "a.b", "idNumber": idNumberOf(t, "wang-fang"),
				"occurredAt": time.Now().Format(time.RFC3339)}
		}
		return out
	}
	if r := h.gql(ingest, map[string]any{"ev": events(0, 2)}, platform); r.code() != "" {
		t.Fatalf("2 events: %s", r.Raw)
	}
	wantRateLimited(t, h.gql(ingest, map[string]any{"ev": events(2, 499)}, platform), "499 more events with 498 left")
	if r := h.gql(ingest, map[string]any{"ev": events(2, 1)}, platform); r.code() != "" {
		t.Fatalf("the refused call used up the budget: %s", r.Raw)
	}
}

// previewPushRule with an audience estimate is limited per department, whichever of its
// clients asks; checks without one (the console's, as the owner types) are not counted.
func TestAttackPreviewIsLimitedPerDepartment(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, behindProxy(func(r *config.RateLimits) {
		r.Preview = config.RateLimit{Rate: 1, Per: config.Duration(time.Hour), Burst: 2}
	}))
	const preview = `mutation($in: PushRuleInput!) { previewPushRule(input: $in) { valid audience { status } } }`
	const check = `mutation($in: PushRuleInput!) { previewPushRule(input: $in) { valid problems { message } } }`
	transport := machineToken(t, h, "jiaxing-transport")
	for i := range 25 {
		if r := h.gql(check, map[string]any{"in": elderlyRuleInput()}, transport); len(r.Errors) > 0 {
			t.Fatalf("check %d without an estimate: %s", i, r.Raw)
		}
	}
	for i := range 2 {
		if r := h.gql(preview, map[string]any{"in": elderlyRuleInput()}, transport); r.code() == "RATE_LIMITED" {
			t.Fatalf("preview %d within the burst: %s", i, r.Raw)
		}
	}
	wantRateLimited(t, h.gql(preview, map[string]any{"in": elderlyRuleInput()}, transport), "preview past the burst")
	other := elderlyRuleInput()
	other["serviceId"] = "jx-unemployment-benefit"
	if r := h.gql(preview, map[string]any{"in": other}, machineToken(t, h, "jiaxing-hrss")); r.code() == "RATE_LIMITED" {
		t.Fatalf("another department was refused: %s", r.Raw)
	}
}

// rate_limits.enabled false: nothing is limited and nothing is stored for it.
func TestAttackLimitsDisabled(t *testing.T) {
	t.Parallel()
	store := testenv.Redis(t)
	h := startIdentity(t, behindProxy(func(r *config.RateLimits) {
		r.Enabled = false
		tiny := config.RateLimit{Rate: 1, Per: config.Duration(time.Hour), Burst: 1}
		r.ClientAuthFailures, r.SignIn, r.GraphQLAnonymous, r.Authorize = tiny, tiny, tiny, tiny
	}), WithStore(store))
	for i := range 30 {
		if r := clientCredentials(t, h.url, "jiaxing-hrss", "wrong", attackerIP); r.status != http.StatusUnauthorized {
			t.Fatalf("wrong secret %d with limits off: %d %v", i, r.status, r.body)
		}
		if r := h.post(map[string]any{"query": `mutation { signInWithIdToken(app: "zheliban", idToken: "x") { accessToken } }`},
			"X-Forwarded-For", attackerIP); r.code() == "RATE_LIMITED" {
			t.Fatalf("sign-in %d with limits off: %s", i, r.Raw)
		}
	}
	for _, k := range testenv.Keys(t, store) {
		if strings.HasPrefix(k, store.Prefix+"rl:") {
			t.Fatalf("a rate-limit key with limits off: %s", k)
		}
	}
}

// Each operation on a websocket counts, so one connection cannot run what the same requests
// over HTTP could not.
func TestAttackWebsocketOperationsAreCounted(t *testing.T) {
	t.Parallel()
	h := start(t, devConfig(t, behindProxy(func(r *config.RateLimits) {
		r.GraphQLSession = config.RateLimit{Rate: 1, Per: config.Duration(time.Hour), Burst: 3}
	})))
	// A websocket needs a token; a machine client's operations count per client.
	c, _, err := dialWS(t, h, "", map[string]any{"Authorization": "Bearer " + machineToken(t, h, "jiaxing-data")})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := readWS(t, c); err != nil || m.Type != "connection_ack" {
		t.Fatalf("want connection_ack, got %+v %v", m, err)
	}
	ctx := context.Background()
	for i := range 4 {
		id := strconv.Itoa(i)
		if err := wsjson.Write(ctx, c, map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{"query": "{ apps { id } }"}}); err != nil {
			t.Fatal(err)
		}
		m, err := readWS(t, c)
		if err != nil {
			t.Fatal(err)
		}
		if i < 3 {
			if m.Type != "next" {
				t.Fatalf("operation %d within the burst: %+v", i, m)
			}
			if m, err := readWS(t, c); err != nil || m.Type != "complete" {
				t.Fatalf("want complete, got %+v %v", m, err)
			}
			continue
		}
		// gqlgen answers an operation refused before it ran with next (errors, data null).
		if (m.Type != "error" && m.Type != "next") || !strings.Contains(string(m.Payload), `"code":"RATE_LIMITED"`) || !strings.Contains(string(m.Payload), `"retryAfter":`) {
			t.Fatalf("operation past the burst: %s %s", m.Type, m.Payload)
		}
	}
}
