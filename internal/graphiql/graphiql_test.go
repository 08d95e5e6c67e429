package graphiql

import (
	"crypto/sha512"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// The page loads every script and stylesheet from the embedded assets, each matching its
// integrity attribute: nothing comes from another origin, so the page works offline.
func TestPageLoadsEverythingFromTheBinary(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", Page("Tongban", "/graphql", "/dev/assets/"))
	mux.Handle("GET /dev/assets/", Assets("/dev/assets/"))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	page := get(t, srv.URL+"/", http.StatusOK)
	refs := regexp.MustCompile(`(?s)<(?:script|link)\s[^>]*?(?:src|href)="([^"]+)"[^>]*?integrity="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) != 4 {
		t.Fatalf("want 4 scripts and stylesheets with integrity, found %d in:\n%s", len(refs), page)
	}
	if strings.Contains(page, "https://") || strings.Contains(page, "http://") {
		t.Errorf("the page names another origin:\n%s", page)
	}
	for _, ref := range refs {
		url, want := html.UnescapeString(ref[1]), html.UnescapeString(ref[2]) // as a browser reads attributes
		if !strings.HasPrefix(url, "/dev/assets/") {
			t.Errorf("%s is not served from the embedded assets", url)
			continue
		}
		body := get(t, srv.URL+url, http.StatusOK)
		sum := sha512.Sum384([]byte(body))
		if got := "sha384-" + base64.StdEncoding.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: integrity %s, the file hashes to %s", url, want, got)
		}
	}
}

func TestAssetsRefuseWhatIsNotThere(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(Assets("/dev/assets/"))
	defer srv.Close()
	for _, p := range []string{"/dev/assets/nope.js", "/dev/assets/../graphiql.go", "/dev/assets/graphiql.min.js.map"} {
		get(t, srv.URL+p, http.StatusNotFound)
	}
	if lic := get(t, srv.URL+"/dev/assets/LICENSE.graphiql", http.StatusOK); !strings.Contains(lic, "MIT License") {
		t.Errorf("GraphiQL's licence is not served with it: %q", lic)
	}
}

func get(t *testing.T, url string, status int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %s, want %d", url, resp.Status, status)
	}
	return string(b)
}
