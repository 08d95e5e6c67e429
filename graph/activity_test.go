package graph

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/metrics"
	"github.com/tongban/tongban/internal/testenv"
)

// A page of activity costs one per entry it may hold, on top of the fields selected.
func TestActivityComplexityCountsThePageSize(t *testing.T) {
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(&Resolver{Directory: cfg}, Options{
		ComplexityLimit: 60, DepthLimit: 10, AliasLimit: 5, TokenLimit: 500, SelectionLimit: 50,
		PublicURL: "http://localhost:8080", Store: testenv.Redis(t), Metrics: metrics.New(prometheus.NewRegistry()),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	for _, tt := range []struct {
		query string
		code  string
	}{
		{`{ me { activity { edges { cursor node { kind at } } pageInfo { hasNextPage } } } }`, ""},
		{`{ me { activity(first: 50) { edges { cursor } } } }`, ""},
		{`{ me { activity(first: 100) { edges { cursor } } } }`, string(CodeComplexityLimitExceeded)},
	} {
		code, body := operationCode(t, h, tt.query)
		if code != tt.code {
			t.Errorf("%s: code %q, want %q (%s)", tt.query, code, tt.code, body)
		}
	}
}

// operationCode posts query to h and returns the code of its first error ("" for none) and
// the body, for the tests of the limits an operation is refused by.
func operationCode(t *testing.T, h http.Handler, query string) (string, string) {
	t.Helper()
	body, err := json.Marshal(map[string]string{"query": query})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var resp struct {
		Errors []struct {
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	code := ""
	if len(resp.Errors) > 0 {
		code, _ = resp.Errors[0].Extensions["code"].(string)
	}
	return code, w.Body.String()
}
