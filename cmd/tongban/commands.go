package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// command is one thing tongban does: the words that name it, what it says about itself in
// usage, and what it runs. Every command takes the same flags (one --config), so flags may
// come before or after its words, as with go and kubectl.
type command struct {
	words   []string // "keys", "rotate"
	summary string
	// detail is the text of `tongban help <command>` after the usage line.
	detail string
	// file, when true, lets the command take its configuration file as a plain argument
	// too: `tongban config check FILE` is `tongban config check --config FILE`.
	file bool
	// args, when true, lets the command take arguments and flags of its own after its words
	// (`federation add-subordinate ID --jwks FILE`); they reach run as invocation.args, and
	// synopsis shows them in its usage line.
	args     bool
	synopsis string
	run      func(inv invocation) int
}

// invocation is what a command runs with.
type invocation struct {
	config  string   // --config, "" when not given
	args    []string // a command's own arguments, for commands with args
	environ []string
	stdout  io.Writer
	stderr  io.Writer
}

func (c command) name() string { return strings.Join(c.words, " ") }

// commands is the whole surface, in the order usage lists it. serve is also what tongban does
// without a command.
var commands []command

func init() {
	commands = []command{
		{words: []string{"serve"}, summary: "run the service (what tongban does without a command)", run: runServe,
			detail: `Runs the service until SIGINT or SIGTERM, then shuts down gracefully (a second signal
quits at once). Without --config and without $TONGBAN_CONFIG it runs in dev mode: embedded
store, simulated identity providers, sample data, on 127.0.0.1 only. TONGBAN_<PATH>
environment variables override any key of the file (TONGBAN_REDIS_URL, ...).`},
		{words: []string{"keys", "rotate"}, summary: "rotate the bridge's signing keys now, on the configured Redis", run: runKeysRotate,
			detail: `Publishes a next signing key on the configured Redis (or Redis Cluster), as the scheduled
rotation would; it signs only once it has been published for a JWKS cache lifetime. Needs
redis.url or redis.cluster: a dev server's embedded store cannot be reached from here.`},
		{words: []string{"federation", "add-subordinate"}, summary: "vouch for an entity as the alliance's intermediate or anchor", run: runFederationAdd,
			args: true, synopsis: "<entity-id> (--jwks FILE | --fetch-jwks) [--trust-mark TYPE]... [--policy FILE]",
			detail: `Adds (or replaces) a subordinate on the configured Redis: Tongban's fetch endpoint serves a
statement about it with these keys and metadata policy, and its trust mark endpoint issues it
the trust-mark types given (federation.trust_mark_issuer.types). --jwks reads its federation
JWKS (public keys) from FILE; --fetch-jwks takes them from the entity's own configuration at
<entity-id>/.well-known/openid-federation, checked to be self-signed, and prints the kids and
thumbprints pinned: compare them with what the entity's operator sent. --policy FILE is a
metadata_policy JSON object. Every replica serves the change at once.`},
		{words: []string{"federation", "remove-subordinate"}, summary: "stop vouching for an entity, on every replica at once", run: runFederationRemove,
			args: true, synopsis: "<entity-id>",
			detail: `Removes a subordinate, added or configured (a configured one stays removed until added
again): every replica stops serving statements and trust marks about it at once, drops the
trust chains through it and ends its grants. Exits 1 when it was not a subordinate.`},
		{words: []string{"federation", "list"}, summary: "list the subordinates Tongban vouches for", run: runFederationList,
			args: true,
			detail: `Prints one line per subordinate: its entity id, then its keys, trust marks, policy and
whether it is configured or was added (when).`},
		{words: []string{"config", "check"}, summary: "validate a configuration and list its problems", run: runConfigCheck, file: true,
			detail: `Loads the configuration as serve would (the file, TONGBAN_* overrides, *_file secrets,
defaults), validates it and prints one line per problem. Exits 0 when there is none, 1 when
there are problems. Connects to nothing. FILE is the same as --config FILE.`},
		{words: []string{"version"}, summary: "print the version, VCS revision and build time", run: runVersion,
			detail: `Prints the module version, the VCS revision and time it was built from (when the build
recorded them) and the Go version.`},
		{words: []string{"help"}, summary: "show this help, or a command's: tongban help <command>",
			detail: `With a command's words, shows that command's help.`},
	}
}

