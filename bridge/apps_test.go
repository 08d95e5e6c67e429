package bridge

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/audit"
)

// The person's connected apps, and the ways their grants end besides a session: disconnecting
// the app (consent kept), revoking consent, and the grant's own refresh-token reuse. Each sends
// a logout token per grant; the client's own revocation does not.
func TestConnectedAppsAndTheirEndings(t *testing.T) {
	t.Parallel()
	w := newLogoutWorld(t)
	ctx := context.Background()
	const pid = "p"
	for _, c := range []string{"app", "other", "quiet"} {
		if _, err := w.b.Consents.Grant(ctx, pid, c, []string{"profile", "offline_access"}); err != nil {
			t.Fatal(err)
		}
	}
	w.sessions.open(t, "s", pid)
	start := w.clock.Now().UTC().Truncate(time.Second)
	app1 := w.switchInto(t, pid, "s", "app", "openid")
	w.clock.Advance(time.Hour)
	app2 := w.switchInto(t, pid, "s", "app", "openid offline_access")
	other := w.switchInto(t, pid, "s", "other", "openid")
	quiet := w.switchInto(t, pid, "s", "quiet", "openid")
	w.clock.Advance(time.Hour)
	if !w.alive(t, "other", &other) { // a refresh is a use
		t.Fatal("other's grant")
	}

	apps, err := w.b.ConnectedApps(ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	// Most recently used first; the tie broken by client id.
	wantApps := []ConnectedApp{
		{Client: "other", Name: "App other", Since: start.Add(time.Hour), LastUsed: start.Add(2 * time.Hour), Grants: 1},
		{Client: "app", Name: "App app", Since: start, LastUsed: start.Add(time.Hour), Offline: true, Grants: 2},
		{Client: "quiet", Name: "App quiet", Since: start.Add(time.Hour), LastUsed: start.Add(time.Hour), Grants: 1},
	}
	if !slices.Equal(apps, wantApps) {
		t.Fatalf("ConnectedApps\n got %+v\nwant %+v", apps, wantApps)
	}

	// Disconnecting app ends both its grants (the offline one too), keeps the consent.
	n, err := w.b.DisconnectApp(ctx, pid, "app")
	if err != nil || n != 2 {
		t.Fatalf("DisconnectApp = %d, %v", n, err)
	}
	if w.alive(t, "app", &app1) || w.alive(t, "app", &app2) {
		t.Error("app's grants outlived its disconnection")
	}
	if cons, err := w.b.Consents.Get(ctx, pid, "app"); err != nil || len(cons.Scopes) != 2 {
		t.Errorf("consent after disconnecting: %+v %v", cons, err)
	}
	jobs := w.queue.jobs(t, true)
	if len(jobs) != 2 || jobs[0].Reason != reasonAppDisconnected || jobs[0].Client != "app" {
		t.Errorf("jobs after disconnecting %+v", jobs)
	}
	if _, err := w.b.DisconnectApp(ctx, pid, "stranger"); !errors.Is(err, ErrUnknownClient) {
		t.Errorf("disconnecting an unknown app: %v", err)
	}

	// Reusing other's refresh token ends its grant, and tells other.
	used := other.refresh
	if !w.alive(t, "other", &other) {
		t.Fatal("other's grant")
	}
	if resp := w.token(t, "other", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {used}}); resp["error"] != "invalid_grant" {
		t.Fatalf("reuse: %v", resp)
	}
	if w.alive(t, "other", &other) {
		t.Error("the grant outlived its refresh token's reuse")
	}
	if j := findJob(w.queue.jobs(t, true), other.gid); j.Reason != string(identity.EndRefreshReuse) {
		t.Errorf("reuse job %+v", j)
	}

	// Revoking quiet's consent ends its grant; quiet has no back-channel URI, so no token.
	if ok, err := w.b.Consents.Revoke(ctx, pid, "quiet"); !ok || err != nil {
		t.Fatalf("Revoke = %v %v", ok, err)
	}
	if w.alive(t, "quiet", &quiet) {
		t.Error("quiet's grant outlived the consent")
	}
	if len(w.queue.jobs(t, false)) != 3 {
		t.Errorf("jobs %+v", w.queue.jobs(t, false))
	}
	if apps, err := w.b.ConnectedApps(ctx, pid); err != nil || len(apps) != 0 {
		t.Errorf("ConnectedApps after all ended: %+v %v", apps, err)
	}

	acts, _, err := w.trail.List(ctx, pid, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, a := range acts {
		if a.Kind == audit.AppDisconnected || a.Kind == audit.AppSignedOut {
			kinds = append(kinds, string(a.Kind)+":"+a.ToApp+":"+a.Reason)
		}
	}
	slices.Sort(kinds)
	if want := []string{"APP_DISCONNECTED:app:app_disconnected", "APP_SIGNED_OUT:other:refresh_token_reuse"}; !slices.Equal(kinds, want) {
		t.Errorf("activity %v, want %v", kinds, want)
	}
}

// A client revoking its own token ends the grant without a logout token: it knows.
func TestOwnRevocationSendsNoLogoutToken(t *testing.T) {
	t.Parallel()
	w := newLogoutWorld(t)
	ctx := context.Background()
	if _, err := w.b.Consents.Grant(ctx, "p", "app", []string{"profile"}); err != nil {
		t.Fatal(err)
	}
	w.sessions.open(t, "s", "p")
	tk := w.switchInto(t, "p", "s", "app", "openid")
	if err := w.b.revoke(ctx, tk.gid); err != nil {
		t.Fatal(err)
	}
	if jobs := w.queue.jobs(t, false); len(jobs) != 0 {
		t.Errorf("jobs %+v", jobs)
	}
}

// offline_access is the person's to give: the consent shown says what it means, a switch lists
// it as optional, and a code keeps it only once consented.
func TestOfflineAccessNeedsConsent(t *testing.T) {
	t.Parallel()
	w := newLogoutWorld(t)
	ctx := context.Background()
	sess := identity.Session{ID: "s", PersonID: "p", App: "source", Assurance: 3, AuthTime: w.clock.Now()}
	sw, err := w.b.SwitchApp(ctx, sess, "app", "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sw.ConsentRequired, []string{"profile"}) || !slices.Equal(sw.Optional, []string{"offline_access"}) {
		t.Errorf("switch %+v", sw)
	}
	if d := DescribeScope("offline_access", "随申办", "zh"); d != "退出通办后仍与随申办保持连接，直到您断开连接" {
		t.Errorf("offline_access in Chinese: %q", d)
	}
	if d := DescribeScope("offline_access", "App app", "en"); !strings.Contains(d, "stays connected to App app after you sign out of Tongban, until you disconnect it") {
		t.Errorf("description %q", d)
	}
	if _, err := w.b.Consents.Grant(ctx, "p", "app", []string{"profile"}); err != nil {
		t.Fatal(err)
	}
	w.sessions.open(t, "s", "p")
	tk := w.switchInto(t, "p", "s", "app", "openid offline_access")
	g, err := w.b.Authenticate(ctx, tk.access)
	if err != nil || slices.Contains(g.Scopes, "offline_access") {
		t.Errorf("grant %+v %v: kept offline_access without consent", g, err)
	}
	if _, err := w.b.Consents.Grant(ctx, "p", "app", []string{"offline_access"}); err != nil {
		t.Fatal(err)
	}
	tk = w.switchInto(t, "p", "s", "app", "openid offline_access")
	if g, err := w.b.Authenticate(ctx, tk.access); err != nil || !slices.Contains(g.Scopes, "offline_access") {
		t.Errorf("grant %+v %v: lost consented offline_access", g, err)
	}
	var se *ScopeError
	if _, err := w.b.Consents.Grant(ctx, "p", "app", []string{"phone"}); !errors.As(err, &se) {
		t.Errorf("consent to a scope the client may not have: %v", err)
	}
}

// Unlinking the person's account of an app ends its grants, offline ones too, with logout
// tokens and APP_SIGNED_OUT for the reason.
func TestEndClientGrantsForUnlink(t *testing.T) {
	t.Parallel()
	w := newLogoutWorld(t)
	ctx := context.Background()
	if _, err := w.b.Consents.Grant(ctx, "p", "app", []string{"profile", "offline_access"}); err != nil {
		t.Fatal(err)
	}
	w.sessions.open(t, "s", "p")
	tk := w.switchInto(t, "p", "s", "app", "openid offline_access")
	if n, err := w.b.EndClientGrants(ctx, "p", "app", identity.EndUnlinked); n != 1 || err != nil {
		t.Fatalf("EndClientGrants = %d, %v", n, err)
	}
	if w.alive(t, "app", &tk) {
		t.Error("the offline grant outlived the unlinking")
	}
	if jobs := w.queue.jobs(t, true); len(jobs) != 1 || jobs[0].Reason != string(identity.EndUnlinked) || jobs[0].SID != tk.gid {
		t.Errorf("jobs %+v", jobs)
	}
}
