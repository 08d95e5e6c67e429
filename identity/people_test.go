package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/idnumber"
)

// allPersons walks the whole index from the start.
func allPersons(t *testing.T, ps *Persons, batch int) []string {
	t.Helper()
	var out []string
	var c Cursor
	for !c.Done() {
		ids, next, err := ps.ScanPersons(context.Background(), c, batch)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ids...)
		c = next
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// A person created from an event carries the facts of the number and nothing that would
// release it; a sign-in at the auto-link level later joins that person.
func TestEventPersonJoinedBySignIn(t *testing.T) {
	ps, _ := personsUnderTest(t)
	ctx := context.Background()
	n := number(t, 31)
	pids, err := ps.EnsurePersons(ctx, []idnumber.Number{n, n})
	if err != nil {
		t.Fatal(err)
	}
	if pids[0] == "" || pids[0] != pids[1] {
		t.Fatalf("the same number gave %v", pids)
	}
	p, err := ps.Get(ctx, pids[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Accounts) != 0 || p.Hukou != "330402" || p.Gender != n.Gender() || !p.BirthDate.Equal(n.BirthDate()) || p.MaskedIDNumber != n.Masked() {
		t.Fatalf("event person %+v", p)
	}
	if sealed, err := ps.store.Client.HGet(ctx, ps.personKey(pids[0]), "sealed").Result(); err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	} else if sealed != "" {
		t.Fatal("a number that came with an event was sealed for release")
	}
	if got := mustResolve(t, ps, ident("zheliban", "z-31", n, 3)); got != pids[0] {
		t.Fatalf("the sign-in made person %s, want the event's %s", got, pids[0])
	}
	// Below the auto-link level a sign-in stays apart.
	if got := mustResolve(t, ps, ident("suishenban", "s-31", n, 1)); got == pids[0] {
		t.Fatal("an unverified account joined the event's person")
	}
	if again, err := ps.EnsurePersons(ctx, []idnumber.Number{n}); err != nil {
		t.Fatal(err)
	} else if again[0] != pids[0] {
		t.Fatalf("the number now names %s, want %s", again[0], pids[0])
	}
}

// Events and sign-ins racing for the same new citizen meet at one person.
func TestEventAndSignInRace(t *testing.T) {
	ps, _ := personsUnderTest(t)
	ctx := context.Background()
	for round := range 20 {
		n := number(t, 100+round)
		var wg sync.WaitGroup
		var fromEvent, fromSignIn string
		wg.Add(2)
		go func() {
			defer wg.Done()
			pids, err := ps.EnsurePersons(ctx, []idnumber.Number{n})
			if err != nil {
				t.Error(err)
				return
			}
			fromEvent = pids[0]
		}()
		go func() {
			defer wg.Done()
			fromSignIn = mustResolve(t, ps, ident("zheliban", fmt.Sprintf("race-%d", round), n, 3))
		}()
		wg.Wait()
		if fromEvent != fromSignIn {
			t.Fatalf("round %d: event person %s, sign-in person %s", round, fromEvent, fromSignIn)
		}
		if _, err := ps.Get(ctx, fromEvent); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

// The index holds every person once: from sign-ins, from events and from unlinks; a merged
// person leaves it.
func TestPersonIndex(t *testing.T) {
	ps, sessions := personsUnderTest(t)
	ctx := context.Background()
	var want []string
	for i := range 150 {
		pids, err := ps.EnsurePersons(ctx, []idnumber.Number{number(t, 200+i)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, pids[0])
	}
	n := number(t, 400)
	signedIn := mustResolve(t, ps, ident("a", "a-400", n, 3))
	if mustResolve(t, ps, ident("b", "b-400", n, 3)) != signedIn {
		t.Fatal("not linked")
	}
	if err := ps.Unlink(ctx, signedIn, "a", "b", sessions); err != nil {
		t.Fatal(err)
	}
	alone, err := ps.PersonOf(ctx, "b", "b-400")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, signedIn, alone)
	// A weak account becomes its own person, then is linked explicitly: merged, it leaves.
	m := number(t, 401)
	weak := mustResolve(t, ps, ident("a", "a-401", m, 1))
	strong := mustResolve(t, ps, ident("b", "b-401", m, 3))
	if err := ps.Link(ctx, weak, ident("b", "b-401", m, 3), sessions); err != nil {
		t.Fatal(err)
	}
	want = append(want, weak)
	slices.Sort(want)
	for _, batch := range []int{1, 7, 500} {
		if got := allPersons(t, ps, batch); !slices.Equal(got, want) {
			t.Fatalf("batch %d: walked %d persons, want %d (merged %s present: %v)", batch, len(got), len(want), strong, slices.Contains(got, strong))
		}
	}
	sample, total, err := ps.SamplePersons(ctx, 64)
	if err != nil {
		t.Fatal(err)
	}
	if total != int64(len(want)) || len(sample) == 0 {
		t.Fatalf("sample of %d out of %d, want some out of %d", len(sample), total, len(want))
	}
	for _, id := range sample {
		if !slices.Contains(want, id) {
			t.Fatalf("sampled %s, not a person", id)
		}
	}
}

func TestParseCursor(t *testing.T) {
	for in, want := range map[string]string{"": "0:0", "0:0": "0:0", "63:12345": "63:12345", "64:0": "64:0"} {
		c, err := ParseCursor(in)
		if err != nil || c.String() != want {
			t.Errorf("ParseCursor(%q) = %v, %v; want %s", in, c, err, want)
		}
	}
	for _, bad := range []string{"x", "1", "1:", ":1", "-1:0", "65:0", "1:-2", "1:2:3"} {
		if _, err := ParseCursor(bad); err == nil {
			t.Errorf("ParseCursor(%q) accepted", bad)
		}
	}
}
