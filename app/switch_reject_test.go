package app

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tongban/tongban/internal/testenv"
)

// TestSwitchRejects is the table of everything the bridge refuses, one row per reason, each
// over real HTTP and checked to the exact error a partner's OAuth library would see.
func TestSwitchRejects(t *testing.T) {
	t.Parallel()
	clk := testenv.NewClock()
	r := &swrRig{h: startIdentity(t, nil, WithClock(clk.Now)), clk: clk}

	rows := []struct {
		name string
		run  func(t *testing.T, r *swrRig)
	}{
		{"code replay", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "suishenban")
			code, verifier := r.code(t, in, "suishenban")
			first := r.redeem(t, "suishenban", code, verifier)
			if first.Status != http.StatusOK || first.str("access_token") == "" || first.str("refresh_token") == "" {
				t.Fatalf("first redemption: %d %s", first.Status, first.Raw)
			}
			if got := r.userinfo(t, first.str("access_token")); got.Status != http.StatusOK {
				t.Fatalf("userinfo before the replay: %d %s", got.Status, got.Raw)
			}
			swrWantError(t, r.redeem(t, "suishenban", code, verifier), http.StatusBadRequest, "invalid_grant")
			// Everything the first redemption issued is revoked.
			r.wantUserinfoRefused(t, first.str("access_token"))
			swrWantError(t, r.refresh(t, "suishenban", first.str("refresh_token")), http.StatusBadRequest, "invalid_grant")
		}},
		{"code replayed in parallel", func(t *testing.T, r *swrRig) {
			// Two redemptions of one code at once, as a thief racing the client would send them:
			// one wins, the other is a second use, so what the winner got must be revoked too
			// (RFC 6749 §4.1.2). Several rounds, since which request comes second varies.
			in := r.ready(t, "wang-fang", "suishenban")
			for round := range 50 {
				code, verifier := r.code(t, in, "suishenban")
				form := url.Values{"grant_type": {"authorization_code"}, "code": {code},
					"redirect_uri": {r.redirectURI("suishenban")}, "code_verifier": {verifier}}
				var replies [2]swrTokenReply
				var errs [2]error
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range replies {
					wg.Go(func() {
						<-start
						replies[i], errs[i] = swrPost(r.h.url+"/oauth2/token", form, "suishenban", swrSecret("suishenban"))
					})
				}
				close(start)
				wg.Wait()
				var won []swrTokenReply
				lost := ""
				for i, got := range replies {
					switch {
					case errs[i] != nil:
						t.Fatalf("round %d: %v", round, errs[i])
					case got.Status == http.StatusOK:
						won = append(won, got)
					default:
						swrWantError(t, got, http.StatusBadRequest, "invalid_grant")
						lost = strings.TrimSpace(got.Raw)
					}
				}
				// At most one answer carries tokens: when the replay lands before the first
				// redemption has issued its grant, the grant is revoked before it exists and both
				// answers are invalid_grant. Either way nothing issued from the code may work.
				if len(won) > 1 {
					t.Fatalf("round %d: %d redemptions of one code succeeded, want at most 1", round, len(won))
				}
				if len(won) == 0 {
					continue
				}
				if got := r.userinfo(t, won[0].str("access_token")); got.Status != http.StatusUnauthorized {
					t.Fatalf("round %d: the code was used twice at once, yet the access token it gave still works (userinfo %d); "+
						"the other redemption was told %s", round, got.Status, lost)
				}
				swrWantError(t, r.refresh(t, "suishenban", won[0].str("refresh_token")), http.StatusBadRequest, "invalid_grant")
			}
		}},
		{"wrong redirect_uri at authorize", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "suishenban")
			q := r.authzParams("suishenban", r.ticket(t, in, "suishenban"), oauth2.GenerateVerifier())
			for _, bad := range []string{"https://evil.example/cb", r.redirectURI("suishenban") + "/", r.redirectURI("sufuban")} {
				q.Set("redirect_uri", bad)
				swrWantBadPage(t, r.authorize(t, q))
			}
		}},
		{"wrong redirect_uri at token", func(t *testing.T, r *swrRig) {
			code, verifier := r.code(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			swrWantError(t, r.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {r.redirectURI("suishenban") + "?x=1"}, "code_verifier": {verifier}},
				"suishenban", swrSecret("suishenban")), http.StatusBadRequest, "invalid_grant")
		}},
		{"wrong PKCE verifier", func(t *testing.T, r *swrRig) {
			code, _ := r.code(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			swrWantError(t, r.redeem(t, "suishenban", code, oauth2.GenerateVerifier()), http.StatusBadRequest, "invalid_grant")
		}},
		{"missing PKCE verifier at token", func(t *testing.T, r *swrRig) {
			code, _ := r.code(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			swrWantError(t, r.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {r.redirectURI("suishenban")}}, "suishenban", swrSecret("suishenban")),
				http.StatusBadRequest, "invalid_grant")
		}},
		{"plain PKCE", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "suishenban")
			verifier := oauth2.GenerateVerifier()
			q := r.authzParams("suishenban", r.ticket(t, in, "suishenban"), verifier)
			q.Set("code_challenge_method", "plain")
			q.Set("code_challenge", verifier)
			r.wantRedirectError(t, r.authorize(t, q), q, "invalid_request")
		}},
		{"missing PKCE", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "suishenban")
			q := r.authzParams("suishenban", r.ticket(t, in, "suishenban"), oauth2.GenerateVerifier())
			q.Del("code_challenge")
			q.Del("code_challenge_method")
			r.wantRedirectError(t, r.authorize(t, q), q, "invalid_request")
		}},
		{"expired ticket", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "chen-jianguo", "suishenban")
			before := r.ticketKeys(t)
			hint := r.ticket(t, in, "suishenban")
			var minted []string
			for _, k := range r.ticketKeys(t) {
				if !slices.Contains(before, k) {
					minted = append(minted, k)
				}
			}
			if len(minted) != 1 {
				t.Fatalf("switchApp stored %d tickets (%v), want 1", len(minted), minted)
			}
			// A ticket lives 60 s. The bridge leaves its expiry to the store's TTL, which runs on
			// the store's own clock, not the injected one: advance both.
			r.clk.Advance(61 * time.Second)
			store := r.h.app.Store
			if err := store.Client.PExpire(context.Background(), minted[0], time.Millisecond).Err(); err != nil {
				t.Fatal(err)
			}
			if store.Embedded != nil {
				store.Embedded.FastForward(5 * time.Millisecond) // miniredis counts TTLs down only when told
			}
			testenv.Eventually(t, 5*time.Second, func() bool {
				n, err := store.Client.Exists(context.Background(), minted[0]).Result()
				if err != nil {
					t.Fatal(err)
				}
				return n == 0
			}, "the ticket expires in the store")
			q := r.authzParams("suishenban", hint, oauth2.GenerateVerifier())
			r.wantRedirectError(t, r.authorize(t, q), q, "login_required")
		}},
		{"used ticket", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "suishenban")
			hint := r.ticket(t, in, "suishenban")
			q := r.authzParams("suishenban", hint, oauth2.GenerateVerifier())
			if back := r.back(t, r.authorize(t, q), q.Get("redirect_uri")); back.Get("code") == "" {
				t.Fatalf("first use of the ticket: %v", back)
			}
			q = r.authzParams("suishenban", hint, oauth2.GenerateVerifier())
			r.wantRedirectError(t, r.authorize(t, q), q, "login_required")
		}},
		{"ticket for another client", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "suishenban")
			r.ready(t, "wang-fang", "sufuban") // sufuban is consented too: only the ticket's binding refuses it
			q := r.authzParams("sufuban", r.ticket(t, in, "suishenban"), oauth2.GenerateVerifier())
			r.wantRedirectError(t, r.authorize(t, q), q, "login_required")
		}},
		{"unknown client at authorize", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "suishenban")
			q := r.authzParams("suishenban", r.ticket(t, in, "suishenban"), oauth2.GenerateVerifier())
			for _, id := range []string{"no-such-app", "jiaxing-data", ""} { // a machine client has no redirect URI either
				q.Set("client_id", id)
				swrWantBadPage(t, r.authorize(t, q))
			}
		}},
		{"unknown client at token", func(t *testing.T, r *swrRig) {
			code, verifier := r.code(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {r.redirectURI("suishenban")}, "code_verifier": {verifier}}
			swrWantInvalidClient(t, r.token(t, form, "no-such-app", swrSecret("no-such-app")))
			swrWantInvalidClient(t, r.token(t, form)) // no client authentication at all
		}},
		{"bad secret", func(t *testing.T, r *swrRig) {
			code, verifier := r.code(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {r.redirectURI("suishenban")}, "code_verifier": {verifier}}
			swrWantInvalidClient(t, r.token(t, form, "suishenban", swrSecret("sufuban")))
			post := url.Values{"client_id": {"suishenban"}, "client_secret": {"wrong"}}
			for k, v := range form {
				post[k] = v
			}
			swrWantInvalidClient(t, r.token(t, post))
		}},
		{"client_secret_post works", func(t *testing.T, r *swrRig) {
			code, verifier := r.code(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			got := r.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {r.redirectURI("suishenban")}, "code_verifier": {verifier},
				"client_id": {"suishenban"}, "client_secret": {swrSecret("suishenban")}})
			if got.Status != http.StatusOK || got.str("id_token") == "" || got.str("access_token") == "" || !strings.EqualFold(got.str("token_type"), "Bearer") {
				t.Fatalf("client_secret_post: %d %s", got.Status, got.Raw)
			}
		}},
		{"client_secret_basic and client_secret_post at once", func(t *testing.T, r *swrRig) {
			code, verifier := r.code(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			swrWantError(t, r.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {r.redirectURI("suishenban")}, "code_verifier": {verifier},
				"client_id": {"suishenban"}, "client_secret": {swrSecret("suishenban")}},
				"suishenban", swrSecret("suishenban")), http.StatusBadRequest, "invalid_request")
		}},
		{"scope not allowed for the client at authorize", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "suishenban")
			q := r.authzParams("suishenban", r.ticket(t, in, "suishenban"), oauth2.GenerateVerifier())
			q.Set("scope", "openid profile events")
			r.wantRedirectError(t, r.authorize(t, q), q, "invalid_scope")
		}},
		{"scope not allowed for the client at token", func(t *testing.T, r *swrRig) {
			swrWantError(t, r.token(t, url.Values{"grant_type": {"client_credentials"}, "scope": {"events rules"}},
				"jiaxing-data", "dev-jiaxing-data-secret"), http.StatusBadRequest, "invalid_scope")
		}},
		{"code redeemed by another client", func(t *testing.T, r *swrRig) {
			code, verifier := r.code(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			swrWantError(t, r.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {r.redirectURI("suishenban")}, "code_verifier": {verifier}},
				"sufuban", swrSecret("sufuban")), http.StatusBadRequest, "invalid_grant")
		}},
		{"switch without consent", func(t *testing.T, r *swrRig) {
			in := r.on(t).signIn("zheliban", "li-na")
			before := r.ticketKeys(t)
			got := r.on(t).gql(switchApp, map[string]any{"t": "sufuban"}, in.access)
			if len(got.Errors) > 0 {
				t.Fatal(got.Raw)
			}
			need, _ := got.field("switchApp", "consentRequired").([]any)
			if !slices.Equal(swrStrings(need), []string{"profile", "phone", "id_number"}) {
				t.Errorf("consentRequired %v, want [profile phone id_number]", need)
			}
			if got.field("switchApp", "launchUrl") != nil || got.field("switchApp", "expiresAt") != nil {
				t.Errorf("a switch without consent carries a launch URL: %s", got.Raw)
			}
			if after := r.ticketKeys(t); !slices.Equal(after, before) {
				t.Errorf("a switch without consent stored a ticket: %v → %v", before, after)
			}
		}},
		{"refresh after consent revoked", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "zhang-wei", "suishenban")
			tok := r.tokens(t, in, "suishenban")
			res := r.on(t).gql(swrRevokeConsent, map[string]any{"a": "suishenban"}, in.access)
			if len(res.Errors) > 0 || res.field("revokeConsent") != true {
				t.Fatalf("revokeConsent: %s", res.Raw)
			}
			swrWantError(t, r.refresh(t, "suishenban", tok.str("refresh_token")), http.StatusBadRequest, "invalid_grant")
		}},
		{"refresh token reuse", func(t *testing.T, r *swrRig) {
			tok := r.tokens(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			second := r.refresh(t, "suishenban", tok.str("refresh_token"))
			if second.Status != http.StatusOK || second.str("refresh_token") == "" || second.str("refresh_token") == tok.str("refresh_token") {
				t.Fatalf("first refresh: %d %s", second.Status, second.Raw)
			}
			swrWantError(t, r.refresh(t, "suishenban", tok.str("refresh_token")), http.StatusBadRequest, "invalid_grant")
			// The reuse revoked the family: the newer refresh token and its access token too.
			swrWantError(t, r.refresh(t, "suishenban", second.str("refresh_token")), http.StatusBadRequest, "invalid_grant")
			r.wantUserinfoRefused(t, second.str("access_token"))
		}},
		{"machine client using authorization_code", func(t *testing.T, r *swrRig) {
			code, verifier := r.code(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			swrWantError(t, r.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {r.redirectURI("suishenban")}, "code_verifier": {verifier}},
				"jiaxing-data", "dev-jiaxing-data-secret"), http.StatusBadRequest, "unauthorized_client")
		}},
		{"person client using client_credentials", func(t *testing.T, r *swrRig) {
			swrWantError(t, r.token(t, url.Values{"grant_type": {"client_credentials"}}, "suishenban", swrSecret("suishenban")),
				http.StatusBadRequest, "unauthorized_client")
			// The machine client itself is served.
			if got := r.token(t, url.Values{"grant_type": {"client_credentials"}}, "jiaxing-data", "dev-jiaxing-data-secret"); got.Status != http.StatusOK || got.str("access_token") == "" {
				t.Fatalf("client_credentials for jiaxing-data: %d %s", got.Status, got.Raw)
			}
		}},
		{"unsupported grant_type", func(t *testing.T, r *swrRig) {
			swrWantError(t, r.token(t, url.Values{"grant_type": {"password"}, "username": {"u"}, "password": {"p"}},
				"suishenban", swrSecret("suishenban")), http.StatusBadRequest, "unsupported_grant_type")
		}},
		{"ticket replayed in parallel", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "zhou-ting", "suishenban")
			hint := r.ticket(t, in, "suishenban")
			const n = 20
			replies := make([]swrAuthzReply, n)
			errs := make([]error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				q := r.authzParams("suishenban", hint, oauth2.GenerateVerifier())
				wg.Go(func() {
					<-start
					replies[i], errs[i] = swrAuthorize(r.h.url, q)
				})
			}
			close(start)
			wg.Wait()
			codes, refused := 0, 0
			for i, a := range replies {
				if errs[i] != nil {
					t.Fatalf("request %d: %v", i, errs[i])
				}
				back := r.back(t, a, r.redirectURI("suishenban"))
				switch {
				case back.Get("code") != "" && !back.Has("error"):
					codes++
				case back.Get("error") == "login_required" && !back.Has("code"):
					refused++
				default:
					t.Errorf("request %d: %v", i, back)
				}
			}
			if codes != 1 || refused != n-1 {
				t.Fatalf("%d codes and %d login_required, want 1 and %d", codes, refused, n-1)
			}
		}},
		{"exchange to an unconsented audience", func(t *testing.T, r *swrRig) {
			if !r.supports(t, swrTokenExchange) {
				t.Skip("discovery does not list the token-exchange grant yet; its rows wait for it")
			}
			// xu-lei (home sufuban) consents to suishenban, never to zheliban.
			in := r.ready(t, "xu-lei", "suishenban")
			tok := r.tokens(t, in, "suishenban")
			form := url.Values{"grant_type": {swrTokenExchange}, "subject_token": {tok.str("access_token")},
				"subject_token_type": {swrAccessTokenType}, "audience": {"zheliban"}}
			swrWantError(t, r.token(t, form, "suishenban", swrSecret("suishenban")), http.StatusBadRequest, "invalid_target")
			// Once the person consents to the audience, the same exchange is granted.
			r.ready(t, "xu-lei", "zheliban")
			if got := r.token(t, form, "suishenban", swrSecret("suishenban")); got.Status != http.StatusOK || got.str("access_token") == "" {
				t.Fatalf("exchange to a consented audience: %d %s", got.Status, got.Raw)
			}
		}},
		{"exchange with an audience that is not a client", func(t *testing.T, r *swrRig) {
			if !r.supports(t, swrTokenExchange) {
				t.Skip("discovery does not list the token-exchange grant yet; its rows wait for it")
			}
			tok := r.tokens(t, r.ready(t, "xu-lei", "suishenban"), "suishenban")
			for _, aud := range []string{"no-such-app", "jiaxing-data"} {
				swrWantError(t, r.token(t, url.Values{"grant_type": {swrTokenExchange}, "subject_token": {tok.str("access_token")},
					"subject_token_type": {swrAccessTokenType}, "audience": {aud}}, "suishenban", swrSecret("suishenban")),
					http.StatusBadRequest, "invalid_target")
			}
		}},

		// switchApp's own refusals, in GraphQL.
		{"switchApp to an unknown target", func(t *testing.T, r *swrRig) {
			in := r.on(t).signIn("zheliban", "wang-fang")
			r.wantSwitchRefused(t, in.access, map[string]any{"t": "no-such-app"}, "BAD_USER_INPUT")
			r.wantSwitchRefused(t, in.access, map[string]any{"t": "jiaxing-data"}, "BAD_USER_INPUT") // a machine client receives no switches
		}},
		{"switchApp to the session's own app", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "zheliban")
			r.wantSwitchRefused(t, in.access, map[string]any{"t": "zheliban"}, "BAD_USER_INPUT")
		}},
		{"switchApp without a session", func(t *testing.T, r *swrRig) {
			r.wantSwitchRefused(t, "", map[string]any{"t": "suishenban"}, "UNAUTHENTICATED")
			r.wantSwitchRefused(t, "tbo_not-a-session-token", map[string]any{"t": "suishenban"}, "UNAUTHENTICATED")
		}},
		{"switchApp to an unknown service", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "suishenban")
			r.wantSwitchRefused(t, in.access, map[string]any{"t": "suishenban", "s": "no-such-service"}, "NOT_FOUND")
		}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) { row.run(t, r) })
	}
}

// wantSwitchRefused checks that switchApp answers with the error code and stores no ticket.
func (r *swrRig) wantSwitchRefused(t *testing.T, token string, vars map[string]any, code string) {
	t.Helper()
	before := r.ticketKeys(t)
	got := r.on(t).gql(switchApp, vars, token)
	if got.code() != code {
		t.Fatalf("switchApp %v: %s, want %s", vars, got.Raw, code)
	}
	if got.field("switchApp") != nil {
		t.Errorf("a refused switch answers data: %s", got.Raw)
	}
	if after := r.ticketKeys(t); !slices.Equal(after, before) {
		t.Errorf("a refused switch stored a ticket: %v → %v", before, after)
	}
}

func swrStrings(v []any) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i], _ = x.(string)
	}
	return out
}
