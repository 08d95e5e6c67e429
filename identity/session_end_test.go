package identity

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"
)

// A session that refreshes keeps living past the RefreshTTL of its sign-in; EndAll (and the
// per-person limit) must still reach it through the person's list.
func TestEndAllReachesRefreshedSessions(t *testing.T) {
	const refreshTTL = time.Hour
	s, store, clk := sessionsUnderTest(t, SessionOptions{RefreshTTL: refreshTTL})
	open := mustOpen(t, s, testGrant)
	ageStore(t, store, clk, 50*time.Minute)
	next := mustRefresh(t, s, open.RefreshToken)
	ageStore(t, store, clk, 20*time.Minute)
	last := mustRefresh(t, s, next.RefreshToken)
	if ids := listedSessions(t, store, "p-1"); !slices.Equal(ids, []string{open.Session.ID}) {
		t.Errorf("sessions of p-1 = %v, want the live session %s", ids, open.Session.ID)
	}
	if err := s.EndAll(context.Background(), "p-1", "", EndEverywhere); err != nil {
		t.Fatal(err)
	}
	accessRefused(t, s, last.AccessToken, "refreshed session after EndAll")
}

func TestMaxPerPerson(t *testing.T) {
	const limit = 3
	s, store, clk := sessionsUnderTest(t, SessionOptions{MaxPerPerson: limit})
	other := mustOpen(t, s, Grant{PersonID: "p-2", App: "app-a", Assurance: 2})
	var opened []Tokens
	for range limit {
		clk.Advance(time.Second)
		opened = append(opened, mustOpen(t, s, testGrant))
	}
	for i, tok := range opened {
		accessWorks(t, s, tok.AccessToken, "session "+strconv.Itoa(i+1)+" within the limit")
	}

	clk.Advance(time.Second)
	newest := mustOpen(t, s, testGrant)
	accessRefused(t, s, opened[0].AccessToken, "oldest session over the limit")
	refreshRefused(t, s, opened[0].RefreshToken, "oldest session over the limit")
	for _, tok := range append(opened[1:], newest) {
		accessWorks(t, s, tok.AccessToken, "session within the limit after one more sign-in")
	}
	accessWorks(t, s, other.AccessToken, "another person's session")
	want := []string{opened[1].Session.ID, opened[2].Session.ID, newest.Session.ID}
	if ids := listedSessions(t, store, "p-1"); !slices.Equal(ids, want) {
		t.Errorf("sessions of p-1 = %v, want %v", ids, want)
	}

	// A refresh does not make a session younger in the list: the limit goes by sign-in.
	clk.Advance(time.Second)
	mustRefresh(t, s, opened[1].RefreshToken)
	clk.Advance(time.Second)
	mustOpen(t, s, testGrant)
	accessRefused(t, s, opened[1].AccessToken, "second-oldest session, refreshed, after yet another sign-in")
}

// Entries of sessions that expired on their own are pruned, and do not count against the limit.
func TestMaxPerPersonPrunesExpired(t *testing.T) {
	s, store, clk := sessionsUnderTest(t, SessionOptions{MaxPerPerson: 2})
	a := mustOpen(t, s, testGrant)
	clk.Advance(time.Second)
	b := mustOpen(t, s, testGrant)
	expireNow(t, store, sessionKeyOf(store, a.Session.ID))
	if ids := listedSessions(t, store, "p-1"); len(ids) != 2 {
		t.Fatalf("sessions of p-1 = %v; the expired one should still be listed before the next sign-in", ids)
	}

	clk.Advance(time.Second)
	c := mustOpen(t, s, testGrant)
	accessWorks(t, s, b.AccessToken, "older live session, the expired one not counting")
	accessWorks(t, s, c.AccessToken, "newest session")
	if ids, want := listedSessions(t, store, "p-1"), []string{b.Session.ID, c.Session.ID}; !slices.Equal(ids, want) {
		t.Errorf("sessions of p-1 = %v, want %v", ids, want)
	}
}

