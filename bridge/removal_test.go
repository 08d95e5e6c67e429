package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/internal/opaque"
	"github.com/tongban/tongban/logout"
)

// readRecord reads a client's registration record as stored.
func (fw *fedWorld) readRecord(t *testing.T, id string) (registration, time.Duration, bool) {
	t.Helper()
	ctx := context.Background()
	raw, err := fw.store.Client.Get(ctx, fw.b.registrationKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return registration{}, 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var reg registration
	if err := json.Unmarshal(raw, &reg); err != nil {
		t.Fatal(err)
	}
	ttl, _ := fw.store.Client.TTL(ctx, fw.b.registrationKey(id)).Result()
	return reg, ttl, true
}

// TestFederatedRemovalDurable: a member's removal holds on every replica and against its own
// attempts to come back, each step named by what it shows; only Readmit lets it in again.
func TestFederatedRemovalDurable(t *testing.T) {
	fw := newFedWorld(t)
	ctx := context.Background()
	fw.setUpPerson(t, "p1", "s1")
	fw.switchFederated(t, "p1", "s1")
	c, err := fw.b.LookupClient(ctx, fw.rp.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("resolution is recorded until the chain expires", func(t *testing.T) {
		reg, ttl, ok := fw.readRecord(t, fw.rp.ID)
		if !ok || reg.Type != registrationAutomatic || reg.Departed || ttl <= 0 || reg.Metadata["backchannel_logout_uri"] != c.BackchannelLogoutURI {
			t.Fatalf("record %+v ttl %v found %v", reg, ttl, ok)
		}
	})
	fw.chains.off.Store(true)
	rep := fw.replica(nil)
	t.Run("another replica finds it after its chain stops resolving", func(t *testing.T) {
		rc, err := rep.LookupClient(ctx, fw.rp.ID)
		if err != nil || rc.registration != registrationAutomatic || rc.BackchannelLogoutURI != c.BackchannelLogoutURI {
			t.Fatalf("replica lookup %+v %v", rc, err)
		}
		if uri, ok := rep.BackchannelLogoutURI(fw.rp.ID); !ok || uri != c.BackchannelLogoutURI {
			t.Fatalf("replica backchannel URI %q %v", uri, ok)
		}
	})
	t.Run("EndClient on any replica resolves no chain and queues the logout token", func(t *testing.T) {
		rep.ForgetClient(fw.rp.ID)
		before := fw.chains.calls.Load()
		n, err := rep.EndClient(ctx, fw.rp.ID)
		if err != nil || n != 1 {
			t.Fatalf("EndClient = %d, %v", n, err)
		}
		if calls := fw.chains.calls.Load() - before; calls != 0 {
			t.Fatalf("EndClient resolved %d chains", calls)
		}
		jobs := fw.queue.jobs(t, true)
		if len(jobs) != 1 || jobs[0].Client != fw.rp.ID || jobs[0].Subject != fw.b.Subject(c, "p1") {
			t.Fatalf("jobs %+v", jobs)
		}
	})
	fw.chains.off.Store(false)
	t.Run("a departed member cannot register explicitly", func(t *testing.T) {
		rec := fw.postRegistration(fw.registrationRequest(t, fw.rp, fw.rp.Key, nil), federation.ContentTypeEntityStatement)
		if rec.Code == http.StatusOK || !strings.Contains(rec.Body.String(), "removed") {
			t.Fatalf("registration after removal: %d %s", rec.Code, rec.Body)
		}
		if reg, _, ok := fw.readRecord(t, fw.rp.ID); !ok || !reg.Departed {
			t.Fatalf("the departed record was overwritten: %+v", reg)
		}
	})
	t.Run("resolution does not bring it back on a replica that held it", func(t *testing.T) {
		fw.clock.Advance(FederatedRecheck + time.Second)
		if _, err := fw.b.LookupClient(ctx, fw.rp.ID); !errors.Is(err, ErrUnknownClient) {
			t.Fatalf("lookup after removal: %v", err)
		}
	})
	t.Run("ForgetRegistration keeps a departed record", func(t *testing.T) {
		if err := fw.b.ForgetRegistration(ctx, fw.rp.ID); !errors.Is(err, ErrDeparted) {
			t.Fatalf("ForgetRegistration of a departed client: %v", err)
		}
	})
	t.Run("Readmit lets it back", func(t *testing.T) {
		if err := fw.b.Readmit(ctx, fw.rp.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := fw.b.LookupClient(ctx, fw.rp.ID); err != nil {
			t.Fatalf("lookup after Readmit: %v", err)
		}
	})
	t.Run("ForgetRegistration drops the record", func(t *testing.T) {
		if err := fw.b.ForgetRegistration(ctx, fw.rp.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := fw.readRecord(t, fw.rp.ID); ok {
			t.Fatal("the record is left")
		}
		if err := fw.b.Readmit(ctx, fw.rp.ID); err != nil { // nothing departed: nothing done
			t.Fatal(err)
		}
	})
}

// TestEndClientUnknownStillDeparts: a member whose chain no longer resolves, never seen by any
// replica, is still recorded as departed, so that it cannot come back by itself.
func TestEndClientUnknownStillDeparts(t *testing.T) {
	t.Parallel()
	fw := newFedWorld(t)
	ctx := context.Background()
	fw.chains.off.Store(true)
	if n, err := fw.b.EndClient(ctx, fw.rp.ID); err != nil || n != 0 {
		t.Fatalf("EndClient = %d, %v", n, err)
	}
	if reg, _, ok := fw.readRecord(t, fw.rp.ID); !ok || !reg.Departed {
		t.Fatalf("no departed record: %+v %v", reg, ok)
	}
	fw.chains.off.Store(false)
	if _, err := fw.b.LookupClient(ctx, fw.rp.ID); !errors.Is(err, ErrUnknownClient) {
		t.Fatalf("lookup after removal: %v", err)
	}
	if uri, ok := fw.b.BackchannelLogoutURI(fw.rp.ID); ok {
		t.Fatalf("a client EndClient never found has a backchannel URI %q", uri)
	}
}

// TestSessionEndingResolvesNoChain: a sign-out's ending pipeline never resolves a trust chain
// per grant; the job of a federated client it does not hold in memory is queued all the same.
func TestSessionEndingResolvesNoChain(t *testing.T) {
	t.Parallel()
	fw := newFedWorld(t)
	ctx := context.Background()
	fw.setUpPerson(t, "p1", "s1")
	fw.switchFederated(t, "p1", "s1")
	c, _ := fw.b.LookupClient(ctx, fw.rp.ID)
	fw.b.ForgetClient(fw.rp.ID)
	if err := fw.store.Client.Del(ctx, fw.b.registrationKey(fw.rp.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	fw.chains.off.Store(true)
	before := fw.chains.calls.Load()
	if err := fw.sessions.End(ctx, "p1", "s1", "signed_out"); err != nil {
		t.Fatal(err)
	}
	if calls := fw.chains.calls.Load() - before; calls != 0 {
		t.Fatalf("the ending resolved %d chains", calls)
	}
	jobs := fw.queue.jobs(t, true)
	if len(jobs) != 1 || jobs[0].Client != fw.rp.ID || jobs[0].Subject != fw.b.Subject(c, "p1") {
		t.Fatalf("jobs %+v", jobs)
	}
}

// hookLogout is the test queue that runs hook once, at the first job queued.
type hookLogout struct {
	testLogout
	once *sync.Once
	hook func()
}

func (q hookLogout) QueueSend(ctx context.Context, p redis.Pipeliner, jobs ...logout.Job) {
	q.once.Do(q.hook)
	q.testLogout.QueueSend(ctx, p, jobs...)
}

// TestEndClientDrainsIndex: EndClient walks the client's index a page at a time until it is
// empty: a grant indexed while it runs (here: after its first page was read) ends too, and an
// index of several pages is emptied.
func TestEndClientDrainsIndex(t *testing.T) {
	t.Parallel()
	fw := newFedWorld(t)
	ctx := context.Background()
	var gids []string
	for _, p := range []string{"p1", "p2"} {
		fw.setUpPerson(t, p, "s-"+p)
		resp := fw.switchFederated(t, p, "s-"+p)
		gid, _, _ := opaque.Parse(accessPrefix, resp["access_token"].(string))
		gids = append(gids, gid)
	}
	key := fw.b.clientGrants(fw.rp.ID)
	late := "p2|" + gids[1]
	score, err := fw.store.Client.ZScore(ctx, key, late).Result()
	if err != nil {
		t.Fatal(err)
	}
	fw.store.Client.ZRem(ctx, key, late)
	// Dead entries beyond two pages (grants that do not exist) are drained as well.
	future := float64(fw.clock.Now().Add(time.Hour).UnixMilli())
	for i := range 2*endClientBatch + 10 {
		fw.store.Client.ZAdd(ctx, key, redis.Z{Score: future, Member: fmt.Sprintf("px%d|gx%d", i, i)})
	}
	rep := fw.replica(func(o *Options) {
		o.Logout = hookLogout{testLogout: fw.queue, once: &sync.Once{}, hook: func() {
			fw.store.Client.ZAdd(ctx, key, redis.Z{Score: score, Member: late})
		}}
	})
	n, err := rep.EndClient(ctx, fw.rp.ID)
	if err != nil || n != 2 {
		t.Fatalf("EndClient = %d, %v; want both grants, the one indexed during the walk too", n, err)
	}
	for _, gid := range gids {
		if ex, _ := fw.store.Client.Exists(ctx, fw.b.grantKey(gid)).Result(); ex != 0 {
			t.Fatalf("grant %s outlived its client's removal", gid)
		}
	}
	if ex, _ := fw.store.Client.Exists(ctx, key).Result(); ex != 0 {
		t.Fatal("the index is left")
	}
}

// TestUnauthenticatedResolutionRefused: an unauthenticated request naming an entity id that is
// neither configured nor registered resolves no trust chain unless it carries a JWT claiming to
// be that entity's (and, at registration, a configuration whose subject is an entity id).
func TestUnauthenticatedResolutionRefused(t *testing.T) {
	t.Parallel()
	fw := newFedWorld(t)
	cases := []struct {
		name string
		do   func(id string) (int, string)
	}{
		{"authorize without a request object", func(id string) (int, string) {
			rec := fw.authorizeWith(url.Values{"client_id": {id}, "redirect_uri": {id + "/cb"}, "response_type": {"code"}})
			return rec.Code, rec.Body.String()
		}},
		{"authorize with a request object of another issuer", func(id string) (int, string) {
			other := signJWT(t, fw.rpKey, jose.ES256, "", map[string]any{"iss": fw.in.ID, "client_id": id})
			rec := fw.authorizeWith(url.Values{"client_id": {id}, "request": {other}})
			return rec.Code, rec.Body.String()
		}},
		{"authorize with a request that is not a JWT", func(id string) (int, string) {
			rec := fw.authorizeWith(url.Values{"client_id": {id}, "request": {"a.b.c"}})
			return rec.Code, rec.Body.String()
		}},
		{"client assertion whose sub is not its iss", func(id string) (int, string) {
			c := fw.assertionClaims()
			c["iss"], c["sub"] = id, fw.in.ID
			status, resp := fw.tokenWith(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"tbq_x"},
				"client_assertion_type": {clientAssertionType}, "client_assertion": {signJWT(t, fw.rpKey, jose.ES256, "", c)}})
			return status, fmt.Sprint(resp)
		}},
		{"logout naming a client_id", func(id string) (int, string) {
			rec := httptest.NewRecorder()
			fw.b.serveLogout(rec, httptest.NewRequest("GET", "/oauth2/logout?"+url.Values{"client_id": {id}}.Encode(), nil))
			return rec.Code, rec.Body.String()
		}},
		{"registration of an entity id with a trailing slash", func(id string) (int, string) {
			body := fw.registrationRequest(t, fw.rp, fw.rp.Key, func(st *federation.EntityStatement) { st.Issuer, st.Subject = id+"/", id+"/" })
			rec := fw.postRegistration(body, federation.ContentTypeEntityStatement)
			return rec.Code, rec.Body.String()
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := fw.chains.calls.Load()
			// Each row names an entity never looked up: no record, not in memory.
			status, body := tc.do(fmt.Sprintf("%s/unseen-%d", fw.fed.URL, i))
			if status < 400 {
				t.Fatalf("accepted: %d %s", status, body)
			}
			if calls := fw.chains.calls.Load() - before; calls != 0 {
				t.Fatalf("%d chains resolved for %d %s", calls, status, body)
			}
		})
	}
	// A request object claiming to be the client's is what a chain is resolved for.
	id := fw.rp.ID
	before := fw.chains.calls.Load()
	fw.authorizeWith(url.Values{"client_id": {id}, "request": {signJWT(t, fw.rpKey, jose.ES256, "", fw.requestClaims("tbk_x"))}})
	if fw.chains.calls.Load() == before {
		t.Fatal("a request object of the client's did not resolve its chain")
	}
}
