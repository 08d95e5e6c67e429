package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // quiet hours and time zones work on machines without zoneinfo

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/app"
	"github.com/tongban/tongban/internal/redisx"
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stderr))
}

func run(args, environ []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("tongban", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML); default $TONGBAN_CONFIG, or dev mode when neither is set")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path, environ)
	if err != nil {
		var problems config.Problems
		if errors.As(err, &problems) {
			fmt.Fprintf(stderr, "tongban: the configuration has %d problem(s):\n%v\n", len(problems), err)
		} else {
			fmt.Fprintf(stderr, "tongban: %v\n", err)
		}
		return 2
	}
	log := app.NewLogger(stderr, cfg.Dev, cfg.LogLevel)
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
