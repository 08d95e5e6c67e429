package bridge

// What rotation should do: pure functions from the key set and the clock to the changes that
// are due. Nothing here reads or writes Redis; keys_lease.go writes what these plan.

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// keyChange is one write to the key set: the fields of set (plus a fresh key, when fresh is
// set) in one HSET, or the fields of del in one HDEL. note says what it does, "{kid}" standing
// for the fresh key's kid.
type keyChange struct {
	set   map[string]keyRecord
	fresh *keyRecord
	del   []string
	note  string
}

// plan lists what is due at now: per algorithm, a first key, a promotion, a next key; and the
// retired keys of any algorithm whose drop_at has passed. It is empty when nothing is due.
func (k *KeyManager) plan(recs map[string]keyRecord, now time.Time) []keyChange {
	var out []keyChange
	for _, alg := range k.algs {
		set := map[string]keyRecord{}
		cur, next := k.heal(recs, alg, now, set)
		var note []string
		if len(set) > 0 {
			note = append(note, fmt.Sprintf("%s: retired %d surplus key(s)", alg, len(set)))
		}
		switch {
		case cur == "" && next == "":
			out = append(out, keyChange{
				fresh: &keyRecord{Alg: alg, State: keyStateCurrent, Created: now, NotBefore: now, RetireAt: now.Add(k.rotateEvery)},
				note:  alg + ": created key {kid}, signing from now on",
			})
		case next != "" && (cur == "" || !recs[next].NotBefore.After(now)):
			// A next key whose time has come signs already (see the top of the file); this
			// records it. With no current key at all it is promoted at once: nothing signs else.
			at := earlier(recs[next].NotBefore, now)
			k.promote(recs, next, cur, at, set)
			note = append(note, fmt.Sprintf("%s: key %s is current since %s", alg, next, stamp(at)))
			if cur != "" {
				note[len(note)-1] += fmt.Sprintf(", %s retired and published until %s", cur, stamp(set[cur].DropAt))
			}
			cur, next = next, ""
		}
		if len(set) > 0 {
			out = append(out, keyChange{set: set, note: strings.Join(note, "; ")})
		}
		if cur == "" || next != "" {
			continue
		}
		c := recs[cur]
		if s, ok := set[cur]; ok {
			c = s
		}
		if now.Before(c.RetireAt.Add(-k.publishAhead)) {
			continue
		}
		out = append(out, k.planNext(alg, cur, c, later(c.RetireAt, now.Add(k.publishAhead)), now))
	}
	var drop []string
	for _, kid := range sortedKids(recs) {
		if r := recs[kid]; r.State == keyStateRetired && !now.Before(r.DropAt) {
			drop = append(drop, kid)
		}
	}
	if len(drop) > 0 {
		out = append(out, keyChange{del: drop, note: "dropped retired key(s) " + strings.Join(drop, ", ")})
	}
	return out
}

// planForced is what Rotate does per algorithm: promote the next key now if it has been
// published for PublishAhead, else bring its not_before forward to the moment it will have
// been, creating it first if there is none. An algorithm without a current key is left to plan.
func (k *KeyManager) planForced(recs map[string]keyRecord, now time.Time) []keyChange {
	var out []keyChange
	for _, alg := range k.algs {
		cur, next := k.heal(recs, alg, now, map[string]keyRecord{})
		if cur == "" {
			continue
		}
		if next == "" {
			out = append(out, k.planNext(alg, cur, recs[cur], now.Add(k.publishAhead), now))
			continue
		}
		n := recs[next]
		ready := n.Created.Add(k.publishAhead)
		switch {
		case !now.Before(ready) || !n.NotBefore.After(now):
			set := map[string]keyRecord{}
			k.promote(recs, next, cur, earlier(n.NotBefore, now), set)
			out = append(out, keyChange{set: set, note: fmt.Sprintf("%s: key %s signs from now on, %s retired and published until %s",
				alg, next, cur, stamp(set[cur].DropAt))})
		case n.NotBefore.After(ready):
			c := recs[cur]
			c.RetireAt = ready
			n.NotBefore, n.RetireAt = ready, ready.Add(k.rotateEvery)
			out = append(out, keyChange{set: map[string]keyRecord{cur: c, next: n}, note: fmt.Sprintf(
				"%s: next key %s has been published only since %s; it will sign from %s", alg, next, stamp(n.Created), stamp(ready))})
		default:
			out = append(out, keyChange{note: fmt.Sprintf("%s: next key %s has been published only since %s; it will sign from %s",
				alg, next, stamp(n.Created), stamp(n.NotBefore))})
		}
	}
	return out
}

// heal finds the current and the next key of alg. Should there be more than one of either
// (there cannot, under the lease, but a hand-edited set may hold them), the surplus keys are
// retired into set, as of now since a replica may have signed with them until now.
func (k *KeyManager) heal(recs map[string]keyRecord, alg string, now time.Time, set map[string]keyRecord) (cur, next string) {
	var curs, nexts []string
	for _, kid := range sortedKids(recs) {
		switch r := recs[kid]; {
		case r.Alg != alg:
		case r.State == keyStateCurrent:
			curs = append(curs, kid)
		case r.State == keyStateNext:
			nexts = append(nexts, kid)
		}
	}
	// The current key is the newest; the next key the oldest (it has been published longest).
	slices.SortStableFunc(curs, func(a, b string) int { return recs[b].NotBefore.Compare(recs[a].NotBefore) })
	slices.SortStableFunc(nexts, func(a, b string) int { return recs[a].Created.Compare(recs[b].Created) })
	for _, kid := range append(slices.Clone(restOf(curs)), restOf(nexts)...) {
		set[kid] = k.retired(recs[kid], now)
	}
	return firstOf(curs), firstOf(nexts)
}

// promote puts into set the next key as current from at, and the old current key (if any) as
// retired at that moment.
func (k *KeyManager) promote(recs map[string]keyRecord, next, cur string, at time.Time, set map[string]keyRecord) {
	n := recs[next]
	n.State, n.NotBefore, n.RetireAt = keyStateCurrent, at, at.Add(k.rotateEvery)
	set[next] = n
	if cur != "" {
		set[cur] = k.retired(recs[cur], at)
	}
}

// planNext creates the next key of alg, signing from notBefore, and moves the current key's
// retire_at to match.
func (k *KeyManager) planNext(alg, cur string, c keyRecord, notBefore, now time.Time) keyChange {
	ch := keyChange{
		fresh: &keyRecord{Alg: alg, State: keyStateNext, Created: now, NotBefore: notBefore, RetireAt: notBefore.Add(k.rotateEvery)},
		note:  fmt.Sprintf("%s: published next key {kid}; it will sign from %s", alg, stamp(notBefore)),
	}
	if !c.RetireAt.Equal(notBefore) {
		c.RetireAt = notBefore
		ch.set = map[string]keyRecord{cur: c}
	}
	return ch
}

func (k *KeyManager) retired(r keyRecord, at time.Time) keyRecord {
	r.State, r.RetireAt, r.DropAt = keyStateRetired, at, at.Add(keysReloadEvery+k.retain)
	return r
}

func sortedKids[V any](m map[string]V) []string {
	kids := make([]string, 0, len(m))
	for kid := range m {
		kids = append(kids, kid)
	}
	slices.Sort(kids)
	return kids
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func restOf(s []string) []string {
	if len(s) < 2 {
		return nil
	}
	return s[1:]
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func stamp(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }
