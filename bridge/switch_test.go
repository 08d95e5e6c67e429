package bridge

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/testenv"
)

// catalogOf is a catalog that holds the services it is given.
type catalogOf map[string]Service

func (c catalogOf) Service(id string) (Service, bool) { s, ok := c[id]; return s, ok }

func switchBridge(t *testing.T, catalog Catalog) *Bridge {
	t.Helper()
	cfg := &config.Config{Clients: []config.Client{{
		ID: "target", Name: "目标", Secret: "s", RedirectURIs: []string{"https://target.example/cb"},
		InitiateLoginURI: "https://target.example/login?from=tongban", Scopes: []string{"openid", "profile"}, SubjectType: "pairwise",
	}}}
	clients, err := NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{Issuer: "https://tongban.example", Store: testenv.Redis(t), Clients: clients, Catalog: catalog})
}

func TestSwitchAppRefuses(t *testing.T) {
	catalog := catalogOf{
		"face-only": {ID: "face-only", App: "target", Link: "https://target.example/svc/1", MinAssurance: 4},
		"basic":     {ID: "basic", App: "target", Link: "https://target.example/svc/2", MinAssurance: 2},
		"elsewhere": {ID: "elsewhere", App: "other-app", Link: "https://other.example/svc", MinAssurance: 1},
	}
	b := switchBridge(t, catalog)
	ctx := context.Background()
	sess := identity.Session{ID: "s1", PersonID: "p1", App: "source", Assurance: 3, AuthTime: time.Now()}
	if _, err := b.Consents.Grant(ctx, "p1", "target", []string{"profile"}); err != nil {
		t.Fatal(err)
	}
	var ae *AssuranceError
	for _, tc := range []struct {
		name, target, service string
		check                 func(error) bool
	}{
		{"service needs more assurance than the session has", "target", "face-only", func(err error) bool { return errors.As(err, &ae) && ae.Need == 4 && ae.Have == 3 }},
		{"unknown service", "target", "nothing", func(err error) bool { return errors.Is(err, ErrUnknownService) }},
		{"service of another app", "target", "elsewhere", func(err error) bool { return errors.Is(err, ErrUnknownService) }},
		{"unknown target", "elsewhere", "", func(err error) bool { return errors.Is(err, ErrUnknownClient) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sw, err := b.SwitchApp(ctx, sess, tc.target, tc.service)
			if !tc.check(err) || sw.LaunchURL != "" {
				t.Fatalf("SwitchApp = %+v, %v", sw, err)
			}
		})
	}
	t.Run("target is the session's own app", func(t *testing.T) {
		own := sess
		own.App = "target"
		if _, err := b.SwitchApp(ctx, own, "target", ""); !errors.Is(err, ErrSameApp) {
			t.Fatalf("err = %v", err)
		}
	})
	// A service the session is strong enough for: the link carries its deep link, and the
	// target's own query survives.
	sw, err := b.SwitchApp(ctx, sess, "target", "basic")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(sw.LaunchURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("iss") != "https://tongban.example" || q.Get("target_link_uri") != "https://target.example/svc/2" || q.Get("from") != "tongban" || q.Get("login_hint") == "" {
		t.Errorf("launch URL %s", sw.LaunchURL)
	}
	if d := sw.ExpiresAt.Sub(time.Now()); d > TicketTTL+time.Second || d < TicketTTL-5*time.Second {
		t.Errorf("ticket expires in %s", d)
	}
}

// With no catalog configured, a switch naming a service is NOT_FOUND rather than a link
// without its deep link.
func TestSwitchWithoutCatalog(t *testing.T) {
	b := switchBridge(t, nil)
	_, err := b.SwitchApp(context.Background(), identity.Session{PersonID: "p", App: "source", Assurance: 4}, "target", "x")
	if !errors.Is(err, ErrUnknownService) {
		t.Fatalf("err = %v", err)
	}
}
