package bridge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"testing"
)

// The pairwise subject a client already knows its users by must survive the bridge deriving
// its key itself: the same pepper gives the same subjects, pinned here as literal values.
func TestSubjectFromPepper(t *testing.T) {
	t.Parallel()
	pepper := []byte("pepper-of-at-least-thirty-two-bytes-0123")
	b := New(Options{Pepper: pepper})
	// The derivation as the composition root did it before the bridge took it over; the literals
	// were computed outside Go (Python's hmac) from the same pepper.
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte("tongban/bridge/pairwise-subject"))
	key := m.Sum(nil)
	old := func(sector, pid string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(sector + "\x00" + pid))
		return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	for _, tc := range []struct {
		name string
		c    *Client
		pid  string
		want string
	}{
		{"pairwise", &Client{ID: "suishenban", SubjectType: "pairwise", sector: "suishenban"}, "p1", "VwrOgGF0MaN1g1NDQ3yieNM_rXOApGi8dR7T3osJfKk"},
		{"pairwise, another client", &Client{ID: "sufuban", SubjectType: "pairwise", sector: "sufuban"}, "p1", "YAKnhnC501ERLR2je5WLCGpbJvhNXORZs7m1Wc_KDaQ"},
		{"public", &Client{ID: "zheliban", SubjectType: "public", sector: "zheliban"}, "p1", "p1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := b.Subject(tc.c, tc.pid)
			if tc.c.SubjectType != "public" {
				if o := old(tc.c.sector, tc.pid); got != o {
					t.Errorf("subject %q, the composition root derived %q", got, o)
				}
			}
			if got != tc.want {
				t.Errorf("subject %q, want %q", got, tc.want)
			}
		})
	}
	if a, c := b.Subject(&Client{SubjectType: "pairwise", sector: "a"}, "p1"), b.Subject(&Client{SubjectType: "pairwise", sector: "c"}, "p1"); a == c {
		t.Errorf("two sectors see one subject %q", a)
	}
	if other := New(Options{Pepper: []byte("another-pepper-of-thirty-two-bytes-xyz")}); other.Subject(&Client{SubjectType: "pairwise", sector: "suishenban"}, "p1") == b.Subject(&Client{SubjectType: "pairwise", sector: "suishenban"}, "p1") {
		t.Error("another pepper gives the same subjects")
	}
}
