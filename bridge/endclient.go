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

// endClientBatch is how many grants EndClient ends per round trip, and so the entries of the
// index it holds in memory at once.
const endClientBatch = 256

// EndClient removes a federated client: every grant it holds ends (with tombstones, index
// entries, a logout token per grant to its backchannel_logout_uri, APP_SIGNED_OUT recorded for
// the person), its registration is replaced by a departed record that only lets those logout
// tokens be delivered (for EndedTombstoneTTL) and keeps explicit registration and resolution
// from making it a client again until Readmit, and this replica forgets it. Other replicas stop
// accepting it within FederatedRecheck. It reports how many grants ended. The integrator calls
// it when a subordinate is removed, after Resolver.Invalidate; a configured client is refused.
//
// It is idempotent. A replica that had not reread the record yet may still make a grant for
// FederatedRecheck after the call; calling EndClient again after that ends such grants too.
func (b *Bridge) EndClient(ctx context.Context, clientID string) (int, error) {
	if _, configured := b.clients.Get(clientID); configured || b.fed == nil {
		return 0, fmt.Errorf("bridge: end client %s: %w", clientID, ErrUnknownClient)
	}
	if err := checkEntityID(clientID, b.fedLoopback); err != nil {
		return 0, fmt.Errorf("bridge: end client: %w", err)
	}
	// The client is found once (memory, record, or its chain while it still resolves) and its
	// logout tokens are made from it; the departed record keeps its metadata for their
	// delivery. The record is written first, whether the client was found or not, so that no
	// replica switches a person into it (nor registers it again) while its grants are ended.
	c, found := b.lookupForLogout(ctx, clientID)
	var md map[string]any
	if found {
		md = c.metadata()
	} else {
		c = bareFederatedClient(clientID)
	}
	blob, err := json.Marshal(registration{Metadata: md, Expires: b.now().Add(EndedTombstoneTTL).Unix(), Departed: true})
	if err != nil {
		return 0, fmt.Errorf("bridge: end client: %w", err)
	}
	if err := b.store.Client.Set(ctx, b.registrationKey(clientID), blob, EndedTombstoneTTL).Err(); err != nil {
		return 0, fmt.Errorf("bridge: end client %s: %w", clientID, err)
	}
	b.ForgetClient(clientID)
	// The index is drained a page at a time until it is empty, so that a grant indexed while
	// the walk goes on (a redemption already past its client check) is ended too; a page's
	// entries are removed only once their grants have ended, so a failure leaves them for the
	// next call.
	key := b.clientGrants(clientID)
	n := 0
	for {
		page, err := b.store.Client.ZRangeWithScores(ctx, key, 0, endClientBatch-1).Result()
		if err != nil {
			return n, fmt.Errorf("bridge: list grants of %s: %w", clientID, err)
		}
		if len(page) == 0 {
			return n, nil
		}
		now := float64(b.now().UnixMilli())
		es := make([]grantEnd, 0, len(page))
		members := make([]any, 0, len(page))
		for _, z := range page {
			m, _ := z.Member.(string)
			members = append(members, m)
			pid, gid, ok := strings.Cut(m, "|")
			if !ok || pid == "" || gid == "" || z.Score <= now {
				continue // an expired grant is gone already
			}
			es = append(es, grantEnd{pid: pid, client: clientID, gid: gid, reason: reasonClientRemoved, kind: audit.AppSignedOut, c: c})
		}
		var dones []func() (bool, error)
		_, _ = b.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
			dones = b.queueEnds(ctx, p, es)
			return nil
		}) // each queued command reports its own error
		var errs []error
		for _, done := range dones {
			existed, err := done()
			if existed {
				n++
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return n, fmt.Errorf("bridge: end client %s: %w", clientID, err)
		}
		if err := b.store.Client.ZRem(ctx, key, members...).Err(); err != nil {
			return n, fmt.Errorf("bridge: end client %s: drop index entries: %w", clientID, err)
		}
	}
}
