package graph

import (
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCSRFSafe(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		want    bool
	}{
		// Requests that needed a preflight, or are checked elsewhere.
		{"preflight itself", http.MethodOptions, nil, true},
		{"websocket upgrade", http.MethodGet, map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"}, true},
		{"json body", http.MethodPost, map[string]string{"Content-Type": "application/json"}, true},
		{"json body with charset", http.MethodPost, map[string]string{"Content-Type": "application/json; charset=utf-8"}, true},
		{"json body in upper case", http.MethodPost, map[string]string{"Content-Type": "Application/JSON"}, true},
		{"graphql-response json body", http.MethodPost, map[string]string{"Content-Type": "application/graphql-response+json"}, true},
		// Not a MIME type to a browser either, so it was not sent without a preflight.
		{"media type without subtype", http.MethodPost, map[string]string{"Content-Type": "application"}, true},
		{"json body with PUT", http.MethodPut, map[string]string{"Content-Type": "application/json"}, true},
		{"GET with Apollo-Require-Preflight", http.MethodGet, map[string]string{"Apollo-Require-Preflight": "true"}, true},
		{"GET with X-Apollo-Operation-Name", http.MethodGet, map[string]string{"X-Apollo-Operation-Name": "Me"}, true},
		{"GET with GraphQL-Require-Preflight", http.MethodGet, map[string]string{"GraphQL-Require-Preflight": "1"}, true},
		{"GET with Authorization", http.MethodGet, map[string]string{"Authorization": "Bearer tba_x"}, true},
		{"HEAD with Apollo-Require-Preflight", http.MethodHead, map[string]string{"Apollo-Require-Preflight": "1"}, true},
		{"form body with Apollo-Require-Preflight", http.MethodPost,
			map[string]string{"Content-Type": "text/plain", "Apollo-Require-Preflight": "1"}, true},
		{"form body with Authorization", http.MethodPost,
			map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Bearer tba_x"}, true},

		// Requests a hostile page can send without a preflight.
		{"GET without preflight header", http.MethodGet, nil, false},
		{"GET with json content type but no preflight header", http.MethodGet, map[string]string{"Content-Type": "application/json"}, false},
		{"HEAD without preflight header", http.MethodHead, nil, false},
		{"GET with blank preflight header", http.MethodGet, map[string]string{"Apollo-Require-Preflight": "  "}, false},
		{"GET with empty upgrade header", http.MethodGet, map[string]string{"Upgrade": ""}, false},
		{"POST without content type", http.MethodPost, nil, false},
		{"text/plain body", http.MethodPost, map[string]string{"Content-Type": "text/plain"}, false},
		{"text/plain body with charset", http.MethodPost, map[string]string{"Content-Type": "text/plain; charset=utf-8"}, false},
		{"text/plain body in upper case", http.MethodPost, map[string]string{"Content-Type": "TEXT/PLAIN"}, false},
		{"urlencoded form body", http.MethodPost, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, false},
		{"multipart form body with boundary", http.MethodPost, map[string]string{"Content-Type": "multipart/form-data; boundary=xyz"}, false},
		{"text/plain body with PUT", http.MethodPut, map[string]string{"Content-Type": "text/plain"}, false},
		{"media type with broken parameter", http.MethodPost, map[string]string{"Content-Type": "application/json; charset"}, false},
		{"media type of only parameters", http.MethodPost, map[string]string{"Content-Type": "; charset=utf-8"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/graphql", nil)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			if got := csrfSafe(r); got != tt.want {
				t.Errorf("csrfSafe(%s %v) = %v, want %v", tt.method, tt.headers, got, tt.want)
			}
		})
	}
}

// The Content-Type header is outside input; whatever it holds, a request without a preflight
// header is safe only when its media type parses and is not one a form can send.
func FuzzCSRFSafe(f *testing.F) {
	for _, seed := range []string{
		"application/json", "text/plain; charset=utf-8", "multipart/form-data; boundary=x",
		"Application/X-WWW-Form-Urlencoded", "", ";", "text/plain;;", "a/b; c=\"d", "\x00/\xff",
	} {
		f.Add(http.MethodPost, seed)
	}
	f.Add(http.MethodGet, "application/json")
	f.Fuzz(func(t *testing.T, method, contentType string) {
		r := &http.Request{Method: method, Header: http.Header{}}
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		got := csrfSafe(r)
		if method == http.MethodOptions {
			if !got {
				t.Fatal("OPTIONS refused")
			}
			return
		}
		if method == http.MethodGet || method == http.MethodHead {
			if got {
				t.Fatalf("%s without a preflight header allowed", method)
			}
			return
		}
		mt, _, err := mime.ParseMediaType(contentType)
		want := err == nil && !simpleContentTypes[strings.ToLower(mt)]
		if got != want {
			t.Fatalf("csrfSafe(%s, %q) = %v, want %v", method, contentType, got, want)
		}
	})
}
