package console

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Accept-Encoding", "identity")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// The page, its script and style are served; the mode says whether to offer the dev owners,
// and is never cached (a binary's mode does not change, but a proxy must not mix two servers').
func TestHandlerServesThePageAndItsMode(t *testing.T) {
	for _, dev := range []bool{true, false} {
		h := Handler(dev)
		rec := get(t, h, "/console/mode.json")
		body, _ := io.ReadAll(rec.Body)
		var mode struct {
			Dev    bool
			Owners []struct{ Client, Secret string }
		}
		if err := json.Unmarshal(body, &mode); err != nil {
			t.Fatalf("mode.json %q: %v", body, err)
		}
		if mode.Dev != dev || dev != (len(mode.Owners) == 2) || rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("dev %v: mode.json %d %q %v", dev, rec.Code, body, rec.Header())
		}
	}
	h := Handler(false)
	for path, want := range map[string]string{
		"/console/":            `<script type="module" src="console.js">`,
		"/console/console.js":  "previewPushRule",
		"/console/console.css": ".squiggle",
	} {
		rec := get(t, h, path)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET %s: %d, body without %q", path, rec.Code, want)
		}
		csp := rec.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "connect-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || rec.Header().Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: headers %v", path, rec.Header())
		}
	}
	if rec := get(t, h, "/console/nope.js"); rec.Code != http.StatusNotFound {
		t.Errorf("an unknown file: %d", rec.Code)
	}
	req := httptest.NewRequest(http.MethodPost, "/console/mode.json", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST mode.json: %d", rec.Code)
	}
}

// Outside dev mode nothing the console serves names a dev secret, even hidden.
func TestProductionServesNoDevSecret(t *testing.T) {
	h := Handler(false)
	for _, path := range []string{"/console/", "/console/console.js", "/console/console.css", "/console/mode.json"} {
		if body := get(t, h, path).Body.String(); strings.Contains(body, "-secret") {
			t.Errorf("%s names a dev secret", path)
		}
	}
}
