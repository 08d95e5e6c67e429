package identity

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/idnumber"
)

// A new account is claimed in the round trip that writes its new person. When another first
// sign-in of the same account claimed it between the lookup and that write, the sign-in joins the
// winner's person, the session opened for its candidate ends, and the candidate leaves nothing
// that names the account.
func TestLostAccountClaimJoinsTheWinner(t *testing.T) {
	for _, tc := range []struct {
		name      string
		number    bool
		assurance int
	}{
		{name: "no ID number", assurance: 1},
		// The winner's token is below the auto-link level, so it does not meet the link key the
		// loser claimed: the key goes to the winner's person, as a late claim always does.
		{name: "link key claimed by the loser", number: true, assurance: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, sessions := personsUnderTest(t)
			svc := &Service{Persons: ps, Sessions: sessions, store: ps.store, now: time.Now}
			ctx := context.Background()
			var n idnumber.Number
			if tc.number {
				n = number(t, 41)
			}
			id := ident("zheliban", "twin", n, tc.assurance)
			var l *lookup
			if _, err := ps.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
				var err error
				l, err = ps.queueLookup(ctx, p, id, 3)
				return err
			}); err != nil && !errors.Is(err, redis.Nil) {
				t.Fatal(err)
			}
			// The other sign-in claims the account first, for a person of its own.
			winnerID := id
			winnerID.Assurance = 1
			winner := mustResolve(t, ps, winnerID)
			if winner == l.cand {
				t.Fatalf("the winner took the loser's candidate %s", winner)
			}

			tokens, person, err := svc.resolveAndWrite(ctx, l, id)
			if err != nil {
				t.Fatal(err)
			}
			if person.ID != winner || tokens.Session.PersonID != winner {
				t.Fatalf("signed in as person %s (session of %s), want the winner %s", person.ID, tokens.Session.PersonID, winner)
			}
			if sess, err := sessions.Authenticate(ctx, tokens.AccessToken); err != nil || sess.PersonID != winner {
				t.Fatalf("the session: %+v, %v", sess, err)
			}
			if pid, err := ps.PersonOf(ctx, "zheliban", "twin"); err != nil || pid != winner {
				t.Fatalf("the account belongs to %q (%v), want %s", pid, err, winner)
			}
			c := ps.store.Client
			if n, err := c.ZCard(ctx, sessions.personSessions(l.cand)).Result(); err != nil || n != 0 {
				t.Fatalf("the candidate has %d sessions listed (%v)", n, err)
			}
			if fields, err := c.HKeys(ctx, ps.accountsKey(l.cand)).Result(); err != nil || len(fields) != 0 {
				t.Fatalf("the candidate keeps account fields %v (%v)", fields, err)
			}
			if tc.number {
				if holder, err := c.Get(ctx, ps.linkKey(l.lk)).Result(); err != nil || holder != winner {
					t.Fatalf("the link key names %q (%v), want the winner %s", holder, err, winner)
				}
				return
			}
			if _, err := ps.Get(ctx, l.cand); !errors.Is(err, ErrNoPerson) {
				t.Fatalf("the candidate person: %v, want ErrNoPerson", err)
			}
			if in, err := c.SIsMember(ctx, ps.indexKey(shardOf(l.cand)), l.cand).Result(); err != nil || in {
				t.Fatalf("the candidate is still in the person index (%v)", err)
			}
		})
	}
}
