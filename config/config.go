package config

import "time"

// Config is the whole of Tongban's configuration, as docs/config.md lists it. The yaml tags are the
// contract's key names; the environment override of a key is TONGBAN_ followed by its path in
// upper case with "_" between the parts (TONGBAN_REDIS_URL, TONGBAN_PROVIDERS_0_CLIENT_SECRET).
type Config struct {
	Listen        string `yaml:"listen"`
	MetricsListen string `yaml:"metrics_listen"`
	// PublicURL is the bridge's issuer and the base of every URL the service hands out.
	PublicURL string `yaml:"public_url"`
	Dev       bool   `yaml:"dev"`

	// RequestTimeout bounds an ordinary request (not a websocket, not a subscription sent as
	// POST) from the handler's start: past it the request's context ends, so its Redis calls
	// and outbound calls give up and it answers an error instead of hanging.
	RequestTimeout Duration `yaml:"request_timeout"`
	// ShutdownTimeout bounds graceful shutdown: in-flight requests and websockets get this long.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// ShutdownDelay is how long readiness fails before the listeners close on SIGTERM, so that
	// a load balancer stops sending new requests first. 0 behind nothing; a few seconds behind
	// a load balancer.
	ShutdownDelay Duration `yaml:"shutdown_delay"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`

	Redis          Redis           `yaml:"redis"`
	Sessions       Sessions        `yaml:"sessions"`
	Secrets        Secrets         `yaml:"secrets"`
	Providers      []Provider      `yaml:"providers"`
	Clients        []Client        `yaml:"clients"`
	MachineClients []MachineClient `yaml:"machine_clients"`
	Catalog        string          `yaml:"catalog"`
	Push           Push            `yaml:"push"`
	GraphQL        GraphQL         `yaml:"graphql"`
	RateLimits     RateLimits      `yaml:"rate_limits"`
	Telemetry      Telemetry       `yaml:"telemetry"`
	Logout         Logout          `yaml:"logout"`
	Federation     Federation      `yaml:"federation"`
	// TrustedProxies are the CIDRs of proxies whose X-Forwarded-For names the client.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// Redis says where shared state lives. Both empty means an embedded store in this process.
// The rest bounds each command (redisx's doc.go says why the defaults are what they are); a
// parameter of the same name in url's query wins over the key.
type Redis struct {
	URL     string   `yaml:"url"`
	Cluster []string `yaml:"cluster"`
	// ClusterUsername and ClusterPassword (or ClusterPasswordFile) authenticate to every node
	// of the cluster (ACL user, or the requirepass password with no user); ClusterTLS speaks TLS
	// to them, verified against the system's roots. A URL carries its own (rediss://, user and
	// password in it).
	ClusterUsername     string `yaml:"cluster_username"`
	ClusterPassword     string `yaml:"cluster_password"`
	ClusterPasswordFile string `yaml:"cluster_password_file"`
	ClusterTLS          bool   `yaml:"cluster_tls"`
	// DialTimeout bounds opening a connection.
	DialTimeout Duration `yaml:"dial_timeout"`
	// ReadTimeout and WriteTimeout bound a command's reply and its sending when the command's
	// context has no earlier deadline (a request's always is earlier or equal).
	ReadTimeout  Duration `yaml:"read_timeout"`
	WriteTimeout Duration `yaml:"write_timeout"`
	// PoolTimeout bounds the wait for a free connection when every one is busy.
	PoolTimeout Duration `yaml:"pool_timeout"`
	// PoolSize is the connections per Redis node; 0 is go-redis's 10 per CPU (5 per CPU per
	// node of a cluster).
	PoolSize int `yaml:"pool_size"`
	// MaxRetries is how often a failed command is sent again by the client; 0, the default,
	// never, because a command whose reply timed out may have run (redisx's doc.go).
	MaxRetries int `yaml:"max_retries"`
	// EmbeddedAddr is where the embedded store listens (loopback), so that commands run beside
	// a dev server (`tongban federation add-subordinate`) reach its state; taken, the store
	// takes a free port. Commands of a configuration without url or cluster connect here.
	EmbeddedAddr string `yaml:"embedded_addr"`
}

// Sessions sets the lifetimes of the sessions sign-ins open.
type Sessions struct {
	// AccessTTL is the lifetime of an access token.
	AccessTTL Duration `yaml:"access_ttl"`
	// RefreshTTL is how long a session lives without a refresh; each refresh extends it.
	RefreshTTL Duration `yaml:"refresh_ttl"`
	// MaxPerPerson is the number of live sessions a person may have; a new one ends the oldest.
	MaxPerPerson int `yaml:"max_per_person"`
}

// Secrets are the process-wide keys. Each may instead be read from a file (the *_file keys),
// which Load resolves before validation.
type Secrets struct {
	Pepper               string `yaml:"pepper"`
	PepperFile           string `yaml:"pepper_file"`
	KeyEncryptionKey     string `yaml:"key_encryption_key"`
	KeyEncryptionKeyFile string `yaml:"key_encryption_key_file"`
}

// Provider is a member app whose identity provider signs citizens in.
type Provider struct {
	ID                   string         `yaml:"id"`
	Name                 string         `yaml:"name"`
	Region               string         `yaml:"region"`
	Issuer               string         `yaml:"issuer"`
	ClientID             string         `yaml:"client_id"`
	ClientSecret         string         `yaml:"client_secret"`
	ClientSecretFile     string         `yaml:"client_secret_file"`
	Scopes               []string       `yaml:"scopes"`
	Algorithms           []string       `yaml:"algorithms"`
	Claims               ClaimMap       `yaml:"claims"`
	AssuranceLevels      map[string]int `yaml:"assurance_levels"`
	AutoLinkMinAssurance int            `yaml:"auto_link_min_assurance"`
	// RedirectURIs are the callbacks registered for Tongban's client at this provider, where a
	// member app receives the code of a sign-in it began with beginSignIn. Exact match; required
	// outside dev mode.
	RedirectURIs []string `yaml:"redirect_uris"`
	// BackchannelLogout: the provider sends OpenID Connect back-channel logout tokens to
	// {public_url}/oidc/{id}/backchannel-logout when a login ends there, and Tongban ends the
	// sessions that login opened (by the ID token's sid, else every session of the account).
	BackchannelLogout bool `yaml:"backchannel_logout"`
	// EntityID names the provider by its OpenID Federation entity id instead of issuer and
	// endpoints: its metadata comes from its trust chain (federation.trust_anchors), and Tongban
	// registers with it automatically, its own entity id as client_id (no client_secret).
	EntityID string `yaml:"entity_id"`
}

// ClaimMap names the provider's claim that carries each normalized claim.
type ClaimMap struct {
	IDNumber  string `yaml:"id_number"`
	Name      string `yaml:"name"`
	Phone     string `yaml:"phone"`
	Assurance string `yaml:"assurance"`
}

// Client is a member app that receives switches: the bridge is its OpenID provider.
type Client struct {
	ID               string   `yaml:"id"`
	Name             string   `yaml:"name"`
	Region           string   `yaml:"region"`
	Secret           string   `yaml:"secret"`
	SecretSHA256     string   `yaml:"secret_sha256"`
	SecretFile       string   `yaml:"secret_file"`
	RedirectURIs     []string `yaml:"redirect_uris"`
	InitiateLoginURI string   `yaml:"initiate_login_uri"`
	Scopes           []string `yaml:"scopes"`
	SubjectType      string   `yaml:"subject_type"`
	// IDTokenAlg signs this client's ID tokens: ES256 (default), RS256 or EdDSA, for client
	// libraries that cannot verify ES256.
	IDTokenAlg string `yaml:"id_token_signed_response_alg"`
	// MinAssuranceForIDNumber is the lowest session assurance (1-4) from which this client
	// receives id_number, consent or not: an unverified login must not hand a partner an ID
	// number. Default 3.
	MinAssuranceForIDNumber int `yaml:"min_assurance_for_id_number"`
	// BackchannelLogoutURI receives a logout token (OpenID Connect Back-Channel Logout 1.0)
	// for each of this client's grants that ends: its Tongban session ended, consent was
	// revoked, the app was disconnected, a refresh token was reused. https (http on loopback).
	BackchannelLogoutURI string `yaml:"backchannel_logout_uri"`
	// BackchannelLogoutSessionRequired: the client needs sid in its logout tokens (always sent).
	BackchannelLogoutSessionRequired bool `yaml:"backchannel_logout_session_required"`
	// PostLogoutRedirectURIs are where /oauth2/logout may send the browser back to (exact match).
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
}

// MachineClient is a data platform or service owner that authenticates with client credentials.
type MachineClient struct {
	ID           string   `yaml:"id"`
	Secret       string   `yaml:"secret"`
	SecretSHA256 string   `yaml:"secret_sha256"`
	SecretFile   string   `yaml:"secret_file"`
	Scopes       []string `yaml:"scopes"`
	Departments  []string `yaml:"departments"`
}

// Push configures 免申即享 delivery.
type Push struct {
	FCM FCM `yaml:"fcm"`
	// The channels beside FCM (push_channels.go); each is off until configured.
	APNs       APNs   `yaml:"apns"`
	HMS        HMS    `yaml:"hms"`
	WeChat     WeChat `yaml:"wechat"`
	Alipay     Alipay `yaml:"alipay"`
	TimeZone   string `yaml:"time_zone"`
	QuietHours string `yaml:"quiet_hours"`
	DailyCap   int    `yaml:"daily_cap"`
	// Workers is how many delivery workers each replica runs.
	Workers int `yaml:"workers"`
	// Facts per person and private estimates: push_privacy.go.
	MaxFactsPerPerson     int         `yaml:"max_facts_per_person"`
	MaxFactBytesPerPerson int         `yaml:"max_fact_bytes_per_person"`
	Privacy               PushPrivacy `yaml:"privacy"`
}

// FCM is the Firebase Cloud Messaging project the sender uses.
type FCM struct {
	ProjectID       string `yaml:"project_id"`
	CredentialsFile string `yaml:"credentials_file"`
	Endpoint        string `yaml:"endpoint"`
}

// GraphQL holds the API's limits. The ones beyond complexity and depth (aliases, tokens, body
// size) exist because each closes a denial-of-service path the others leave open.
type GraphQL struct {
	Introspection   bool `yaml:"introspection"`
	ComplexityLimit int  `yaml:"complexity_limit"`
	DepthLimit      int  `yaml:"depth_limit"`
	AliasLimit      int  `yaml:"alias_limit"`
	TokenLimit      int  `yaml:"token_limit"`
	// SelectionLimit caps the fields of a new query document before it is validated, because
	// validation (overlapping fields) grows with the square of the fields.
	SelectionLimit int      `yaml:"selection_limit"`
	MaxBodyBytes   int64    `yaml:"max_body_bytes"`
	AllowedOrigins []string `yaml:"allowed_origins"`
	// QueryCacheBytes bounds the parsed-query cache by the memory its documents hold.
	QueryCacheBytes  int64            `yaml:"query_cache_bytes"`
	PersistedQueries PersistedQueries `yaml:"persisted_queries"`
	Websocket        Websocket        `yaml:"websocket"`
}

// Duration is a time.Duration written in YAML and the environment as "15s", "2m".
type Duration time.Duration

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// UnmarshalText parses Go duration syntax.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes Go duration syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// App is one member app as the rest of the service sees it: the union of its provider and
// client entries, which share an id when the app both signs people in and receives switches.
type App struct {
	ID               string
	Name             string
	Region           string
	CanSignIn        bool
	CanReceiveSwitch bool
}

// Apps lists the member apps in configuration order: providers first, then clients that are
// not also providers.
func (c *Config) Apps() []App {
	var apps []App
	index := map[string]int{}
	for _, p := range c.Providers {
		index[p.ID] = len(apps)
		apps = append(apps, App{ID: p.ID, Name: p.Name, Region: p.Region, CanSignIn: true})
	}
	for _, cl := range c.Clients {
		if i, ok := index[cl.ID]; ok {
			apps[i].CanReceiveSwitch = true
			if apps[i].Name == "" {
				apps[i].Name = cl.Name
			}
			if apps[i].Region == "" {
				apps[i].Region = cl.Region
			}
			continue
		}
		index[cl.ID] = len(apps)
		apps = append(apps, App{ID: cl.ID, Name: cl.Name, Region: cl.Region, CanReceiveSwitch: true})
	}
	return apps
}

// Logout bounds the delivery of back-channel logout tokens to member apps.
type Logout struct {
	// Workers is how many logout senders each replica runs.
	Workers int `yaml:"workers"`
	// MaxAttempts is how often a token is sent before it goes to the dead letters.
	MaxAttempts int `yaml:"max_attempts"`
	// Timeout bounds one POST to a client's backchannel_logout_uri.
	Timeout Duration `yaml:"timeout"`
}
