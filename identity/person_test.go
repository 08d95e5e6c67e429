package identity

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/internal/testenv"
)

func personsUnderTest(t *testing.T) (*Persons, *Sessions) {
	t.Helper()
	store := testenv.Redis(t)
	keys := Keys{Pepper: []byte("a pepper of at least thirty-two bytes"), KEK: []byte("0123456789abcdef0123456789abcdef")}
	return NewPersons(store, keys, nil), NewSessions(store, SessionOptions{})
}

func number(t *testing.T, seq int) idnumber.Number {
	t.Helper()
	n, err := idnumber.Build("330402", time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC), seq)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func ident(app, sub string, n idnumber.Number, assurance int) Identity {
	return Identity{App: app, Subject: sub, Name: "测试", IDNumber: n, Assurance: assurance, AuthTime: time.Now()}
}

func mustResolve(t *testing.T, ps *Persons, id Identity) string {
	t.Helper()
	pid, err := ps.Resolve(context.Background(), id, 3)
	if err != nil {
		t.Fatalf("resolve %s/%s: %v", id.App, id.Subject, err)
	}
	return pid
}

// Two sessions unlink each other's account at once: one wins, and the person keeps an account.
func TestUnlinkRaceKeepsAnAccount(t *testing.T) {
	ps, sessions := personsUnderTest(t)
	ctx := context.Background()
	for round := range 20 {
		n := number(t, round)
		pid := mustResolve(t, ps, ident("a", fmt.Sprintf("a-%d", round), n, 3))
		if other := mustResolve(t, ps, ident("b", fmt.Sprintf("b-%d", round), n, 3)); other != pid {
			t.Fatal("not linked")
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, pair := range [][2]string{{"a", "b"}, {"b", "a"}} { // session app, app to unlink
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = ps.Unlink(ctx, pid, pair[0], pair[1], sessions)
			}()
		}
		wg.Wait()
		var fe *ForbiddenError
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.As(err, &fe):
				t.Fatalf("unlink: %v", err)
			}
		}
		p, err := ps.Get(ctx, pid)
		if err != nil {
			t.Fatal(err)
		}
		if ok != 1 || len(p.Accounts) != 1 {
			t.Fatalf("round %d: %d unlinks succeeded, %d accounts left", round, ok, len(p.Accounts))
		}
	}
}

// An account whose provider later reports another ID number does not carry its person over to
// that number: the person keeps its own, and the new number's link key is not theirs.
func TestChangedNumberDoesNotMovePerson(t *testing.T) {
	ps, _ := personsUnderTest(t)
	ctx := context.Background()
	first, second := number(t, 11), number(t, 13)
	pid := mustResolve(t, ps, ident("a", "acct", first, 1)) // below the level: no link key claimed
	if again := mustResolve(t, ps, ident("a", "acct", second, 4)); again != pid {
		t.Fatalf("the account moved to %s", again)
	}
	p, err := ps.Get(ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	if p.MaskedIDNumber != first.Masked() {
		t.Errorf("masked number %s, want the first one %s", p.MaskedIDNumber, first.Masked())
	}
	// The citizen who really holds the second number signs in elsewhere: a person of their own.
	if other := mustResolve(t, ps, ident("b", "other", second, 4)); other == pid {
		t.Error("a citizen joined a person recorded with another ID number")
	}
}

// A merge cut short after moving the presented account is finished by the next Link.
func TestMergeResumes(t *testing.T) {
	ps, sessions := personsUnderTest(t)
	ctx := context.Background()
	n := number(t, 21)
	weak := mustResolve(t, ps, ident("a", "weak", n, 1))
	strong := mustResolve(t, ps, ident("b", "strong-b", n, 3))
	if mustResolve(t, ps, ident("c", "strong-c", n, 3)) != strong || weak == strong {
		t.Fatal("fixture persons are not as expected")
	}
	// What the first steps of merge(strong into weak) leave: strong marked, b moved, c not.
	c := ps.store.Client
	if err := c.HSet(ctx, ps.personKey(strong), "merged_into", weak).Err(); err != nil {
		t.Fatal(err)
	}
	if err := casScript.Run(ctx, c, []string{ps.accountKey("b", "strong-b")}, strong, weak).Err(); err != nil {
		t.Fatal(err)
	}
	if err := ps.Link(ctx, weak, ident("b", "strong-b", n, 3), sessions); err != nil {
		t.Fatal(err)
	}
	p, err := ps.Get(ctx, weak)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Accounts) != 3 {
		t.Errorf("accounts after the resumed merge: %+v", p.Accounts)
	}
	for _, sub := range [][2]string{{"b", "strong-b"}, {"c", "strong-c"}} {
		if owner, err := ps.PersonOf(ctx, sub[0], sub[1]); err != nil {
			t.Fatal(err)
		} else if owner != weak {
			t.Errorf("account %s belongs to %s, want %s", sub[1], owner, weak)
		}
	}
	if owner, err := c.Get(ctx, ps.linkKey(ps.keys.LinkKey(n))).Result(); err != nil {
		t.Fatal(err)
	} else if owner != weak {
		t.Errorf("link key names %s, want %s", owner, weak)
	}
	if _, err := ps.Get(ctx, strong); !errors.Is(err, ErrNoPerson) {
		t.Errorf("the merged person still answers: %v", err)
	}
}
