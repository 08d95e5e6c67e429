package app

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/tongban/tongban/graph"
	"github.com/tongban/tongban/internal/metrics"
	"github.com/tongban/tongban/internal/ratelimit"
	"github.com/tongban/tongban/internal/reqid"
)

const (
	// requestReadTimeout and requestWriteTimeout bound one ordinary request (the http.Server
	// applies them); withWebsocketDeadlines lifts them for websockets.
	requestReadTimeout  = 30 * time.Second
	requestWriteTimeout = 60 * time.Second
)

// withRequestID gives every request an id, echoes it in the response and puts it in the
// context, where the logger finds it.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := reqid.Accept(r)
		w.Header()[reqid.Header] = []string{id} // the name is canonical already
		next.ServeHTTP(w, r.WithContext(reqid.With(r.Context(), id)))
	})
}

// withRequestTimeout bounds an ordinary request by request_timeout: its context ends then, so
// its Redis calls (whose client honours context deadlines) and outbound calls give up, and it
// answers its own error (GraphQL INTERNAL, OAuth server_error) instead of hanging on a stalled
// store. A websocket is not bounded: it lives for hours and bounds each of its own steps. A
// subscription sent as POST lifts the bound for its wait (reqid.WithoutTimeout).
func withRequestTimeout(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" || d <= 0 {
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := reqid.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// withWebsocketDeadlines lifts the server's read and write timeouts from a websocket
// upgrade: they bound ordinary requests, but a websocket lives for hours and keeps itself
// honest with pings.
func withWebsocketDeadlines(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			rc := http.NewResponseController(w)
			_ = rc.SetReadDeadline(time.Time{})
			_ = rc.SetWriteDeadline(time.Time{})
		}
		next.ServeHTTP(w, r)
	})
}

// withBodyLimit answers 413 for a body over limit bytes. A declared Content-Length is checked
// before anything is read (net/http holds the body to it); a chunked body of unknown length is
// read up front, so that its 413 does not depend on how a handler reacts to a truncated read.
func withBodyLimit(limit int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > limit {
			tooLarge(w, limit)
			return
		}
		if r.ContentLength >= 0 {
			next.ServeHTTP(w, r)
			return
		}
		buf := bytes.NewBuffer(make([]byte, 0, 512))
		_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
		body := buf.Bytes()
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				tooLarge(w, limit)
				return
			}
			graph.WriteError(w, http.StatusBadRequest, graph.CodeBadUserInput, "could not read the request body")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

func tooLarge(w http.ResponseWriter, limit int64) {
	w.Header().Set("Connection", "close")
	graph.WriteError(w, http.StatusRequestEntityTooLarge, graph.CodeBadUserInput,
		fmt.Sprintf("request body exceeds the limit of %d bytes", limit))
}

// withObservation writes one access-log line and one set of HTTP metrics per request, from
// one recorder, and recovers a panic outside GraphQL (which recovers its own, per field) into
// a 500 that shows nothing of it.
func withObservation(log *slog.Logger, m *metrics.Recorder, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, route: "not_found"}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.ErrorContext(r.Context(), "http: panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if rec.status == 0 {
					graph.WriteError(rec, http.StatusInternalServerError, graph.CodeInternal, "internal error")
				}
			}
			elapsed := time.Since(start)
			m.HTTP(rec.route, r.Method, rec.statusOr200(), elapsed)
			traceStatus(r, rec.statusOr200())
			level := slog.LevelInfo
			if rec.route == "live" || rec.route == "ready" {
				level = slog.LevelDebug
			}
			// LogAttrs with typed attributes: this line is written for every request.
			log.LogAttrs(r.Context(), level, "http request", slog.String("method", r.Method),
				slog.String("path", r.URL.Path), slog.Int("status", rec.statusOr200()), slog.Int("bytes", rec.bytes),
				slog.Int64("duration_us", elapsed.Microseconds()), slog.String("client", clientOf(r)))
		}()
		next.ServeHTTP(rec, r)
	})
}

// named tells the recorder which route answered, for the metrics label: a fixed name, never
// the raw path, whose values a client could multiply.
func named(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec, ok := w.(*recorder); ok {
			rec.route = route
		}
		traceRoute(r, route)
		h.ServeHTTP(w, r)
	})
}

// recorder remembers the status and size of a response. It passes Hijack and Flush through,
// which websockets need.
type recorder struct {
	http.ResponseWriter
	route  string
	status int
	bytes  int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

func (r *recorder) statusOr200() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) Flush() { _ = http.NewResponseController(r.ResponseWriter).Flush() }

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	r.status = http.StatusSwitchingProtocols
	return http.NewResponseController(r.ResponseWriter).Hijack()
}

// clientOf is the request's client address as the rate limits see it (behind trusted_proxies,
// the right-most untrusted X-Forwarded-For entry), for the request line.
func clientOf(r *http.Request) string {
	if ip := ratelimit.IP(r.Context()); ip.IsValid() {
		return ip.String()
	}
	return ""
}
