package graph

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tongban/tongban/internal/redisx"
)

// Options are the limits and collaborators of the GraphQL endpoint.
type Options struct {
	Introspection   bool
	ComplexityLimit int
	DepthLimit      int
	AliasLimit      int
	TokenLimit      int
	// AllowedOrigins may open websockets besides the server's own origin (PublicURL).
	// "*" allows any.
	AllowedOrigins []string
	PublicURL      string

	Auth    Authenticator
	Store   *redisx.Store // automatic persisted queries
	Metrics *Metrics
	Log     *slog.Logger
}

// Handler serves /graphql: POST, GET (queries only) and websocket (graphql-transport-ws).
type Handler struct {
	srv     *handler.Server
	auth    Authenticator
	origins originPolicy

	// Websockets outlive http.Server.Shutdown (they are hijacked), so the handler closes them
	// itself: closing cancels every connection's context, which makes gqlgen send a close
	// frame, and wg tells when their handlers have returned.
	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	mu        sync.Mutex
	closed    bool
}

// NewHandler builds the endpoint with handler.New and adds every transport, cache, limit and
// extension explicitly: nothing comes from gqlgen's example defaults.
func NewHandler(r *Resolver, opts Options) *Handler {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{auth: opts.Auth, closing: make(chan struct{})}
	h.origins = newOriginPolicy(opts.PublicURL, opts.AllowedOrigins)

	srv := handler.New(NewExecutableSchema(Config{Resolvers: r}))
	srv.AddTransport(transport.Websocket{
		Implementation: transport.CoderWebsocketImplementation{AcceptOptions: websocket.AcceptOptions{
			// The origin was checked in ServeHTTP against allowed_origins, which may name
			// other hosts than this one; the library's own same-host check would refuse them.
			InsecureSkipVerify: true,
		}},
		InitFunc:              websocketInit(opts.Auth),
		InitTimeout:           10 * time.Second,
		KeepAlivePingInterval: 15 * time.Second, // graphql-ws (legacy) keep-alive
		PingPongInterval:      15 * time.Second, // graphql-transport-ws ping; no pong in 30 s closes
	})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})

	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.SetParserTokenLimit(opts.TokenLimit)
	srv.SetDisableSuggestion(!opts.Introspection)
	if opts.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(extension.AutomaticPersistedQuery{Cache: apqCache{store: opts.Store, log: log}})
	// limits before complexity: an alias flood is named as what it is, not as its cost.
	srv.Use(limits{depth: opts.DepthLimit, aliases: opts.AliasLimit, introspection: opts.Introspection})
	srv.Use(extension.FixedComplexityLimit(opts.ComplexityLimit))
	if opts.Metrics != nil {
		srv.Use(metricsExtension{opts.Metrics})
	}
	srv.SetErrorPresenter(presentError(log))
	srv.SetRecoverFunc(recoverPanic(log))
	h.srv = srv
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	ctx := withMethod(r.Context(), r.Method)
	ctx = withViewer(ctx, &viewer{auth: h.auth, token: bearer(r.Header.Get("Authorization"))})
	h.srv.ServeHTTP(w, r.WithContext(ctx))
}

func (h *Handler) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	if !h.origins.allows(r) {
		sendError(w, http.StatusForbidden, newError(CodeForbidden, "websocket origin %q is not allowed", r.Header.Get("Origin")))
		return
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		sendError(w, http.StatusServiceUnavailable, newError(CodeInternal, "the server is shutting down"))
		return
	}
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-h.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	h.srv.ServeHTTP(w, r.WithContext(ctx))
}

// cors answers preflights and marks responses readable by the allowed browser origins. It
// reports whether the request has been answered. Credentials are bearer tokens, never
// cookies, so Access-Control-Allow-Credentials is never sent.
func (h *Handler) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	allowed := origin != "" && h.origins.allows(r)
	if allowed {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
	}
	if r.Method != http.MethodOptions {
		return false
	}
	if allowed {
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
		w.Header().Set("Access-Control-Allow-Headers", corsAllowHeaders)
		w.Header().Set("Access-Control-Max-Age", "600")
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}

const corsAllowHeaders = "Content-Type, Authorization, Apollo-Require-Preflight, X-Apollo-Operation-Name, GraphQL-Require-Preflight, X-Request-Id"

// sendError answers a request that never reached gqlgen, in the GraphQL response shape.
func sendError(w http.ResponseWriter, status int, err *gqlerror.Error) {
	w.Header().Set("Content-Type", "application/json")
	transport.SendError(w, status, err)
}

// CloseWebsockets tells every websocket client that the server is going away, refuses new
// ones, and waits until their handlers return or ctx ends.
func (h *Handler) CloseWebsockets(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.closeOnce.Do(func() { close(h.closing) })
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// originPolicy decides which browser origins may open a websocket. Native apps send no Origin
// and are let through: the check exists to stop a hostile page from riding a browser's
// credentials, and a websocket here carries its credentials in the init payload anyway.
type originPolicy struct {
	any     bool
	allowed map[string]bool
}

func newOriginPolicy(publicURL string, allowed []string) originPolicy {
	p := originPolicy{allowed: map[string]bool{}}
	for _, o := range append([]string{publicURL}, allowed...) {
		if o == "*" {
			p.any = true
			continue
		}
		if origin, ok := normalizeOrigin(o); ok {
			p.allowed[origin] = true
		}
	}
	return p
}

// normalizeOrigin reduces a configured URL to the form a browser sends in Origin: lower-case
// scheme://host, with the port only when it is not the scheme's default.
func normalizeOrigin(raw string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", false
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, true
}

func (p originPolicy) allows(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || p.any {
		return true
	}
	return p.allowed[strings.ToLower(origin)]
}
