package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
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
	if resp.StatusCode == http.StatusOK && strings.HasSuffix(req.URL.Path, sendPath) {
		resp.Body = checkSendAnswer(resp.Body)
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// sendPath ends subscribeMessage.send's URL.
const sendPath = "/cgi-bin/message/subscribe/send"

// maxAnswer bounds the answer of a send the router reads: WeChat's is a few dozen bytes.
const maxAnswer = 64 << 10

// checkSendAnswer makes an answer without an errcode ("{}", "null" from a proxy) read as not
// JSON: the SDK takes any JSON without one for a success, and a message must not count as
// sent on an answer WeChat never gives. The body is replaced by an empty one, which the SDK
// fails to decode (bad_answer).
func checkSendAnswer(body io.ReadCloser) io.ReadCloser {
	data, err := io.ReadAll(io.LimitReader(body, maxAnswer+1))
	_ = body.Close()
	var fields map[string]json.RawMessage
	if err != nil || len(data) > maxAnswer || json.Unmarshal(data, &fields) != nil || fields["errcode"] == nil {
		if err != nil {
			return errBody{err}
		}
		return io.NopCloser(bytes.NewReader(nil))
	}
	return io.NopCloser(bytes.NewReader(data))
}

// errBody reports a read error to the SDK as its own read would have.
type errBody struct{ err error }

func (e errBody) Read([]byte) (int, error) { return 0, e.err }
func (e errBody) Close() error             { return nil }

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
