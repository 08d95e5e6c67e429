package config

import (
	"strings"
	"time"
)

// The fixed dev secrets. They are public (they are in the source), so they are only ever used
// in dev mode: by Dev, and by Load when dev mode leaves a secret empty. Validate still demands
// real ones outside dev mode.
const (
	devPepper = "tongban-dev-pepper: for dev mode only, never for production"
	// devKEK is base64 of the 32 ASCII bytes "tongban dev key-encryption key!!".
	devKEK = "dG9uZ2JhbiBkZXYga2V5LWVuY3J5cHRpb24ga2V5ISE="
)

// devApps are the three simulated provincial apps: each is both an identity provider and a
// client that receives switches, as the real ones will be.
var devApps = []struct{ id, name, region string }{
	{"zheliban", "浙里办", "浙江"},
	{"suishenban", "随申办", "上海"},
	{"sufuban", "苏服办", "江苏"},
}

// Defaults returns the production defaults: what a configuration file starts from before its
// own keys are decoded over it. It has no providers, clients or secrets, so on its own it does
// not validate.
func Defaults() *Config {
	return &Config{
		Listen:          ":8080",
		MetricsListen:   ":9090",
		PublicURL:       "http://localhost:8080",
		RequestTimeout:  Duration(10 * time.Second),
		ShutdownTimeout: Duration(15 * time.Second),
		ShutdownDelay:   0, // nothing in front of the service to drain by default
		LogLevel:        "info",
		Redis: Redis{
			DialTimeout:  Duration(2 * time.Second),
			ReadTimeout:  Duration(3 * time.Second),
			WriteTimeout: Duration(3 * time.Second),
			PoolTimeout:  Duration(4 * time.Second),
			PoolSize:     0, // go-redis's 10 per CPU
			MaxRetries:   0, // never: redisx's doc.go
			EmbeddedAddr: "127.0.0.1:6390",
		},
		Sessions: Sessions{
			AccessTTL:    Duration(15 * time.Minute),
			RefreshTTL:   Duration(30 * 24 * time.Hour),
			MaxPerPerson: 10,
		},
		Push: Push{
			TimeZone:   "Asia/Shanghai",
			QuietHours: "22:00-08:00",
			DailyCap:   5,
			Workers:    4,

			MaxFactsPerPerson: defaultMaxFactsPerPerson, MaxFactBytesPerPerson: defaultMaxFactBytesPerPerson, Privacy: defaultPushPrivacy(),
		},
		GraphQL: GraphQL{
			Introspection:   false,
			ComplexityLimit: 1000,
			DepthLimit:      12,
			AliasLimit:      30,
			TokenLimit:      15000,
			SelectionLimit:  500,
			MaxBodyBytes:    1 << 20,

			QueryCacheBytes:  defaultQueryCacheBytes,
			PersistedQueries: defaultPersistedQueries(),
			Websocket:        defaultWebsocket(),
		},
		RateLimits: DefaultRateLimits(),
		Logout:     Logout{Workers: 2, MaxAttempts: 8, Timeout: Duration(5 * time.Second)},
		Telemetry:  Telemetry{OTLPProtocol: defaultOTLPProtocol, ServiceName: defaultTraceServiceName, SamplingRatio: defaultSamplingRatio},
	}
}

