package app

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/devidp"
	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/internal/testenv"
)

const meQuery = `{ me { id displayName maskedIdNumber accounts { app { id } subject assurance linkedAt } } }`

// authorize follows a provider's authorization URL as a browser would, with the citizen
// picked by login_hint, and returns the query of the redirect back to the app.
func authorize(t *testing.T, authURL, citizen string) url.Values {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("login_hint", citizen)
	u.RawQuery = q.Encode()
	resp, err := noRedirects.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %s", resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query()
}

const beginSignIn = `mutation($app: ID!, $r: String!) { beginSignIn(app: $app, redirectUri: $r) { authorizationUrl state } }`
const completeSignIn = `mutation($s: String!, $c: String!, $i: String) { completeSignIn(state: $s, code: $c, iss: $i) { ` + sessionFields + ` } }`

func TestCodeFlowEndToEnd(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	callback := h.url + "/dev/apps/zheliban/callback"
	r := h.gql(beginSignIn, map[string]any{"app": "zheliban", "r": callback}, "")
	if len(r.Errors) > 0 {
		t.Fatal(r.Raw)
	}
	authURL, state := r.str("beginSignIn", "authorizationUrl"), r.str("beginSignIn", "state")
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" ||
		q.Get("state") != state || q.Get("redirect_uri") != callback || !strings.HasPrefix(authURL, h.url+"/dev/idp/zheliban/") {
		t.Fatalf("authorization URL %s", authURL)
	}

	back := authorize(t, authURL, "wang-fang")
	if back.Get("state") != state || back.Get("code") == "" || back.Get("iss") != h.url+"/dev/idp/zheliban" {
		t.Fatalf("redirect back: %v", back)
	}
	// The simulated app's callback page shows what to pass on.
	if status, body := h.get("/dev/apps/zheliban/callback?" + back.Encode()); status != 200 || !strings.Contains(body, "completeSignIn") {
		t.Fatalf("callback page: %d %s", status, body)
	}

	vars := map[string]any{"s": state, "c": back.Get("code"), "i": back.Get("iss")}
	r = h.gql(completeSignIn, vars, "")
	if len(r.Errors) > 0 {
		t.Fatal(r.Raw)
	}
	access := r.str("completeSignIn", "accessToken")
	if r.field("completeSignIn", "assurance") != 4.0 || r.str("completeSignIn", "app", "id") != "zheliban" {
		t.Errorf("session %s", r.Raw)
	}
	me := h.gql(meQuery, nil, access)
	if me.str("me", "displayName") != "王芳" || me.str("me", "maskedIdNumber") != "330***********108X" {
		t.Errorf("me = %s", me.Raw)
	}
	accounts, _ := me.field("me", "accounts").([]any)
	if len(accounts) != 1 || accounts[0].(map[string]any)["subject"] != "zlb-0001" {
		t.Errorf("accounts = %v", accounts)
	}

	// The state works once.
	if again := h.gql(completeSignIn, vars, ""); again.code() != "BAD_USER_INPUT" {
		t.Errorf("second completeSignIn: %s", again.Raw)
	}
}

