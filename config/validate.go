package config

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // push.time_zone must load on hosts (and images) without a zoneinfo database
)

// Problem is one thing wrong with a configuration. Key names it as the YAML path
// (providers[1].issuer), the environment variable (TONGBAN_REDIS_URLL) or the file and line.
type Problem struct {
	Key     string
	Message string
}

func (p Problem) String() string {
	if p.Key == "" {
		return p.Message
	}
	return p.Key + ": " + p.Message
}

// Problems is every problem found at once, so an operator fixes a configuration in one pass.
type Problems []Problem

// Error is one line per problem, "key: message".
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// check is one row of validation: the key and what is wrong with it, "" when nothing is.
type check struct {
	key     string
	problem string
}

func (ps *Problems) check(cs ...check) {
	for _, c := range cs {
		if c.problem != "" {
			*ps = append(*ps, Problem{Key: c.key, Message: c.problem})
		}
	}
}

var (
	idPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{1,31}$`)

	logLevels          = []string{"debug", "info", "warn", "error"}
	subjectTypes       = []string{"pairwise", "public"}
	idTokenAlgs        = []string{"ES256", "RS256", "EdDSA"}
	clientScopes       = []string{"openid", "profile", "phone", "id_number", "offline_access"}
	machineScopes      = []string{"events", "rules", "federation"}
	signingAlgorithms  = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	redisSchemes       = []string{"redis", "rediss", "unix"}
	minPepperBytes     = 32
	keyEncryptionBytes = 32
)

// Validate returns nil or Problems listing everything wrong, in the order of the keys in
// docs/config.md. It checks the configuration as it will be used, so it expects the *_file keys
// already resolved and the per-element defaults applied, as Load does.
func (c *Config) Validate() error {
	var ps Problems
	c.validateServer(&ps)
	c.validateRedis(&ps)
	c.validateSessions(&ps)
	c.validateSecrets(&ps)
	c.validateProviders(&ps)
	c.validateClients(&ps)
	c.validateMachineClients(&ps)
	c.validateSafety(&ps)
	c.validateCatalog(&ps)
	c.validatePush(&ps)
	c.validatePushPrivacy(&ps)
	c.validateGraphQL(&ps)
	c.validateGraphQLBounds(&ps)
	c.validateWebsocket(&ps)
	c.validateRateLimits(&ps)
	c.validateTelemetry(&ps)
	c.validateLogout(&ps)
	c.validateFederation(&ps)
	if len(ps) == 0 {
		return nil
	}
	return ps
}

func (c *Config) validateServer(ps *Problems) {
	ps.check(
		check{"listen", required(c.Listen, hostPort(c.Listen, false))},
		check{"metrics_listen", optional(c.MetricsListen, hostPort(c.MetricsListen, false))},
		check{"public_url", required(c.PublicURL, httpsURL(c.PublicURL, true))},
		check{"request_timeout", when(c.RequestTimeout < Duration(minRequestTimeout) || c.RequestTimeout > Duration(maxRequestTimeout),
			fmt.Sprintf("must be from %s to %s, like 10s: past %s the HTTP server cuts the answer off (got %s)",
				minRequestTimeout, maxRequestTimeout, maxRequestTimeout, c.RequestTimeout.Std()))},
		check{"shutdown_timeout", when(c.ShutdownTimeout <= 0, "must be positive, like 15s")},
		check{"shutdown_delay", shutdownDelay(c.ShutdownDelay, c.ShutdownTimeout)},
		check{"log_level", oneOf(c.LogLevel, logLevels)},
		check{"dev", when(c.Dev && !loopbackURL(c.PublicURL),
			"dev mode needs a loopback public_url (http://localhost:…): it signs tokens for anyone through its simulated providers and uses public secrets")},
	)
}

// loopbackURL reports whether a URL names a loopback host. An unparsable URL is public_url's
// own problem, reported there.
func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	return err != nil || u.Host == "" || isLoopback(u.Hostname())
}

func (c *Config) validateRedis(ps *Problems) {
	ps.check(check{"redis.embedded_addr", optional(c.Redis.EmbeddedAddr, loopbackAddr(c.Redis.EmbeddedAddr))})
	ps.check(
		check{"redis", when(c.Redis.URL != "" && len(c.Redis.Cluster) > 0,
			"set url or cluster, not both")},
		check{"redis.url", optional(c.Redis.URL, redisURL(c.Redis.URL))},
	)
	for i, addr := range c.Redis.Cluster {
		ps.check(check{fmt.Sprintf("redis.cluster[%d]", i), hostPort(addr, true)})
	}
	r := c.Redis
	ps.check(
		check{"redis.dial_timeout", redisTimeout(r.DialTimeout, "2s")},
		check{"redis.read_timeout", redisTimeout(r.ReadTimeout, "3s")},
		check{"redis.write_timeout", redisTimeout(r.WriteTimeout, "3s")},
		check{"redis.pool_timeout", redisTimeout(r.PoolTimeout, "4s")},
		check{"redis.pool_size", when(r.PoolSize < 0 || r.PoolSize > maxRedisPoolSize,
			fmt.Sprintf("must be 0 (10 per CPU) to %d connections per node (got %d)", maxRedisPoolSize, r.PoolSize))},
		check{"redis.max_retries", when(r.MaxRetries < 0 || r.MaxRetries > maxRedisRetries,
			fmt.Sprintf("must be 0 (never, the default) to %d (got %d)", maxRedisRetries, r.MaxRetries))},
	)
	if len(r.Cluster) == 0 {
		ps.check(
			check{"redis.cluster_username", when(r.ClusterUsername != "", "only with redis.cluster; a url carries its own user")},
			check{"redis.cluster_password", when(r.ClusterPassword != "", "only with redis.cluster; a url carries its own password")},
			check{"redis.cluster_tls", when(r.ClusterTLS, "only with redis.cluster; a url says TLS with rediss://")},
		)
	}
	ps.check(check{"redis.cluster_password", when(r.ClusterUsername != "" && r.ClusterPassword == "", "required with cluster_username")})
}

const (
	// The HTTP server's write timeout is 60 s: a request must end well before it, or its
	// error answer is cut off with the connection.
	minRequestTimeout = 100 * time.Millisecond
	maxRequestTimeout = 30 * time.Second
	maxRedisTimeout   = time.Minute
	maxRedisPoolSize  = 10000
	maxRedisRetries   = 10
)

// redisTimeout refuses 0 and less (go-redis would read them as its default or as no timeout at
// all) and more than a minute, which bounds nothing a caller would wait for.
func redisTimeout(d Duration, like string) string {
	return when(d <= 0 || d > Duration(maxRedisTimeout),
		fmt.Sprintf("must be more than 0 and at most %s, like %s (got %s)", maxRedisTimeout, like, d.Std()))
}

func (c *Config) validateSessions(ps *Problems) {
	s := c.Sessions
	ps.check(
		check{"sessions.access_ttl", when(s.AccessTTL < Duration(time.Minute) || s.AccessTTL > Duration(24*time.Hour),
			"must be between 1m and 24h, like 15m")},
		check{"sessions.refresh_ttl", when(s.RefreshTTL < s.AccessTTL,
			"must be at least sessions.access_ttl, like 720h")},
		check{"sessions.max_per_person", when(s.MaxPerPerson < 1 || s.MaxPerPerson > MaxSessionsPerPerson,
			fmt.Sprintf("must be from 1 to %d (got %d)", MaxSessionsPerPerson, s.MaxPerPerson))},
	)
}

func (c *Config) validateSecrets(ps *Problems) {
	s := c.Secrets
	pepperKey := secretKey("secrets.pepper", s.PepperFile)
	kekKey := secretKey("secrets.key_encryption_key", s.KeyEncryptionKeyFile)
	_, kekErr := decodeKEK(s.KeyEncryptionKey)
	ps.check(
		check{pepperKey, when(!c.Dev && s.Pepper == "",
			"required outside dev mode (set secrets.pepper or secrets.pepper_file)")},
		check{pepperKey, when(s.Pepper != "" && len(s.Pepper) < minPepperBytes,
			fmt.Sprintf("must be at least %d bytes (got %d)", minPepperBytes, len(s.Pepper)))},
		check{kekKey, when(!c.Dev && s.KeyEncryptionKey == "",
			"required outside dev mode (32 random bytes in base64, e.g. `openssl rand -base64 32`)")},
		check{kekKey, optional(s.KeyEncryptionKey, problemOf(kekErr))},
	)
}

func (c *Config) validateCatalog(ps *Problems) {
	ps.check(check{"catalog", optional(c.Catalog, fileExists(c.Catalog))})
}

func (c *Config) validatePush(ps *Problems) {
	p := c.Push
	_, zoneErr := p.Location()
	_, _, quietErr := parseQuietHours(p.QuietHours)
	ps.check(
		check{"push.fcm.project_id", when(p.FCM.CredentialsFile != "" && p.FCM.ProjectID == "",
			"required when credentials_file is set")},
		check{"push.fcm.credentials_file", optional(p.FCM.CredentialsFile, fileExists(p.FCM.CredentialsFile))},
		check{"push.fcm.endpoint", optional(p.FCM.Endpoint, httpsURL(p.FCM.Endpoint, false))},
		check{"push.time_zone", required(p.TimeZone, problemOf(zoneErr))},
		check{"push.quiet_hours", optional(p.QuietHours, problemOf(quietErr))},
		check{"push.daily_cap", when(p.DailyCap < 0, fmt.Sprintf("must be 0 or more (got %d)", p.DailyCap))},
		check{"push.workers", when(p.Workers < 1 || p.Workers > 256, fmt.Sprintf("must be 1 to 256 (got %d)", p.Workers))},
	)
	c.validatePushChannels(ps)
}

func (c *Config) validateGraphQL(ps *Problems) {
	g := c.GraphQL
	ps.check(
		check{"graphql.complexity_limit", positive(int64(g.ComplexityLimit))},
		check{"graphql.depth_limit", positive(int64(g.DepthLimit))},
		check{"graphql.alias_limit", positive(int64(g.AliasLimit))},
		check{"graphql.token_limit", positive(int64(g.TokenLimit))},
		check{"graphql.selection_limit", positive(int64(g.SelectionLimit))},
		check{"graphql.max_body_bytes", positive(g.MaxBodyBytes)},
	)
	for i, o := range g.AllowedOrigins {
		ps.check(check{fmt.Sprintf("graphql.allowed_origins[%d]", i), origin(o)})
	}
}

// The checks below return "" when the value is fine, or what is wrong and what is expected.

func when(bad bool, msg string) string {
	if bad {
		return msg
	}
	return ""
}

// required reports an empty value, and otherwise the problem found in it.
func required(v, problem string) string {
	if v == "" {
		return "required"
	}
	return problem
}

// optional ignores the problem found in an empty value.
func optional(v, problem string) string {
	if v == "" {
		return ""
	}
	return problem
}

func problemOf(err error) string {
	if err != nil {
		return err.Error()
	}
	return ""
}

func positive(n int64) string {
	return when(n <= 0, fmt.Sprintf("must be positive (got %d)", n))
}

// shutdownDelay is only compared with a valid shutdown_timeout: a bad timeout is its own problem.
func shutdownDelay(delay, timeout Duration) string {
	switch {
	case delay < 0:
		return fmt.Sprintf("must be 0 or more, like 5s behind a load balancer (got %s)", delay.Std())
	case timeout > 0 && delay >= timeout:
		return fmt.Sprintf("must be less than shutdown_timeout (%s) (got %s)", timeout.Std(), delay.Std())
	}
	return ""
}

func oneOf(v string, allowed []string) string {
	return when(!slices.Contains(allowed, v),
		fmt.Sprintf("must be one of %s (got %q)", strings.Join(allowed, ", "), v))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// secretKey names the key an operator should fix: the *_file key when the value came from a file.
func secretKey(key, file string) string {
	if file != "" {
		return key + "_file"
	}
	return key
}

func hostPort(addr string, needHost bool) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("must be host:port, like :8080 or 127.0.0.1:8080 (got %q)", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Sprintf("must have a numeric port 0-65535 (got %q)", addr)
	}
	if needHost && host == "" {
		return fmt.Sprintf("must name a host, like redis-1:6379 (got %q)", addr)
	}
	return ""
}

// httpsURL checks a URL the service hands to browsers or providers: absolute, https (or http
// on a loopback host, in any mode), no fragment; an issuer also takes no query, since it is
// compared byte for byte and extended with paths.
func httpsURL(raw string, noQuery bool) string {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Sprintf("must be an absolute URL like https://host/path (got %q)", raw)
	}
	switch {
	case u.Scheme == "" || u.Host == "" || u.Opaque != "":
		return fmt.Sprintf("must be an absolute URL like https://host/path (got %q)", raw)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return fmt.Sprintf("must be https; http only on a loopback host (got %q)", raw)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Sprintf("must be https (got scheme %q)", u.Scheme)
	case strings.Contains(raw, "#"):
		return fmt.Sprintf("must not have a fragment (got %q)", raw)
	case noQuery && (u.RawQuery != "" || u.ForceQuery):
		return fmt.Sprintf("must not have a query (got %q)", raw)
	}
	return ""
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redisURL never echoes the URL: it usually carries a password.
func redisURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "is not a URL (want redis://host:6379/0, rediss://… or unix://…)"
	}
	return when(!slices.Contains(redisSchemes, u.Scheme),
		fmt.Sprintf("scheme must be redis, rediss or unix (got %q)", u.Scheme))
}

func appID(id, list string, seen map[string]int, i int) string {
	if id == "" {
		return "required"
	}
	if !idPattern.MatchString(id) {
		return fmt.Sprintf("must be 2-32 characters of a-z, 0-9 and -, starting with a letter (got %q)", id)
	}
	if j, dup := seen[id]; dup {
		return fmt.Sprintf("duplicate id %q (also %s[%d])", id, list, j)
	}
	seen[id] = i
	return ""
}

func algorithm(alg string) string {
	const use = "use RS256, ES256, …"
	switch {
	case slices.Contains(signingAlgorithms, alg):
		return ""
	case strings.EqualFold(alg, "none"):
		return fmt.Sprintf("%q is never accepted (unsigned); %s", alg, use)
	case strings.HasPrefix(strings.ToUpper(alg), "HS"):
		return fmt.Sprintf("%q is never accepted (symmetric); %s", alg, use)
	}
	return fmt.Sprintf("unknown algorithm %q; want one of %s", alg, strings.Join(signingAlgorithms, ", "))
}

func assuranceLevel(n int) string {
	return when(n < 1 || n > 4, fmt.Sprintf("must be a level from 1 to 4 (got %d)", n))
}

func secretChecks(prefix, secret, sha, file string) []check {
	switch {
	case secret == "" && sha == "":
		return []check{{prefix + ".secret", "missing secret (set secret, secret_sha256 or secret_file)"}}
	case secret != "" && sha != "":
		return []check{{secretKey(prefix+".secret", file), "set only one of secret and secret_sha256"}}
	case sha != "":
		b, err := hex.DecodeString(sha)
		return []check{{prefix + ".secret_sha256", when(err != nil || len(b) != 32,
			fmt.Sprintf("must be 64 hex characters, the SHA-256 of the secret (got %d characters)", len(sha)))}}
	}
	return nil
}

func fileExists(path string) string {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Sprintf("file %q must exist: %v", path, unwrapPathError(err))
	case fi.IsDir():
		return fmt.Sprintf("%q is a directory; want a file", path)
	}
	return ""
}

func origin(o string) string {
	if o == "*" {
		return ""
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.ForceQuery || strings.Contains(o, "#") {
		return fmt.Sprintf("must be * or scheme://host[:port] with no path (got %q)", o)
	}
	return ""
}

// Location loads push.time_zone.
func (p Push) Location() (*time.Location, error) {
	loc, err := time.LoadLocation(p.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q; want an IANA name like Asia/Shanghai", p.TimeZone)
	}
	return loc, nil
}

// QuietWindow returns push.quiet_hours as offsets from midnight. ok is false when there are no
// default quiet hours (or the value is invalid, which Validate reports). A window may wrap past
// midnight: start 22:00, end 08:00.
func (p Push) QuietWindow() (start, end time.Duration, ok bool) {
	start, end, err := parseQuietHours(p.QuietHours)
	return start, end, err == nil && p.QuietHours != ""
}

func parseQuietHours(s string) (start, end time.Duration, err error) {
	bad := fmt.Errorf(`must be "HH:MM-HH:MM", like "22:00-08:00", or "" for none (got %q)`, s)
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, bad
	}
	if start, ok = clock(from); !ok {
		return 0, 0, bad
	}
	if end, ok = clock(to); !ok {
		return 0, 0, bad
	}
	if start == end {
		return 0, 0, fmt.Errorf("start and end are both %s; use \"\" for no quiet hours", from)
	}
	return start, end, nil
}

// clock parses a 24-hour "HH:MM".
func clock(s string) (time.Duration, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || h < 0 || h > 23 || m < 0 || m > 59 ||
		strings.ContainsAny(s, "+- ") {
		return 0, false
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, true
}

// loopbackAddr: host:port on a loopback host. The embedded store has no password; it must not
// be reachable from another machine.
func loopbackAddr(addr string) string {
	if p := hostPort(addr, true); p != "" {
		return p
	}
	host, _, _ := net.SplitHostPort(addr)
	return when(!isLoopback(host), fmt.Sprintf("must be on a loopback host, like 127.0.0.1:6390: the embedded store has no password (got %q)", addr))
}
