package graph

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/opaque"
	"github.com/tongban/tongban/internal/redisx"
)

// personConns counts a person's open websockets across replicas: a sorted set per person of
// connection ids scored by when their lease ends. The replica holding a connection renews its
// lease while it is open and removes it when it closes; a replica that dies stops counting
// once its leases run out, so the count heals by expiry, not by a sweeper.
type personConns struct {
	store *redisx.Store
	max   int
	// ttl is how long a lease stands unrenewed; renewed every ttl/3.
	ttl time.Duration
}

// wsLeaseTTL is how long a dead replica's connections keep counting against their person.
const wsLeaseTTL = time.Minute

// The person's hash tag is identity's, so the key lives in the person's slot.
func (pc *personConns) key(pid string) string { return pc.store.Key("{p:" + pid + "}:ws") }

// acquireScript adds a lease unless the person holds max live ones already; expired leases
// are dropped first. KEYS[1] the person's set; ARGV now (ms), lease end (ms), connection id,
// max, key ttl (ms). Returns 1 when added, 0 when refused.
var acquireScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`)

// acquire takes one of the person's places. ok is false when the person holds max already;
// release (non-nil when ok) gives the place back and stops the renewals, which run until then.
func (pc *personConns) acquire(ctx context.Context, pid string) (release func(), ok bool, err error) {
	id, err := opaque.ID()
	if err != nil {
		return nil, false, err
	}
	key := pc.key(pid)
	now := time.Now()
	n, err := acquireScript.Run(ctx, pc.store.Client, []string{key},
		now.UnixMilli(), now.Add(pc.ttl).UnixMilli(), id, pc.max, pc.ttl.Milliseconds()).Int()
	if err != nil {
		return nil, false, fmt.Errorf("graph: count the person's websockets: %w", err)
	}
	if n == 0 {
		return nil, false, nil
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(pc.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				pc.renew(key, id)
			}
		}
	}()
	return func() {
		close(stop)
		<-done // no renewal after the removal
		ctx, cancel := context.WithTimeout(context.Background(), authTimeout)
		defer cancel()
		pc.store.Client.ZRem(ctx, key, id) // best effort: the lease runs out otherwise
	}, true, nil
}

// renew extends a lease that is still there; XX, so a lease already removed stays removed.
func (pc *personConns) renew(key, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), authTimeout)
	defer cancel()
	_, _ = pc.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAddXX(ctx, key, redis.Z{Score: float64(time.Now().Add(pc.ttl).UnixMilli()), Member: id})
		p.PExpire(ctx, key, pc.ttl)
		return nil
	})
}
