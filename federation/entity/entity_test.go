package entity_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/federation/entity"
	"github.com/tongban/tongban/internal/fakefed"
)

func TestNewRejects(t *testing.T) {
	t.Parallel()
	s := store(t)
	keys := fedKeys(t, s, nil)
	id := "https://tongban.example"
	mark := func(sub, typ string) string {
		raw, err := federation.SignTrustMark(&federation.TrustMark{Issuer: "https://issuer.example", Subject: sub, TrustMarkType: typ, IssuedAt: 1}, fakefed.NewKey("i1"))
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	statement, err := federation.SignStatement(&federation.EntityStatement{Issuer: id, Subject: id, IssuedAt: 1, ExpiresAt: 2,
		JWKS: &jose.JSONWebKeySet{}}, fakefed.NewKey("s1"))
	if err != nil {
		t.Fatal(err)
	}
	pub := fakefed.NewKey("p1")
	pub = pub.Public()
	base := func(mut func(*entity.Options)) entity.Options {
		o := entity.Options{Store: s, Keys: keys, EntityID: id}
		mut(&o)
		return o
	}
	for _, tc := range []struct {
		name string
		o    entity.Options
		want string
	}{
		{"no store", base(func(o *entity.Options) { o.Store = nil }), "Store"},
		{"no keys", base(func(o *entity.Options) { o.Keys = nil }), "Keys"},
		{"entity id not https", base(func(o *entity.Options) { o.EntityID = "http://tongban.example" }), "https"},
		{"entity id with a query", base(func(o *entity.Options) { o.EntityID = id + "/?x" }), "query"},
		{"authority hint not an entity id", base(func(o *entity.Options) { o.AuthorityHints = []string{"ta.example"} }), "authority hint"},
		{"authority hint to itself", base(func(o *entity.Options) { o.AuthorityHints = []string{id} }), "itself"},
		{"authority hint twice", base(func(o *entity.Options) { o.AuthorityHints = []string{"https://ta.example", "https://ta.example"} }), "twice"},
		{"too many authority hints", base(func(o *entity.Options) {
			for i := range 9 {
				o.AuthorityHints = append(o.AuthorityHints, "https://ta"+strings.Repeat("a", i)+".example")
			}
		}), "at most"},
		{"presented trust mark not a JWS", base(func(o *entity.Options) { o.TrustMarks = []string{"x.y"} }), "trust mark 0"},
		{"presented trust mark about another entity", base(func(o *entity.Options) { o.TrustMarks = []string{mark("https://other.example", markType)} }), "want sub"},
		{"presented entity statement instead of a trust mark", base(func(o *entity.Options) { o.TrustMarks = []string{statement} }), "typ"},
		{"trust mark issuer key public", base(func(o *entity.Options) {
			o.TrustMarkIssuer = &entity.TrustMarkIssuer{Types: []string{markType}, Key: &pub}
		}), "private"},
		{"trust mark type twice", base(func(o *entity.Options) {
			o.TrustMarkIssuer = &entity.TrustMarkIssuer{Types: []string{markType, markType}}
		}), "twice"},
		{"configured subordinate with a type not issued", base(func(o *entity.Options) {
			sub, _ := member("https://leaf.example", markType)
			o.Subordinates = []entity.Subordinate{sub}
		}), "not one Tongban issues"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := entity.New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

// An expired trust mark Tongban presents is dropped from the configuration, not served.
func TestExpiredPresentedTrustMarkIsDropped(t *testing.T) {
	t.Parallel()
	s := store(t)
	tb0 := serve(t, s, entity.Options{})
	id := tb0.ID + "/x"
	now := time.Now()
	mk := func(exp time.Time) string {
		raw, _ := federation.SignTrustMark(&federation.TrustMark{Issuer: "https://issuer.example", Subject: id, TrustMarkType: markType,
			IssuedAt: now.Unix(), ExpiresAt: exp.Unix()}, fakefed.NewKey("i1"))
		return raw
	}
	tb := serve(t, s, entity.Options{EntityID: id, TrustMarks: []string{mk(now.Add(-time.Minute)), mk(now.Add(time.Hour))}})
	_, _, body := tb.get(t, "/x"+entity.ConfigurationPath)
	v := federation.Verifier{}
	st, err := v.VerifyConfiguration(body, id)
	if err != nil || len(st.TrustMarks) != 1 {
		t.Fatalf("configuration: %v, trust marks %v, want the unexpired one only", err, st)
	}
}

// Before the federation key is loaded the configuration endpoint says so with 503, never an
// empty jwks.
func TestConfigurationBeforeKeysLoad(t *testing.T) {
	t.Parallel()
	s := store(t)
	tb := serve(t, s, entity.Options{Keys: emptySigner{}})
	code, _, body := tb.get(t, entity.ConfigurationPath)
	if code != 503 || !strings.Contains(body, "temporarily_unavailable") {
		t.Errorf("%d %s", code, body)
	}
}

// emptySigner is a federation key not loaded yet: it publishes nothing and signs nothing.
type emptySigner struct{}

func (emptySigner) Sign(string, string, any) (string, error) { return "", errors.New("not loaded") }
func (emptySigner) PublicKeys() jose.JSONWebKeySet           { return jose.JSONWebKeySet{} }

func TestFetchJWKS(t *testing.T) {
	t.Parallel()
	fed := fakefed.New()
	t.Cleanup(fed.Close)
	leaf := fed.Add("leaf")
	liar := fed.Add("liar")
	liar.SignKey = new(fakefed.NewKey("liar-k1")) // same kid, another key: not self-signed
	ctx := context.Background()
	opts := federation.FetchOptions{AllowLoopback: true}
	got, err := entity.FetchJWKS(ctx, leaf.ID, opts)
	if err != nil || len(got.Keys) != 1 || got.Keys[0].KeyID != "leaf-k1" || !got.Keys[0].IsPublic() {
		t.Fatalf("FetchJWKS: %v %v", got, err)
	}
	for _, tc := range []struct{ name, id string }{
		{"not self-signed", liar.ID},
		{"no such entity", fed.URL + "/nobody"},
		{"loopback without AllowLoopback", leaf.ID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts
			if tc.name == "loopback without AllowLoopback" {
				o.AllowLoopback = false
			}
			if _, err := entity.FetchJWKS(ctx, tc.id, o); err == nil {
				t.Fatal("FetchJWKS accepted it")
			}
		})
	}
}