func TestCodeFlowRejects(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	callback := h.url + "/dev/apps/zheliban/callback"
	begin := func() (string, url.Values) {
		r := h.gql(beginSignIn, map[string]any{"app": "zheliban", "r": callback}, "")
		if len(r.Errors) > 0 {
			t.Fatal(r.Raw)
		}
		return r.str("beginSignIn", "state"), authorize(t, r.str("beginSignIn", "authorizationUrl"), "zhang-wei")
	}
	t.Run("redirect URI not registered", func(t *testing.T) {
		r := h.gql(beginSignIn, map[string]any{"app": "zheliban", "r": "https://evil.example/cb"}, "")
		if r.code() != "BAD_USER_INPUT" || !strings.Contains(r.message(), "redirectUri") {
			t.Errorf("%s", r.Raw)
		}
	})
	t.Run("app that cannot sign in", func(t *testing.T) {
		if r := h.gql(beginSignIn, map[string]any{"app": "nowhere", "r": callback}, ""); r.code() != "BAD_USER_INPUT" {
			t.Errorf("%s", r.Raw)
		}
	})
	t.Run("unknown state", func(t *testing.T) {
		r := h.gql(completeSignIn, map[string]any{"s": "made-up", "c": "x"}, "")
		if r.code() != "BAD_USER_INPUT" {
			t.Errorf("%s", r.Raw)
		}
	})
	t.Run("iss of another provider (mix-up, RFC 9207)", func(t *testing.T) {
		state, back := begin()
		r := h.gql(completeSignIn, map[string]any{"s": state, "c": back.Get("code"), "i": h.url + "/dev/idp/sufuban"}, "")
		if r.code() != "INVALID_TOKEN" || r.reason() != "issuer_mismatch" {
			t.Errorf("%s", r.Raw)
		}
	})
	t.Run("iss missing from a provider that sends it", func(t *testing.T) {
		state, back := begin()
		r := h.gql(completeSignIn, map[string]any{"s": state, "c": back.Get("code")}, "")
		if r.code() != "BAD_USER_INPUT" || !strings.Contains(r.message(), "RFC 9207") {
			t.Errorf("%s", r.Raw)
		}
	})
	t.Run("code refused by the provider", func(t *testing.T) {
		state, back := begin()
		r := h.gql(completeSignIn, map[string]any{"s": state, "c": back.Get("code") + "x", "i": back.Get("iss")}, "")
		if r.code() != "BAD_USER_INPUT" || !strings.Contains(r.message(), "invalid_grant") {
			t.Errorf("%s", r.Raw)
		}
	})
	t.Run("nonce swapped by the provider", func(t *testing.T) {
		h.idp("zheliban").SetTokenHook(func(m *devidp.MintRequest) { m.Nonce = "another" })
		defer h.idp("zheliban").SetTokenHook(nil)
		state, back := begin()
		r := h.gql(completeSignIn, map[string]any{"s": state, "c": back.Get("code"), "i": back.Get("iss")}, "")
		if r.code() != "INVALID_TOKEN" || r.reason() != "nonce_mismatch" {
			t.Errorf("%s", r.Raw)
		}
	})
	t.Run("at_hash of another access token", func(t *testing.T) {
		h.idp("zheliban").SetTokenHook(func(m *devidp.MintRequest) { m.AccessToken = "not-the-one-sent" })
		defer h.idp("zheliban").SetTokenHook(nil)
		state, back := begin()
		r := h.gql(completeSignIn, map[string]any{"s": state, "c": back.Get("code"), "i": back.Get("iss")}, "")
		if r.code() != "INVALID_TOKEN" || r.reason() != "access_token_mismatch" {
			t.Errorf("%s", r.Raw)
		}
	})
}

func personOf(t *testing.T, h *harness, access string) gqlResponse {
	t.Helper()
	r := h.gql(meQuery, nil, access)
	if len(r.Errors) > 0 || r.str("me", "id") == "" {
		t.Fatalf("me: %s", r.Raw)
	}
	return r
}

func TestAutoLinkAcrossApps(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	a := h.signIn("zheliban", "wang-fang")   // face
	b := h.signIn("suishenban", "wang-fang") // level 3
	if a.person != b.person {
		t.Fatalf("two persons %s and %s for one citizen at levels 4 and 3", a.person, b.person)
	}
	accounts, _ := personOf(t, h, a.access).field("me", "accounts").([]any)
	if len(accounts) != 2 {
		t.Errorf("accounts = %v", accounts)
	}
	// Signing in again is the same person, with the same accounts.
	if again := h.signIn("zheliban", "wang-fang"); again.person != a.person {
		t.Errorf("second sign-in made person %s", again.person)
	}
}

func TestNoAutoLinkBelowTheLevel(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	for _, order := range [][2]string{{"suishenban", "sufuban"}, {"sufuban", "suishenban"}} {
		t.Run(order[0]+" first", func(t *testing.T) {
			h := h
			if order[0] == "sufuban" {
				h = startIdentity(t, nil)
			}
			first := h.signIn(order[0], "liu-yang")
			second := h.signIn(order[1], "liu-yang")
			if first.person == second.person {
				t.Fatal("a level-1 account was linked by ID number")
			}
		})
	}
}

