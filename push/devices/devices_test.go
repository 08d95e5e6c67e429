package devices_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/seal"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push/devices"
)

var ctx = context.Background()

type fixture struct {
	*devices.Devices
	store *redisx.Store
	clock *testenv.Clock
	kek   []byte
}

func newDevices(t testing.TB, max int) fixture {
	t.Helper()
	store := testenv.Redis(t)
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	clock := testenv.NewClock()
	d, err := devices.New(devices.Options{Store: store, KEK: kek, Apps: []string{"app-a", "app-b"}, Now: clock.Now, MaxPerPerson: max})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{d, store, clock, kek}
}

// newToken is shaped like a real FCM registration token.
func newToken(t testing.TB) string {
	t.Helper()
	b := make([]byte, 105)
	_, _ = rand.Read(b)
	return "f" + base64.RawURLEncoding.EncodeToString(b[:16]) + ":APA91b" + base64.RawURLEncoding.EncodeToString(b[16:])
}

func (f fixture) register(t testing.TB, pid, app, token string) devices.Device {
	t.Helper()
	dev, err := f.Register(ctx, pid, app, "ANDROID", token)
	if err != nil {
		t.Fatalf("Register(%s, %s): %v", pid, app, err)
	}
	return dev
}

func (f fixture) list(t testing.TB, pid string) []devices.Device {
	t.Helper()
	l, err := f.List(ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func ids(l []devices.Device) []string {
	var out []string
	for _, d := range l {
		out = append(out, d.ID)
	}
	return out
}

// owner reads the token's index (the key schema of doc.go): the owner and whether earlier
// owners are still listed for release.
func (f fixture) owner(t testing.TB, token string) (string, []string) {
	t.Helper()
	h := sha256.Sum256([]byte(token))
	v, err := f.store.Client.Get(ctx, f.store.Key("fcmtok:"+base64.RawURLEncoding.EncodeToString(h[:]))).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(v)
	return fields[0], fields[2:]
}

// deviceID is doc.go's: "d_" and the first 22 characters of the token's base64url SHA-256.
func deviceID(token string) string {
	h := sha256.Sum256([]byte(token))
	return "d_" + base64.RawURLEncoding.EncodeToString(h[:])[:22]
}

func TestNewRefuses(t *testing.T) {
	store := testenv.Redis(t)
	kek := make([]byte, 32)
	tests := []struct {
		name string
		o    devices.Options
	}{
		{"no store", devices.Options{KEK: kek, Apps: []string{"a"}}},
		{"short key", devices.Options{Store: store, KEK: kek[:16], Apps: []string{"a"}}},
		{"no apps", devices.Options{Store: store, KEK: kek}},
		{"negative cap", devices.Options{Store: store, KEK: kek, Apps: []string{"a"}, MaxPerPerson: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := devices.New(tt.o); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestRegisterRefuses(t *testing.T) {
	f := newDevices(t, 0)
	good := newToken(t)
	tests := []struct {
		name                   string
		app, platform, token   string
		field, messageContains string
	}{
		{"app missing", "", "ANDROID", good, "app", "required"},
		{"app not a member", "app-z", "ANDROID", good, "app", `"app-z" is not a member app`},
		{"app very long", strings.Repeat("x", 5000), "ANDROID", good, "app", "is not a member app"},
		{"platform missing", "app-a", "", good, "platform", "want one of ANDROID, IOS, HARMONY, WEB, MINIPROGRAM"},
		{"platform lower case", "app-a", "android", good, "platform", `"android" is not a platform`},
		{"platform unknown", "app-a", "BLACKBERRY", good, "platform", "is not a platform"},
		{"token missing", "app-a", "IOS", "", "token", "required"},
		{"token too short", "app-a", "IOS", good[:31], "token", "too short"},
		{"token too long", "app-a", "IOS", strings.Repeat("a", 4097), "token", "too long"},
		{"token with a space", "app-a", "IOS", good[:40] + " " + good[41:], "token", "not allowed"},
		{"token with a dot", "app-a", "IOS", good[:40] + "." + good[41:], "token", "not allowed"},
		{"token with base64 padding", "app-a", "IOS", good + "==", "token", "not allowed"},
		{"token with a NUL", "app-a", "IOS", good[:40] + "\x00" + good[41:], "token", "not allowed"},
		{"token not ASCII", "app-a", "IOS", good[:40] + "令牌" + good[41:], "token", "not allowed"},
		{"token not UTF-8", "app-a", "IOS", good[:40] + "\xff" + good[41:], "token", "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.Register(ctx, "pA", tt.app, tt.platform, tt.token)
			ie, ok := errors.AsType[*devices.InputError](err)
			if !ok {
				t.Fatalf("err = %v, want *InputError", err)
			}
			if ie.Field != tt.field || !strings.Contains(ie.Message, tt.messageContains) {
				t.Errorf("err = %q, want field %s and a message with %q", ie, tt.field, tt.messageContains)
			}
			if tt.token != "" && len(tt.token) >= 16 && strings.Contains(ie.Error(), tt.token[:16]) {
				t.Errorf("err = %q repeats the token", ie)
			}
		})
	}
	if keys := testenv.Keys(t, f.store); len(keys) != 0 {
		t.Errorf("refused registrations wrote %v", keys)
	}
}

func TestValidToken(t *testing.T) {
	tests := []struct {
		token string
		want  bool
	}{
		{strings.Repeat("a", 32), true},
		{strings.Repeat("Z", 4096), true},
		{"aB0_:-" + strings.Repeat("x", 26), true},
		{strings.Repeat("a", 31), false},
		{strings.Repeat("a", 4097), false},
		{"", false},
		{strings.Repeat("a", 31) + "/", false},
		{strings.Repeat("a", 31) + "+", false},
		{strings.Repeat("a", 31) + "é", false},
	}
	for _, tt := range tests {
		if got := devices.ValidToken(tt.token); got != tt.want {
			t.Errorf("ValidToken(%.40q…) = %v, want %v", tt.token, got, tt.want)
		}
	}
}

func FuzzValidToken(f *testing.F) {
	ref := regexp.MustCompile(`^[A-Za-z0-9_:-]+$`)
	f.Add(strings.Repeat("a", 32))
	f.Add(strings.Repeat("a", 31) + "\x00")
	f.Add("fXyZ:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx")
	f.Fuzz(func(t *testing.T, token string) {
		if got, want := devices.ValidToken(token), ref.MatchString(token) && len(token) >= 32 && len(token) <= 4096; got != want {
			t.Fatalf("ValidToken(%q) = %v, want %v", token, got, want)
		}
	})
}

func TestListNeverHasTokens(t *testing.T) {
	f := newDevices(t, 0)
	tokens := []string{newToken(t), newToken(t), newToken(t)}
	var want []string
	for _, tok := range tokens {
		want = append(want, f.register(t, "pA", "app-a", tok).ID)
		f.clock.Advance(time.Second)
	}
	l := f.list(t, "pA")
	if !slices.Equal(ids(l), want) {
		t.Fatalf("List = %v, want %v oldest first", ids(l), want)
	}
	blob, _ := json.Marshal(l)
	for _, tok := range tokens {
		if strings.Contains(string(blob), tok) || strings.Contains(fmt.Sprintf("%+v", l), tok) {
			t.Fatal("List carries a token")
		}
	}
	for _, d := range l {
		if d.App != "app-a" || d.Platform != "ANDROID" || d.RegisteredAt.IsZero() || !strings.HasPrefix(d.ID, "d_") {
			t.Errorf("device %+v", d)
		}
	}
	if l := f.list(t, "pNobody"); len(l) != 0 {
		t.Errorf("a person without devices has %v", l)
	}
}

func TestRegisterAgainIsTheSameDevice(t *testing.T) {
	f := newDevices(t, 0)
	tok := newToken(t)
	first := f.register(t, "pA", "app-a", tok)
	f.clock.Advance(time.Hour)
	again := f.register(t, "pA", "app-a", tok)
	if again.ID != first.ID {
		t.Fatalf("ids %s and %s for one token", first.ID, again.ID)
	}
	l := f.list(t, "pA")
	if len(l) != 1 || l[0].ID != first.ID {
		t.Fatalf("List = %+v, want the one device", l)
	}
	if !l[0].RegisteredAt.Equal(first.RegisteredAt.Add(time.Hour)) {
		t.Errorf("RegisteredAt = %v, want refreshed to %v", l[0].RegisteredAt, first.RegisteredAt.Add(time.Hour))
	}
}

// Beyond the cap, a new device evicts the one registered longest ago and frees its token.
func TestCapEvictsTheOldest(t *testing.T) {
	f := newDevices(t, 3)
	var toks []string
	var want []string
	for range 3 {
		tok := newToken(t)
		toks = append(toks, tok)
		want = append(want, f.register(t, "pA", "app-a", tok).ID)
		f.clock.Advance(time.Minute)
	}
	// Registering a device the person has is no new device: nothing is evicted, and the
	// device becomes the newest.
	f.register(t, "pA", "app-b", toks[0])
	f.clock.Advance(time.Minute)
	want = append(want[1:], want[0])
	if got := ids(f.list(t, "pA")); !slices.Equal(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}

	fourth := newToken(t)
	d4 := f.register(t, "pA", "app-a", fourth)
	want = append(want[1:], d4.ID)
	if got := ids(f.list(t, "pA")); !slices.Equal(got, want) {
		t.Fatalf("List = %v, want %v (toks[1] evicted)", got, want)
	}
	if o, _ := f.owner(t, toks[1]); o != "" {
		t.Errorf("evicted token's index still names %q", o)
	}
	for _, tok := range []string{toks[0], toks[2], fourth} {
		if o, _ := f.owner(t, tok); o != "pA" {
			t.Errorf("kept token's index names %q", o)
		}
	}
	// Another person's devices do not count against pA's cap.
	f.register(t, "pB", "app-a", newToken(t))
	if got := f.list(t, "pA"); len(got) != 3 {
		t.Errorf("pA has %d devices", len(got))
	}
}

func TestUnregister(t *testing.T) {
	f := newDevices(t, 0)
	tok, keep := newToken(t), newToken(t)
	dev := f.register(t, "pA", "app-a", tok)
	kept := f.register(t, "pA", "app-a", keep)
	tests := []struct {
		name    string
		pid, id string
	}{
		{"someone else's device", "pB", dev.ID},
		{"not a device id", "pA", "d_not-an-id"},
		{"empty id", "pA", ""},
		{"huge id", "pA", strings.Repeat("d", 10000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ok, err := f.Unregister(ctx, tt.pid, tt.id); ok || err != nil {
				t.Fatalf("Unregister = %v, %v; want false, nil", ok, err)
			}
		})
	}
	if ok, err := f.Unregister(ctx, "pA", dev.ID); !ok || err != nil {
		t.Fatalf("Unregister = %v, %v", ok, err)
	}
	if ok, err := f.Unregister(ctx, "pA", dev.ID); ok || err != nil {
		t.Fatalf("second Unregister = %v, %v", ok, err)
	}
	if got := ids(f.list(t, "pA")); !slices.Equal(got, []string{kept.ID}) {
		t.Errorf("List = %v", got)
	}
	if o, _ := f.owner(t, tok); o != "" {
		t.Errorf("index of an unregistered token names %q", o)
	}
	if o, _ := f.owner(t, keep); o != "pA" {
		t.Errorf("index of the other token names %q", o)
	}
}

func TestDropOnlyAffectsThatDevice(t *testing.T) {
	f := newDevices(t, 0)
	a1, a2, moved := newToken(t), newToken(t), newToken(t)
	d1 := f.register(t, "pA", "app-a", a1)
	d2 := f.register(t, "pA", "app-b", a2)
	dm := f.register(t, "pA", "app-a", moved)
	f.register(t, "pB", "app-a", moved) // now pB's
	b := f.register(t, "pB", "app-a", newToken(t))

	if ok, err := f.Drop(ctx, "pA", d1.ID); !ok || err != nil {
		t.Fatalf("Drop = %v, %v", ok, err)
	}
	if got := ids(f.list(t, "pA")); !slices.Equal(got, []string{d2.ID}) {
		t.Errorf("pA has %v, want only %s", got, d2.ID)
	}
	if o, _ := f.owner(t, a1); o != "" {
		t.Errorf("dropped token's index names %q", o)
	}
	// pA's stale view of a token that moved on drops nothing of pB's.
	if ok, err := f.Drop(ctx, "pA", dm.ID); ok || err != nil {
		t.Fatalf("Drop of a moved device = %v, %v", ok, err)
	}
	if got := ids(f.list(t, "pB")); len(got) != 2 || !slices.Contains(got, dm.ID) || !slices.Contains(got, b.ID) {
		t.Errorf("pB has %v", got)
	}
	if o, _ := f.owner(t, moved); o != "pB" {
		t.Errorf("moved token's index names %q", o)
	}
}

func TestQueueTargets(t *testing.T) {
	f := newDevices(t, 0)
	ta, tb1, tb2 := newToken(t), newToken(t), newToken(t)
	f.register(t, "pA", "app-a", ta)
	f.register(t, "pB", "app-a", tb1)
	f.clock.Advance(time.Second)
	f.register(t, "pB", "app-b", tb2)

	var qa, qb, qc func() ([]devices.Target, error)
	if _, err := f.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		qa = f.QueueTargets(ctx, p, "pA")
		qb = f.QueueTargets(ctx, p, "pB")
		qc = f.QueueTargets(ctx, p, "pNobody")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tokens := func(q func() ([]devices.Target, error)) []string {
		ts, err := q()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, x := range ts {
			out = append(out, x.Token)
		}
		return out
	}
	if got := tokens(qa); !slices.Equal(got, []string{ta}) {
		t.Errorf("pA's targets %d, want 1", len(got))
	}
	if got := tokens(qb); !slices.Equal(got, []string{tb1, tb2}) {
		t.Errorf("pB's targets are not its tokens, oldest first")
	}
	if got := tokens(qc); len(got) != 0 {
		t.Errorf("pNobody has %d targets", len(got))
	}

	t.Run("a record that does not open", func(t *testing.T) {
		key := f.store.Key("{p:pB}:devices")
		m := f.store.Client.HGetAll(ctx, key).Val()
		var broken string
		for id, raw := range m {
			var r map[string]any
			_ = json.Unmarshal([]byte(raw), &r)
			if r["app"] == "app-a" {
				r["token"] = r["token"].(string)[:20] + "AAAA" + r["token"].(string)[24:]
				blob, _ := json.Marshal(r)
				f.store.Client.HSet(ctx, key, id, blob)
				broken = id
			}
		}
		p := f.store.Client.Pipeline()
		q := f.QueueTargets(ctx, p, "pB")
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		ts, err := q()
		if !errors.Is(err, devices.ErrSealed) || !strings.Contains(err.Error(), broken) {
			t.Fatalf("err = %v, want ErrSealed naming %s", err, broken)
		}
		if len(ts) != 1 || ts[0].Token != tb2 {
			t.Errorf("targets that opened: %d", len(ts))
		}
		if strings.Contains(err.Error(), tb1) {
			t.Error("error carries the token")
		}
	})
}

// What Redis holds never shows a token: only its hash (in the index key and the record) and
// its sealed form, which opens with the KEK.
func TestTokensAreNotStoredInClear(t *testing.T) {
	f := newDevices(t, 2)
	var tokens []string
	for i := range 4 {
		tok := newToken(t)
		tokens = append(tokens, tok)
		f.register(t, []string{"pA", "pB"}[i%2], "app-a", tok)
	}
	f.register(t, "pA", "app-b", tokens[1]) // moved
	f.register(t, "pA", "app-a", newToken(t))
	keys := testenv.Keys(t, f.store)
	if len(keys) == 0 {
		t.Fatal("nothing stored")
	}
	var opened int
	for _, k := range keys {
		var values []string
		switch typ := f.store.Client.Type(ctx, k).Val(); typ {
		case "string":
			values = append(values, f.store.Client.Get(ctx, k).Val())
		case "hash":
			for field, v := range f.store.Client.HGetAll(ctx, k).Val() {
				values = append(values, field, v)
				var r struct{ Token string }
				if json.Unmarshal([]byte(v), &r) == nil && r.Token != "" {
					tok, err := seal.Open(f.kek, "fcm-token", r.Token)
					if err != nil || !slices.Contains(tokens, string(tok)) && !devices.ValidToken(string(tok)) {
						t.Errorf("%s %s: sealed token does not open: %v", k, field, err)
					}
					opened++
				}
			}
		default:
			t.Fatalf("%s is a %s", k, typ)
		}
		for _, tok := range tokens {
			if strings.Contains(k, tok) || slices.ContainsFunc(values, func(v string) bool { return strings.Contains(v, tok) }) {
				t.Errorf("%s holds a token in clear", k)
			}
		}
	}
	if opened == 0 {
		t.Error("no sealed token found")
	}
}

func TestMalformedPersonIDs(t *testing.T) {
	f := newDevices(t, 0)
	for _, pid := range []string{"", "a}b", "{p:x}", "a b"} {
		if _, err := f.Register(ctx, pid, "app-a", "ANDROID", newToken(t)); err == nil {
			t.Errorf("Register for %q accepted", pid)
		}
		if _, err := f.List(ctx, pid); err == nil {
			t.Errorf("List for %q accepted", pid)
		}
	}
}
