package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/audit"
)

// A federated client's grants are indexed by client, cg:{<h>} (h: the first 16 hex digits of
// SHA-256 of the client id, so the key's slot is the client's alone and no client-chosen byte
// is in a key name): a sorted set of "<pid>|<gid>" scored by when each grant ends (unix ms),
// like the person's index. EndClient walks it to end every grant of a client that left the
// federation. Only federated clients are indexed: a configured client leaves with a
// configuration change and a restart, and its switches pay no extra round trip.

func (b *Bridge) clientGrants(client string) string {
	sum := sha256.Sum256([]byte(client))
	return b.store.Key("cg:{" + hex.EncodeToString(sum[:8]) + "}")
}

// maxClientGrantIndex bounds one client's index: past it, the entries that end first go (the
// grants themselves live on, ended by their sessions, consent or expiry, but EndClient no
// longer finds them). A member app with more live switched-in grants than this is far beyond
// what a province's app sees in a refresh lifetime.
const maxClientGrantIndex = 1 << 20

// indexClientGrant adds a federated client's grant, ending at ends, to the client's index, and
// trims ended entries every indexTrimEvery adds.
func (b *Bridge) indexClientGrant(ctx context.Context, client, pid, gid string, ends time.Time) error {
	key := b.clientGrants(client)
	var size *redis.IntCmd
	if _, err := b.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, key, redis.Z{Score: float64(ends.UnixMilli()), Member: pid + "|" + gid})
		size = p.ZCard(ctx, key)
		p.PExpire(ctx, key, RefreshTokenTTL)
		return nil
	}); err != nil {
		return fmt.Errorf("bridge: index client grant: %w", err)
	}
	if size.Val()%indexTrimEvery != 0 {
		return nil
	}
	_, err := b.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, key, "-inf", msScore(b.now()))
		p.ZRemRangeByRank(ctx, key, 0, -maxClientGrantIndex-1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("bridge: trim client grant index: %w", err)
	}
	return nil
}

// endClientBatch is how many grants EndClient ends per round trip.
const endClientBatch = 256

// EndClient removes a federated client: every grant it holds ends (with tombstones, index
// entries, a logout token per grant to its backchannel_logout_uri, APP_SIGNED_OUT recorded for
// the person), its registration is replaced by a record that only lets those logout tokens be
// delivered (for EndedTombstoneTTL), and this replica forgets it. Other replicas stop accepting
// it within FederatedRecheck. It reports how many grants ended. The integrator calls it when a
// subordinate is removed, after Resolver.Invalidate; a configured client is refused.
func (b *Bridge) EndClient(ctx context.Context, clientID string) (int, error) {
	if _, configured := b.clients.Get(clientID); configured || b.fed == nil {
		return 0, fmt.Errorf("bridge: end client %s: %w", clientID, ErrUnknownClient)
	}
	if err := checkEntityID(clientID, b.fedLoopback); err != nil {
		return 0, fmt.Errorf("bridge: end client: %w", err)
	}
	// The client is needed for its logout tokens (backchannel URI, subjects) after it is gone:
	// the departed record keeps its metadata. Written first, so that no replica switches a
	// person into it while its grants are being ended.
	c, _ := b.lookupForLogout(ctx, clientID)
	var md map[string]any
	if c != nil {
		md = c.metadata()
	}
	blob, err := json.Marshal(registration{Metadata: md, Expires: b.now().Add(EndedTombstoneTTL).Unix(), Departed: true})
	if err != nil {
		return 0, fmt.Errorf("bridge: end client: %w", err)
	}
	if c != nil {
		if err := b.store.Client.Set(ctx, b.registrationKey(clientID), blob, EndedTombstoneTTL).Err(); err != nil {
			return 0, fmt.Errorf("bridge: end client %s: %w", clientID, err)
		}
	} else if err := b.store.Client.Del(ctx, b.registrationKey(clientID)).Err(); err != nil {
		return 0, fmt.Errorf("bridge: end client %s: %w", clientID, err)
	}
	b.ForgetClient(clientID)
	key := b.clientGrants(clientID)
	entries, err := b.store.Client.ZRangeByScore(ctx, key, &redis.ZRangeBy{Min: "(" + msScore(b.now()), Max: "+inf"}).Result()
	if err != nil {
		return 0, fmt.Errorf("bridge: list grants of %s: %w", clientID, err)
	}
	n := 0
	var errs []error
	for from := 0; from < len(entries); from += endClientBatch {
		batch := entries[from:min(from+endClientBatch, len(entries))]
		es := make([]grantEnd, 0, len(batch))
		for _, m := range batch {
			pid, gid, ok := strings.Cut(m, "|")
			if !ok || pid == "" || gid == "" {
				continue
			}
			es = append(es, grantEnd{pid: pid, client: clientID, gid: gid, reason: reasonClientRemoved, kind: audit.AppSignedOut})
		}
		var dones []func() (bool, error)
		_, _ = b.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
			dones = b.queueEnds(ctx, p, es)
			return nil
		}) // each queued command reports its own error
		for _, done := range dones {
			existed, err := done()
			if existed {
				n++
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("bridge: end client %s: %w", clientID, err)
	}
	if err := b.store.Client.Del(ctx, key).Err(); err != nil {
		return n, fmt.Errorf("bridge: end client %s: drop its index: %w", clientID, err)
	}
	return n, nil
}
