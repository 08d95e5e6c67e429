package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/silenceper/wechat/v2/util"

	"github.com/tongban/tongban/internal/redisx"
)

// A mini-program's access token lasts 7200 s, and every fetch of a new one starts the old
// one's last 5 minutes: replicas fetching each their own would keep invalidating each other's.
// So the token lives in Redis, shared, and exactly one holder of a lease fetches it when it is
// absent or near its end; the others use the current one meanwhile, or, when there is none,
// wait briefly for the holder's. Each process keeps the token in memory until it is near its
// end, so a send reads neither Redis nor WeChat for it.
const (
	// tokenMargin is taken off WeChat's expires_in before the token goes into Redis: Redis
	// never offers a token WeChat already counts as expired (latency, clock drift).
	tokenMargin = time.Minute
	// refreshBefore: a token this close to its Redis expiry is refreshed by one holder.
	refreshBefore = 5 * time.Minute
	// tokenPoll is how often a waiting replica looks for the holder's token.
	tokenPoll = 25 * time.Millisecond
	// tokenURL is WeChat's getAccessToken; the router sends it to the Endpoint.
	tokenURL = "https://" + wechatHost + "/cgi-bin/token?grant_type=client_credential&appid=%s&secret=%s"
)

// tokenError is a token that could not be had; Reason is WeChat's errcode, "transport" or
// "bad_answer". It never holds the secret or a token.
type tokenError struct {
	Reason string
	Msg    string
}

func (e *tokenError) Error() string { return "wechat: access token: " + e.Reason + " " + e.Msg }

// tokenSource is one app id's access token, shared through Redis. It is silenceper's
// credential.AccessTokenContextHandle, so any SDK call made through the app's MiniProgram
// uses it too.
type tokenSource struct {
	appID, secret string
	client        redis.UniversalClient
	key           string
	lease         *redisx.Lease
	route         *route
	router        *router
	timeout       time.Duration
	log           *slog.Logger

	sem    chan struct{} // one refresh at a time in this process
	cached atomic.Pointer[cachedToken]
	failed atomic.Pointer[failedFetch]
}

// failedFetch holds back the next fetch after one failed, so that a refused secret or an
// outage costs one token call per failBackoff, not one per message.
type failedFetch struct {
	err   *tokenError
	until time.Time
}

// failBackoff is how long a failed fetch is answered from memory: longer for WeChat's refusal
// (configuration: 40013, 40125, 40164), short for no answer.
func failBackoff(e *tokenError) time.Duration {
	switch e.Reason {
	case "transport", "bad_answer", "-1":
		return 2 * time.Second
	}
	return time.Minute
}

type cachedToken struct {
	token      string
	freshUntil time.Time // real time: Redis's TTL is in real time too
}

var setTokenScript = redisx.Guard(`redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 1`)

// dropTokenScript deletes the token only if it is still the one that failed: a replica that
// learns late that a token is dead must not delete the fresh one another has just stored.
var dropTokenScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

func newTokenSource(store *redisx.Store, appID, secret string, r *route, rt *router, log *slog.Logger) (*tokenSource, error) {
	key := store.Key("{wechat}:token:" + appID)
	lease, err := redisx.NewLease(store.Client, key+":lease", r.timeout+2*time.Second, "")
	if err != nil {
		return nil, fmt.Errorf("wechat: token lease: %w", err)
	}
	return &tokenSource{
		appID: appID, secret: secret, client: store.Client, key: key, lease: lease,
		route: r, router: rt, timeout: r.timeout, log: log, sem: make(chan struct{}, 1),
	}, nil
}

// GetAccessToken is the SDK's handle without a context; it is bounded by the timeout.
func (ts *tokenSource) GetAccessToken() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*ts.timeout)
	defer cancel()
	return ts.GetAccessTokenContext(ctx)
}

// GetAccessTokenContext answers the shared token, fetching it under the lease when needed.
func (ts *tokenSource) GetAccessTokenContext(ctx context.Context) (string, error) {
	if c := ts.cached.Load(); c != nil && time.Now().Before(c.freshUntil) {
		return c.token, nil
	}
	select {
	case ts.sem <- struct{}{}:
	case <-ctx.Done():
		return "", &tokenError{Reason: "transport", Msg: "waiting for the token: " + ctx.Err().Error()}
	}
	defer func() { <-ts.sem }()
	if c := ts.cached.Load(); c != nil && time.Now().Before(c.freshUntil) {
		return c.token, nil // another goroutine got it meanwhile
	}
	ctx, cancel := context.WithTimeout(ctx, 2*ts.timeout)
	defer cancel()
	for {
		tok, ttl, err := ts.read(ctx)
		if err != nil {
			return "", err
		}
		if tok != "" && ttl > refreshBefore {
			ts.keep(tok, ttl-refreshBefore)
			return tok, nil
		}
		if f := ts.failed.Load(); f != nil && time.Now().Before(f.until) {
			if tok != "" {
				return tok, nil // still valid for a while
			}
			return "", f.err
		}
		lt, err := ts.lease.Acquire(ctx)
		switch {
		case err == nil:
			fresh, ferr := ts.refresh(ctx, lt)
			if ferr == nil {
				ts.failed.Store(nil)
				return fresh, nil
			}
			te, ok := ferr.(*tokenError)
			if !ok {
				te = &tokenError{Reason: "transport", Msg: ferr.Error()}
			}
			ts.failed.Store(&failedFetch{err: te, until: time.Now().Add(failBackoff(te))})
			if tok != "" { // the old one still works for a while: use it, refresh later
				ts.log.LogAttrs(ctx, slog.LevelWarn, "wechat: token refresh failed; using the current one",
					slog.String("appid", ts.appID), slog.String("error", ferr.Error()))
				return tok, nil
			}
			return "", te
		case !errors.Is(err, redisx.ErrLeaseHeld):
			return "", &tokenError{Reason: "transport", Msg: "redis: " + err.Error()}
		case tok != "":
			// Another replica is refreshing; the current token is still valid meanwhile.
			ts.keep(tok, min(ttl, time.Second))
			return tok, nil
		}
		select { // none yet: wait for the holder's
		case <-ctx.Done():
			return "", &tokenError{Reason: "transport", Msg: "waiting for another replica's token: " + ctx.Err().Error()}
		case <-time.After(tokenPoll):
		}
	}
}

