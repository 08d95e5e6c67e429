package app

import (
	"io"
	"log/slog"
	"strings"

	"github.com/tongban/tongban/internal/reqid"
)

// NewLogger returns the process logger: JSON for machines, text in dev mode for people, and
// every line logged with a request's context carries its request id.
func NewLogger(w io.Writer, dev bool, level string) *slog.Logger {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if dev {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(reqid.Handler{Handler: h})
}
