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

	"github.com/tongban/tongban/app"
	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/redisx"
)

func main() {
	// Here and not in run: the tests call run, and must keep their own collector.
	app.TuneRuntime(os.Environ())
	os.Exit(run(os.Args[1:], os.Environ(), os.Stderr))
}

func run(args, environ []string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "keys" {
		return runKeys(args[1:], environ, stderr)
	}
	fs := flag.NewFlagSet("tongban", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML); default $TONGBAN_CONFIG, or dev mode when neither is set")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, ok := loadConfig(*path, environ, stderr)
	if !ok {
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

func loadConfig(path string, environ []string, stderr io.Writer) (*config.Config, bool) {
	cfg, err := config.Load(path, environ)
	if err != nil {
		var problems config.Problems
		if errors.As(err, &problems) {
			fmt.Fprintf(stderr, "tongban: the configuration has %d problem(s):\n%v\n", len(problems), err)
		} else {
			fmt.Fprintf(stderr, "tongban: %v\n", err)
		}
		return nil, false
	}
	return cfg, true
}

// runKeys is `tongban keys rotate`: rotate the bridge's signing keys now, on the configured
// store, as the scheduled rotation would (the next key signs only once it has been published
// for a JWKS cache lifetime).
func runKeys(args, environ []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("tongban keys", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML); default $TONGBAN_CONFIG")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || fs.Arg(0) != "rotate" {
		fmt.Fprintln(stderr, "usage: tongban keys rotate [--config tongban.yaml]")
		return 2
	}
	cfg, ok := loadConfig(*path, environ, stderr)
	if !ok {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	said, err := app.RotateKeys(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "tongban: keys rotate: %v\n", err)
		return 1
	}
	fmt.Fprintln(stderr, said)
	return 0
}
