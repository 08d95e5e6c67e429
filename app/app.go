package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/tongban/tongban/app/console"
	"github.com/tongban/tongban/app/demo"
	"github.com/tongban/tongban/app/devpartner"
	"github.com/tongban/tongban/bridge"
	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/federation/entity"
	"github.com/tongban/tongban/graph"
	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/audit"
	"github.com/tongban/tongban/internal/devidp"
	"github.com/tongban/tongban/internal/fakefcm"
	"github.com/tongban/tongban/internal/graphiql"
	"github.com/tongban/tongban/internal/metrics"
	"github.com/tongban/tongban/internal/ratelimit"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/telemetry"
	"github.com/tongban/tongban/internal/webui"
	"github.com/tongban/tongban/logout"
	"github.com/tongban/tongban/push"
	"github.com/tongban/tongban/push/catalog"
	"github.com/tongban/tongban/push/delivery"
	"github.com/tongban/tongban/push/devices"
	"github.com/tongban/tongban/push/miniprogram"
	"github.com/tongban/tongban/push/prefs"
)

// App is one running Tongban process.
type App struct {
	cfg *config.Config
	log *slog.Logger

	Store    *redisx.Store
	Audit    *audit.Trail // built first: identity and the bridge record into it
	Sessions *identity.Sessions
	Identity *identity.Service
	Bridge   *bridge.Bridge
	Catalog  *catalog.Catalog
	Push     *push.Engine
	Delivery *delivery.Service
	// Logout delivers back-channel logout tokens to member apps.
	Logout  *logout.Service
	Devices *devices.Devices
	Prefs   *prefs.Prefs
	// FCMSink is dev mode's local FCM server (served at /dev/fcm/); nil otherwise.
	FCMSink *fakefcm.Server
	// MiniPrograms are people's mini-program accounts and subscriptions (WeChat, Alipay).
	MiniPrograms *miniprogram.Bindings
	// devSinks are dev mode's local APNs, Push Kit, WeChat and Alipay (channels.go).
	devSinks *devSinks
	Keys     *bridge.KeyManager
	Registry *prometheus.Registry
	// DevIdPs are the simulated identity providers of dev mode, by app id.
	DevIdPs     map[string]*devidp.Provider
	devPartners *devpartner.Partners
	// fed is Tongban as an OpenID Federation entity (federation.go).
	fed *fed
	// Limits are the rate limits (nil when rate_limits.enabled is false); proxies says whose
	// X-Forwarded-For names the client.
	Limits  *ratelimit.Limiter
	proxies ratelimit.Proxies

	graphql *graph.Handler
	health  *health
	handler http.Handler
	metrics http.Handler
	// recorder counts and times every HTTP request and GraphQL operation.
	recorder *metrics.Recorder
	// tracing is the configured tracer provider, flushed by Close (nil with WithTracing);
	// tracer the one in use, nil when tracing is off.
	tracing *telemetry.Provider
	tracer  trace.TracerProvider
}

// Option adjusts what New builds; tests use it to swap a collaborator for one that
// misbehaves on purpose.
type Option func(*options)

type options struct {
	store     *redisx.Store
	directory graph.Directory
	now       func() time.Time
	noise     io.Reader // push.Privacy.Random; crypto/rand when nil (WithNoise)
	tracer    trace.TracerProvider
}

// WithClock replaces time.Now for sessions, token checks and the simulated providers.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithStore uses an already open store instead of opening the configured one. App.Close
// still closes it.
func WithStore(s *redisx.Store) Option { return func(o *options) { o.store = s } }

// WithDirectory replaces the member-app directory (the configuration by default).
func WithDirectory(d graph.Directory) Option { return func(o *options) { o.directory = d } }

