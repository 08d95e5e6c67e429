package identity

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/internal/devidp"
	"github.com/tongban/tongban/internal/fakefed"
	"github.com/tongban/tongban/internal/testenv"
)

const fedCallback = "http://127.0.0.1:9/callback"

// fedEnv is a federation on loopback: an anchor (fakefed), devidp as an OP subordinate to it,
// and Tongban's relying-party entity configuration, served by a small handler as Tongban
// serves its own, the anchor listing it too.
type fedEnv struct {
	fed    *fakefed.Federation
	anchor *fakefed.Entity
	idp    *devidp.Provider
	rpID   string
	rpKey  jose.JSONWebKey // Tongban's relying-party key, in its metadata's jwks
}

func newFedEnv(t *testing.T, keys string) *fedEnv {
	t.Helper()
	e := &fedEnv{fed: fakefed.New(), rpKey: fakefed.NewKey("rp-k1")}
	t.Cleanup(e.fed.Close)
	e.anchor = e.fed.Add("ta")
	e.anchor.Metadata["federation_entity"] = map[string]any{"federation_fetch_endpoint": e.anchor.FetchEndpoint()}

	// Tongban as a relying party.
	rpFedKey := fakefed.NewKey("rp-fed-k1")
	rpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-federation" {
			http.NotFound(w, r)
			return
		}
		now := time.Now()
		fedJWKS := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{rpFedKey.Public()}}
		st := &federation.EntityStatement{
			Issuer: e.rpID, Subject: e.rpID, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(),
			JWKS: &fedJWKS, AuthorityHints: []string{e.anchor.ID},
			Metadata: federation.Metadata{"openid_relying_party": {
				"client_registration_types":  []string{"automatic"},
				"redirect_uris":              []string{fedCallback},
				"token_endpoint_auth_method": "private_key_jwt",
				"jwks":                       jose.JSONWebKeySet{Keys: []jose.JSONWebKey{e.rpKey.Public()}},
			}},
		}
		jws, err := federation.SignStatement(st, rpFedKey)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		federation.WriteStatement(w, jws)
	}))
	t.Cleanup(rpSrv.Close)
	e.rpID = rpSrv.URL
	rpFedJWKS := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{rpFedKey.Public()}}

	// devidp as an OP, resolving relying parties with a resolver of its own.
	var idp *devidp.Provider
	idpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { idp.ServeHTTP(w, r) }))
	t.Cleanup(idpSrv.Close)
	var err error
	idp, err = devidp.New(devidp.Options{
		Issuer: idpSrv.URL, App: "zheliban", Algorithm: "ES256",
		Federation: &devidp.FederationOptions{AuthorityHints: []string{e.anchor.ID}, Resolver: e.resolver(t, nil), Keys: keys},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.idp = idp
	idpJWKS := idp.FederationJWKS()
	e.fed.Lock()
	e.anchor.Subordinates[idp.EntityID()] = &fakefed.Subordinate{JWKS: &idpJWKS}
	e.anchor.Subordinates[e.rpID] = &fakefed.Subordinate{JWKS: &rpFedJWKS}
	e.fed.Unlock()
	return e
}

// resolver trusts the anchor, with cfg's other settings.
func (e *fedEnv) resolver(t *testing.T, edit func(*federation.Config)) *federation.Resolver {
	t.Helper()
	cfg := federation.Config{TrustAnchors: []federation.TrustAnchor{e.anchor.Anchor()}, Fetch: federation.FetchOptions{AllowLoopback: true}}
	if edit != nil {
		edit(&cfg)
	}
	r, err := federation.NewResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// editedFederation is NewFederation's Federation over a resolver, with what the chain said
// changed by edit and fedKeys, and the relying-party key key.
type editedFederation struct {
	r       *federation.Resolver
	id      string
	key     jose.JSONWebKey
	edit    func(md map[string]any)
	fedKeys *jose.JSONWebKeySet
}

func (f *editedFederation) EntityID() string { return f.id }

func (f *editedFederation) OpenIDProvider(ctx context.Context, entityID string) (map[string]any, time.Time, jose.JSONWebKeySet, error) {
	md, exp, keys, err := NewFederation(f.r, f.id, nil).OpenIDProvider(ctx, entityID)
	if err != nil {
		return md, exp, keys, err
	}
	if f.edit != nil {
		f.edit(md)
	}
	if f.fedKeys != nil {
		keys = *f.fedKeys
	}
	return md, exp, keys, nil
}

func (f *editedFederation) Sign(typ string, claims any) (string, error) {
	return JWKSigner(f.key)(typ, claims)
}

func (e *fedEnv) federation(t *testing.T) *editedFederation {
	return &editedFederation{r: e.resolver(t, nil), id: e.rpID, key: e.rpKey}
}

func (e *fedEnv) provider() config.Provider {
	return config.Provider{
		ID: "zheliban", EntityID: e.idp.EntityID(), RedirectURIs: []string{fedCallback},
		Scopes: []string{"openid", "profile", "phone", "id_number"},
		Claims: config.ClaimMap{IDNumber: "id_number", Name: "name", Phone: "phone_number", Assurance: "acr"},
		AssuranceLevels: map[string]int{
			devidp.ACRLevel1: 1, devidp.ACRLevel2: 2, devidp.ACRLevel3: 3, devidp.ACRFace: 4,
		},
		AutoLinkMinAssurance: 3,
	}
}

// service starts a registry of the federated provider with fed and waits for it.
func (e *fedEnv) service(t *testing.T, fed Federation) *Service {
	t.Helper()
	reg := NewRegistry([]config.Provider{e.provider()}, RegistryOptions{Federation: fed})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	reg.Start(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := reg.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	store := testenv.Redis(t)
	keys := Keys{Pepper: []byte("a pepper of at least thirty-two bytes"), KEK: []byte("0123456789abcdef0123456789abcdef")}
	return NewService(store, keys, reg, NewSessions(store, SessionOptions{}), nil)
}

// authorize follows the authorization URL as citizen and returns the redirect's query, or
// the status and body of a refusal page.
func authorize(t *testing.T, authURL, citizen string) (url.Values, int, string) {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(authURL + "&login_hint=" + url.QueryEscape(citizen))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		var b strings.Builder
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return nil, resp.StatusCode, b.String()
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query(), resp.StatusCode, ""
}

// A provider named by entity id is resolved through its trust chain, whichever way its
// metadata carries its keys, and a citizen signs in both ways: with an ID token the app holds
// (aud Tongban's entity id) and by the code flow Tongban runs (a signed request object,
// private_key_jwt at the token endpoint).
func TestFederatedProviderSignIn(t *testing.T) {
	for _, keys := range []string{"jwks", "jwks_uri", "signed_jwks_uri"} {
		t.Run(keys, func(t *testing.T) {
			e := newFedEnv(t, keys)
			svc := e.service(t, NewFederation(e.resolver(t, nil), e.rpID, JWKSigner(e.rpKey)))
			ctx := context.Background()
			p, _ := svc.Registry.Get("zheliban")
			up, err := p.state()
			if err != nil {
				t.Fatal(err)
			}
			if up.issuer != e.idp.Issuer() || up.clientID != e.rpID || !up.federated || (up.guard != nil) != (keys == "jwks_uri") {
				t.Fatalf("resolved state: issuer %s client %s federated %v guard %v", up.issuer, up.clientID, up.federated, up.guard != nil)
			}

			tok, err := e.idp.Mint(devidp.MintRequest{Citizen: "wang-fang", Audience: []string{e.rpID}, Nonce: "n-1"})
			if err != nil {
				t.Fatal(err)
			}
			if _, person, err := svc.SignInWithIDToken(ctx, "zheliban", tok, "n-1"); err != nil || person.DisplayName != "王芳" {
				t.Fatalf("sign in with a handed-over ID token: %+v, %v", person, err)
			}

			ch, err := svc.BeginSignIn(ctx, "zheliban", fedCallback, "")
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(ch.AuthorizationURL)
			if q := u.Query(); q.Get("request") == "" || q.Get("client_id") != e.rpID || q.Has("state") || q.Has("nonce") {
				t.Fatalf("authorization request %s: want client_id and a request object carrying the rest", ch.AuthorizationURL)
			}
			q, status, body := authorize(t, ch.AuthorizationURL, "zhang-wei")
			if q.Get("code") == "" {
				t.Fatalf("authorize: %d %s %v", status, body, q)
			}
			tokens, person, err := svc.CompleteSignIn(ctx, q.Get("state"), q.Get("code"), q.Get("iss"), "")
			if err != nil || person.DisplayName != "张伟" || tokens.AccessToken == "" {
				t.Fatalf("code flow: %+v, %v", person, err)
			}
		})
	}
}

// Every refusal of a federated provider's resolution, each by its reason: the provider stays
// missing and says why.
func TestFederatedProviderRejects(t *testing.T) {
	e := newFedEnv(t, "signed_jwks_uri")
	other := e.fed.Add("other-ta")
	foreign := fakefed.NewKey(e.idp.FederationJWKS().Keys[0].KeyID) // same kid, another key
	for _, tc := range []struct {
		name   string
		fed    func(*editedFederation)
		cfg    func(*config.Provider)
		reason federation.Reason // "" when the error is identity's own
		want   string
	}{
		{name: "issuer not the configured one", fed: func(*editedFederation) {}, cfg: func(c *config.Provider) {
			c.Issuer = "https://op.example"
		}, want: "is not the configured issuer"},
		{name: "chain to an unknown anchor", fed: func(f *editedFederation) {
			f.r = e.resolver(t, func(c *federation.Config) { c.TrustAnchors = []federation.TrustAnchor{other.Anchor()} })
		}, reason: federation.ReasonUnknownTrustAnchor, want: "trust chain of"},
		{name: "required trust mark missing", fed: func(f *editedFederation) {
			f.r = e.resolver(t, func(c *federation.Config) { c.RequiredTrustMarks = []string{"https://gov.example/marks/provincial"} })
		}, reason: federation.ReasonTrustMarkMissing, want: "trust chain of"},
		{name: "metadata without issuer", fed: func(f *editedFederation) {
			f.edit = func(md map[string]any) { delete(md, "issuer") }
		}, want: "issuer is missing"},
		{name: "metadata without token endpoint", fed: func(f *editedFederation) {
			f.edit = func(md map[string]any) { delete(md, "token_endpoint") }
		}, want: "token_endpoint is missing"},
		{name: "metadata without authorization endpoint", fed: func(f *editedFederation) {
			f.edit = func(md map[string]any) { delete(md, "authorization_endpoint") }
		}, want: "authorization_endpoint is missing"},
		{name: "endpoint over plain http off loopback", fed: func(f *editedFederation) {
			f.edit = func(md map[string]any) { md["token_endpoint"] = "http://op.example/token" }
		}, want: "not an https URL"},
		{name: "no keys", fed: func(f *editedFederation) {
			f.edit = func(md map[string]any) { delete(md, "signed_jwks_uri") }
		}, want: "publishes no keys"},
		{name: "no automatic registration", fed: func(f *editedFederation) {
			f.edit = func(md map[string]any) { md["client_registration_types_supported"] = []any{"explicit"} }
		}, want: "does not list automatic"},
		{name: "no private_key_jwt", fed: func(f *editedFederation) {
			f.edit = func(md map[string]any) { md["token_endpoint_auth_methods_supported"] = []any{"client_secret_basic"} }
		}, want: "does not list private_key_jwt"},
		{name: "signed_jwks_uri with a bad signature", fed: func(f *editedFederation) {
			f.fedKeys = &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{foreign.Public()}}
		}, want: "signature does not verify"},
		{name: "signed_jwks_uri signed by a key not the entity's", fed: func(f *editedFederation) {
			k := fakefed.NewKey("someone-else")
			f.fedKeys = &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.Public()}}
		}, want: "not one of the entity's federation keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := e.federation(t)
			tc.fed(f)
			c := e.provider()
			if tc.cfg != nil {
				tc.cfg(&c)
			}
			reg := NewRegistry([]config.Provider{c}, RegistryOptions{Federation: f})
			p, _ := reg.Get("zheliban")
			_, err := p.discover(context.Background())
			t.Log(err)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("discover = %v, want an error saying %q", err, tc.want)
			}
			if tc.reason != "" && federation.ReasonOf(err) != tc.reason {
				t.Errorf("reason = %q, want %q", federation.ReasonOf(err), tc.reason)
			}
			var me *MetadataError
			if tc.reason == "" && !errors.As(err, &me) {
				t.Errorf("%v is not a *MetadataError", err)
			}
			if !strings.Contains(err.Error(), e.idp.EntityID()) {
				t.Errorf("the error %q does not name the provider's entity id", err)
			}
			if _, err := p.state(); !errors.Is(err, ErrProviderUnavailable) {
				t.Errorf("state = %v, want the provider unavailable", err)
			}
		})
	}
}

