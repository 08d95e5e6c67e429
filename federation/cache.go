package federation

// The resolver's cache of resolved chains (§10.4): copy-on-write so that the warm path of the
// authorize endpoint reads it without a lock, a coarse clock so that it reads no time.Now,
// invalidation of every chain through an entity, and the anchors replaced when an anchor that
// is this deployment rotates its keys.

import (
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Invalidate ends the cached chains that involve entityID as subject, intermediate or
// anchor (a removed member, a superior that stopped vouching), and keeps resolutions already
// under way from being cached. It returns how many chains were dropped.
func (r *Resolver) Invalidate(entityID string) int {
	r.gen.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.cache.Load()
	next := make(map[string]cacheEntry, len(old))
	for k, e := range old {
		if !e.chain.Involves(entityID) {
			next[k] = e
		}
	}
	r.cache.Store(&next)
	for _, k := range []string{entityID, issuerKey(entityID)} {
		r.sf.Forget(k)
	}
	return len(old) - len(next)
}

func (r *Resolver) trustAnchors() []TrustAnchor { return *r.anchors.Load() }

// SetTrustAnchorKeys replaces the keys of the configured anchor entityID (a deployment that is
// its own anchor and rotates its federation keys) and empties the cache when they changed. It
// reports false when entityID is not a configured anchor or jwks is empty.
func (r *Resolver) SetTrustAnchorKeys(entityID string, jwks jose.JSONWebKeySet) bool {
	if len(jwks.Keys) == 0 {
		return false
	}
	r.mu.Lock()
	old := r.trustAnchors()
	next := slices.Clone(old)
	i := slices.IndexFunc(next, func(a TrustAnchor) bool { return sameKey(a.EntityID) == sameKey(entityID) })
	if i < 0 {
		r.mu.Unlock()
		return false
	}
	same := keySetIDs(next[i].JWKS) == keySetIDs(jwks)
	next[i].JWKS = jwks
	r.anchors.Store(&next)
	r.mu.Unlock()
	if !same {
		r.InvalidateAll()
	}
	return true
}

// keySetIDs names a key set by its kids, in order: rotation changes them.
func keySetIDs(ks jose.JSONWebKeySet) string {
	ids := make([]string, len(ks.Keys))
	for i, k := range ks.Keys {
		ids[i] = k.KeyID
	}
	return strings.Join(ids, " ")
}

// InvalidateAll empties the cache (an anchor's keys or the configuration changed).
func (r *Resolver) InvalidateAll() {
	r.gen.Add(1)
	r.mu.Lock()
	r.cache.Store(&map[string]cacheEntry{})
	r.mu.Unlock()
}

// Close stops the cache's clock and empties the cache. The resolver still resolves
// afterwards, without caching.
func (r *Resolver) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
	}
	r.ticking = false
	r.cache.Store(&map[string]cacheEntry{})
}

// Stats returns the counters.
func (r *Resolver) Stats() Stats {
	return Stats{Fetches: r.fetches.Load(), Resolutions: r.resolutions.Load(), Cached: len(*r.cache.Load())}
}

func issuerKey(id string) string { return "\x00issuer\x00" + id }

func (r *Resolver) lookup(key string) (*TrustChain, bool) {
	e, ok := (*r.cache.Load())[key]
	if !ok || r.nowNano() >= e.until {
		return nil, false
	}
	return e.chain, true
}

func (r *Resolver) nowNano() int64 {
	if r.v.Now != nil {
		return r.v.Now().UnixNano()
	}
	return r.clock.Load()
}

func (r *Resolver) tick() {
	r.clock.Store(time.Now().UnixNano())
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(*r.cache.Load()) == 0 {
		r.ticking = false
		return
	}
	r.timer.Reset(clockTick)
}

func (r *Resolver) store(key string, tc *TrustChain, gen uint64) {
	if r.cfg.MaxCacheTTL < 0 {
		return
	}
	now := r.v.now()
	until := tc.ValidUntil
	if r.cfg.MaxCacheTTL > 0 && now.Add(r.cfg.MaxCacheTTL).Before(until) {
		until = now.Add(r.cfg.MaxCacheTTL)
	}
	if !until.After(now) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen.Load() != gen || r.closed {
		return // invalidated while resolving
	}
	old := *r.cache.Load()
	next := make(map[string]cacheEntry, len(old)+1)
	nowNano := now.UnixNano()
	for k, e := range old {
		if e.until > nowNano && len(next) < r.cfg.MaxCacheEntries-1 {
			next[k] = e
		}
	}
	next[key] = cacheEntry{chain: tc, until: until.UnixNano()}
	r.clock.Store(time.Now().UnixNano())
	r.cache.Store(&next)
	if !r.ticking {
		r.ticking = true
		if r.timer == nil {
			r.timer = time.AfterFunc(clockTick, r.tick)
		} else {
			r.timer.Reset(clockTick)
		}
	}
}

// Involving lists the subjects of the cached chains that go through entityID (as subject,
// intermediate or anchor): what a caller holding state per subject forgets with Invalidate.
func (r *Resolver) Involving(entityID string) []string {
	var subs []string
	for k, e := range *r.cache.Load() {
		if strings.HasPrefix(k, "\x00") || !e.chain.Involves(entityID) {
			continue
		}
		subs = append(subs, e.chain.Subject)
	}
	return subs
}