// New builds the service from a validated configuration.
func New(cfg *config.Config, log *slog.Logger, opt ...Option) (*App, error) {
	var o options
	for _, f := range opt {
		f(&o)
	}
	catalog, err := loadCatalog(cfg)
	if err != nil {
		return nil, err
	}
	store := o.store
	if store == nil {
		var err error
		opts := storeOptions(cfg.Redis)
		if cfg.Dev {
			// Commands run beside a dev server reach its state there; outside dev mode the
			// embedded store (a single instance's) listens on a free port no one looks for.
			opts.EmbeddedAddr = cfg.Redis.EmbeddedAddr
		}
		store, err = redisx.Open(opts)
		if err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
	}
	if cfg.Dev {
		log.Warn("dev mode: public dev secrets, introspection on, GraphiQL served; never run it where others can reach it")
	}
	log.Info("store", "using", store.Describe())
	vctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err = store.CheckVersion(vctx)
	cancel()
	if err != nil {
		if o.store == nil {
			store.Close()
		}
		return nil, fmt.Errorf("app: %w", err)
	}
	if store.Kind == redisx.KindEmbedded {
		log.Warn("the embedded store keeps nothing across restarts; set redis.url or redis.cluster to keep state")
	}

	a := &App{cfg: cfg, log: log, Store: store, Catalog: catalog, Registry: prometheus.NewRegistry()}
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.recorder = metrics.New(a.Registry)
	if err := a.setUpTracing(o); err != nil {
		return nil, fmt.Errorf("app: tracing: %w", err)
	}
	a.Audit = audit.New(store, audit.Options{Log: log, Now: o.now})
	if err := a.buildLimits(o); err != nil {
		return nil, err
	}
	if err := a.buildFederation(o); err != nil {
		return nil, fmt.Errorf("app: federation: %w", err)
	}
	if err := a.buildDevPartners(); err != nil {
		return nil, err
	}
	if err := a.buildIdentity(o); err != nil {
		return nil, err
	}
	if err := a.buildBridge(o); err != nil {
		return nil, err
	}
	if err := a.buildPush(o); err != nil {
		return nil, err
	}
	if cfg.Dev {
		if err := a.seedDevRules(context.Background()); err != nil {
			return nil, err
		}
	}
	if o.directory == nil {
		o.directory = cfg
	}
	persisted, err := persistedQueryOptions(cfg)
	if err != nil {
		return nil, err
	}
	a.graphql = graph.NewHandler(&graph.Resolver{Directory: o.directory, Identity: a.Identity, Bridge: a.Bridge, Audit: a.Audit, Catalog: a.Catalog, Push: a.Push, Delivery: a.Delivery, Devices: a.Devices, Prefs: a.Prefs, MiniPrograms: a.MiniPrograms, Limits: a.Limits, Alliance: alliance{a}}, graph.Options{
		MaxMessageBytes: cfg.GraphQL.MaxBodyBytes,
		Introspection:   cfg.GraphQL.Introspection,
		ComplexityLimit: cfg.GraphQL.ComplexityLimit,
		DepthLimit:      cfg.GraphQL.DepthLimit,
		AliasLimit:      cfg.GraphQL.AliasLimit,
		TokenLimit:      cfg.GraphQL.TokenLimit,
		SelectionLimit:  cfg.GraphQL.SelectionLimit,
		AllowedOrigins:  cfg.GraphQL.AllowedOrigins,
		PublicURL:       cfg.PublicURL,
		Auth:            a.Sessions,
		Machines:        a.Bridge,
		Store:           store,
		Revocations:     a.Sessions,
		Websocket:       a.websocketLimits(),
		Metrics:         a.recorder,
		Log:             log,
		Tracer:          a.tracer,

		QueryCacheBytes:  cfg.GraphQL.QueryCacheBytes,
		PersistedQueries: persisted,
	})
	a.health = &health{checks: []check{{name: "redis", run: store.Ping}, {name: "signing_keys", run: a.keysReady}, {name: "federation_keys", run: a.federationKeysReady}}, degraded: a.missingProviders}
	a.logSummary()
	a.handler = a.routes()
	a.metrics = promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{Registry: a.Registry})
	return a, nil
}

// storeOptions are the store's address and the bounds on its commands, from redis.*.
func storeOptions(r config.Redis) redisx.Options {
	return redisx.Options{
		URL: r.URL, Cluster: r.Cluster, Username: r.ClusterUsername, Password: r.ClusterPassword, TLS: r.ClusterTLS,
		DialTimeout: r.DialTimeout.Std(), ReadTimeout: r.ReadTimeout.Std(), WriteTimeout: r.WriteTimeout.Std(),
		PoolTimeout: r.PoolTimeout.Std(), PoolSize: r.PoolSize, MaxRetries: r.MaxRetries,
	}
}

