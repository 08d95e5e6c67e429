package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	_ "time/tzdata" // quiet hours and time zones work on machines without zoneinfo

	"github.com/tongban/tongban/app"
	"github.com/tongban/tongban/config"
)

func main() {
	// Here and not in run: the tests call run, and must keep their own collector.
	app.TuneRuntime(os.Environ())
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run is the whole command line: it finds the command, runs it and returns the exit code: 0
// done, 1 the command failed, 2 the command line or the configuration is wrong.
func run(args, environ []string, stdout, stderr io.Writer) int {
	words, path, help, err := parse(args, stderr)
	if err != nil {
		usage(stderr)
		return 2
	}
	if help {
		c, extra, ok := find(words)
		switch {
		case ok && c.name() != "help" && (len(extra) == 0 || c.file && len(extra) == 1):
			commandUsage(stdout, c)
		case !ok && len(words) > 0 && len(under(words)) > 0:
			groupUsage(stdout, words, under(words))
		default:
			usage(stdout)
		}
		return 0
	}
	if len(words) == 0 {
		words = []string{"serve"}
	}
	c, extra, ok := find(words)
	switch {
	case ok && c.name() == "help":
		return runHelp(extra, stdout, stderr)
	case !ok:
		fmt.Fprintf(stderr, "tongban: unknown command %q%s\n\n", strings.Join(words, " "), didYouMean(words))
		usage(stderr)
		return 2
	case c.file && len(extra) == 1 && path != "" && path != extra[0]:
		fmt.Fprintf(stderr, "tongban %s: two configuration files, %q and --config %q\n\n", c.name(), extra[0], path)
		commandUsage(stderr, c)
		return 2
	case c.file && len(extra) == 1:
		path = extra[0]
	case c.file && len(extra) > 1:
		fmt.Fprintf(stderr, "tongban %s: unexpected argument %q: one configuration file at most\n\n", c.name(), extra[1])
		commandUsage(stderr, c)
		return 2
	case len(extra) > 0:
		fmt.Fprintf(stderr, "tongban %s: unexpected argument %q\n\n", c.name(), extra[0])
		commandUsage(stderr, c)
		return 2
	}
	return c.run(invocation{config: path, environ: environ, stdout: stdout, stderr: stderr})
}

// didYouMean names the commands that start with the first word given, for `tongban keys`.
func didYouMean(words []string) string {
	var names []string
	for _, c := range commands {
		if len(c.words) > 1 && c.words[0] == words[0] {
			names = append(names, "tongban "+c.name())
		}
	}
	if len(names) == 0 {
		return ""
	}
	return "; did you mean " + strings.Join(names, " or ") + "?"
}

func runHelp(words []string, stdout, stderr io.Writer) int {
	if len(words) == 0 {
		usage(stdout)
		return 0
	}
	c, extra, ok := find(words)
	if cs := under(words); !ok && len(cs) > 0 {
		groupUsage(stdout, words, cs)
		return 0
	}
	if !ok || len(extra) > 0 {
		fmt.Fprintf(stderr, "tongban help: unknown command %q\n\n", strings.Join(words, " "))
		usage(stderr)
		return 2
	}
	commandUsage(stdout, c)
	return 0
}

// loadConfig loads and validates the configuration, printing one line per problem.
func loadConfig(path string, environ []string, stderr io.Writer) (*config.Config, bool) {
	cfg, err := config.Load(path, environ)
	if err != nil {
		if problems, ok := errors.AsType[config.Problems](err); ok {
			fmt.Fprintf(stderr, "tongban: the configuration has %d problem(s):\n%v\n", len(problems), problems)
		} else {
			fmt.Fprintf(stderr, "tongban: %v\n", err)
		}
		return nil, false
	}
	return cfg, true
}
