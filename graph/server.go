package graph

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"go.opentelemetry.io/otel/trace"

	"github.com/tongban/tongban/internal/metrics"
	"github.com/tongban/tongban/internal/redisx"
)

// Options are the limits and collaborators of the GraphQL endpoint.
type Options struct {
	Introspection   bool
	ComplexityLimit int
	DepthLimit      int
	AliasLimit      int
	TokenLimit      int
	SelectionLimit  int
	// AllowedOrigins may open websockets besides the server's own origin (PublicURL).
	// "*" allows any.
	AllowedOrigins []string
	PublicURL      string

	Auth Authenticator
	// Machines authenticates machine clients' bridge access tokens; nil: none are accepted.
	Machines MachineAuthenticator
	Store    *redisx.Store // automatic persisted queries, websockets per person
	// Revocations ends what this replica holds for a session (websockets, requests in flight)
	// when it ends on any replica; nil: only the periodic check does.
	Revocations Revocations
	Websocket   WebsocketLimits
	// MaxMessageBytes bounds a websocket message, as graphql.max_body_bytes bounds a POST body;
	// 0 is gqlgen's default, 1 MiB.
	MaxMessageBytes int64
	// ClientIP names a request's client for the per-address websocket limit; nil: clientIP,
	// the address behind the trusted proxies that the app's middleware found.
	ClientIP func(*http.Request) string
	Metrics  *metrics.Recorder
	Log      *slog.Logger
	// Tracer makes each operation a span (tracing.go); nil: none.
	Tracer trace.TracerProvider

	// QueryCacheBytes bounds the parsed-query cache; 0 is the default, 32 MiB.
	QueryCacheBytes  int64
	PersistedQueries PersistedQueryOptions
}

// Handler serves /graphql: POST, GET (queries only) and websocket (graphql-transport-ws).
type Handler struct {
	srv      *handler.Server
	auth     Authenticator
	machines MachineAuthenticator
	origins  originPolicy

	ws          websockets
	wsLimits    WebsocketLimits
	revocations Revocations
	clientIP    func(*http.Request) string
	ips         *ipConns
	persons     *personConns // nil without a store
}