func (a *App) routes() http.Handler {
	mux := http.NewServeMux()
	limit := a.cfg.GraphQL.MaxBodyBytes
	route := func(pattern, name string, h http.Handler) { mux.Handle(pattern, named(name, withBodyLimit(limit, h))) }
	route("/graphql", "graphql", a.graphql)
	route("GET /healthz/live", "live", http.HandlerFunc(a.health.live))
	route("GET /healthz/ready", "ready", http.HandlerFunc(a.health.ready))
	a.Bridge.Routes(route)
	// The statements about members and the trust marks are signed per request: under the
	// per-IP limit of the other open doors that cost a signature. The configuration is signed
	// once a minute and served from memory.
	a.fed.entity.Routes(func(pattern, name string, h http.Handler) {
		if !strings.HasSuffix(pattern, entity.ConfigurationPath) {
			h = a.limitedPerIP(h)
		}
		route(pattern, name, h)
	})
	route("GET /ui/", "ui", webui.Shared("/ui/"))
	route("GET /console/", "console", console.Handler(a.cfg.Dev))
	route("GET /console", "console", http.RedirectHandler("/console/", http.StatusFound))
	route("POST /oidc/{provider}/backchannel-logout", "oidc_backchannel_logout", a.upstreamLogout())
	if a.cfg.Dev {
		route("GET /{$}", "graphiql", graphiql.Page("Tongban", "/graphql", "/dev/assets/"))
		route("GET /dev/assets/", "dev_assets", graphiql.Assets("/dev/assets/"))
		route("GET /demo/", "demo", demo.Handler())
		route("GET /demo", "demo", http.RedirectHandler("/demo/", http.StatusFound))
		route("/dev/idp/{app}/", "dev_idp", http.HandlerFunc(a.serveDevIdP))
		route("GET /dev/apps/{app}/.well-known/openid-federation", "dev_app_federation", http.HandlerFunc(a.devPartners.ServeEntityConfiguration))
		route("GET /dev/apps/{app}/callback", "dev_app_callback", http.HandlerFunc(a.devPartners.ServeCallback))
		route("GET /dev/apps/{app}/login", "dev_app_login", http.HandlerFunc(a.devPartners.ServeLogin))
		route("POST /dev/apps/{app}/backchannel-logout", "dev_app_backchannel_logout", http.HandlerFunc(a.devPartners.ServeBackchannelLogout))
		route("GET /dev/apps/{app}/logouts", "dev_app_logouts", http.HandlerFunc(a.devPartners.ServeLogouts))
		route("GET /dev/apps/{app}/signed-out", "dev_app_signed_out", http.HandlerFunc(a.devPartners.ServeSignedOut))
		if a.FCMSink != nil {
			route("/dev/fcm/", "dev_fcm", http.HandlerFunc(a.serveFCMSink))
		}
		a.devChannelRoutes(route)
	}
	route("/", "not_found", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		graph.WriteError(w, http.StatusNotFound, graph.CodeNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	}))

	var h http.Handler = mux
	h = withWebsocketDeadlines(h)
	h = withRequestTimeout(a.cfg.RequestTimeout.Std(), h)
	h = withObservation(a.log, a.recorder, h)
	h = withTracing(a.tracer, h)
	h = ratelimit.WithClientIP(a.proxies, h)
	h = withRequestID(h)
	return h
}

// Handler is the public HTTP API.
func (a *App) Handler() http.Handler { return a.handler }

// MetricsHandler serves /metrics from the app's own registry.
func (a *App) MetricsHandler() http.Handler { return a.metrics }

// Run listens on the configured addresses and serves until ctx ends, then shuts down.
func (a *App) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("app: listen %s: %w", a.cfg.Listen, err)
	}
	var mln net.Listener
	if a.cfg.MetricsListen != "" {
		mln, err = net.Listen("tcp", a.cfg.MetricsListen)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("app: listen %s (metrics_listen): %w", a.cfg.MetricsListen, err)
		}
	}
	return a.Serve(ctx, ln, mln)
}

