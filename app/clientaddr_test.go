package app

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/testenv"
)

// The request line's client is the address the rate limits see: behind trusted_proxies, the
// right-most X-Forwarded-For entry that is not a trusted proxy; from a peer that is not a
// trusted proxy, the peer itself, whatever X-Forwarded-For it sends. Each case runs against a
// dev server, from loopback, and reads the line the server logged for its request.
func TestRequestLineNamesTheClientBehindTrustedProxies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		trusted []string
		xff     []string // X-Forwarded-For lines sent
		want    string
	}{
		{name: "behind a trusted proxy", trusted: []string{"127.0.0.1/32"}, xff: []string{"203.0.113.7"}, want: "203.0.113.7"},
		{name: "a single trusted address", trusted: []string{"127.0.0.1"}, xff: []string{"2001:db8::7"}, want: "2001:db8::7"},
		{name: "what the client wrote to the left proves nothing", trusted: []string{"127.0.0.0/8", "10.0.0.0/8"},
			xff: []string{"198.51.100.66, 203.0.113.7, 10.1.2.3"}, want: "203.0.113.7"},
		{name: "across several header lines", trusted: []string{"127.0.0.0/8", "10.0.0.0/8"},
			xff: []string{"198.51.100.66", "203.0.113.7:4711", "10.1.2.3"}, want: "203.0.113.7"},
		{name: "an unreadable entry stops at the last trusted hop", trusted: []string{"127.0.0.0/8", "10.0.0.0/8"},
			xff: []string{"203.0.113.7, not-an-address, 10.1.2.3"}, want: "10.1.2.3"},
		{name: "a trusted proxy without the header", trusted: []string{"127.0.0.1/32"}, want: "127.0.0.1"},
		{name: "an untrusted peer's header is ignored", trusted: []string{"10.0.0.0/8"}, xff: []string{"203.0.113.7"}, want: "127.0.0.1"},
		{name: "no trusted_proxies: the header is ignored", xff: []string{"203.0.113.7"}, want: "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, devConfig(t, func(c *config.Config) { c.TrustedProxies = tc.trusted }))
			path := fmt.Sprintf("/client-probe-%d", time.Now().UnixNano())
			req, err := http.NewRequest(http.MethodGet, h.url+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			var line map[string]any
			testenv.Eventually(t, 5*time.Second, func() bool {
				line = requestLine(t, h.logs.String(), path)
				return line != nil
			}, "the request's line in the log")
			if line["client"] != tc.want {
				t.Errorf("client = %v, want %s; line %v", line["client"], tc.want, line)
			}
		})
	}
}

// requestLine finds the "http request" line logged for path in a JSON log.
func requestLine(t *testing.T, logs, path string) map[string]any {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if m["msg"] == "http request" && m["path"] == path {
			return m
		}
	}
	return nil
}
