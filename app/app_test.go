package app

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/testenv"
)

func TestAppsQueryListsConfiguredApps(t *testing.T) {
	t.Parallel()
	h := start(t, devConfig(t, nil))
	r := h.query(`{ apps { id name region canSignIn canReceiveSwitch } }`)
	if r.Status != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("status %d, errors %v", r.Status, r.Errors)
	}
	apps, _ := r.Data["apps"].([]any)
	if len(apps) != 3 {
		t.Fatalf("apps = %v, want the three dev apps", r.Data["apps"])
	}
	first := apps[0].(map[string]any)
	if first["id"] != "zheliban" || first["name"] != "浙里办" || first["canSignIn"] != true || first["canReceiveSwitch"] != true {
		t.Errorf("first app = %v", first)
	}
}

func TestMeIsNullWithoutAValidSession(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	in := h.signIn("zheliban", "wang-fang")
	token := in.access
	tests := []struct {
		name, header string
		wantID       any
	}{
		{"no authorization header", "", nil},
		{"not a bearer scheme", "Basic " + token, nil},
		{"unknown token", "Bearer tba_" + strings.Repeat("A", 22+43), nil},
		{"malformed token", "Bearer nonsense", nil},
		{"valid session", "Bearer " + token, in.person},
		{"scheme is case-insensitive", "bearer " + token, in.person},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r gqlResponse
			if tt.header == "" {
				r = h.query(`{ me { id } }`)
			} else {
				r = h.query(`{ me { id } }`, "Authorization", tt.header)
			}
			if len(r.Errors) > 0 {
				t.Fatalf("errors: %v", r.Errors)
			}
			if tt.wantID == nil {
				if r.Data["me"] != nil {
					t.Fatalf("me = %v, want null", r.Data["me"])
				}
				return
			}
			me, _ := r.Data["me"].(map[string]any)
			if me["id"] != tt.wantID {
				t.Fatalf("me = %v, want id %v", r.Data["me"], tt.wantID)
			}
		})
	}
}

func TestLivenessAndReadinessFollowRedis(t *testing.T) {
	t.Parallel()
	store := testenv.Embedded(t) // the only store a test may stop
	h := start(t, devConfig(t, nil), WithStore(store))

	if code, _ := h.get("/healthz/live"); code != http.StatusOK {
		t.Fatalf("live = %d", code)
	}
	if code, body := h.get("/healthz/ready"); code != http.StatusOK {
		t.Fatalf("ready with redis up = %d %s", code, body)
	}
	store.Embedded.Close()
	code, body := h.get("/healthz/ready")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "redis") {
		t.Fatalf("ready with redis down = %d %s, want 503 naming redis", code, body)
	}
	if code, _ := h.get("/healthz/live"); code != http.StatusOK {
		t.Fatalf("live must not depend on redis, got %d", code)
	}
	if err := testenv.Restart(store); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body = h.get("/healthz/ready")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ready after redis came back = %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		mutate   func(*config.Config)
		query    string
		wantCode string
	}{
		{"deeper than the depth limit", func(c *config.Config) { c.GraphQL.DepthLimit = 1 },
			`{ me { id } }`, "DEPTH_LIMIT_EXCEEDED"},
		{"depth counted through fragments", func(c *config.Config) { c.GraphQL.DepthLimit = 1 },
			`query { ...M } fragment M on Query { me { ...P } } fragment P on Person { id }`, "DEPTH_LIMIT_EXCEEDED"},
		{"over the complexity limit", func(c *config.Config) { c.GraphQL.ComplexityLimit = 5 },
			`{ apps { id name region canSignIn canReceiveSwitch } }`, "COMPLEXITY_LIMIT_EXCEEDED"},
		{"one thousand aliases", nil, thousandAliases(), "BAD_USER_INPUT"},
		{"over the parser token limit", func(c *config.Config) { c.GraphQL.TokenLimit = 20 },
			`{ apps { id name region canSignIn canReceiveSwitch } a: apps { id } b: apps { id } }`, "BAD_USER_INPUT"},
		{"introspection off", func(c *config.Config) { c.GraphQL.Introspection = false },
			`{ __schema { queryType { name } } }`, "FORBIDDEN"},
		{"introspection of one type off", func(c *config.Config) { c.GraphQL.Introspection = false },
			`{ __type(name: "App") { name } }`, "FORBIDDEN"},
		{"syntax error", nil, `{ apps { id `, "BAD_USER_INPUT"},
		{"unknown field", nil, `{ nope }`, "BAD_USER_INPUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, devConfig(t, tt.mutate))
			r := h.query(tt.query)
			if r.code() != tt.wantCode {
				t.Fatalf("code = %q (%s), want %s; body %s", r.code(), r.message(), tt.wantCode, r.Raw)
			}
			if r.Data["apps"] != nil || r.Data["me"] != nil {
				t.Fatalf("a rejected operation must not execute: %s", r.Raw)
			}
		})
	}
}