const linkAccount = `mutation($app: ID!, $t: String!, $n: String) { linkAccount(app: $app, idToken: $t, nonce: $n) { id accounts { app { id } subject } } }`
const unlinkAccount = `mutation($app: ID!) { unlinkAccount(app: $app) { id accounts { app { id } } } }`

func TestExplicitLink(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	weak := h.signIn("suishenban", "liu-yang") // level 1: its own person
	strong := h.signIn("sufuban", "liu-yang")  // level 3: another person
	if weak.person == strong.person {
		t.Fatal("auto-linked a level-1 account")
	}
	t.Run("someone else's ID number", func(t *testing.T) {
		tok := h.mint("zheliban", devidp.MintRequest{Citizen: "wang-fang"})
		r := h.gql(linkAccount, map[string]any{"app": "zheliban", "t": tok}, weak.access)
		if r.code() != "FORBIDDEN" {
			t.Fatalf("%s", r.Raw)
		}
	})
	t.Run("without a session", func(t *testing.T) {
		tok := h.mint("sufuban", devidp.MintRequest{Citizen: "liu-yang"})
		if r := h.gql(linkAccount, map[string]any{"app": "sufuban", "t": tok}, ""); r.code() != "UNAUTHENTICATED" {
			t.Fatalf("%s", r.Raw)
		}
	})
	// Signed in with the level-1 account, the citizen presents the other app's token: the
	// other person is merged in, and its session ends.
	tok := h.mint("sufuban", devidp.MintRequest{Citizen: "liu-yang", Nonce: "link-1"})
	r := h.gql(linkAccount, map[string]any{"app": "sufuban", "t": tok, "n": "link-1"}, weak.access)
	if len(r.Errors) > 0 {
		t.Fatal(r.Raw)
	}
	if r.str("linkAccount", "id") != weak.person {
		t.Errorf("linked into %s, want %s", r.str("linkAccount", "id"), weak.person)
	}
	if accounts, _ := r.field("linkAccount", "accounts").([]any); len(accounts) != 2 {
		t.Errorf("accounts after link = %v", accounts)
	}
	if me := h.gql(meQuery, nil, strong.access); me.field("me") != nil {
		t.Errorf("the merged person's session still works: %s", me.Raw)
	}
	if again := h.signIn("sufuban", "liu-yang"); again.person != weak.person {
		t.Errorf("after the link, sufuban signs in as %s, want %s", again.person, weak.person)
	}
	// The same token is accepted once.
	if r := h.gql(linkAccount, map[string]any{"app": "sufuban", "t": tok, "n": "link-1"}, weak.access); r.reason() != "replayed" {
		t.Errorf("replayed link: %s", r.Raw)
	}
}

func TestUnlinkRules(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	a := h.signIn("zheliban", "zhou-ting")
	h.signIn("suishenban", "zhou-ting")
	c := h.signIn("sufuban", "zhou-ting")
	if accounts, _ := personOf(t, h, a.access).field("me", "accounts").([]any); len(accounts) != 3 {
		t.Fatalf("accounts = %v", accounts)
	}
	if r := h.gql(unlinkAccount, map[string]any{"app": "zheliban"}, a.access); r.code() != "FORBIDDEN" {
		t.Errorf("unlinking the session's own account: %s", r.Raw)
	}
	if r := h.gql(unlinkAccount, map[string]any{"app": "nowhere"}, a.access); r.code() != "BAD_USER_INPUT" {
		t.Errorf("unlinking an account the person lacks: %s", r.Raw)
	}
	if r := h.gql(unlinkAccount, map[string]any{"app": "sufuban"}, ""); r.code() != "UNAUTHENTICATED" {
		t.Errorf("unlink without a session: %s", r.Raw)
	}
	r := h.gql(unlinkAccount, map[string]any{"app": "sufuban"}, a.access)
	if len(r.Errors) > 0 {
		t.Fatal(r.Raw)
	}
	if accounts, _ := r.field("unlinkAccount", "accounts").([]any); len(accounts) != 2 {
		t.Errorf("accounts after unlink = %v", accounts)
	}
	// The session opened with the unlinked account ended; the account now signs in as a
	// person of its own, and does not auto-link back.
	if me := h.gql(meQuery, nil, c.access); me.field("me") != nil {
		t.Errorf("session of the unlinked account still works: %s", me.Raw)
	}
	alone := h.signIn("sufuban", "zhou-ting")
	if alone.person == a.person {
		t.Error("the unlinked account went back to the person")
	}
	// Down to one account: it cannot be unlinked, and the current one never can.
	if r := h.gql(unlinkAccount, map[string]any{"app": "suishenban"}, a.access); len(r.Errors) > 0 {
		t.Fatal(r.Raw)
	}
	if r := h.gql(unlinkAccount, map[string]any{"app": "zheliban"}, a.access); r.code() != "FORBIDDEN" {
		t.Errorf("unlinking the last account: %s", r.Raw)
	}
}

