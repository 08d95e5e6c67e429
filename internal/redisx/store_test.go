package redisx_test

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

// password stands for a credential in a configured URL; it must never reach an error or a log.
const password = "hunter2-s3cret"

func TestOpenRejects(t *testing.T) {
	tests := []struct {
		name string
		opts redisx.Options
		want string // part of the error
	}{
		{"URL and cluster both", redisx.Options{URL: "redis://127.0.0.1:6379/0", Cluster: []string{"127.0.0.1:7000"}}, "not both"},
		{"prefix with an opening brace", redisx.Options{Prefix: "tb:{x:"}, "hash tag"},
		{"prefix with a hash tag", redisx.Options{Prefix: "tb:{x}:"}, "hash tag"},
		{"prefix with a closing brace", redisx.Options{Prefix: "tb}:"}, "hash tag"},
		{"URL of another scheme", redisx.Options{URL: "http://u:" + password + "@127.0.0.1/"}, "scheme"},
		{"URL with a bad port", redisx.Options{URL: "redis://u:" + password + "@127.0.0.1:port/0"}, "parse url"},
		{"URL with a bad escape", redisx.Options{URL: "redis://u:" + password + "%zz@127.0.0.1/0"}, "parse url"},
		{"URL with an unclosed IPv6 host", redisx.Options{URL: "redis://u:" + password + "@[::1/0"}, "parse url"},
		{"URL with a bad database number", redisx.Options{URL: "redis://u:" + password + "@127.0.0.1/db"}, "database"},
		{"URL with an unknown option", redisx.Options{URL: "redis://:" + password + "@127.0.0.1/0?colour=red"}, "option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := redisx.Open(tt.opts)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%+v) succeeded", tt.opts)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("err = %v repeats the password", err)
			}
		})
	}
}

func TestOpenKinds(t *testing.T) {
	t.Run("neither URL nor cluster is embedded", func(t *testing.T) {
		s, err := redisx.Open(redisx.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.Kind != redisx.KindEmbedded || s.Embedded == nil || s.Prefix != redisx.DefaultPrefix {
			t.Errorf("store = %+v, want embedded with the default prefix", s)
		}
	})
	// Open does not wait for a real Redis, so these need none.
	t.Run("URL is one Redis", func(t *testing.T) {
		s, err := redisx.Open(redisx.Options{URL: "redis://u:" + password + "@127.0.0.1:1/2", Prefix: "x:"})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.Kind != redisx.KindRedis || s.Embedded != nil || s.Prefix != "x:" || s.Key("k") != "x:k" {
			t.Errorf("store = %+v, want redis with prefix x:", s)
		}
		if d := s.Describe(); d != "redis 127.0.0.1:1" {
			t.Errorf("Describe = %q", d)
		}
	})
	t.Run("addresses are a cluster", func(t *testing.T) {
		s, err := redisx.Open(redisx.Options{Cluster: []string{"127.0.0.1:1", "127.0.0.1:2"}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.Kind != redisx.KindCluster || s.Embedded != nil {
			t.Errorf("store = %+v, want a cluster", s)
		}
		if d := s.Describe(); d != "redis cluster 127.0.0.1:1,127.0.0.1:2" {
			t.Errorf("Describe = %q", d)
		}
	})
}

func TestRedact(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{"user and password", "redis://app:" + password + "@redis.internal:6379/0", "redis://app:xxxxx@redis.internal:6379/0"},
		{"password without user", "rediss://:" + password + "@redis.internal/1", "rediss://:xxxxx@redis.internal/1"},
		{"user without password", "redis://app@redis.internal/0", "redis://app@redis.internal/0"},
		{"no credentials", "redis://redis.internal:6379/0?dial_timeout=3s", "redis://redis.internal:6379/0?dial_timeout=3s"},
		{"unparsable URL", "redis://app:" + password + "@redis.internal:port/0", "<unparsable url>"},
		{"unparsable escape in the password", "redis://app:" + password + "%zz@redis.internal/0", "<unparsable url>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := redisx.Redact(tt.raw)
			if got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.raw, got, tt.want)
			}
			if strings.Contains(got, password) {
				t.Errorf("Redact(%q) = %q keeps the password", tt.raw, got)
			}
		})
	}
}