func thousandAliases() string {
	var b strings.Builder
	b.WriteString("{")
	for i := range 1000 {
		fmt.Fprintf(&b, " a%d: apps { id }", i)
	}
	b.WriteString(" }")
	return b.String()
}

func TestIntrospectionOnInDevOnly(t *testing.T) {
	t.Parallel()
	dev := start(t, devConfig(t, nil))
	if r := dev.query(`{ __schema { queryType { name } } }`); len(r.Errors) > 0 {
		t.Fatalf("dev introspection: %v", r.Errors)
	}
	prod := start(t, devConfig(t, func(c *config.Config) { c.GraphQL.Introspection = false }))
	if r := prod.query(`{ __typename apps { __typename id } }`); len(r.Errors) > 0 {
		t.Fatalf("__typename must stay allowed: %v", r.Errors)
	}
}

func TestOversizedBodyIs413(t *testing.T) {
	t.Parallel()
	h := start(t, devConfig(t, func(c *config.Config) { c.GraphQL.MaxBodyBytes = 1024 }))
	big := `{"query":"{ apps { id } }","variables":{"pad":"` + strings.Repeat("x", 2048) + `"}}`
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			var body io.Reader = strings.NewReader(big)
			if chunked {
				body = io.MultiReader(strings.NewReader(big)) // unknown length: sent chunked
			}
			req, _ := http.NewRequest(http.MethodPost, h.url+"/graphql", body)
			req.Header.Set("Content-Type", "application/json")
			r := h.do(req)
			if r.Status != http.StatusRequestEntityTooLarge || r.code() != "BAD_USER_INPUT" {
				t.Fatalf("status %d code %q, want 413 BAD_USER_INPUT", r.Status, r.code())
			}
		})
	}
	if r := h.query(`{ apps { id } }`); r.Status != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("a small body after a rejected one: %d %v", r.Status, r.Errors)
	}
}

func TestCSRFAndMethods(t *testing.T) {
	t.Parallel()
	h := start(t, devConfig(t, nil))
	q := url.QueryEscape(`{ apps { id } }`)
	form := "query=" + q
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		header     []string
		wantStatus int
		wantCode   string
	}{
		{"form-encoded post without a preflight header", "POST", "/graphql", form,
			[]string{"Content-Type", "application/x-www-form-urlencoded"}, 400, "BAD_USER_INPUT"},
		{"text/plain post", "POST", "/graphql", `{"query":"{ apps { id } }"}`,
			[]string{"Content-Type", "text/plain"}, 400, "BAD_USER_INPUT"},
		{"multipart post", "POST", "/graphql", "--x--",
			[]string{"Content-Type", "multipart/form-data; boundary=x"}, 400, "BAD_USER_INPUT"},
		{"post without content type", "POST", "/graphql", `{"query":"{ apps { id } }"}`, nil, 400, "BAD_USER_INPUT"},
		{"get without a preflight header", "GET", "/graphql?query=" + q, "", nil, 400, "BAD_USER_INPUT"},
		{"get with a mutation (refused by validation until the schema has mutations; graph/limits_test.go covers the GET guard itself)", "GET", "/graphql?query=" + url.QueryEscape(`mutation { x }`), "",
			[]string{"Apollo-Require-Preflight", "true"}, 0, "BAD_USER_INPUT"},
		{"get query with a preflight header", "GET", "/graphql?query=" + q, "",
			[]string{"Apollo-Require-Preflight", "true"}, 200, ""},
		{"json post", "POST", "/graphql", `{"query":"{ apps { id } }"}`,
			[]string{"Content-Type", "application/json; charset=utf-8"}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.send(tt.method, tt.path, tt.body, tt.header...)
			if tt.wantStatus != 0 && r.Status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.Status, tt.wantStatus, r.Raw)
			}
			if r.code() != tt.wantCode {
				t.Fatalf("code = %q, want %q; body %s", r.code(), tt.wantCode, r.Raw)
			}
			if tt.wantCode != "" && r.Data["apps"] != nil {
				t.Fatalf("rejected request executed: %s", r.Raw)
			}
		})
	}
}

