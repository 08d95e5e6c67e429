package graph

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/metrics"
	"github.com/tongban/tongban/internal/testenv"
)

// FuzzHandlerPOST sends arbitrary bodies to the GraphQL endpoint. Whatever arrives, the answer
// is a GraphQL response whose every error carries a contract code, and none quotes Go.
func FuzzHandlerPOST(f *testing.F) {
	cfg, err := config.Load("", nil)
	if err != nil {
		f.Fatal(err)
	}
	h := NewHandler(&Resolver{Directory: cfg}, Options{
		Introspection: false, ComplexityLimit: 50, DepthLimit: 4, AliasLimit: 5, TokenLimit: 500, SelectionLimit: 50,
		PublicURL: "http://localhost:8080", Store: testenv.Redis(f), Metrics: metrics.New(prometheus.NewRegistry()),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	for _, seed := range []string{
		`{"query":"{ apps { id } }"}`,
		`{"query":"query Q($x: Int) { apps { id } }","variables":{"x":"nope"}}`,
		`[{"query":"{ apps { id } }"}]`,
		`{"query":"{ __schema { types { name } } }"}`,
		`{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"00"}}}`,
		`{"query":"mutation { x }"}`,
		`{"query":"{ a: apps { id } b: apps { id } c: apps { id } d: apps { id } e: apps { id } f: apps { id } }"}`,
		`{"query":` + strings.Repeat("[", 5000),
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		var resp struct {
			Errors []struct {
				Message    string         `json:"message"`
				Extensions map[string]any `json:"extensions"`
			} `json:"errors"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatalf("status %d: the answer is not JSON: %q", w.Code, w.Body.String())
		}
		for _, e := range resp.Errors {
			code, _ := e.Extensions["code"].(string)
			if !contractCodes[Code(code)] {
				t.Fatalf("error without a contract code: %q %v", e.Message, e.Extensions)
			}
			for _, leak := range []string{"Go value", "Go struct", "RawParams", "interface {}", "body:"} {
				if strings.Contains(e.Message, leak) {
					t.Fatalf("error shows internals: %q", e.Message)
				}
			}
		}
		if len(resp.Errors) == 0 && w.Code != http.StatusOK {
			t.Fatalf("status %d without an error", w.Code)
		}
	})
}
