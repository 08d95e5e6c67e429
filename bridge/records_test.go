package bridge

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/audit"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

// A bridge built without an audit trail switches and keeps consents all the same.
func TestBridgeWithoutAuditTrail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := auditBridge(t, testenv.Redis(t), nil)
	if _, err := b.Consents.Grant(ctx, "p", "target", []string{"profile"}); err != nil {
		t.Fatal(err)
	}
	sw, err := b.SwitchApp(ctx, identity.Session{ID: "s", PersonID: "p", App: "source", Assurance: 2, AuthTime: time.Now()}, "target", "")
	if err != nil || sw.LaunchURL == "" {
		t.Fatalf("switch without an audit trail: %+v %v", sw, err)
	}
	if _, err := b.Consents.Revoke(ctx, "p", "target"); err != nil {
		t.Fatal(err)
	}
}

func auditBridge(t *testing.T, store *redisx.Store, trail *audit.Trail) *Bridge {
	t.Helper()
	cfg := &config.Config{Clients: []config.Client{{
		ID: "target", Name: "目标", Secret: "s", RedirectURIs: []string{"https://target.example/cb"},
		InitiateLoginURI: "https://target.example/login", Scopes: []string{"openid", "profile"}, SubjectType: "pairwise",
	}}}
	clients, err := NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{Issuer: "https://tongban.example", Store: store, Clients: clients, Audit: trail})
}

func TestBridgeRecordsSwitchesAndConsentChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := testenv.Redis(t)
	a := audit.New(store, audit.Options{Now: testenv.NewClock().Now})
	b := auditBridge(t, store, a)
	sess := identity.Session{ID: "s", PersonID: "p", App: "source", Assurance: 2, AuthTime: time.Now()}
	if _, err := b.Consents.Grant(ctx, "p", "target", []string{"profile"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SwitchApp(ctx, sess, "target", ""); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Consents.Revoke(ctx, "p", "target"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	// Revoking what is not there is no consent change.
	if ok, err := b.Consents.Revoke(ctx, "p", "target"); err != nil || ok {
		t.Fatal(ok, err)
	}
	// A switch that only asks for consent issues nothing.
	if sw, err := b.SwitchApp(ctx, sess, "target", ""); err != nil || sw.LaunchURL != "" {
		t.Fatal(sw, err)
	}
	items, _, err := a.List(ctx, "p", 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := kinds(items), []audit.Kind{audit.ConsentRevoked, audit.SwitchIssued, audit.ConsentGranted}; !slices.Equal(got, want) {
		t.Fatalf("kinds %v, want %v", got, want)
	}
	if items[1].FromApp != "source" || items[1].ToApp != "target" || items[0].ToApp != "target" || items[2].FromApp != "" {
		t.Errorf("apps: %+v", items)
	}
}

// A trail that cannot be written is logged and does not fail the citizen's action.
func TestAuditFailureDoesNotFailTheAction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Nothing listens on port 1: every write fails at once.
	broken := &redisx.Store{Prefix: "tbt:broken:", Kind: redisx.KindRedis, Client: redis.NewClient(&redis.Options{
		Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1, DialTimeout: 200 * time.Millisecond,
	})}
	defer broken.Close()
	var logs bytes.Buffer
	var mu sync.Mutex
	a := audit.New(broken, audit.Options{Timeout: time.Second, Log: slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &mu}, nil))})
	b := auditBridge(t, testenv.Redis(t), a)
	if _, err := b.Consents.Grant(ctx, "p", "target", []string{"profile"}); err != nil {
		t.Fatalf("grant failed because its record did: %v", err)
	}
	sw, err := b.SwitchApp(ctx, identity.Session{ID: "s", PersonID: "p", App: "source", Assurance: 2, AuthTime: time.Now()}, "target", "")
	if err != nil || sw.LaunchURL == "" {
		t.Fatalf("switch failed because its record did: %+v %v", sw, err)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if strings.Count(out, "activity not recorded") != 2 || !strings.Contains(out, `"kind":"SWITCH_ISSUED"`) {
		t.Errorf("logs: %s", out)
	}
	if strings.Contains(out, "tbk_") {
		t.Errorf("the log holds a ticket: %s", out)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func kinds(items []audit.Activity) []audit.Kind {
	out := make([]audit.Kind, len(items))
	for i, a := range items {
		out[i] = a.Kind
	}
	return out
}