func TestAutomaticPersistedQueriesAcrossReplicas(t *testing.T) {
	t.Parallel()
	store := testenv.Redis(t)
	a := start(t, devConfig(t, nil), WithStore(store))
	b := start(t, devConfig(t, nil), WithStore(store)) // a second replica on the same Redis

	query := `query AppIDs { apps { id } }`
	sum := sha256.Sum256([]byte(query))
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}

	if r := a.post(map[string]any{"extensions": ext}); r.code() != "PERSISTED_QUERY_NOT_FOUND" {
		t.Fatalf("hash before registration: code %q, body %s", r.code(), r.Raw)
	}
	if r := a.post(map[string]any{"query": query, "extensions": ext}); len(r.Errors) > 0 || r.Data["apps"] == nil {
		t.Fatalf("registration: %s", r.Raw)
	}
	for name, replica := range map[string]*harness{"same replica": a, "other replica": b} {
		if r := replica.post(map[string]any{"extensions": ext}); len(r.Errors) > 0 || r.Data["apps"] == nil {
			t.Fatalf("%s: hash after registration: %s", name, r.Raw)
		}
	}
	wrong := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": strings.Repeat("0", 64)}}
	if r := a.post(map[string]any{"query": query, "extensions": wrong}); r.code() != "BAD_USER_INPUT" {
		t.Fatalf("query that does not match its hash: code %q, body %s", r.code(), r.Raw)
	}
}

// panickingDirectory is a member-app directory that fails the way a bug would.
type panickingDirectory struct{}

func (panickingDirectory) Apps() []config.App { panic("directory exploded: secret=hunter2") }

func TestResolverPanicIsInternalWithoutInternals(t *testing.T) {
	t.Parallel()
	h := start(t, devConfig(t, nil), WithDirectory(panickingDirectory{}))
	r := h.query(`{ apps { id } }`, "X-Request-Id", "req-panic-1")
	if r.code() != "INTERNAL" {
		t.Fatalf("code = %q, body %s", r.code(), r.Raw)
	}
	if strings.Contains(r.Raw, "exploded") || strings.Contains(r.Raw, "hunter2") || strings.Contains(r.Raw, ".go") {
		t.Fatalf("response leaks internals: %s", r.Raw)
	}
	if r.message() != "internal error" || !strings.Contains(r.Raw, "req-panic-1") {
		t.Fatalf("want message %q and the request id; got %s", "internal error", r.Raw)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "directory exploded") || !strings.Contains(logs, "req-panic-1") {
		t.Fatalf("the panic and its request id must be logged; log:\n%s", logs)
	}
	if r := h.query(`{ me { id } }`); r.Status != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("server must keep serving after a panic: %s", r.Raw)
	}
}

