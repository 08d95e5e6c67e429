package main

// `tongban federation …`: the subordinates Tongban vouches for as an alliance's intermediate or
// trust anchor, changed on the configured Redis; every running replica serves the change at
// once and ends what it trusted of a removed member (federation/entity).

import (
	"context"
	"crypto"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/app"
	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/federation/entity"
	"github.com/tongban/tongban/internal/redisx"
)

// federationTimeout bounds one command: a fetch of the entity's configuration and a few
// Redis commands.
const federationTimeout = 30 * time.Second

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// federationCommand is what the three commands share: their flags parsed, the configuration
// loaded, the registry opened. Its fields are what the command line said.
type federationCommand struct {
	name   string
	inv    invocation
	fs     *flag.FlagSet
	config string
}

func newFederationCommand(inv invocation, name string) *federationCommand {
	c := &federationCommand{name: name, inv: inv, fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	c.fs.SetOutput(io.Discard)
	c.fs.StringVar(&c.config, "config", "", "configuration file")
	return c
}

// parse parses the command's own arguments and returns the positional ones, or exits 2 with
// the usage.
func (c *federationCommand) parse(wantArgs int) ([]string, int) {
	// Flags and arguments in any order, as for tongban's own flags; after "--" only arguments.
	rest, after := c.inv.args, []string(nil)
	if i := slices.Index(rest, "--"); i >= 0 {
		rest, after = rest[:i], rest[i+1:]
	}
	var args []string
	for len(rest) > 0 {
		if err := c.fs.Parse(rest); err != nil {
			return nil, c.usage("%v", err)
		}
		if rest = c.fs.Args(); len(rest) > 0 {
			args, rest = append(args, rest[0]), rest[1:]
		}
	}
	args = append(args, after...)
	if len(args) != wantArgs {
		if len(args) > wantArgs {
			return nil, c.usage("unexpected argument %q", args[wantArgs])
		}
		return nil, c.usage("missing the entity id")
	}
	if c.config != "" && c.inv.config != "" && c.config != c.inv.config {
		return nil, c.usage("two configuration files, --config %q and --config %q", c.inv.config, c.config)
	}
	if c.config == "" {
		c.config = c.inv.config
	}
	return args, 0
}

// usage says what is wrong with the command line, then the command's usage; exit 2.
func (c *federationCommand) usage(format string, args ...any) int {
	fmt.Fprintf(c.inv.stderr, "tongban %s: %s\n\n", c.name, fmt.Sprintf(format, args...))
	if cmd, _, ok := find(strings.Fields(c.name)); ok {
		commandUsage(c.inv.stderr, cmd)
	}
	return 2
}

// fail reports a failure of the command; exit 1.
func (c *federationCommand) fail(format string, args ...any) int {
	fmt.Fprintf(c.inv.stderr, "tongban %s: %s\n", c.name, fmt.Sprintf(format, args...))
	return 1
}

// open loads the configuration and opens the alliance's registry on its Redis (with the
// embedded store of dev mode, the running dev server's, at redis.embedded_addr). The returned
// close must be called.
func (c *federationCommand) open() (*config.Config, *entity.Registry, func(), int) {
	cfg, ok := loadConfig(c.config, c.inv.environ, c.inv.stderr)
	if !ok {
		return nil, nil, nil, 2
	}
	// As in keys rotate: go-redis would log each failed dial itself; the error says it once.
	redisx.SetLogger(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), federationTimeout)
	defer cancel()
	reg, closeStore, err := app.AllianceRegistry(ctx, cfg,
		slog.New(slog.NewTextHandler(c.inv.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return nil, nil, nil, c.fail("%v", err)
	}
	return cfg, reg, closeStore, 0
}

func federationContext() (context.Context, func()) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, federationTimeout)
	return ctx, func() { cancel(); stop() }
}