func TestSignOut(t *testing.T) {
	s, store, _ := sessionsUnderTest(t, SessionOptions{})
	ctx := context.Background()
	mine := mustOpen(t, s, testGrant)
	sameApp := mustOpen(t, s, testGrant)
	otherApp := mustOpen(t, s, Grant{PersonID: "p-1", App: "app-b", Assurance: 2})
	otherPerson := mustOpen(t, s, Grant{PersonID: "p-2", App: "app-a", Assurance: 3})

	sess := accessWorks(t, s, mine.AccessToken, "before sign-out")
	for range 2 { // signing out twice is no error
		if err := s.SignOut(ctx, sess); err != nil {
			t.Fatalf("SignOut = %v", err)
		}
	}
	accessRefused(t, s, mine.AccessToken, "access token after sign-out")
	refreshRefused(t, s, mine.RefreshToken, "refresh token after sign-out")
	for _, tok := range []Tokens{sameApp, otherApp, otherPerson} {
		accessWorks(t, s, tok.AccessToken, "another session after sign-out of one")
	}
	want := []string{sameApp.Session.ID, otherApp.Session.ID}
	slices.Sort(want)
	ids := listedSessions(t, store, "p-1")
	slices.Sort(ids)
	if !slices.Equal(ids, want) {
		t.Errorf("sessions of p-1 = %v, want %v", ids, want)
	}
}

func TestEndAll(t *testing.T) {
	tests := []struct {
		name     string
		app      string
		endsAppA bool
		endsAppB bool
	}{
		{"every app", "", true, true},
		{"one app", "app-a", true, false},
		{"an app without sessions", "app-c", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, store, clk := sessionsUnderTest(t, SessionOptions{})
			ctx := context.Background()
			a1 := mustOpen(t, s, testGrant)
			clk.Advance(time.Second)
			b1 := mustOpen(t, s, Grant{PersonID: "p-1", App: "app-b", Assurance: 2})
			clk.Advance(time.Second)
			a2 := mustRefresh(t, s, mustOpen(t, s, testGrant).RefreshToken)
			clk.Advance(time.Second)
			gone := mustOpen(t, s, testGrant) // expired on its own, still listed
			expireNow(t, store, sessionKeyOf(store, gone.Session.ID))
			otherPerson := mustOpen(t, s, Grant{PersonID: "p-2", App: "app-a", Assurance: 3})

			if err := s.EndAll(ctx, "p-1", tt.app, EndEverywhere); err != nil {
				t.Fatalf("EndAll(p-1, %q) = %v", tt.app, err)
			}
			check := func(tok Tokens, ended bool, what string) {
				t.Helper()
				if ended {
					accessRefused(t, s, tok.AccessToken, what+" after EndAll")
				} else {
					accessWorks(t, s, tok.AccessToken, what+" after EndAll")
				}
			}
			check(a1, tt.endsAppA, "session in app-a")
			check(a2, tt.endsAppA, "refreshed session in app-a")
			check(b1, tt.endsAppB, "session in app-b")
			check(otherPerson, false, "another person's session")

			var want []string
			if !tt.endsAppA {
				want = append(want, a1.Session.ID)
			}
			if !tt.endsAppB {
				want = append(want, b1.Session.ID)
			}
			if !tt.endsAppA {
				want = append(want, a2.Session.ID)
			}
			ids := listedSessions(t, store, "p-1")
			if tt.app != "" && tt.app != "app-a" {
				// No session matched; the expired one may or may not have been pruned.
				ids = slices.DeleteFunc(ids, func(id string) bool { return id == gone.Session.ID })
			}
			if !slices.Equal(ids, want) {
				t.Errorf("sessions of p-1 after EndAll = %v, want %v", ids, want)
			}
		})
	}
	t.Run("a person without sessions", func(t *testing.T) {
		s, _, _ := sessionsUnderTest(t, SessionOptions{})
		if err := s.EndAll(context.Background(), "nobody", "", EndEverywhere); err != nil {
			t.Errorf("EndAll = %v, want nil", err)
		}
		if err := s.EndAll(context.Background(), "nobody", "app-a", EndEverywhere); err != nil {
			t.Errorf("EndAll with an app = %v, want nil", err)
		}
	})
}
