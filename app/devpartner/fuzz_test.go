package devpartner

import (
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/internal/fakefed"
)

// FuzzCheckMark: whatever Tongban's trust mark endpoint answers, checking it returns a mark
// only when it is one for the app, and never panics.
func FuzzCheckMark(f *testing.F) {
	key := fakefed.NewKey("anchor")
	keys := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}}
	anchor := &federation.EntityStatement{Issuer: "https://tb.example", Subject: "https://tb.example", JWKS: &keys}
	now := time.Unix(1_800_000_000, 0)
	const sub = "https://tb.example/dev/apps/haining"
	good, err := federation.SignTrustMark(&federation.TrustMark{Issuer: anchor.Subject, Subject: sub,
		TrustMarkType: testMarkType, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix()}, key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add(good[:len(good)-4])
	f.Fuzz(func(t *testing.T, raw string) {
		tm, err := checkMark(raw, sub, testMarkType, anchor, now)
		if err == nil && (tm.Subject != sub || tm.TrustMarkType != testMarkType || tm.Issuer != anchor.Subject) {
			t.Fatalf("accepted %+v", tm)
		}
	})
}

// FuzzLoginHint: a hint accepted is a short URL-safe token, which the app may put in a URL
// and a JWT as it is.
func FuzzLoginHint(f *testing.F) {
	for _, s := range []string{"tbk_abc", "", " ", "a\x00", "<x>", "tbk_" + devRandom()} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if validLoginHint(h) && (len(h) > maxLoginHint || h == "" || url.QueryEscape(h) != h) {
			t.Fatalf("accepted %q", h)
		}
	})
}
