package redisx

import (
	"cmp"
	"context"
	"crypto/tls"
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
//
// The timeouts and the pool bound every command of the client (doc.go says why each default is
// what it is); a zero value takes the default. A parameter of the same name in URL
// (?read_timeout=2s, go-redis's ParseURL) wins over the field, with go-redis's meaning.
type Options struct {
	URL     string
	Cluster []string
	// Username, Password and TLS authenticate to a cluster's nodes and encrypt the traffic
	// (a URL carries its own); TLS verifies the nodes against the system's roots.
	Username, Password string
	TLS                bool
	// Prefix defaults to DefaultPrefix.
	Prefix string

	// DialTimeout bounds opening a connection; default DefaultDialTimeout.
	DialTimeout time.Duration
	// ReadTimeout and WriteTimeout bound one command's reply and its sending when its context
	// has no earlier deadline; default DefaultReadTimeout, DefaultWriteTimeout.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// PoolTimeout bounds the wait for a free connection when all are busy; default
	// DefaultPoolTimeout.
	PoolTimeout time.Duration
	// PoolSize is the connections per node; 0 is go-redis's 10 per CPU (5 per CPU per node of
	// a cluster).
	PoolSize int
	// MaxRetries is how often go-redis sends a failed command again; 0 (the default) never.
	MaxRetries int
	// EmbeddedAddr is where the embedded store listens ("" a free loopback port). When it is
	// taken the store listens on a free port instead and EmbeddedAt says so.
	EmbeddedAddr string
}

// The defaults of Options, and of the redis.* configuration keys.
const (
	DefaultDialTimeout  = 2 * time.Second
	DefaultReadTimeout  = 3 * time.Second
	DefaultWriteTimeout = 3 * time.Second
	DefaultPoolTimeout  = 4 * time.Second
)

// retries is go-redis's spelling of a retry count, where 0 means its default (3) and -1 none.
func retries(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}

// withDefaults fills what o leaves zero.
func (o Options) withDefaults() Options {
	o.DialTimeout = cmp.Or(o.DialTimeout, DefaultDialTimeout)
	o.ReadTimeout = cmp.Or(o.ReadTimeout, DefaultReadTimeout)
	o.WriteTimeout = cmp.Or(o.WriteTimeout, DefaultWriteTimeout)
	o.PoolTimeout = cmp.Or(o.PoolTimeout, DefaultPoolTimeout)
	return o
}

// apply sets o's bounds on a single-node client's options, except those the URL's query set.
func (o Options) apply(ro *redis.Options, query url.Values) {
	// A request's deadline (and readiness's) bounds its commands: without this go-redis
	// waits its own read timeout whatever the context says.
	ro.ContextTimeoutEnabled = true
	set := func(name string, f func()) {
		if !query.Has(name) {
			f()
		}
	}
	set("dial_timeout", func() { ro.DialTimeout = o.DialTimeout })
	set("read_timeout", func() { ro.ReadTimeout = o.ReadTimeout })
	set("write_timeout", func() { ro.WriteTimeout = o.WriteTimeout })
	set("pool_timeout", func() { ro.PoolTimeout = o.PoolTimeout })
	set("pool_size", func() { ro.PoolSize = o.PoolSize })
	set("max_retries", func() { ro.MaxRetries = retries(o.MaxRetries) })
	set("dialer_retries", func() { ro.DialerRetries = dialAttempts })
}

// dialAttempts is how many times the client tries to open a connection before it reports the
// failure: once. go-redis's default (five, 100 ms apart) made every caller, readiness among
// them, wait about 400 ms to learn that Redis is down (the fault suite's redis-down saw
// readiness turn 503 only after 440 ms); the callers retry as they see fit, as they do commands
// (MaxRetries 0).
const dialAttempts = 1

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
		o := opts.withDefaults()
		var tlsConf *tls.Config
		if opts.TLS {
			tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		c := redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:                 opts.Cluster,
			DialerRetries:         dialAttempts,
			Username:              opts.Username,
			Password:              opts.Password,
			TLSConfig:             tlsConf,
			ContextTimeoutEnabled: true,
			DialTimeout:           o.DialTimeout,
			ReadTimeout:           o.ReadTimeout,
			WriteTimeout:          o.WriteTimeout,
			PoolTimeout:           o.PoolTimeout,
			PoolSize:              o.PoolSize,
			MaxRetries:            retries(o.MaxRetries),
			// MaxRedirects stays go-redis's 3: it follows MOVED and ASK and rides out a
			// failover, and it also re-sends a command whose reply timed out (doc.go).
		})
		c.AddHook(contextErrors{})
		return &Store{Client: c, Prefix: prefix, Kind: KindCluster}, nil
	case opts.URL != "":
		ro, err := redis.ParseURL(opts.URL)
		if err != nil {
			if ue, ok := errors.AsType[*url.Error](err); ok {
				err = ue.Err // *url.Error quotes the whole URL, password included
			}
			return nil, fmt.Errorf("redisx: parse url %s: %w", Redact(opts.URL), err)
		}
		var query url.Values
		if u, err := url.Parse(opts.URL); err == nil {
			query = u.Query()
		}
		opts.withDefaults().apply(ro, query)
		c := redis.NewClient(ro)
		c.AddHook(contextErrors{})
		return &Store{Client: c, Prefix: prefix, Kind: KindRedis}, nil
	default:
		return openEmbedded(prefix, opts)
	}
}

// OpenEmbedded starts an in-process Redis-compatible server on a loopback port and connects to
// it. It keeps nothing across restarts of the process.
func OpenEmbedded(prefix string) (*Store, error) { return openEmbedded(prefix, Options{}) }

func openEmbedded(prefix string, opts Options) (*Store, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	m := miniredis.NewMiniRedis()
	// A second dev server (or a test) may hold the wished-for address; it then gets a free
	// port, and commands that look for the first one find the first one.
	if opts.EmbeddedAddr == "" || m.StartAddr(opts.EmbeddedAddr) != nil {
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("redisx: start embedded store: %w", err)
		}
	}
	ro := &redis.Options{Addr: m.Addr()}
	opts.withDefaults().apply(ro, nil)
	c := redis.NewClient(ro)
	c.AddHook(contextErrors{})
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