// errUsage is a command line that names no command or a flag that does not exist; the usage
// has been printed.
var errUsage = errors.New("usage")

// parse splits a command line into the command's words and the flags, wherever the flags are.
// "--" ends the flags: every argument after it is a word. -h and --help anywhere before it ask
// for help with the command the words name.
func parse(args []string, stderr io.Writer) (words []string, config string, help bool, err error) {
	fs := flag.NewFlagSet("tongban", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the usage printed instead is the whole surface, not just the flags
	fs.StringVar(&config, "config", "", "configuration file (YAML); default $TONGBAN_CONFIG")
	var rest, after []string
	for i, a := range args {
		if a == "--" {
			after = args[i+1:]
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			help = true
			continue
		}
		rest = append(rest, a)
	}
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			fmt.Fprintf(stderr, "tongban: %v\n", err)
			return nil, "", false, errUsage
		}
		rest = fs.Args()
		if len(rest) > 0 {
			words = append(words, rest[0])
			rest = rest[1:]
		}
		if argsCommand(words) {
			// The rest is the command's own: it parses its flags (--config among them) itself.
			words = append(words, rest...)
			if len(after) > 0 {
				words = append(append(words, "--"), after...)
			}
			return words, config, help, nil
		}
	}
	return append(words, after...), config, help, nil
}

// argsCommand reports whether words name a command with args.
func argsCommand(words []string) bool {
	return slices.ContainsFunc(commands, func(c command) bool { return c.args && slices.Equal(c.words, words) })
}

// under returns the commands whose words start with words and go on, in usage's order: the
// commands of a group such as "keys" or "config".
func under(words []string) []command {
	var out []command
	for _, c := range commands {
		if len(c.words) > len(words) && slices.Equal(c.words[:len(words)], words) {
			out = append(out, c)
		}
	}
	return out
}

// find returns the command words name and the words left over after them; ok is false when
// no command starts with them.
func find(words []string) (c command, extra []string, ok bool) {
	for _, c := range commands {
		if len(words) >= len(c.words) && slices.Equal(words[:len(c.words)], c.words) {
			if extra := words[len(c.words):]; c.args && len(extra) > 0 {
				// The arguments are the command's: bind them to its run, so that the caller
				// sees no extra words.
				run := c.run
				c.run = func(inv invocation) int { inv.args = extra; return run(inv) }
				return c, nil, true
			}
			return c, words[len(c.words):], true
		}
	}
	return command{}, nil, false
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Tongban (通办): one person across China's provincial government-service apps, and the
benefits they qualify for without applying.

Usage:
  tongban [command] [--config FILE]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-*s %s\n", nameWidth(commands), c.name(), c.summary)
	}
	fmt.Fprint(w, `
Flags (before or after the command):
  --config FILE  configuration file (YAML); default $TONGBAN_CONFIG; neither means dev mode
  -h, --help     show this help

Run 'tongban help <command>' for more about a command.
`)
}

// nameWidth is the column of the summaries: the longest name, at least 14.
func nameWidth(cs []command) int {
	w := 14
	for _, c := range cs {
		w = max(w, len(c.name()))
	}
	return w
}

func commandUsage(w io.Writer, c command) {
	flags := " [--config FILE]"
	switch {
	case c.name() == "version" || c.name() == "help":
		flags = ""
	case c.file:
		flags = " [FILE | --config FILE]"
	case c.synopsis != "":
		flags = " " + c.synopsis + " [--config FILE]"
	}
	fmt.Fprintf(w, "Usage: tongban %s%s\n\n%s\n", c.name(), flags, c.detail)
}

// groupUsage is the help of a group of commands (`tongban help keys`): its usage line and its
// subcommands.
func groupUsage(w io.Writer, words []string, cs []command) {
	group := strings.Join(words, " ")
	fmt.Fprintf(w, "Usage: tongban %s <command> [--config FILE]\n\nCommands:\n", group)
	for _, c := range cs {
		fmt.Fprintf(w, "  %-*s %s\n", nameWidth(cs), c.name(), c.summary)
	}
	fmt.Fprintf(w, "\nRun 'tongban help %s <command>' for more about a command.\n", group)
}
