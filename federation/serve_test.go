package federation

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Statements written by WriteStatement are fetched by HTTPFetcher; errors are §8.9 JSON.
func TestWriteStatementAndError(t *testing.T) {
	key := ecKey(t, "k1")
	raw, err := SignStatement(config("https://member.example", key), key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("sub") == "" {
			WriteStatement(w, raw)
			return
		}
		WriteError(w, "not_found", `no "such" subordinate`)
	}))
	defer srv.Close()
	f := NewHTTPFetcher(FetchOptions{AllowLoopback: true})
	body, err := f.Fetch(context.Background(), srv.URL)
	if err != nil || string(body) != raw {
		t.Fatalf("%v %q", err, body)
	}
	_, err = f.Fetch(context.Background(), srv.URL+"?sub=x")
	if ReasonOf(err) != ReasonFetchFailed {
		t.Fatalf("%v", err)
	}
	rec := httptest.NewRecorder()
	WriteError(rec, "invalid_trust_chain", "x")
	if rec.Code != 400 || rec.Body.String() != `{"error":"invalid_trust_chain","error_description":"x"}` {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}