// NewHandler builds the endpoint with handler.New and adds every transport, cache, limit and
// extension explicitly: nothing comes from gqlgen's example defaults.
func NewHandler(r *Resolver, opts Options) *Handler {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{auth: opts.Auth, machines: opts.Machines, ws: websockets{closing: make(chan struct{})}}
	h.origins = newOriginPolicy(opts.PublicURL, opts.AllowedOrigins)
	h.setUpWebsockets(opts)

	cfg := Config{Resolvers: r, Complexity: listCosts(maxMemberApps)} // every list's cost (limits_complexity.go)
	es := NewExecutableSchema(cfg)
	srv := handler.New(es)
	srv.AddTransport(transport.Websocket{
		Implementation: guardedWebsockets{transport.CoderWebsocketImplementation{AcceptOptions: websocket.AcceptOptions{
			// The origin was checked in ServeHTTP against allowed_origins, which may name
			// other hosts than this one; the library's own same-host check would refuse them.
			InsecureSkipVerify: true,
		}}},
		InitFunc: h.initWebsocket,
		// The init timeout is guardedWebsockets', which closes with graphql-transport-ws's
		// 4408; gqlgen's own would close with 1002.
		// A websocket message is held whole before it is parsed: the same bound as a POST body.
		PayloadReadLimit:      messageLimit(opts.MaxMessageBytes),
		KeepAlivePingInterval: 15 * time.Second, // graphql-ws (legacy) keep-alive
		PingPongInterval:      15 * time.Second, // graphql-transport-ws ping; no pong in 30 s closes
	})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(postJSON{hold: h.holdPostSubscription})

	if opts.QueryCacheBytes <= 0 {
		opts.QueryCacheBytes = 32 << 20
	}
	documents := newQueryCache(opts.QueryCacheBytes)
	apq := newAPQStore(opts.Store, opts.PersistedQueries, log)
	srv.SetQueryCache(documents)
	srv.SetParserTokenLimit(opts.TokenLimit)
	srv.SetDisableSuggestion(!opts.Introspection)
	srv.SetValidationRulesFn(validationRules(opts.Introspection))
	if opts.Introspection {
		srv.Use(extension.Introspection{})
	}
	// Order matters: a persisted query is looked up before its fields are counted; limits run
	// before complexity, so that an alias flood is named as what it is rather than by its
	// cost; a query is registered for APQ only after all of them passed.
	srv.Use(rateLimit{limits: r.Limits}) // first: a refused operation costs no parse, no lookup
	srv.Use(apqLookup{store: apq})
	srv.Use(selectionLimit{limit: opts.SelectionLimit, tokenLimit: opts.TokenLimit, cache: documents})
	srv.Use(limits{depth: opts.DepthLimit, aliases: opts.AliasLimit, complexity: opts.ComplexityLimit, introspection: opts.Introspection})
	srv.Use(extension.FixedComplexityLimit(opts.ComplexityLimit))
	srv.Use(apqRegister{store: apq})
	if opts.Metrics != nil {
		srv.Use(metricsExtension{opts.Metrics})
	}
	if opts.Tracer != nil {
		srv.Use(tracingExtension{opts.Tracer.Tracer("github.com/tongban/tongban/graph")})
	}
	srv.AroundOperations(withLoaders(r)) // each operation batches its reads in its own loaders
	srv.SetErrorPresenter(presentError(log, es.Schema()))
	srv.SetRecoverFunc(recoverPanic(log))
	h.srv = srv
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = r.WithContext(withClientIP(r.Context(), clientIP(r)))
	if r.Header.Get("Upgrade") != "" {
		h.serveWebsocket(w, r)
		return
	}
	if h.cors(w, r) {
		return
	}
	if !csrfSafe(r) {
		sendError(w, http.StatusBadRequest, newError(CodeBadUserInput, csrfMessage))
		return
	}
	// Refused here rather than by gqlgen, whose answers to these carry no code.
	switch r.Method {
	case http.MethodPost:
		if !isJSON(r.Header.Get("Content-Type")) {
			sendError(w, http.StatusUnsupportedMediaType, newError(CodeBadUserInput,
				"send GraphQL requests with Content-Type: application/json"))
			return
		}
	case http.MethodGet:
		if msg := checkGETParams(r); msg != "" {
			sendError(w, http.StatusBadRequest, newError(CodeBadUserInput, "%s", msg))
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		sendError(w, http.StatusMethodNotAllowed, newError(CodeBadUserInput,
			"method %s is not allowed; use POST, or GET for queries", r.Method))
		return
	}
	ctx, release := h.requestViewer(withMethod(r.Context(), r.Method), bearer(r.Header.Get("Authorization")))
	defer release()
	h.srv.ServeHTTP(w, r.WithContext(ctx))
}

// checkGETParams says what is wrong with a GET request's parameters, or "".
func checkGETParams(r *http.Request) string {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "the query string is not valid URL encoding"
	}
	// Decoded as gqlgen's GET transport will, which answers a failure without a code.
	for _, name := range []string{"variables", "extensions"} {
		var obj map[string]any
		if v := q.Get(name); v != "" && json.Unmarshal([]byte(v), &obj) != nil {
			return "the " + name + " parameter must be a JSON object"
		}
	}
	return ""
}

// sendError answers a request that never reached gqlgen, in the GraphQL response shape.
func sendError(w http.ResponseWriter, status int, err *gqlerror.Error) {
	w.Header().Set("Content-Type", "application/json")
	transport.SendError(w, status, err)
}

// WriteError answers any HTTP request of the service (a 404, a 413, a panic outside GraphQL)
// in the GraphQL error shape with a contract code, so that clients read every refusal alike.
func WriteError(w http.ResponseWriter, status int, code Code, message string) {
	sendError(w, status, newError(code, "%s", message))
}

// messageLimit is gqlgen's PayloadReadLimit for a configured bound; nil keeps its default.
func messageLimit(n int64) *int64 {
	if n <= 0 {
		return nil
	}
	return &n
}