func TestRequestIDEchoedAndLogged(t *testing.T) {
	t.Parallel()
	h := start(t, devConfig(t, nil))
	r := h.query(`{ apps { id } }`, "X-Request-Id", "lb-trace-42")
	if got := r.Header.Get("X-Request-Id"); got != "lb-trace-42" {
		t.Fatalf("echoed id = %q", got)
	}
	r = h.query(`{ apps { id } }`, "X-Request-Id", "bad id with spaces")
	if got := r.Header.Get("X-Request-Id"); got == "" || strings.Contains(got, " ") {
		t.Fatalf("unsafe incoming id must be replaced, got %q", got)
	}
	if !strings.Contains(h.logs.String(), `"request_id":"lb-trace-42"`) {
		t.Fatalf("access log lacks the request id:\n%s", h.logs.String())
	}
}

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	h := start(t, devConfig(t, func(c *config.Config) { c.GraphQL.ComplexityLimit = 3 }))
	h.query(`query ListApps { apps { id } }`)
	h.query(`query Costly { apps { id name region } }`)
	resp, err := http.Get(h.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	for _, want := range []string{
		`tongban_graphql_operations_total{operation="ListApps",outcome="ok",type="query"} 1`,
		`tongban_graphql_operations_total{operation="(other)",outcome="COMPLEXITY_LIMIT_EXCEEDED",type="query"} 1`,
		`tongban_graphql_operation_duration_seconds_count{operation="ListApps",outcome="ok"} 1`,
		`tongban_http_requests_total{code="200",handler="graphql",method="post"} 2`,
		"go_goroutines",
		"process_cpu_seconds_total",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, _ := h.get("/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics must be served only on metrics_listen, public listener gave %d", code)
	}
}

func TestGraphiQLInDevOnly(t *testing.T) {
	t.Parallel()
	dev := start(t, devConfig(t, nil))
	if code, body := dev.get("/"); code != http.StatusOK || !strings.Contains(body, "graphiql") || strings.Contains(body, "https://") {
		t.Fatalf("dev / = %d, or it loads something from another origin:\n%s", code, body)
	}
	if code, _ := dev.get("/dev/assets/graphiql.min.js"); code != http.StatusOK {
		t.Fatalf("dev /dev/assets/graphiql.min.js = %d: GraphiQL's script is not served from the binary", code)
	}
	prod := start(t, devConfig(t, func(c *config.Config) { c.Dev = false; ownSecrets(c) }))
	for _, p := range []string{"/", "/dev/assets/graphiql.min.js"} {
		if code, _ := prod.get(p); code != http.StatusNotFound {
			t.Fatalf("non-dev %s = %d, want 404", p, code)
		}
	}
}