// Dev returns the configuration `go run ./cmd/tongban` uses when given no file: Defaults plus
// dev mode, introspection, fixed well-known secrets, the three simulated apps as providers and
// as clients, and four machine clients.
//
// The providers' issuers and the clients' redirect and launch URIs are left empty: Load derives
// them from public_url after the environment is applied (so TONGBAN_PUBLIC_URL moves them). A
// caller that wants a ready dev configuration should call Load("", nil), not use Dev directly.
func Dev() *Config {
	c := Defaults()
	c.Dev = true
	c.Listen, c.MetricsListen = devListen, devMetricsListen
	c.GraphQL.Introspection = true
	c.Telemetry.SamplingRatio = defaultDevSamplingRatio
	c.Secrets.Pepper = devPepper
	c.Secrets.KeyEncryptionKey = devKEK
	for _, a := range devApps {
		c.Providers = append(c.Providers, Provider{
			ID:           a.id,
			Name:         a.name,
			Region:       a.region,
			ClientID:     "tongban",
			ClientSecret: "dev-secret-" + a.id,
			Scopes:       []string{"openid", "profile", "phone", "id_number"},
			Algorithms:   []string{"RS256", "ES256"},
			Claims: ClaimMap{
				IDNumber:  "id_number",
				Name:      "name",
				Phone:     "phone_number",
				Assurance: "acr",
			},
			AssuranceLevels: map[string]int{
				"urn:tongban:dev:loa1": 1,
				"urn:tongban:dev:loa2": 2,
				"urn:tongban:dev:loa3": 3,
				"urn:tongban:dev:face": 4,
			},
			AutoLinkMinAssurance: 3,
		})
		c.Clients = append(c.Clients, Client{
			ID:          a.id,
			Name:        a.name,
			Region:      a.region,
			Secret:      "dev-client-secret-" + a.id,
			Scopes:      []string{"openid", "profile", "phone", "id_number"},
			SubjectType: "pairwise",
		})
	}
	c.MachineClients = []MachineClient{
		{ID: "jiaxing-data", Secret: "dev-jiaxing-data-secret", Scopes: []string{"events"}},
		{
			ID:          "jiaxing-hrss",
			Secret:      "dev-jiaxing-hrss-secret",
			Scopes:      []string{"rules"},
			Departments: []string{"嘉兴市人力资源和社会保障局"},
		},
		{
			ID:          "jiaxing-transport",
			Secret:      "dev-jiaxing-transport-secret",
			Scopes:      []string{"rules"},
			Departments: []string{"嘉兴市交通运输局"},
		},
		{
			ID:          "zhejiang-health",
			Secret:      "dev-zhejiang-health-secret",
			Scopes:      []string{"rules"},
			Departments: []string{"浙江省卫生健康委员会"},
		},
	}
	return c
}

// applyDefaults fills what each list element leaves empty, and in dev mode the dev secrets and
// the URLs derived from public_url. It runs after the file, the environment and the *_file
// secrets, so elements added by either get the same defaults, and never overwrites a value that
// is set.
func applyDefaults(c *Config) {
	defaultListen(c)
	for i := range c.Providers {
		p := &c.Providers[i]
		if len(p.Scopes) == 0 {
			p.Scopes = []string{"openid", "profile"}
		}
		if len(p.Algorithms) == 0 {
			p.Algorithms = []string{"RS256"}
		}
		fill(&p.Claims.IDNumber, "id_number")
		fill(&p.Claims.Name, "name")
		fill(&p.Claims.Phone, "phone_number")
		fill(&p.Claims.Assurance, "acr")
		if p.AutoLinkMinAssurance == 0 {
			p.AutoLinkMinAssurance = 3
		}
	}
	for i := range c.Clients {
		cl := &c.Clients[i]
		fill(&cl.SubjectType, "pairwise")
		fill(&cl.IDTokenAlg, "ES256")
		if cl.MinAssuranceForIDNumber == 0 {
			cl.MinAssuranceForIDNumber = 3
		}
		if len(cl.Scopes) == 0 {
			cl.Scopes = []string{"openid"}
		}
	}
	if !c.Dev {
		return
	}
	// Dev mode from a file or TONGBAN_DEV=true starts from Defaults, which has no secrets; an
	// empty pepper or key would otherwise be accepted (Validate asks for neither in dev mode)
	// and used as it is.
	fill(&c.Secrets.Pepper, devPepper)
	fill(&c.Secrets.KeyEncryptionKey, devKEK)
	base := strings.TrimRight(c.PublicURL, "/")
	for i := range c.Providers {
		p := &c.Providers[i]
		fill(&p.Issuer, base+"/dev/idp/"+p.ID)
		if len(p.RedirectURIs) == 0 {
			// The simulated app's callback page, which shows the code to paste into
			// completeSignIn, and the demo's phone of the app, which completes it itself.
			p.RedirectURIs = []string{base + "/dev/apps/" + p.ID + "/callback", base + "/demo/phone/" + p.ID}
		}
		// A simulated provider sends its logout tokens to Tongban (POST /dev/idp/{id}/logout).
		if strings.HasPrefix(p.Issuer, base+"/dev/idp/") {
			p.BackchannelLogout = true
		}
	}
	for i := range c.Clients {
		cl := &c.Clients[i]
		if len(cl.RedirectURIs) == 0 {
			cl.RedirectURIs = []string{base + "/dev/apps/" + cl.ID + "/callback"}
		}
		fill(&cl.InitiateLoginURI, base+"/dev/apps/"+cl.ID+"/login")
		// The simulated app's back-channel endpoint shows "signed out by Tongban".
		fill(&cl.BackchannelLogoutURI, base+"/dev/apps/"+cl.ID+"/backchannel-logout")
		if len(cl.PostLogoutRedirectURIs) == 0 {
			cl.PostLogoutRedirectURIs = []string{base + "/dev/apps/" + cl.ID + "/signed-out"}
		}
	}
}

func fill(s *string, def string) {
	if *s == "" {
		*s = def
	}
}