// URLs come from configuration; whatever one holds, its password does not survive Redact.
func FuzzRedact(f *testing.F) {
	for _, seed := range []string{
		"redis://app:pw@host:6379/0", "rediss://:pw@host", "redis://host", "redis://a:b:c@host",
		"redis://a%20b:p%40ss@host", "unix:///tmp/redis.sock", "::", "redis://[::1]:6379",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := redisx.Redact(raw)
		u, err := url.Parse(raw)
		if err != nil {
			if got != "<unparsable url>" {
				t.Fatalf("Redact(%q) = %q for an unparsable URL", raw, got)
			}
			return
		}
		if _, has := u.User.Password(); !has {
			return
		}
		r, err := url.Parse(got)
		if err != nil {
			t.Fatalf("Redact(%q) = %q, which does not parse: %v", raw, got, err)
		}
		if p, _ := r.User.Password(); p != "xxxxx" {
			t.Fatalf("Redact(%q) = %q keeps password %q", raw, got, p)
		}
	})
}

func TestOpenEmbedded(t *testing.T) {
	ctx := context.Background()
	s, err := redisx.OpenEmbedded("")
	if err != nil {
		t.Fatal(err)
	}
	if s.Kind != redisx.KindEmbedded || s.Prefix != redisx.DefaultPrefix || s.Embedded == nil {
		t.Errorf("store = %+v, want embedded with the default prefix", s)
	}
	addr := s.Embedded.Addr()
	if d := s.Describe(); d != "embedded store on "+addr || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("Describe = %q, want embedded on a loopback address", d)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if err := s.Client.Set(ctx, s.Key("k"), "v", 0).Err(); err != nil {
		t.Fatalf("set: %v", err)
	}

	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("ping succeeded after Close")
	}
	// The server is gone too, not just this client.
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("something still listens on %s after Close", addr)
	}
}

func TestWaitReadyGivesUp(t *testing.T) {
	s, err := redisx.OpenEmbedded("x:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Embedded.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := s.WaitReady(ctx); err == nil || !strings.Contains(err.Error(), "not answering") {
		t.Errorf("WaitReady on a stopped store = %v, want not answering", err)
	}
}

// scanKeys lists the keys matching pattern on every node.
func scanKeys(t *testing.T, s *redisx.Store, pattern string) map[string]bool {
	t.Helper()
	var mu sync.Mutex
	keys := map[string]bool{}
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys[iter.Val()] = true
			mu.Unlock()
		}
		return iter.Err()
	}
	ctx := context.Background()
	var err error
	switch c := s.Client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	}
	if err != nil {
		t.Fatalf("scan %s: %v", pattern, err)
	}
	return keys
}

func TestDeletePrefix(t *testing.T) {
	s := testenv.Redis(t)
	ctx := context.Background()
	gone, kept := s.Key("a:"), s.Key("b:")

	var doomed, survivors []string
	for i := range 1200 { // more than one SCAN page
		doomed = append(doomed, gone+"k"+strconv.Itoa(i))
	}
	doomed = append(doomed, gone+"{p:1}:devices", gone+"{p:1}:inbox", gone+"{p:2}:devices")
	survivors = append(survivors, kept+"k1", kept+"{p:1}:devices", kept+"{p:2}:inbox",
		s.Key("ab:k"), // shares the string "a" but not the prefix "a:"
		s.Key("a"))
	_, err := s.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range append(append([]string{}, doomed...), survivors...) {
			p.Set(ctx, k, "v", time.Hour)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("write keys: %v", err)
	}
	if n := len(scanKeys(t, s, gone+"*")); n != len(doomed) {
		t.Fatalf("wrote %d keys under %s, see %d", len(doomed), gone, n)
	}

	if err := s.DeletePrefix(ctx, gone); err != nil {
		t.Fatalf("DeletePrefix: %v", err)
	}
	if left := scanKeys(t, s, gone+"*"); len(left) != 0 {
		t.Errorf("%d keys left under %s, e.g. %v", len(left), gone, first(left))
	}
	for _, k := range survivors {
		if n, err := s.Client.Exists(ctx, k).Result(); err != nil || n != 1 {
			t.Errorf("%s was deleted (%d, %v)", k, n, err)
		}
	}
}

func first(m map[string]bool) string {
	for k := range m {
		return k
	}
	return ""
}

func TestDeletePrefixTreatsPatternCharactersLiterally(t *testing.T) {
	s := testenv.Redis(t)
	ctx := context.Background()
	for _, k := range []string{"a*:1", "ab:1", "a?:1", "aX:1", "a[b]:1", "ab]:1"} {
		if err := s.Client.Set(ctx, s.Key(k), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, prefix := range []string{"a*:", "a?:", "a[b]:"} {
		if err := s.DeletePrefix(ctx, s.Key(prefix)); err != nil {
			t.Fatal(err)
		}
	}
	for k, want := range map[string]int64{"a*:1": 0, "a?:1": 0, "a[b]:1": 0, "ab:1": 1, "aX:1": 1, "ab]:1": 1} {
		if n := s.Client.Exists(ctx, s.Key(k)).Val(); n != want {
			t.Errorf("%s exists = %d, want %d", k, n, want)
		}
	}
}
