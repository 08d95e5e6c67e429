package redisx

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// slogLogger sends go-redis's own messages (dial failures, pool trouble) to the service log
// as warnings, in the service's format, instead of to stderr in the library's.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...)) // go-redis starts its messages with "redis: "
}

// SetLogger routes go-redis's process-wide logger to log. main calls it once.
func SetLogger(log *slog.Logger) { redis.SetLogger(slogLogger{log}) }
