package bridge

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/testenv"
)

// indexMembers lists the person's grant index, "<client>|<gid>".
func indexMembers(t *testing.T, b *Bridge, pid string) []string {
	t.Helper()
	m, err := b.store.Client.ZRange(context.Background(), b.personGrants(pid), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func want(t *testing.T, got []string, members ...string) {
	t.Helper()
	slices.Sort(members)
	if !slices.Equal(got, members) {
		t.Fatalf("index %v, want %v", got, members)
	}
}

// The person's grant index loses a grant's entry when the grant ends (revoked, its refresh
// token reused, its life over), so that revoking consent walks only live grants; and revoking
// consent still ends every live grant of the app, the ones in the index from before it was
// sorted too.
func TestGrantIndexShrinksAsGrantsEnd(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{Clients: []config.Client{
		{ID: "app", Secret: "s", RedirectURIs: []string{"https://app.example/cb"}, Scopes: []string{"openid", "profile", "offline_access"}},
		{ID: "other", Secret: "s", RedirectURIs: []string{"https://other.example/cb"}, Scopes: []string{"openid", "profile"}},
	}}
	clients, err := NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clk := testenv.NewClock()
	b := New(Options{Issuer: "https://tongban.example", Store: testenv.Redis(t), Clients: clients, Now: clk.Now})
	ctx := context.Background()
	const pid = "person-1"
	app, _ := clients.Get("app")
	for _, c := range []string{"app", "other"} {
		if _, err := b.Consents.Grant(ctx, pid, c, []string{"profile"}); err != nil {
			t.Fatal(err)
		}
	}
	grant := func(client string, withRefresh bool) issued {
		t.Helper()
		out, err := b.issue(ctx, Grant{Kind: "user", Client: client, Person: pid, Scopes: []string{"openid", "profile"}, AuthTime: clk.Now()}, withRefresh)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	entry := func(g issued) string { return indexMember(g.grant.Client, g.grant.ID) }

	revoked, reused, short, long := grant("app", true), grant("app", true), grant("other", false), grant("app", true)
	want(t, indexMembers(t, b, pid), entry(revoked), entry(reused), entry(short), entry(long))

	if err := b.revoke(ctx, revoked.grant.ID); err != nil {
		t.Fatal(err)
	}
	want(t, indexMembers(t, b, pid), entry(reused), entry(short), entry(long))

	// A refresh keeps the grant (and its entry); presenting the old refresh token again ends it.
	if _, oerr, err := b.refresh(ctx, app, reused.refresh); err != nil || oerr != nil {
		t.Fatalf("refresh: %v %v", oerr, err)
	}
	want(t, indexMembers(t, b, pid), entry(reused), entry(short), entry(long))
	if _, oerr, err := b.refresh(ctx, app, reused.refresh); err != nil || oerr == nil {
		t.Fatalf("a reused refresh token was accepted: %v", err)
	}
	want(t, indexMembers(t, b, pid), entry(short), entry(long))

	// A grant whose life is over leaves the index when it is next trimmed: when it has grown to
	// a multiple of indexTrimEvery.
	clk.Advance(AccessTokenTTL + time.Second)
	live := []string{entry(long)}
	for len(live) < indexTrimEvery-2 {
		live = append(live, entry(grant("app", true)))
	}
	want(t, indexMembers(t, b, pid), append([]string{entry(short)}, live...)...)
	latest := grant("app", true) // the indexTrimEvery-th entry
	want(t, indexMembers(t, b, pid), append(live, entry(latest))...)

	// A grant indexed before the index was sorted.
	legacy := grant("app", true)
	if err := b.store.Client.ZRem(ctx, b.personGrants(pid), entry(legacy)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.store.Client.SAdd(ctx, b.legacyPersonGrants(pid), entry(legacy), indexMember("other", "gone")).Err(); err != nil {
		t.Fatal(err)
	}

	if ok, err := b.Consents.Revoke(ctx, pid, "app"); err != nil || !ok {
		t.Fatalf("Revoke = %v, %v", ok, err)
	}
	for _, g := range []issued{long, latest, legacy} {
		if _, err := b.Authenticate(ctx, g.access); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("grant %s outlived the consent: %v", g.grant.ID, err)
		}
	}
	want(t, indexMembers(t, b, pid))
	left, err := b.store.Client.SMembers(ctx, b.legacyPersonGrants(pid)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || !strings.HasPrefix(left[0], "other|") {
		t.Errorf("legacy index after revoking app: %v, want only other's entry", left)
	}
}
