package testenv

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The browser helper drives a real page: it reads what a script wrote into the document, and a
// screenshot is a PNG file.
func TestBrowserReadsAPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><title>t</title><p id="out"></p><script>document.getElementById('out').textContent = '通办 ' + (6 * 7)</script>`))
	}))
	defer srv.Close()
	ctx := Browser(t, 60*time.Second)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#out")))
	if err != nil {
		t.Fatal(err)
	}
	if text != "通办 42" {
		t.Fatalf("the page says %q, want 通办 42 (written by its script)", text)
	}
	path := Screenshot(t, ctx, "page")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 8 || string(raw[1:4]) != "PNG" {
		t.Fatalf("%s is not a PNG", path)
	}
}
