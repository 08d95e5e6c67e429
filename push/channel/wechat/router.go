package wechat

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/silenceper/wechat/v2/util"
)

// wechatHost is where silenceper's hard-coded URLs point.
const wechatHost = "api.weixin.qq.com"

// silenceper/wechat sends every call through one process-wide client (util.DefaultHTTPClient)
// to hard-coded https://api.weixin.qq.com URLs, and subscribe.Send takes no context. So the
// Endpoint override cannot be a per-Sender client: it is one routing transport, installed
// once for the process, that decides per request where it goes (doc.go):
//
//   - a request whose context carries a route (token and code2Session calls, which this
//     package makes with its own context) follows that route;
//   - a request with an access_token (subscribe.Send) follows the route of the Sender that
//     handed that token to the SDK (learn); tokens are minted by the server that owns them, so
//     two fakes in one process never share one;
//   - anything else goes to WeChat untouched.
//
// Each route also carries its Sender's Timeout, which the transport applies to the request: the
// SDK's own calls have no deadline.
type router struct {
	next http.RoundTripper

	mu     sync.RWMutex
	tokens map[string]tokenRoute
}

// route is where one Sender's calls go: base nil for WeChat itself.
type route struct {
	base    *url.URL
	timeout time.Duration
}

type tokenRoute struct {
	r     *route
	until time.Time // when the entry may be pruned: past any token's lifetime (2 h)
}

// routeLife outlives WeChat's 7200 s tokens, so a token in use is never pruned.
const routeLife = 3 * time.Hour

// pruneAt is the table size above which learning prunes expired entries.
const pruneAt = 1024

var (
	installOnce sync.Once
	theRouter   *router
)

// installRouter makes the routing transport silenceper's client, once per process. The
// router's own deadline bounds each call; the client's Timeout is a backstop for a route-less
// request.
func installRouter() *router {
	installOnce.Do(func() {
		theRouter = &router{next: http.DefaultTransport, tokens: make(map[string]tokenRoute)}
		util.DefaultHTTPClient = &http.Client{Transport: theRouter, Timeout: time.Minute}
	})
	return theRouter
}

type routeKey struct{}

// withRoute tags ctx so that the SDK's requests made with it follow r.
func withRoute(ctx context.Context, r *route) context.Context {
	return context.WithValue(ctx, routeKey{}, r)
}

// learn routes requests carrying token along r.
func (rt *router) learn(token string, r *route) {
	now := time.Now()
	rt.mu.RLock()
	cur, ok := rt.tokens[token]
	rt.mu.RUnlock()
	if ok && cur.r == r && cur.until.Sub(now) > routeLife/2 {
		return
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if len(rt.tokens) >= pruneAt {
		for t, e := range rt.tokens {
			if now.After(e.until) {
				delete(rt.tokens, t)
			}
		}
	}
	rt.tokens[token] = tokenRoute{r: r, until: now.Add(routeLife)}
}

func (rt *router) lookup(req *http.Request) *route {
	if r, ok := req.Context().Value(routeKey{}).(*route); ok {
		return r
	}
	if req.URL.Host != wechatHost {
		return nil
	}
	tok := req.URL.Query().Get("access_token")
	if tok == "" {
		return nil
	}
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return rt.tokens[tok].r
}

// RoundTrip sends req along its route, bounded by the route's timeout.
func (rt *router) RoundTrip(req *http.Request) (*http.Response, error) {
	r := rt.lookup(req)
	if r == nil {
		return rt.next.RoundTrip(req)
	}
	ctx, cancel := context.WithTimeout(req.Context(), r.timeout)
	out := req.Clone(ctx)
	if r.base != nil && req.URL.Host == wechatHost {
		u := *req.URL
		u.Scheme, u.Host = r.base.Scheme, r.base.Host
		u.Path, u.RawPath = r.base.Path+u.Path, ""
		out.URL, out.Host = &u, ""
	}
	resp, err := rt.next.RoundTrip(out)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelBody ends the request's deadline when the SDK is done reading.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
