package federation

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
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

func TestAddressPolicy(t *testing.T) {
	strict := NewHTTPFetcher(FetchOptions{})
	loop := NewHTTPFetcher(FetchOptions{AllowLoopback: true})
	priv := NewHTTPFetcher(FetchOptions{AllowPrivate: true})
	for addr, want := range map[string][3]bool{ // strict, loopback, private
		"127.0.0.1":       {false, true, false},
		"::1":             {false, true, false},
		"10.1.2.3":        {false, false, true},
		"192.168.1.1":     {false, false, true},
		"172.16.0.1":      {false, false, true},
		"fd00::1":         {false, false, true},
		"169.254.169.254": {false, false, true},
		"100.64.0.1":      {false, false, true},
		"0.0.0.0":         {false, false, true},
		"::ffff:10.0.0.1": {false, false, true},
		"203.0.113.7":     {true, true, true},
		"2001:db8::1":     {true, true, true},
	} {
		a := netip.MustParseAddr(addr)
		got := [3]bool{strict.addrAllowed(a), loop.addrAllowed(a), priv.addrAllowed(a)}
		if got != want {
			t.Errorf("%s: %v, want %v", addr, got, want)
		}
		// The dial-time check refuses what addrAllowed refuses.
		if err := strict.dialControl("tcp", netip.AddrPortFrom(a, 443).String(), nil); (err == nil) != want[0] {
			t.Errorf("dial %s: %v", addr, err)
		}
	}
}
