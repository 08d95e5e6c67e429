package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// requestTimeout bounds one request the suite sends. It is far above what any answer should
// take, so that a hang is measured as a long request instead of being cut short; a request that
// reaches it counts as an error of its own kind ("timeout").
const requestTimeout = 15 * time.Second

// gqlError is one GraphQL error as the contract shapes it.
type gqlError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code   string `json:"code"`
		Reason string `json:"reason"`
	} `json:"extensions"`
}

// answer is what one request came back with: the GraphQL data, or why there is none. Code is
// the first error's extensions.code, "TRANSPORT" when there was no HTTP answer, "TIMEOUT" when
// the suite gave up waiting, "HTTP_<status>" for an answer that is not GraphQL.
type answer struct {
	Data    json.RawMessage
	Code    string
	Reason  string
	Message string
	Took    time.Duration
}

func (a answer) ok() bool { return a.Code == "" }

func (a answer) String() string {
	if a.ok() {
		return "ok"
	}
	s := a.Code
	if a.Reason != "" {
		s += "/" + a.Reason
	}
	return s
}

// api talks to one Tongban instance as an app, a data platform and a service owner would.
type api struct {
	base string // http://127.0.0.1:port
	http *http.Client
}

func newAPI(base string) *api {
	return &api{base: base, http: &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
		},
	}}
}

// graphql posts one operation; bearer is the Authorization token, "" for none.
func (c *api) graphql(ctx context.Context, bearer, query string, vars map[string]any) answer {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return answer{Code: "ENCODE", Message: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/graphql", bytes.NewReader(body))
	if err != nil {
		return answer{Code: "ENCODE", Message: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	took := time.Since(start)
	if err != nil {
		code := "TRANSPORT"
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			code = "TIMEOUT"
		}
		return answer{Code: code, Message: err.Error(), Took: took}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	took = time.Since(start)
	if err != nil {
		return answer{Code: "TRANSPORT", Message: err.Error(), Took: took}
	}
	var out struct {
		Data   json.RawMessage `json:"data"`
		Errors []gqlError      `json:"errors"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return answer{Code: fmt.Sprintf("HTTP_%d", resp.StatusCode), Message: excerpt(raw), Took: took}
	}
	if len(out.Errors) > 0 {
		e := out.Errors[0]
		code := e.Extensions.Code
		if code == "" {
			code = "UNKNOWN"
		}
		return answer{Data: out.Data, Code: code, Reason: e.Extensions.Reason, Message: e.Message, Took: took}
	}
	return answer{Data: out.Data, Took: took}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// session is what a sign-in gave the suite.
type session struct {
	Access string
	Person string
	Who    string // the citizen's key at the suite's provider
}

const signInQuery = `mutation($app: ID!, $t: String!, $n: String) { signInWithIdToken(app: $app, idToken: $t, nonce: $n) { accessToken person { id } } }`

func (c *api) signIn(ctx context.Context, app, idToken, nonce string) (session, answer) {
	a := c.graphql(ctx, "", signInQuery, map[string]any{"app": app, "t": idToken, "n": nonce})
	if !a.ok() {
		return session{}, a
	}
	var d struct {
		S struct {
			AccessToken string `json:"accessToken"`
			Person      struct {
				ID string `json:"id"`
			} `json:"person"`
		} `json:"signInWithIdToken"`
	}
	if err := json.Unmarshal(a.Data, &d); err != nil || d.S.AccessToken == "" {
		a.Code, a.Message = "BAD_ANSWER", "signInWithIdToken answered without an access token"
		return session{}, a
	}
	return session{Access: d.S.AccessToken, Person: d.S.Person.ID}, a
}

// me asks who the session is; a valid session answers with its person, an ended one with null
// ("NO_SESSION" here, which the contract does not call an error but the suite does).
func (c *api) me(ctx context.Context, access string) answer {
	a := c.graphql(ctx, access, `{ me { id } }`, nil)
	if !a.ok() {
		return a
	}
	var d struct {
		Me *struct {
			ID string `json:"id"`
		} `json:"me"`
	}
	if err := json.Unmarshal(a.Data, &d); err != nil || d.Me == nil {
		a.Code = "NO_SESSION"
	}
	return a
}

// event is one citizen event as ingestEvents takes it.
type event struct {
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	IDNumber   string         `json:"idNumber,omitempty"`
	App        string         `json:"app,omitempty"`
	Subject    string         `json:"subject,omitempty"`
	OccurredAt string         `json:"occurredAt"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

type ingestResult struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Rejected   []struct {
		Index   int    `json:"index"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"rejected"`
}

const ingestQuery = `mutation($e: [CitizenEventInput!]!) { ingestEvents(events: $e) { accepted duplicates rejected { index code message } } }`

func (c *api) ingest(ctx context.Context, token string, evs []event) (ingestResult, answer) {
	a := c.graphql(ctx, token, ingestQuery, map[string]any{"e": evs})
	var d struct {
		R ingestResult `json:"ingestEvents"`
	}
	if a.ok() {
		if err := json.Unmarshal(a.Data, &d); err != nil {
			a.Code, a.Message = "BAD_ANSWER", err.Error()
		}
	}
	return d.R, a
}

// ready asks /healthz/ready once; status 0 means no HTTP answer.
func (c *api) ready(ctx context.Context, timeout time.Duration) (status int, took time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/healthz/ready", nil)
	if err != nil {
		return 0, 0
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, time.Since(start)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start)
}

// readyBody is /healthz/ready's answer, for waiting until the suite's provider is discovered
// (it is listed under degraded until then).
func (c *api) readyBody(ctx context.Context) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/healthz/ready", nil)
	if err != nil {
		return 0, ""
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b)
}

// machineToken is a machine client's access token from /oauth2/token (client_credentials),
// renewed when half its lifetime is gone.
type machineToken struct {
	client, secret, scope string

	mu      sync.Mutex
	token   string
	renewAt time.Time
}

func (m *machineToken) get(ctx context.Context, c *api) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.token != "" && time.Now().Before(m.renewAt) {
		return m.token, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {m.scope}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(m.client, m.secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("token for %s: %w", m.client, err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&out); err != nil || out.AccessToken == "" {
		return "", fmt.Errorf("token for %s: HTTP %d %s", m.client, resp.StatusCode, out.Error)
	}
	m.token = out.AccessToken
	m.renewAt = time.Now().Add(time.Duration(out.ExpiresIn) * time.Second / 2)
	return m.token, nil
}

// forget drops the token, so that the next get asks for a new one (after UNAUTHENTICATED).
func (m *machineToken) forget() {
	m.mu.Lock()
	m.token = ""
	m.mu.Unlock()
}

// setUpPhone switches the person's quiet hours off and registers their devices, one alias per
// device in one operation (mutations run in order, so each registration is whole before the
// next). At most 25 devices: the operation stays under graphql.alias_limit.
func (c *api) setUpPhone(ctx context.Context, access string, tokens []string) answer {
	var b strings.Builder
	b.WriteString(`mutation { prefs: updatePreferences(input: {quietStart: "", quietEnd: ""}) { timeZone }`)
	for i, t := range tokens {
		fmt.Fprintf(&b, " d%d: registerDevice(input: {app: %q, platform: ANDROID, token: %q}) { id }", i, idpApp, t)
	}
	b.WriteString(" }")
	return c.graphql(ctx, access, b.String(), nil)
}