// runFederationAdd is `tongban federation add-subordinate <entity-id> [--jwks FILE |
// --fetch-jwks] [--trust-mark TYPE]... [--policy FILE]`.
func runFederationAdd(inv invocation) int {
	c := newFederationCommand(inv, "federation add-subordinate")
	jwksFile := c.fs.String("jwks", "", "")
	fetch := c.fs.Bool("fetch-jwks", false, "")
	policyFile := c.fs.String("policy", "", "")
	var marks stringList
	c.fs.Var(&marks, "trust-mark", "")
	args, code := c.parse(1)
	if code != 0 {
		return code
	}
	id := args[0]
	if (*jwksFile == "") == !*fetch {
		return c.usage("give the entity's keys: --jwks FILE or --fetch-jwks, one of them")
	}
	// Loopback is allowed in dev mode only, known once the configuration is loaded; anything
	// that is no entity id at all is a command-line mistake before that.
	if err := entity.CheckEntityID(id, true); err != nil {
		return c.usage("%v", err)
	}
	ctx, stop := federationContext()
	defer stop()
	cfg, reg, closeStore, code := c.open()
	if code != 0 {
		return code
	}
	defer closeStore()
	if err := entity.CheckEntityID(id, cfg.Dev); err != nil {
		return c.usage("%v", err)
	}
	sub := entity.Subordinate{EntityID: id, TrustMarks: marks}
	var err error
	if *fetch {
		sub.JWKS, err = entity.FetchJWKS(ctx, id, federation.FetchOptions{AllowLoopback: cfg.FederationLoopback(), AllowPrivate: cfg.Federation.AllowPrivateAddresses})
		if err != nil {
			return c.fail("%v", err)
		}
		for _, k := range sub.JWKS.Keys {
			fmt.Fprintf(inv.stdout, "pinned kid %s (%s, SHA-256 thumbprint %s), from %s's own configuration\n", k.KeyID, keyType(k), thumbprint(k), id)
		}
	} else {
		raw, err := app.ReadBounded(*jwksFile, entity.MaxJWKSBytes)
		if err != nil {
			return c.fail("--jwks: %v", err)
		}
		if sub.JWKS, err = entity.ParseJWKS(raw); err != nil {
			return c.fail("--jwks %s: %v", *jwksFile, err)
		}
	}
	if *policyFile != "" {
		raw, err := app.ReadBounded(*policyFile, entity.MaxPolicyBytes)
		if err != nil {
			return c.fail("--policy: %v", err)
		}
		if sub.MetadataPolicy, err = entity.ParsePolicy(raw); err != nil {
			return c.fail("--policy %s: %v", *policyFile, err)
		}
	}
	if err := reg.Add(ctx, sub); err != nil {
		return c.fail("%v", err)
	}
	fmt.Fprintf(inv.stdout, "added %s: %s\n", id, describe(sub))
	return 0
}

// runFederationRemove is `tongban federation remove-subordinate <entity-id>`.
func runFederationRemove(inv invocation) int {
	c := newFederationCommand(inv, "federation remove-subordinate")
	args, code := c.parse(1)
	if code != 0 {
		return code
	}
	ctx, stop := federationContext()
	defer stop()
	_, reg, closeStore, code := c.open()
	if code != 0 {
		return code
	}
	defer closeStore()
	ok, err := reg.Remove(ctx, args[0])
	if err != nil {
		return c.fail("%v", err)
	}
	if !ok {
		return c.fail("%s is not a subordinate: nothing removed", args[0])
	}
	fmt.Fprintf(inv.stdout, "removed %s: every replica stops serving its statement now and ends what it trusted\n", args[0])
	return 0
}

// runFederationList is `tongban federation list`: one line per subordinate.
func runFederationList(inv invocation) int {
	c := newFederationCommand(inv, "federation list")
	if _, code := c.parse(0); code != 0 {
		return code
	}
	ctx, stop := federationContext()
	defer stop()
	_, reg, closeStore, code := c.open()
	if code != 0 {
		return code
	}
	defer closeStore()
	subs, err := reg.List(ctx)
	if err != nil {
		return c.fail("%v", err)
	}
	for _, s := range subs {
		fmt.Fprintf(inv.stdout, "%s\t%s\n", s.EntityID, describe(s))
	}
	return 0
}

// describe says in one line what Tongban says about a subordinate.
func describe(s entity.Subordinate) string {
	var kids []string
	for _, k := range s.JWKS.Keys {
		kids = append(kids, k.KeyID)
	}
	parts := []string{"keys " + strings.Join(kids, ",")}
	if len(s.TrustMarks) > 0 {
		parts = append(parts, "trust marks "+strings.Join(s.TrustMarks, ","))
	}
	if len(s.MetadataPolicy) > 0 {
		var types []string
		for t := range s.MetadataPolicy {
			types = append(types, t)
		}
		slices.Sort(types)
		parts = append(parts, "policy for "+strings.Join(types, ","))
	}
	if s.Configured {
		parts = append(parts, "configured")
	} else if !s.AddedAt.IsZero() {
		parts = append(parts, "added "+s.AddedAt.UTC().Format(time.RFC3339))
	}
	return strings.Join(parts, "; ")
}

func keyType(k jose.JSONWebKey) string {
	if k.Algorithm != "" {
		return k.Algorithm
	}
	return fmt.Sprintf("%T", k.Key)
}

// thumbprint is the RFC 7638 SHA-256 thumbprint, base64url: what the entity's operator can
// compare out of band.
func thumbprint(k jose.JSONWebKey) string {
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "unavailable"
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}