// Serve serves the API on ln and metrics on mln (nil: none), and runs the background loops
// (provider discovery, key rotation, backfills, delivery) under one errgroup, until ctx ends
// or a loop fails. Then it drains: readiness fails at once, the listeners close, in-flight
// requests finish and websocket clients are told to go, all within shutdown_timeout; and the
// loops finish the step in hand. It returns only once every loop has returned.
func (a *App) Serve(ctx context.Context, ln, mln net.Listener) error {
	api := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       requestReadTimeout,
		WriteTimeout:      requestWriteTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	servers := []*http.Server{api}
	defer a.listenRevocations()() // until every websocket and request is done
	errc := make(chan error, 2)
	go func() { errc <- api.Serve(ln) }()
	a.log.Info("listening", "addr", ln.Addr().String(), "public_url", a.cfg.PublicURL)
	a.warnIfExposed("listen", ln.Addr())
	if a.cfg.Dev {
		a.log.Info("dev mode: GraphiQL at " + a.cfg.PublicURL + "/")
	}
	if mln != nil {
		ms := &http.Server{Handler: a.metricsMux(), ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: requestReadTimeout, WriteTimeout: requestWriteTimeout, IdleTimeout: 120 * time.Second}
		servers = append(servers, ms)
		go func() { errc <- ms.Serve(mln) }()
		a.log.Info("metrics listening", "addr", mln.Addr().String())
		a.warnIfExposed("metrics_listen", mln.Addr())
	}

	// The background loops: each retries what fails in it (Redis away, a provider not
	// answering) and returns only when its context ends, with nil; an error out of one is a
	// bug or a broken configuration, so it is logged and shuts the process down like a signal.
	// They start once the listener is up: in dev mode the providers are served by this very
	// process.
	loopsCtx, stopLoops := context.WithCancel(context.Background())
	defer stopLoops()
	loops, lctx := errgroup.WithContext(loopsCtx)
	loop := func(name string, run func(context.Context) error) {
		loops.Go(func() error {
			if err := run(lctx); err != nil {
				a.log.Error("a background loop failed; shutting down", "loop", name, "err", err)
				return fmt.Errorf("app: %s: %w", name, err)
			}
			return nil
		})
	}
	loop("identity providers", a.Identity.Registry.Run)
	loop("session endings", a.Sessions.Run)
	loop("logout tokens", a.Logout.Run)
	loop("signing keys", a.Keys.Run)
	loop("federation keys", a.fed.keys.Run)
	loop("relying-party keys", a.fed.rpKeys.Run)
	loop("federation anchor keys", a.followOwnKeys)
	loop("federation members", a.fed.entity.Run)
	loop("federation endings", a.runEndings)
	loop("push backfills", a.Push.RunBackfills)
	loop("ready line", a.announceReady)
	loops.Go(func() error {
		// Delivery workers stop taking jobs when told and finish the batches they hold; what
		// they cannot finish stays pending on the stream for another replica.
		if err := a.Delivery.Run(lctx); err != nil {
			a.log.Warn("push: no delivery on this replica; notifications stay in the inbox", "err", err)
		}
		return nil
	})

	var serveErr error
	select {
	case <-ctx.Done():
	case <-lctx.Done(): // a loop failed
	case serveErr = <-errc:
		serveErr = fmt.Errorf("app: serve: %w", serveErr)
	}

	a.log.Info("shutting down", "delay", a.cfg.ShutdownDelay.Std().String(), "timeout", a.cfg.ShutdownTimeout.Std().String())
	a.health.draining.Store(true)
	// Readiness fails from now on; a load balancer needs a probe interval or two to notice and
	// stop sending. Until the listeners close, requests are still served.
	if d := a.cfg.ShutdownDelay.Std(); d > 0 && serveErr == nil {
		time.Sleep(d)
	}
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout.Std())
	defer cancel()
	// The loops stop while the servers drain; both are waited for below, the loops in full:
	// the store is closed (Close) only after Serve returns, and no loop may run against it.
	stopLoops()
	loopsDone := make(chan error, 1)
	go func() { loopsDone <- loops.Wait() }()
	errs := make(chan error, len(servers)+1)
	go func() { errs <- a.graphql.CloseWebsockets(sctx) }()
	for _, s := range servers {
		go func() { errs <- s.Shutdown(sctx) }()
	}
	var shutdownErr error
	for range len(servers) + 1 {
		if err := <-errs; err != nil && !errors.Is(err, http.ErrServerClosed) {
			shutdownErr = errors.Join(shutdownErr, err)
		}
	}
	var loopErr error
	select {
	case loopErr = <-loopsDone:
	case <-sctx.Done():
		a.log.Warn("shutdown: background loops still finishing their step after shutdown_timeout; waiting for them")
		loopErr = <-loopsDone
	}
	if shutdownErr != nil {
		return errors.Join(serveErr, loopErr, fmt.Errorf("app: shutdown: %w", shutdownErr))
	}
	a.log.Info("stopped")
	return errors.Join(serveErr, loopErr)
}

func (a *App) metricsMux() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics)
	return mux
}

// Close ends the live subscriptions and releases the store (and stops the embedded one). Call
// it after Serve (or Run) has returned: Serve waits for every background loop, so none runs
// against the closed store.
func (a *App) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.devSinks.close()
	return errors.Join(a.Push.Close(), a.Store.Close(), a.tracing.Shutdown(ctx))
}
