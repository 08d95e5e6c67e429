package reqid

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
)

// Header is the HTTP header a request id arrives in and is echoed back in.
const Header = "X-Request-Id"

type ctxKey struct{}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// From returns the request id in ctx, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// New returns a fresh random id. It needs to be unique, not secret, so it comes from the
// runtime's per-thread generator rather than the kernel's: this runs on every request.
func New() string {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(b[8:], rand.Uint32())
	return hex.EncodeToString(b[:])
}

// Accept returns the id a caller sent when it is safe to echo and log (a load balancer's id
// keeps traces joined), or a fresh one.
func Accept(r *http.Request) string {
	id := r.Header.Get(Header)
	if id == "" || len(id) > 64 {
		return New()
	}
	for _, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return New()
		}
	}
	return id
}

// Handler wraps a slog.Handler so that every record logged with a context that carries a
// request id gets a request_id attribute.
type Handler struct{ slog.Handler }

// Handle adds the request id of ctx, if any.
func (h Handler) Handle(ctx context.Context, r slog.Record) error {
	if id := From(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapper around the derived handler.
func (h Handler) WithAttrs(as []slog.Attr) slog.Handler { return Handler{h.Handler.WithAttrs(as)} }

// WithGroup keeps the wrapper around the derived handler. The id then lands inside the group
// (slog offers a wrapper no way out of it); nothing in Tongban logs through a group, and a
// caller that starts to should log the id itself.
func (h Handler) WithGroup(name string) slog.Handler { return Handler{h.Handler.WithGroup(name)} }