// A provider named by entity id needs a federation, and takes no client secret.
func TestFederatedProviderMisconfigured(t *testing.T) {
	fed := NewFederation(nil, "https://tongban.example", nil)
	for _, tc := range []struct {
		name string
		fed  Federation
		edit func(*config.Provider)
		want string
	}{
		{name: "no federation", want: "OpenID Federation is not configured"},
		{name: "client secret", fed: fed, edit: func(c *config.Provider) { c.ClientSecret = "s" }, want: "remove client_secret"},
		{name: "client id not the entity id", fed: fed, edit: func(c *config.Provider) { c.ClientID = "tongban" }, want: "must be Tongban's entity id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Provider{ID: "zheliban", EntityID: "https://op.example"}
			if tc.edit != nil {
				tc.edit(&c)
			}
			reg := NewRegistry([]config.Provider{c}, RegistryOptions{Federation: tc.fed})
			if err := reg.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want %q", err, tc.want)
			}
			if err := reg.Run(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want %q", err, tc.want)
			}
			if m := reg.Missing(); len(m) != 1 {
				t.Fatalf("Missing = %v", m)
			}
		})
	}
}

// Tokens and requests the federation refuses once the provider is resolved.
func TestFederatedSignInRejects(t *testing.T) {
	e := newFedEnv(t, "jwks")
	svc := e.service(t, e.federation(t))
	ctx := context.Background()

	t.Run("ID token for another client", func(t *testing.T) {
		tok, err := e.idp.Mint(devidp.MintRequest{Citizen: "wang-fang", Audience: []string{"tongban"}})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = svc.SignInWithIDToken(ctx, "zheliban", tok, "")
		var te *TokenError
		if !errors.As(err, &te) || te.Reason != ReasonAudienceMismatch {
			t.Fatalf("SignInWithIDToken = %v, want %s", err, ReasonAudienceMismatch)
		}
	})
	t.Run("ID token from another issuer", func(t *testing.T) {
		tok, err := e.idp.Mint(devidp.MintRequest{Citizen: "wang-fang", Audience: []string{e.rpID}, Claims: map[string]any{"iss": e.idp.Issuer() + "/other"}})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = svc.SignInWithIDToken(ctx, "zheliban", tok, "")
		var te *TokenError
		if !errors.As(err, &te) || te.Reason != ReasonIssuerMismatch {
			t.Fatalf("SignInWithIDToken = %v, want %s", err, ReasonIssuerMismatch)
		}
	})
	t.Run("request object with a bad signature", func(t *testing.T) {
		// Tongban signs with a key its metadata does not publish: the provider refuses the
		// request before any redirect.
		f := e.federation(t)
		f.key = fakefed.NewKey(e.rpKey.KeyID)
		bad := e.service(t, f)
		ch, err := bad.BeginSignIn(ctx, "zheliban", fedCallback, "")
		if err != nil {
			t.Fatal(err)
		}
		q, status, body := authorize(t, ch.AuthorizationURL, "zhang-wei")
		if status != http.StatusBadRequest || !strings.Contains(body, "signature does not verify") {
			t.Fatalf("authorize = %d %q %v, want 400 for the signature", status, body, q)
		}
	})
	t.Run("redirect URI not in Tongban's metadata", func(t *testing.T) {
		reg := svc.Registry
		p, _ := reg.Get("zheliban")
		p.Config.RedirectURIs = append(p.Config.RedirectURIs, "http://127.0.0.1:9/elsewhere")
		defer func() { p.Config.RedirectURIs = p.Config.RedirectURIs[:1] }()
		ch, err := svc.BeginSignIn(ctx, "zheliban", "http://127.0.0.1:9/elsewhere", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, status, body := authorize(t, ch.AuthorizationURL, "zhang-wei"); status != http.StatusBadRequest || !strings.Contains(body, "redirect_uri") {
			t.Fatalf("authorize = %d %q, want 400 for the redirect URI", status, body)
		}
	})
}

// The registry resolves the provider again before its chain expires, so that sign-in never
// stops; when resolution fails past the expiry, the provider goes missing, and comes back
// once resolution succeeds again.
func TestFederatedProviderResolvedAgain(t *testing.T) {
	e := newFedEnv(t, "jwks")
	e.fed.Lock()
	e.anchor.Lifetime = 3 * time.Second
	e.fed.Unlock()
	f := e.federation(t)
	svc := e.service(t, f)
	p, _ := svc.Registry.Get("zheliban")
	first, err := p.state()
	if err != nil {
		t.Fatal(err)
	}
	// Past two expiries of the first chain, the provider never was unavailable.
	for deadline := first.expires.Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := p.state(); err != nil {
			t.Fatalf("the provider went missing while its chain was renewed: %v", err)
		}
	}
	if now, _ := p.state(); !now.expires.After(first.expires) {
		t.Fatalf("the chain expiring at %s was not renewed", first.expires)
	}

	// The anchor stops vouching for the provider: once the last chain expires, it is missing.
	e.fed.Lock()
	sub := e.anchor.Subordinates[e.idp.EntityID()]
	delete(e.anchor.Subordinates, e.idp.EntityID())
	e.fed.Unlock()
	waitFor(t, 6*time.Second, func() bool { return len(svc.Registry.Missing()) == 1 })
	if _, err := p.state(); err == nil || !strings.Contains(err.Error(), "trust chain") {
		t.Fatalf("state of the expired provider = %v", err)
	}
	e.fed.Lock()
	e.anchor.Subordinates[e.idp.EntityID()] = sub
	e.fed.Unlock()
	waitFor(t, 6*time.Second, func() bool { return len(svc.Registry.Missing()) == 0 })
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
	}
}