func TestGracefulShutdownFinishesInFlightRequest(t *testing.T) {
	t.Parallel()
	h := start(t, devConfig(t, nil))
	addr := strings.TrimPrefix(h.url, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"query":"{ apps { id } }"}`
	// Send the headers and half the body: the request is in flight when shutdown begins.
	fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		addr, len(body), body[:10])
	// Kept: the server must have taken the connection off the listener before shutdown closes
	// it, and nothing outside the server shows that moment; the assertions below wait on
	// conditions.
	time.Sleep(100 * time.Millisecond)

	stopped := make(chan error, 1)
	go func() { stopped <- h.shutdown() }()
	// New connections are refused once draining has begun.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting after shutdown began")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-stopped:
		t.Fatalf("server stopped (%v) before the in-flight request finished", err)
	default:
	}
	fmt.Fprint(conn, body[10:])
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufioReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request got no response: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "zheliban") {
		t.Fatalf("in-flight response = %d %s", resp.StatusCode, b)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func TestRequestsGqlgenWouldAnswerWithoutACode(t *testing.T) {
	t.Parallel()
	h := start(t, devConfig(t, nil))
	pre := []string{"Apollo-Require-Preflight", "true"}
	json := []string{"Content-Type", "application/json"}
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		header     []string
		wantStatus int
		wantCode   string
	}{
		{"method not allowed", "PUT", "/graphql", `{"query":"{ apps { id } }"}`, json, 405, "BAD_USER_INPUT"},
		{"head", "HEAD", "/graphql?query=%7Bapps%7Bid%7D%7D", "", pre, 405, ""},
		{"json refused as another media type", "POST", "/graphql", `{apps{id}}`,
			[]string{"Apollo-Require-Preflight", "true", "Content-Type", "application/graphql"}, 415, "BAD_USER_INPUT"},
		{"get with variables that are not json", "GET", "/graphql?query=%7Bapps%7Bid%7D%7D&variables=notjson", "", pre, 400, "BAD_USER_INPUT"},
		{"get with extensions that are not json", "GET", "/graphql?query=%7Bapps%7Bid%7D%7D&extensions=%7B", "", pre, 400, "BAD_USER_INPUT"},
		{"get with variables that are json but not an object", "GET", "/graphql?query=%7Bapps%7Bid%7D%7D&variables=5", "", pre, 400, "BAD_USER_INPUT"},
		{"batched array body", "POST", "/graphql", `[{"query":"{ apps { id } }"}]`, json, 400, "BAD_USER_INPUT"},
		{"variables not an object", "POST", "/graphql", `{"query":"{ apps { id } }","variables":"x"}`, json, 400, "BAD_USER_INPUT"},
		{"body is not json", "POST", "/graphql", `{"query":`, json, 400, "BAD_USER_INPUT"},
		{"upgrade to something else", "POST", "/graphql", `{}`, []string{"Upgrade", "h2c"}, 400, "BAD_USER_INPUT"},
		{"unknown path", "GET", "/nope", "", nil, 404, "NOT_FOUND"},
		{"wrong method on a health route", "POST", "/healthz/live", "", nil, 404, "NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.send(tt.method, tt.path, tt.body, tt.header...)
			if r.Status != tt.wantStatus || r.code() != tt.wantCode {
				t.Fatalf("status %d code %q, want %d %q; body %s", r.Status, r.code(), tt.wantStatus, tt.wantCode, r.Raw)
			}
			for _, leak := range []string{"Go value", "Go struct", "RawParams", "map[string]interface", "body:"} {
				if strings.Contains(r.Raw, leak) {
					t.Fatalf("response shows internals (%q): %s", leak, r.Raw)
				}
			}
		})
	}
}

func TestPersistedQueriesStoreOnlyValidQueries(t *testing.T) {
	t.Parallel()
	h := start(t, devConfig(t, nil))
	junk := "this is not graphql " + strings.Repeat("x", 100)
	sum := sha256.Sum256([]byte(junk))
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
	if r := h.post(map[string]any{"query": junk, "extensions": ext}); r.code() != "BAD_USER_INPUT" {
		t.Fatalf("junk query: %s", r.Raw)
	}
	if r := h.post(map[string]any{"extensions": ext}); r.code() != "PERSISTED_QUERY_NOT_FOUND" {
		t.Fatalf("junk must not have been stored; hash-only request gave %s", r.Raw)
	}
	bad := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": strings.Repeat("Z", 100000)}}
	if r := h.post(map[string]any{"extensions": bad}); r.code() != "BAD_USER_INPUT" {
		t.Fatalf("a hash that is not 64 hex digits: %s", r.Raw)
	}
}

func TestSelectionFloodRefusedBeforeValidation(t *testing.T) {
	t.Parallel()
	h := start(t, devConfig(t, nil))
	q := "{" + strings.Repeat(" __typename", 10000) + " }"
	r := h.query(q)
	if r.code() != "BAD_USER_INPUT" || !strings.Contains(r.message(), "fields") {
		t.Fatalf("code %q message %q", r.code(), r.message())
	}
}

func TestShutdownDelayFailsReadinessBeforeClosing(t *testing.T) {
	// Not parallel: it must see readiness fail within the 1 s delay, which other tests' load would blur.
	h := start(t, devConfig(t, func(c *config.Config) { c.ShutdownDelay = config.Duration(time.Second) }))
	stopped := make(chan error, 1)
	go func() { stopped <- h.shutdown() }()
	deadline := time.Now().Add(900 * time.Millisecond)
	for {
		code, _ := h.get("/healthz/ready")
		if code == http.StatusServiceUnavailable {
			break // draining is visible while the listener still answers
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness never failed during the shutdown delay (last %d)", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

// gqlgen's complexity walks a fragment again at every spread: a kilobyte of fragments, each
// spreading the next twice, cost it seconds. Ours counts each fragment once and refuses first.
func TestExponentialFragmentsRefusedBeforeGqlgenWalksThem(t *testing.T) {
	t.Parallel()
	h := start(t, devConfig(t, nil))
	var b strings.Builder
	b.WriteString("query { ...F0 }\n")
	const n = 24
	for i := range n {
		fmt.Fprintf(&b, "fragment F%d on Query { ...F%d ...F%d }\n", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on Query { __typename }\n", n)
	r := h.query(b.String())
	if r.code() != "COMPLEXITY_LIMIT_EXCEEDED" || !strings.Contains(r.message(), "once fragments are expanded") {
		t.Fatalf("code %q message %q", r.code(), r.message())
	}
}
