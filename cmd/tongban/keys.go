package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tongban/tongban/app"
	"github.com/tongban/tongban/internal/redisx"
)

// runKeysRotate is `tongban keys rotate`: rotate the bridge's signing keys now, on the
// configured store, as the scheduled rotation would (the next key signs only once it has been
// published for a JWKS cache lifetime).
func runKeysRotate(inv invocation) int {
	cfg, ok := loadConfig(inv.config, inv.environ, inv.stderr)
	if !ok {
		return 2
	}
	// go-redis reports each failed dial of its pool on its own logger before the command's
	// error comes back: for a one-shot command that is the same failure four times over, in
	// the library's words. The error below says it once, with what was being done.
	redisx.SetLogger(slog.New(slog.DiscardHandler))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	said, err := app.RotateKeys(ctx, cfg)
	if err != nil {
		fmt.Fprintf(inv.stderr, "tongban keys rotate: %v\n", err)
		return 1
	}
	fmt.Fprintln(inv.stdout, said)
	return 0
}
