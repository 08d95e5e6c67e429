package app

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tongban/tongban/config"
)

// TestPairwiseSubjects: what a client sees as sub is its own name for the person, stable for
// that person and client, different for another client and for another person, and never the
// person id. Each sub is what a partner's go-oidc verifier took from the ID token, and userinfo
// says the same.
func TestPairwiseSubjects(t *testing.T) {
	t.Parallel()
	// As `go run ./cmd/tongban` configures them: every simulated app's redirect URI is on the
	// public_url's host. OIDC Core §8.1's default sector (the redirect URIs' host) would give
	// co-hosted apps one sub per person to join their users on; each client must be its own.
	t.Run("dev clients", func(t *testing.T) {
		swrCheckPairwise(t, startIdentity(t, nil), nil)
	})
	// sufuban's callback on another host (localhost rather than 127.0.0.1).
	t.Run("clients on different hosts", func(t *testing.T) {
		moved := func(u string) string { return strings.Replace(u, "//127.0.0.1:", "//localhost:", 1) }
		h := startIdentity(t, func(c *config.Config) {
			for i := range c.Clients {
				if c.Clients[i].ID == "sufuban" {
					c.Clients[i].RedirectURIs = []string{moved(c.PublicURL + "/dev/apps/sufuban/callback")}
				}
			}
		})
		swrCheckPairwise(t, h, map[string]string{"sufuban": moved(h.url + "/dev/apps/sufuban/callback")})
	})
}

// swrCheckPairwise switches two people into suishenban (twice) and sufuban and compares the
// subs. redirects overrides a client's redirect URI where the configuration moved it.
func swrCheckPairwise(t *testing.T, h *harness, redirects map[string]string) {
	r := &swrRig{h: h}
	subOf := func(citizen, app string) (sub, person string) {
		t.Helper()
		in := r.ready(t, citizen, app)
		res := r.on(t).gql(switchApp, map[string]any{"t": app}, in.access)
		launch := res.str("switchApp", "launchUrl")
		if launch == "" {
			t.Fatalf("switchApp %s: %s", app, res.Raw)
		}
		p := newPartner(t, r.on(t), app)
		if u, ok := redirects[app]; ok {
			p.conf.RedirectURL = u
		}
		tok, idt := p.arrive(launch)
		if info := r.userinfo(t, tok.AccessToken); info.Status != http.StatusOK || info.str("sub") != idt.Subject {
			t.Errorf("userinfo: %d %s, want sub %s", info.Status, info.Raw, idt.Subject)
		}
		return idt.Subject, in.person
	}
	wangSSB1, wang := subOf("wang-fang", "suishenban")
	wangSSB2, _ := subOf("wang-fang", "suishenban")
	wangSFB, _ := subOf("wang-fang", "sufuban")
	zhouSSB, zhou := subOf("zhou-ting", "suishenban")
	zhouSFB, _ := subOf("zhou-ting", "sufuban")

	if wangSSB1 != wangSSB2 {
		t.Errorf("two switches of one person into suishenban: sub %s, then %s", wangSSB1, wangSSB2)
	}
	if wangSSB1 == wangSFB || zhouSSB == zhouSFB {
		t.Errorf("one person has one sub at suishenban and sufuban, so the two apps can join their users: "+
			"wang-fang %s / %s, zhou-ting %s / %s", wangSSB1, wangSFB, zhouSSB, zhouSFB)
	}
	if wangSSB1 == zhouSSB || wangSFB == zhouSFB {
		t.Errorf("two people share a sub: %s / %s at suishenban, %s / %s at sufuban", wangSSB1, zhouSSB, wangSFB, zhouSFB)
	}
	for _, sub := range []string{wangSSB1, wangSFB, zhouSSB, zhouSFB} {
		if sub == "" || sub == wang || sub == zhou {
			t.Errorf("sub %q is empty or a person id (%s, %s)", sub, wang, zhou)
		}
	}
}
