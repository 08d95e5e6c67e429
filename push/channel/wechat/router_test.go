package wechat

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is the transport under the router: it notes where each request went.
type recorder struct {
	mu   sync.Mutex
	urls []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.urls = append(r.urls, req.URL.String())
	r.mu.Unlock()
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

// The router sends a request by its context's route, else by its access token's, else
// untouched to WeChat; a route keeps the path after its base's prefix.
func TestRouterRoutes(t *testing.T) {
	rec := &recorder{}
	rt := &router{next: rec, tokens: map[string]tokenRoute{}}
	fake, _ := url.Parse("http://127.0.0.1:9999/dev/wechat")
	r := &route{base: fake, timeout: time.Second}
	real := &route{timeout: time.Second}
	rt.learn("TOKEN-A", r)
	rt.learn("TOKEN-REAL", real)

	do := func(ctx context.Context, u string) string {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.urls[len(rec.urls)-1]
	}
	bg := context.Background()
	cases := []struct{ name, got, want string }{
		{"by_context", do(withRoute(bg, r), "https://api.weixin.qq.com/sns/jscode2session?appid=a&js_code=c"),
			"http://127.0.0.1:9999/dev/wechat/sns/jscode2session?appid=a&js_code=c"},
		{"by_token", do(bg, "https://api.weixin.qq.com/cgi-bin/message/subscribe/send?access_token=TOKEN-A"),
			"http://127.0.0.1:9999/dev/wechat/cgi-bin/message/subscribe/send?access_token=TOKEN-A"},
		{"unknown_token_untouched", do(bg, "https://api.weixin.qq.com/cgi-bin/message/subscribe/send?access_token=OTHER"),
			"https://api.weixin.qq.com/cgi-bin/message/subscribe/send?access_token=OTHER"},
		{"real_route_untouched", do(bg, "https://api.weixin.qq.com/cgi-bin/message/subscribe/send?access_token=TOKEN-REAL"),
			"https://api.weixin.qq.com/cgi-bin/message/subscribe/send?access_token=TOKEN-REAL"},
		{"other_host_untouched", do(bg, "https://example.com/x?access_token=TOKEN-A"), "https://example.com/x?access_token=TOKEN-A"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: went to %s, want %s", c.name, c.got, c.want)
		}
	}
}

// The token table stays bounded: expired entries go when it grows.
func TestRouterPrunes(t *testing.T) {
	rt := &router{next: &recorder{}, tokens: map[string]tokenRoute{}}
	r := &route{timeout: time.Second}
	for i := range pruneAt {
		rt.tokens[string(rune(i+0x4e00))] = tokenRoute{r: r, until: time.Now().Add(-time.Second)}
	}
	rt.learn("fresh", r)
	if len(rt.tokens) != 1 {
		t.Fatalf("%d entries after pruning, want 1", len(rt.tokens))
	}
}
