package identity

import (
	"context"
	"strings"
	"testing"

	"github.com/tongban/tongban/internal/idnumber"
)

// The masked number a person is shown is not stored in clear: with the division and birth date
// kept for rules, its last four characters would complete the number. A mask stored in clear
// before it was sealed is rewritten by the person's next sign-in or event; the person's own
// number's mask only.
func TestMaskedNumberIsSealed(t *testing.T) {
	ps, _ := personsUnderTest(t)
	ctx := context.Background()
	n := number(t, 21)
	pid := mustResolve(t, ps, ident("a", "acct-mask", n, 4))
	key := ps.personKey(pid)
	stored := func() map[string]string { return ps.store.Client.HGetAll(ctx, key).Val() }
	last4 := n.String()[idnumber.Len-4:]
	if m := stored()["masked"]; m == "" || strings.Contains(m, "*") || strings.Contains(m, last4) {
		t.Fatalf("the mask is stored as %q", m)
	}
	if p, err := ps.Get(ctx, pid); err != nil || p.MaskedIDNumber != n.Masked() {
		t.Fatalf("Get: %q %v, want %s", p.MaskedIDNumber, err, n.Masked())
	}

	// A record from before: the mask in clear; the next sign-in seals it.
	ps.store.Client.HSet(ctx, key, "masked", n.Masked())
	if p, _ := ps.Get(ctx, pid); p.MaskedIDNumber != n.Masked() {
		t.Fatalf("a mask in clear reads %q", p.MaskedIDNumber)
	}
	mustResolve(t, ps, ident("a", "acct-mask", n, 4))
	if m := stored()["masked"]; strings.Contains(m, "*") {
		t.Fatalf("a sign-in left the mask in clear: %q", m)
	}

	// And an event naming a person created before does the same.
	other := number(t, 23)
	pids, err := ps.EnsurePersons(ctx, []idnumber.Number{other})
	if err != nil {
		t.Fatal(err)
	}
	okey := ps.personKey(pids[0])
	ps.store.Client.HSet(ctx, okey, "masked", other.Masked())
	if _, err := ps.EnsurePersons(ctx, []idnumber.Number{other}); err != nil {
		t.Fatal(err)
	}
	if m := ps.store.Client.HGet(ctx, okey, "masked").Val(); strings.Contains(m, "*") || strings.Contains(m, other.String()[idnumber.Len-4:]) {
		t.Fatalf("an event left the mask in clear: %q", m)
	}
}