// Fifty citizens sign in for the first time from two apps at once: each must end up as one
// person, whichever sign-in gets there first.
func TestFirstSignInRaceYieldsOnePerson(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	const pairs = 50
	type result struct{ a, b string }
	results := make([]result, pairs)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range pairs {
		n, err := idnumber.Build("330402", time.Date(1970+i%30, 1+time.Month(i%12), 1+i%28, 0, 0, 0, 0, time.UTC), 500+i)
		if err != nil {
			t.Fatal(err)
		}
		mint := func(app, sub string) string {
			return h.mint(app, devidp.MintRequest{Claims: map[string]any{
				"sub": sub, "id_number": n.String(), "acr": devidp.ACRLevel3, "name": fmt.Sprintf("race %d", i),
			}})
		}
		ta, tb := mint("zheliban", fmt.Sprintf("race-zlb-%d", i)), mint("suishenban", fmt.Sprintf("race-ssb-%d", i))
		for j, app := range []string{"zheliban", "suishenban"} {
			tok := ta
			if j == 1 {
				tok = tb
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := h.gql(signInWithIDToken, map[string]any{"app": app, "t": tok}, "")
				pid := r.str("signInWithIdToken", "person", "id")
				if pid == "" {
					t.Errorf("pair %d %s: %s", i, app, r.Raw)
				}
				if j == 0 {
					results[i].a = pid
				} else {
					results[i].b = pid
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	seen := map[string]bool{}
	for i, r := range results {
		if r.a != r.b {
			t.Errorf("pair %d: two persons %s and %s", i, r.a, r.b)
		}
		if seen[r.a] {
			t.Errorf("pair %d shares person %s with another citizen", i, r.a)
		}
		seen[r.a] = true
	}
}

const refreshSession = `mutation($r: String!) { refreshSession(refreshToken: $r) { accessToken refreshToken person { id } } }`

func TestRefreshSignOutAndExpiry(t *testing.T) {
	t.Parallel()
	clk := testenv.NewClock()
	h := startIdentity(t, nil, WithClock(clk.Now))
	in := h.signIn("zheliban", "zhang-wei")

	r := h.gql(refreshSession, map[string]any{"r": in.refresh}, "")
	if len(r.Errors) > 0 || r.str("refreshSession", "person", "id") != in.person {
		t.Fatal(r.Raw)
	}
	next := r.str("refreshSession", "refreshToken")
	personOf(t, h, r.str("refreshSession", "accessToken"))

	// The rotated token is reused: the whole session ends, the fresh tokens with it.
	if again := h.gql(refreshSession, map[string]any{"r": in.refresh}, ""); again.code() != "UNAUTHENTICATED" {
		t.Fatalf("reused refresh token: %s", again.Raw)
	}
	if again := h.gql(refreshSession, map[string]any{"r": next}, ""); again.code() != "UNAUTHENTICATED" {
		t.Errorf("the family survived reuse: %s", again.Raw)
	}
	if me := h.gql(meQuery, nil, r.str("refreshSession", "accessToken")); me.field("me") != nil {
		t.Errorf("access token survived reuse: %s", me.Raw)
	}

	// Sign-out ends the session at once; signing out needs a session.
	s := h.signIn("zheliban", "zhang-wei")
	if r := h.gql(`mutation { signOut }`, nil, s.access); r.field("signOut") != true {
		t.Fatal(r.Raw)
	}
	if me := h.gql(meQuery, nil, s.access); me.field("me") != nil {
		t.Errorf("signed-out token works: %s", me.Raw)
	}
	if r := h.gql(`mutation { signOut }`, nil, ""); r.code() != "UNAUTHENTICATED" {
		t.Errorf("signOut without a session: %s", r.Raw)
	}
	if r := h.gql(refreshSession, map[string]any{"r": s.refresh}, ""); r.code() != "UNAUTHENTICATED" {
		t.Errorf("refresh after sign-out: %s", r.Raw)
	}

	// An expired access token is no session: me is null, and what needs one is UNAUTHENTICATED.
	e := h.signIn("zheliban", "zhang-wei")
	clk.Advance(15*time.Minute + time.Second)
	if me := h.gql(meQuery, nil, e.access); me.field("me") != nil {
		t.Errorf("expired token works: %s", me.Raw)
	}
	if r := h.gql(`mutation { signOut }`, nil, e.access); r.code() != "UNAUTHENTICATED" {
		t.Errorf("signOut with an expired token: %s", r.Raw)
	}
	// Its refresh token still gets a new one.
	if r := h.gql(refreshSession, map[string]any{"r": e.refresh}, ""); len(r.Errors) > 0 {
		t.Errorf("refresh after access expiry: %s", r.Raw)
	}
}

func TestSessionsPerPersonAreCapped(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, func(c *config.Config) { c.Sessions.MaxPerPerson = 2 })
	first := h.signIn("zheliban", "wang-fang")
	h.signIn("zheliban", "wang-fang")
	h.signIn("suishenban", "wang-fang")
	if me := h.gql(meQuery, nil, first.access); me.field("me") != nil {
		t.Errorf("the oldest of three sessions survived a cap of 2: %s", me.Raw)
	}
}

// After sign-ins by every fixture citizen in every app, no key or value in Redis holds an ID
// number, in any case or with the check character lower-cased.
func TestNoIDNumberStoredInClear(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	citizens := devidp.Fixtures(time.Now())
	for _, c := range citizens {
		for app := range c.Accounts {
			h.signIn(app, c.Key)
		}
	}
	store := h.app.Store
	var dump strings.Builder
	for _, key := range testenv.Keys(t, store) {
		dump.WriteString(key + "\n")
		typ, err := store.Client.Type(context.Background(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch typ {
		case "string":
			v, err := store.Client.Get(context.Background(), key).Result()
			if err != nil {
				t.Fatal(err)
			}
			dump.WriteString(v + "\n")
		case "hash":
			m, err := store.Client.HGetAll(context.Background(), key).Result()
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range m {
				dump.WriteString(k + "=" + v + "\n")
			}
		case "zset":
			m, err := store.Client.ZRange(context.Background(), key, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			dump.WriteString(strings.Join(m, "\n"))
		case "set":
			m, err := store.Client.SMembers(context.Background(), key).Result()
			if err != nil {
				t.Fatal(err)
			}
			dump.WriteString(strings.Join(m, "\n"))
		case "stream":
			msgs, err := store.Client.XRange(context.Background(), key, "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				for k, v := range m.Values {
					dump.WriteString(k + "=" + fmt.Sprint(v) + "\n")
				}
			}
		default:
			t.Errorf("key %s of type %s not inspected", key, typ)
		}
	}
	all := strings.ToUpper(dump.String())
	if dump.Len() < 1000 {
		t.Fatalf("dump is suspiciously small (%d bytes): is the scan under the right prefix?", dump.Len())
	}
	for _, c := range citizens {
		if strings.Contains(all, strings.ToUpper(c.IDNumber)) || strings.Contains(all, c.IDNumber[:17]) {
			t.Errorf("the ID number of %s is stored in clear", c.Key)
		}
	}
}

// One provider that cannot be reached stops neither the server nor sign-in with the others;
// readiness stays up and names it.
func TestProviderDownDoesNotStopTheOthers(t *testing.T) {
	t.Parallel()
	ln := closedPort(t)
	clk := testenv.NewClock()
	h := startIdentityPartial(t, func(c *config.Config) {
		c.Providers[1].Issuer = "http://" + ln + "/nowhere"
	}, WithClock(clk.Now))
	status, body := h.get("/healthz/ready")
	if status != 200 || !strings.Contains(body, "identity_providers_missing") || !strings.Contains(body, "suishenban") {
		t.Errorf("readiness: %d %s", status, body)
	}
	h.signIn("zheliban", "wang-fang")
	tok := h.mint("zheliban", devidp.MintRequest{Citizen: "wang-fang"})
	r := h.gql(signInWithIDToken, map[string]any{"app": "suishenban", "t": tok}, "")
	if r.code() != "PROVIDER_UNAVAILABLE" {
		t.Errorf("sign-in with the missing provider: %s", r.Raw)
	}
	if !strings.Contains(h.logs.String(), "identity provider missing") {
		t.Error("no log line names the missing provider")
	}
}

// The same fresh token presented twenty times at once: one sign-in, and the replays leave the
// citizen's link key with the person it made, so their next app joins that person.
func TestConcurrentReplaysOfAFirstSignIn(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	tok := h.mint("zheliban", devidp.MintRequest{Citizen: "chen-jianguo"})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var people []string
	reasons := map[string]int{}
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.gql(signInWithIDToken, map[string]any{"app": "zheliban", "t": tok}, "")
			mu.Lock()
			defer mu.Unlock()
			if pid := r.str("signInWithIdToken", "person", "id"); pid != "" {
				people = append(people, pid)
			} else {
				reasons[r.reason()]++
			}
		}()
	}
	wg.Wait()
	if len(people) != 1 || reasons["replayed"] != 19 {
		t.Fatalf("%d sign-ins, refusals %v", len(people), reasons)
	}
	if other := h.signIn("sufuban", "chen-jianguo"); other.person != people[0] {
		t.Errorf("the second app made person %s, want %s", other.person, people[0])
	}
}

// An app that brings its own PKCE challenge makes the code and state of the redirect worthless
// without its verifier.
func TestCodeFlowWithTheAppsPKCE(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	callback := h.url + "/dev/apps/sufuban/callback"
	const begin = `mutation($app: ID!, $r: String!, $c: String) { beginSignIn(app: $app, redirectUri: $r, codeChallenge: $c) { authorizationUrl state } }`
	const complete = `mutation($s: String!, $c: String!, $i: String, $v: String) { completeSignIn(state: $s, code: $c, iss: $i, codeVerifier: $v) { person { id displayName } } }`
	if r := h.gql(begin, map[string]any{"app": "sufuban", "r": callback, "c": "plain"}, ""); r.code() != "BAD_USER_INPUT" {
		t.Fatalf("a challenge that is not S256: %s", r.Raw)
	}
	verifier := oauth2.GenerateVerifier()
	start := func() (string, url.Values) {
		r := h.gql(begin, map[string]any{"app": "sufuban", "r": callback, "c": oauth2.S256ChallengeFromVerifier(verifier)}, "")
		if len(r.Errors) > 0 {
			t.Fatal(r.Raw)
		}
		if u := r.str("beginSignIn", "authorizationUrl"); !strings.Contains(u, url.QueryEscape(oauth2.S256ChallengeFromVerifier(verifier))) {
			t.Fatalf("the app's challenge is not what the provider gets: %s", u)
		}
		return r.str("beginSignIn", "state"), authorize(t, r.str("beginSignIn", "authorizationUrl"), "xu-lei")
	}
	for name, v := range map[string]any{"no verifier": nil, "another verifier": oauth2.GenerateVerifier()} {
		state, back := start()
		r := h.gql(complete, map[string]any{"s": state, "c": back.Get("code"), "i": back.Get("iss"), "v": v}, "")
		if r.code() != "BAD_USER_INPUT" || !strings.Contains(r.message(), "codeVerifier") {
			t.Errorf("%s: %s", name, r.Raw)
		}
	}
	state, back := start()
	r := h.gql(complete, map[string]any{"s": state, "c": back.Get("code"), "i": back.Get("iss"), "v": verifier}, "")
	if len(r.Errors) > 0 || r.str("completeSignIn", "person", "displayName") != "徐磊" {
		t.Fatalf("with the app's verifier: %s", r.Raw)
	}
}
