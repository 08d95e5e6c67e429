package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/audit"
	"github.com/tongban/tongban/internal/opaque"
	"github.com/tongban/tongban/logout"
)

// A session's ending ends the grants switched from it, in every app: their tokens stop working,
// each leaves a tombstone, and each app with a back-channel logout URI is sent one logout token
// per grant, naming it. Grants of the person's other session survive, and so does a grant the
// person let stay connected (offline_access). Ending the same session twice is harmless.
func TestSessionsEndedEndsBoundGrants(t *testing.T) {
	t.Parallel()
	w := newLogoutWorld(t)
	ctx := context.Background()
	const pid = "person-1"
	for _, c := range []string{"app", "other", "quiet"} {
		if _, err := w.b.Consents.Grant(ctx, pid, c, []string{"profile"}); err != nil {
			t.Fatal(err)
		}
	}
	w.sessions.open(t, "s1", pid)
	w.sessions.open(t, "s2", pid)
	appS1 := w.switchInto(t, pid, "s1", "app", "openid")
	otherS1 := w.switchInto(t, pid, "s1", "other", "openid")
	quietS1 := w.switchInto(t, pid, "s1", "quiet", "openid")
	// Asked for offline_access without the person's consent to it: the grant does not keep it,
	// and ends with the session like the others.
	notOffline := w.switchInto(t, pid, "s1", "app", "openid offline_access")
	appS2 := w.switchInto(t, pid, "s2", "app", "openid")
	if _, err := w.b.Consents.Grant(ctx, pid, "app", []string{"offline_access"}); err != nil {
		t.Fatal(err)
	}
	offline := w.switchInto(t, pid, "s1", "app", "openid offline_access")
	if got := idTokenSID(t, appS1.idToken); got != appS1.gid {
		t.Fatalf("ID token sid %s, want the grant %s", got, appS1.gid)
	}

	if err := w.sessions.End(ctx, pid, "s1", identity.EndSignOut); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		client string
		tk     *tokens
		alive  bool
	}{
		"app's grant from s1":                  {"app", &appS1, false},
		"other's grant from s1":                {"other", &otherS1, false},
		"quiet's grant from s1":                {"quiet", &quietS1, false},
		"offline_access without consent to it": {"app", &notOffline, false},
		"app's grant from s2":                  {"app", &appS2, true},
		"offline grant from s1":                {"app", &offline, true},
	} {
		if got := w.alive(t, tc.client, tc.tk); got != tc.alive {
			t.Errorf("%s: alive = %v, want %v", name, got, tc.alive)
		}
		n, err := w.store.Client.Exists(ctx, w.b.tombstoneKey(tc.tk.gid)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if (n == 1) == tc.alive {
			t.Errorf("%s: tombstone %v, want %v", name, n == 1, !tc.alive)
		}
	}

	checkJobs := func() {
		t.Helper()
		jobs := w.queue.jobs(t, true)
		var sids []string
		for _, j := range jobs {
			if j.Reason != string(identity.EndSignOut) || j.Check != w.b.tombstoneKey(j.SID) {
				t.Errorf("job %+v", j)
			}
			c, _ := w.b.clients.Get(j.Client)
			w.verifyLogoutToken(t, j, w.b.Subject(c, pid))
			sids = append(sids, j.SID)
		}
		slices.Sort(sids)
		sids = slices.Compact(sids)
		want := []string{appS1.gid, otherS1.gid, notOffline.gid}
		slices.Sort(want)
		if !slices.Equal(sids, want) {
			t.Errorf("logout tokens for %v, want %v (app, other and the unconsented offline grant; quiet has no URI)", sids, want)
		}
	}
	checkJobs()
	if other := w.queue.jobs(t, true); other[0].Subject == "" {
		t.Fatal("no subject")
	}
	if j := findJob(w.queue.jobs(t, true), otherS1.gid); j.Subject != pid {
		t.Errorf("other's subject is public: %q, want %q", j.Subject, pid)
	}

	// The sweep may hand the same ending again.
	if err := w.sessions.runHooks(ctx, identity.Ended{Session: "s1", Person: pid, Reason: identity.EndSignOut,
		Bound: []string{indexMember("app", appS1.gid), indexMember("app", offline.gid)}}); err != nil {
		t.Fatalf("ending again: %v", err)
	}
	checkJobs()
	if !w.alive(t, "app", &offline) || !w.alive(t, "app", &appS2) {
		t.Error("a second ending ended what the first spared")
	}
	idx := indexMembers(t, w.b, pid)
	want(t, idx, indexMember("app", appS2.gid), indexMember("app", offline.gid))

	acts, _, err := w.trail.List(ctx, pid, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	signedOut := map[string]bool{}
	for _, a := range acts {
		if a.Kind == audit.AppSignedOut && a.Reason == string(identity.EndSignOut) {
			signedOut[a.ToApp] = true
		}
	}
	if !signedOut["app"] || !signedOut["other"] || !signedOut["quiet"] {
		t.Errorf("APP_SIGNED_OUT recorded for %v", signedOut)
	}
}

func findJob(jobs []logout.Job, sid string) logout.Job {
	for _, j := range jobs {
		if j.SID == sid {
			return j
		}
	}
	return logout.Job{}
}

// A code not yet redeemed dies with its session; a code of a session that has ended is refused
// at authorize.
func TestSessionEndKillsUnredeemedCode(t *testing.T) {
	t.Parallel()
	w := newLogoutWorld(t)
	ctx := context.Background()
	if _, err := w.b.Consents.Grant(ctx, "p", "app", []string{"profile"}); err != nil {
		t.Fatal(err)
	}
	w.sessions.open(t, "s", "p")
	code, verifier, redirect := w.authorize(t, "p", "s", "app", "openid")
	if err := w.sessions.End(ctx, "p", "s", identity.EndSignOut); err != nil {
		t.Fatal(err)
	}
	resp := w.token(t, "app", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}})
	if resp["error"] != "invalid_grant" {
		t.Errorf("the code of an ended session redeemed: %v", resp)
	}
	// A new switch from the ended session gets no code.
	sw, err := w.b.SwitchApp(ctx, identity.Session{ID: "s", PersonID: "p", App: "source", Assurance: 3, AuthTime: w.clock.Now()}, "app", "")
	if err != nil {
		t.Fatal(err)
	}
	launch, _ := url.Parse(sw.LaunchURL)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {"app"}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"login_hint": {launch.Query().Get("login_hint")}}
	rec := httptest.NewRecorder()
	w.b.serveAuthorize(rec, httptest.NewRequest("GET", "/oauth2/authorize?"+q.Encode(), nil))
	if loc, _ := url.Parse(rec.Header().Get("Location")); loc.Query().Get("error") != "login_required" {
		t.Errorf("authorize for an ended session: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	// What is left of the code is its dead record, nothing that could be redeemed. (Its key is
	// named from the code: KEYS would ask only one node of a cluster.)
	gid, _, _ := opaque.Parse(codePrefix, code)
	if rec := w.store.Client.HGetAll(ctx, w.b.codeKey(gid)).Val(); len(rec) != 1 || rec["dead"] != "1" {
		t.Fatalf("the ended session's code record holds %v, want only dead=1", rec)
	}
	if jobs := w.queue.jobs(t, true); len(jobs) != 0 {
		t.Errorf("logout tokens for a session without grants: %+v", jobs)
	}
}

// On a Redis Cluster, authorize's storing of the code and its binding to the session go to two
// nodes in no fixed order: an ending may find the binding before the code is written. The code
// written after the ending lands in the dead record the ending left, and is refused.
func TestCodeWrittenAfterItsSessionEndedIsRefused(t *testing.T) {
	t.Parallel()
	w := newLogoutWorld(t)
	ctx := context.Background()
	if _, err := w.b.Consents.Grant(ctx, "p", "app", []string{"profile"}); err != nil {
		t.Fatal(err)
	}
	w.sessions.open(t, "s", "p")
	code, verifier, redirect := w.authorize(t, "p", "s", "app", "openid")
	gid, _, _ := opaque.Parse(codePrefix, code)
	keys := []string{w.b.codeKey(gid)}
	record := w.store.Client.HGetAll(ctx, keys[0]).Val()
	if len(record) == 0 {
		t.Fatal("no code record after authorize")
	}
	// The ending runs first: the code is not there yet.
	if err := w.store.Client.Del(ctx, keys[0]).Err(); err != nil {
		t.Fatal(err)
	}
	if err := w.sessions.End(ctx, "p", "s", identity.EndSignOut); err != nil {
		t.Fatal(err)
	}
	// Then authorize's write lands, as it writes it: HSET of the record, and its lifetime.
	if _, err := w.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, keys[0], record)
		p.PExpire(ctx, keys[0], CodeTTL)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	resp := w.token(t, "app", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}})
	if resp["error"] != "invalid_grant" {
		t.Errorf("a code written after its session ended was redeemed: %v", resp)
	}
}
