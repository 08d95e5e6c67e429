package bridge

// The lease on the key set: one replica at a time changes {keys}:set, and only through
// writeSetScript, which checks that replica's token on {keys}:lease in the same script. A
// replica that stalls after planning (a GC pause, a slow generation of an RSA key) past the
// lease's expiry, while another takes over, writes nothing when it wakes.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tongban/tongban/internal/redisx"
)

// writeSetScript changes the key set while the lease is held. KEYS: lease, set; ARGV: token,
// ttl, then "set" with field, value pairs (one HSET), "del" with fields (one HDEL), or "copy"
// with field, value pairs (one HSET, only while the set is absent: the copy of the set from
// its old name, which must not undo a change made since).
var writeSetScript = redisx.Guard(`
if ARGV[3] == 'del' then return redis.call('HDEL', KEYS[2], unpack(ARGV, 4)) end
if ARGV[3] == 'copy' and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
return redis.call('HSET', KEYS[2], unpack(ARGV, 4))
`)

// leaseHold is one holding of {keys}:lease.
type leaseHold struct {
	lease *redisx.Lease
	tok   redisx.Token
}

// leased runs fn while holding {keys}:lease. Without wait, it returns at once (nil, nil) when
// another replica holds the lease; with wait, it retries until ctx ends.
func (k *KeyManager) leased(ctx context.Context, wait bool, fn func(context.Context, *leaseHold) ([]string, error)) ([]string, error) {
	// A holder per step: two steps of one process (Run's and a Rotate) must exclude each other
	// too, and a lease recognises its own holder's retry as the same holding.
	l, err := redisx.NewLease(k.store.Client, k.store.Key(k.names.lease), keysLeaseTTL, k.replica+"/"+randomHex(8))
	if err != nil {
		return nil, fmt.Errorf("bridge: keys: %w", err)
	}
	var tok redisx.Token
	if wait {
		tok, err = l.AcquireWait(ctx, 100*time.Millisecond)
	} else {
		tok, err = l.Acquire(ctx)
		if errors.Is(err, redisx.ErrLeaseHeld) {
			return nil, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bridge: keys: %w", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := l.Release(rctx, tok); err != nil {
			k.log.Warn("bridge: signing keys: hand back the lease (it expires by itself)", "err", err)
		}
	}()
	return fn(ctx, &leaseHold{lease: l, tok: tok})
}

// fresh rereads the set under the lease, and first copies it from its old name when that is
// where it still is.
func (k *KeyManager) fresh(ctx context.Context, h *leaseHold) error {
	if err := k.reload(ctx); err != nil {
		return err
	}
	legacy := k.view.Load().legacy
	if legacy == nil {
		return nil
	}
	args := []any{"copy"}
	for _, kid := range sortedKids(legacy) {
		args = append(args, kid, legacy[kid])
	}
	if err := k.write(ctx, h, args); err != nil {
		return err
	}
	k.log.Info("bridge: signing keys copied to their new name", "from", k.names.legacySet, "to", k.names.set, "keys", len(legacy))
	return k.reload(ctx)
}

// apply writes the changes in order, each in one guarded script, and rereads the set.
func (k *KeyManager) apply(ctx context.Context, h *leaseHold, changes []keyChange) ([]string, error) {
	var notes []string
	for _, ch := range changes {
		note := ch.note
		if ch.fresh != nil {
			kid, rec, err := k.newKey(*ch.fresh)
			if err != nil {
				return notes, err
			}
			if ch.set == nil {
				ch.set = map[string]keyRecord{}
			}
			ch.set[kid] = rec
			note = strings.ReplaceAll(note, "{kid}", kid)
		}
		if len(ch.set) == 0 && len(ch.del) == 0 {
			notes = append(notes, note)
			continue
		}
		var args []any
		if len(ch.set) > 0 {
			args = append(make([]any, 0, 1+2*len(ch.set)), "set")
			for _, kid := range sortedKids(ch.set) {
				b, err := json.Marshal(ch.set[kid].utc())
				if err != nil {
					return notes, fmt.Errorf("bridge: keys: encode %s: %w", kid, err)
				}
				args = append(args, kid, string(b))
			}
		} else {
			args = append(args, "del")
			for _, kid := range ch.del {
				args = append(args, kid)
			}
		}
		if err := k.write(ctx, h, args); err != nil {
			return notes, err
		}
		k.log.Info("bridge: signing keys changed", "what", note, "replica", k.replica, "fence", h.tok.Fence())
		notes = append(notes, note)
	}
	if len(changes) > 0 {
		return notes, k.reload(ctx)
	}
	return notes, nil
}

// write runs writeSetScript for the holding h.
func (k *KeyManager) write(ctx context.Context, h *leaseHold, args []any) error {
	if k.beforeWrite != nil {
		k.beforeWrite(ctx)
	}
	err := h.lease.Run(ctx, writeSetScript, h.tok, []string{k.store.Key(k.names.set)}, args...).Err()
	switch {
	case errors.Is(err, redisx.ErrLeaseLost):
		return fmt.Errorf("bridge: keys: lost %s mid-step; another replica rotates: %w", k.names.lease, err)
	case err != nil:
		return fmt.Errorf("bridge: keys: write %s: %w", k.names.set, err)
	}
	return nil
}
