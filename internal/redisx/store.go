package redisx

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Kind says which store a Store talks to.
type Kind string

const (
	KindEmbedded Kind = "embedded"
	KindRedis    Kind = "redis"
	KindCluster  Kind = "cluster"
)

// DefaultPrefix is the namespace of every key in production.
const DefaultPrefix = "tb:"

// Options selects the store. URL and Cluster empty means embedded.
type Options struct {
	URL     string
	Cluster []string
	// Prefix defaults to DefaultPrefix.
	Prefix string
}

// Store is the shared state of one process: a client and the namespace its keys live in.
type Store struct {
	Client redis.UniversalClient
	Prefix string
	Kind   Kind
	// Embedded is the in-process server when Kind is KindEmbedded, for tests that need to
	// stop and restart it; nil otherwise.
	Embedded *miniredis.Miniredis
}

// Open connects to the store the options name. It does not wait for a real Redis to answer:
// readiness reports that, so a replica can start while Redis is still coming up.
func Open(opts Options) (*Store, error) {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("redisx: prefix %q must not contain a hash tag", prefix)
	}
	switch {
	case opts.URL != "" && len(opts.Cluster) > 0:
		return nil, errors.New("redisx: set either a URL or cluster addresses, not both")
	case len(opts.Cluster) > 0:
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: opts.Cluster})
		return &Store{Client: c, Prefix: prefix, Kind: KindCluster}, nil
	case opts.URL != "":
		o, err := redis.ParseURL(opts.URL)
		if err != nil {
			if ue, ok := errors.AsType[*url.Error](err); ok {
				err = ue.Err // *url.Error quotes the whole URL, password included
			}
			return nil, fmt.Errorf("redisx: parse url %s: %w", Redact(opts.URL), err)
		}
		return &Store{Client: redis.NewClient(o), Prefix: prefix, Kind: KindRedis}, nil
	default:
		return OpenEmbedded(prefix)
	}
}

// OpenEmbedded starts an in-process Redis-compatible server on a loopback port and connects to
// it. It keeps nothing across restarts of the process.
func OpenEmbedded(prefix string) (*Store, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("redisx: start embedded store: %w", err)
	}
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	return &Store{Client: c, Prefix: prefix, Kind: KindEmbedded, Embedded: m}, nil
}

// Key puts the store's namespace in front of a key suffix chosen by the owning package.
func (s *Store) Key(suffix string) string { return s.Prefix + suffix }

// Ping reports whether the store answers (every master, for a cluster) within ctx.
func (s *Store) Ping(ctx context.Context) error {
	if c, ok := s.Client.(*redis.ClusterClient); ok {
		return c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return m.Ping(ctx).Err()
		})
	}
	return s.Client.Ping(ctx).Err()
}

// Describe names the store for a start-up log line, without credentials.
func (s *Store) Describe() string {
	switch c := s.Client.(type) {
	case *redis.ClusterClient:
		return "redis cluster " + strings.Join(c.Options().Addrs, ",")
	case *redis.Client:
		if s.Kind == KindEmbedded {
			return "embedded store on " + c.Options().Addr
		}
		return "redis " + c.Options().Addr
	}
	return string(s.Kind)
}

// Close closes the client and stops the embedded server, if any.
func (s *Store) Close() error {
	err := s.Client.Close()
	if s.Embedded != nil {
		s.Embedded.Close()
	}
	return err
}

// DeletePrefix removes every key under prefix, on every master of a cluster. Tests use it to
// clean up after themselves on a shared Redis; it uses SCAN, never KEYS.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) error {
	del := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, globEscape(prefix)+"*", 500).Iterator()
		for iter.Next(ctx) {
			if err := c.Unlink(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	switch c := s.Client.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, del)
	case *redis.Client:
		return del(ctx, c)
	}
	return fmt.Errorf("redisx: unsupported client %T", s.Client)
}

// globEscape quotes the characters SCAN MATCH treats as a pattern, so a prefix matches only
// itself.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\\^`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Redact hides the password of a Redis URL for logs and errors.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable url>"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// WaitReady pings until the store answers or ctx ends. Tools and tests use it; the server
// itself relies on readiness instead.
func (s *Store) WaitReady(ctx context.Context) error {
	for {
		err := s.Ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redisx: store not answering: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
