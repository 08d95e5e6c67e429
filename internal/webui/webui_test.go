package webui

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSharedServesCompressedModules(t *testing.T) {
	h := Shared("/ui/")
	req := httptest.NewRequest(http.MethodGet, "/ui/gql.js", nil)
	req.Header.Set("Accept-Encoding", "gzip, br")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Encoding") != "gzip" ||
		!strings.Contains(rec.Header().Get("Content-Type"), "javascript") {
		t.Fatalf("GET gql.js: %d %v", rec.Code, rec.Header())
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(zr)
	if !strings.Contains(string(body), "export async function gql(") {
		t.Fatalf("gql.js does not export gql: %.100s", body)
	}
}

func TestFSRefuses(t *testing.T) {
	h := Shared("/ui/")
	for _, tc := range []struct {
		name, method, path string
		want               int
	}{
		{"an unknown file", http.MethodGet, "/ui/nope.js", http.StatusNotFound},
		{"a path climbing out", http.MethodGet, "/ui/../webui.go", http.StatusNotFound},
		{"a write", http.MethodPost, "/ui/gql.js", http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.want {
				t.Fatalf("%s %s: %d, want %d", tc.method, tc.path, rec.Code, tc.want)
			}
		})
	}
}
