package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tongban/tongban/app"
	"github.com/tongban/tongban/internal/redisx"
)

// runServe is `tongban serve` (and `tongban`): serve until SIGINT or SIGTERM.
func runServe(inv invocation) int {
	cfg, ok := loadConfig(inv.config, inv.environ, inv.stderr)
	if !ok {
		return 2
	}
	log := app.NewLogger(inv.stderr, cfg.Dev, cfg.LogLevel)
	redisx.SetLogger(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, the default behaviour comes back: a second Ctrl-C ends the
	// process at once instead of waiting for the graceful shutdown.
	go func() { <-ctx.Done(); stop() }()

	a, err := app.New(cfg, log)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	defer a.Close()
	if err := a.Run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		return 1
	}
	return 0
}