// read answers the token in Redis and its remaining life; "" when there is none.
func (ts *tokenSource) read(ctx context.Context) (string, time.Duration, error) {
	var get *redis.StringCmd
	var pttl *redis.DurationCmd
	_, err := ts.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, ts.key)
		pttl = p.PTTL(ctx, ts.key)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", 0, &tokenError{Reason: "transport", Msg: "redis: " + err.Error()}
	}
	tok, ttl := get.Val(), pttl.Val()
	if tok == "" || ttl <= 0 {
		return "", 0, nil
	}
	return tok, ttl, nil
}

// keep caches tok in memory for d and routes the SDK's requests that carry it.
func (ts *tokenSource) keep(tok string, d time.Duration) {
	ts.router.learn(tok, ts.route)
	ts.cached.Store(&cachedToken{token: tok, freshUntil: time.Now().Add(d)})
}

// refresh fetches a new token from WeChat while lt holds the lease and stores it, guarded: a
// holder that stalled past its lease stores nothing.
func (ts *tokenSource) refresh(ctx context.Context, lt redisx.Token) (string, error) {
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_, _ = ts.lease.Release(rctx, lt)
	}()
	// Read again under the lease: the previous holder may have stored a token between our
	// read and our acquiring, and fetching another would cut that one short.
	if cur, ttl, err := ts.read(ctx); err == nil && cur != "" && ttl > refreshBefore {
		ts.keep(cur, ttl-refreshBefore)
		return cur, nil
	}
	tok, life, err := ts.fetch(ctx)
	if err != nil {
		return "", err
	}
	ttl := life - tokenMargin
	if ttl < time.Minute {
		ttl = life / 2 // a short-lived token (a fake's) is still worth sharing
	}
	if err := ts.lease.Run(ctx, setTokenScript, lt, []string{ts.key}, tok, ttl.Milliseconds()).Err(); err != nil {
		if redisx.IsLeaseLost(err) {
			// Our lease ran out while fetching; the token is valid all the same, only not shared.
			ts.keep(tok, min(ttl, time.Minute))
			return tok, nil
		}
		return "", &tokenError{Reason: "transport", Msg: "redis: " + err.Error()}
	}
	ts.log.LogAttrs(ctx, slog.LevelInfo, "wechat: access token refreshed", slog.String("appid", ts.appID), slog.Duration("ttl", ttl))
	ts.keep(tok, max(ttl-refreshBefore, ttl/2))
	return tok, nil
}

// fetch asks WeChat for a new token through the SDK's client (so the router routes it).
func (ts *tokenSource) fetch(ctx context.Context) (string, time.Duration, error) {
	u := fmt.Sprintf(tokenURL, url.QueryEscape(ts.appID), url.QueryEscape(ts.secret))
	body, err := util.HTTPGetContext(withRoute(ctx, ts.route), u)
	if err != nil {
		return "", 0, &tokenError{Reason: "transport", Msg: describe(err)}
	}
	return parseTokenAnswer(body)
}

// parseTokenAnswer reads getAccessToken's answer: {"access_token","expires_in"} or
// {"errcode","errmsg"}.
func parseTokenAnswer(body []byte) (string, time.Duration, error) {
	var a struct {
		ErrCode     int64  `json:"errcode"`
		ErrMsg      string `json:"errmsg"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return "", 0, &tokenError{Reason: "bad_answer", Msg: "not the token JSON"}
	}
	if a.ErrCode != 0 {
		return "", 0, &tokenError{Reason: strconv.FormatInt(a.ErrCode, 10), Msg: safeMsg(a.ErrMsg)}
	}
	if a.AccessToken == "" || a.ExpiresIn <= 0 || a.ExpiresIn > 86400 || len(a.AccessToken) > 1024 {
		return "", 0, &tokenError{Reason: "bad_answer", Msg: "no token or lifetime in the answer"}
	}
	return a.AccessToken, time.Duration(a.ExpiresIn) * time.Second, nil
}

// invalidate forgets tok, which WeChat has just refused, here and in Redis, unless another
// replica has already replaced it.
func (ts *tokenSource) invalidate(ctx context.Context, tok string) {
	if c := ts.cached.Load(); c != nil && c.token == tok {
		ts.cached.CompareAndSwap(c, nil)
	}
	if err := dropTokenScript.Run(ctx, ts.client, []string{ts.key}, tok).Err(); err != nil {
		ts.log.LogAttrs(ctx, slog.LevelWarn, "wechat: could not drop a refused token", slog.String("appid", ts.appID), slog.String("error", err.Error()))
	}
}
