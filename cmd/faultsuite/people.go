package main

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/devidp"
	"github.com/tongban/tongban/internal/idnumber"
)

// citizen is one made-up person: a 浙江 ID number no one on this Redis has had before, and an
// account at the suite's provider.
type citizen struct {
	Key      string // the account's subject at the suite's provider
	IDNumber string
}

// idToken mints a fresh ID token for c with nonce. Each token is new (ES256 signatures are
// randomized and the nonce is unique), so a `replayed` answer to it can only be false.
func (c citizen) idToken(p *devidp.Provider, nonce string) (string, error) {
	return p.Mint(devidp.MintRequest{Nonce: nonce, Claims: map[string]any{
		"sub": c.Key, "acr": idpACR, "amr": []string{"pwd", "otp"}, "name": "演练" + c.Key[len(c.Key)-4:],
		"phone_number": "13900000000", "id_number": c.IDNumber,
	}})
}

// divisions are the 户籍 of the suite's people: districts of 杭州, so that the sample newborn
// rule (浙江) matches their births and the sample transit rule (嘉兴, 60 and over) never does.
var divisions = []string{"330102", "330105", "330106", "330108", "330109", "330110"}

// numbers hands out ID numbers that are new to the Redis the suite runs on: random ones, each
// checked against the link keys already stored (runs on one Redis keep their people, so a
// number reused from an earlier run would meet a person who already had their notification).
type numbers struct {
	rdb  *target
	keys identity.Keys

	mu   sync.Mutex
	used map[string]bool
	pool []string // checked before the load, so that a fault of Redis does not hold the load up
}

// prefill checks count numbers ahead, for take to hand out while Redis may be down.
func (n *numbers) prefill(ctx context.Context, count int) error {
	got, err := n.check(ctx, count)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.pool = append(n.pool, got...)
	n.mu.Unlock()
	return nil
}

func newNumbers(rdb *target) (*numbers, error) {
	cfg, err := config.Load("", nil) // dev mode: the pepper every instance links numbers with
	if err != nil {
		return nil, fmt.Errorf("dev configuration: %w", err)
	}
	return &numbers{rdb: rdb, keys: identity.Keys{Pepper: cfg.Secrets.PepperBytes()}, used: map[string]bool{}}, nil
}

// linkKey is the Redis key that holds the person an ID number links to.
func (n *numbers) linkKey(num string) string {
	parsed, err := idnumber.Parse(num)
	if err != nil {
		return ""
	}
	return keyPrefix + "lk:" + n.keys.LinkKey(parsed)
}

// take returns count fresh numbers: from the pool, else checked now.
func (n *numbers) take(ctx context.Context, count int) ([]string, error) {
	n.mu.Lock()
	if len(n.pool) >= count {
		out := n.pool[len(n.pool)-count:]
		n.pool = n.pool[:len(n.pool)-count]
		n.mu.Unlock()
		return out, nil
	}
	n.mu.Unlock()
	return n.check(ctx, count)
}

// check returns count fresh numbers of people born between 1970 and 2005 (under 60 for
// decades), each checked against the link keys on Redis.
func (n *numbers) check(ctx context.Context, count int) ([]string, error) {
	var out []string
	for len(out) < count {
		var cand []string
		n.mu.Lock()
		for len(cand) < count-len(out) {
			birth := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, randInt(35*365))
			num, err := idnumber.Build(divisions[randInt(len(divisions))], birth, randInt(999)+1)
			if err != nil {
				n.mu.Unlock()
				return nil, err
			}
			if !n.used[num.String()] {
				n.used[num.String()] = true
				cand = append(cand, num.String())
			}
		}
		n.mu.Unlock()
		keys := make([]string, len(cand))
		for i, c := range cand {
			keys[i] = n.linkKey(c)
		}
		exists, err := n.rdb.existsEach(ctx, keys)
		if err != nil {
			return nil, fmt.Errorf("check ID numbers are new: %w", err)
		}
		for i, c := range cand {
			if !exists[i] {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

func randInt(n int) int { return mrand.IntN(n) }

// randHex is n random bytes in hex: run ids, nonces.
func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}
