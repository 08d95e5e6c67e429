package main

import (
	"fmt"
)

// runConfigCheck is `tongban config check`: load and validate as serve would, connect to
// nothing, and say what is wrong. Problems exit 1, not 2: the command line was right, the
// configuration it checked is not.
func runConfigCheck(inv invocation) int {
	cfg, ok := loadConfig(inv.config, inv.environ, inv.stderr)
	if !ok {
		return 1
	}
	source := inv.config
	if source == "" {
		source = lookupEnv(inv.environ, "TONGBAN_CONFIG")
	}
	switch {
	case cfg.Dev && source == "":
		fmt.Fprintln(inv.stdout, "ok: no configuration file: dev mode (embedded store, simulated providers, public dev secrets)")
	case cfg.Dev:
		fmt.Fprintf(inv.stdout, "ok: %s (dev mode)\n", source)
	default:
		fmt.Fprintf(inv.stdout, "ok: %s: %d identity providers, %d member-app clients, %d machine clients, store %s\n",
			source, len(cfg.Providers), len(cfg.Clients), len(cfg.MachineClients), storeOf(cfg.Redis.URL, cfg.Redis.Cluster))
	}
	return 0
}

func storeOf(url string, cluster []string) string {
	switch {
	case url != "":
		return "redis (url set)"
	case len(cluster) > 0:
		return fmt.Sprintf("redis cluster (%d seed addresses)", len(cluster))
	}
	return "embedded"
}

// lookupEnv reads a variable from environ, the way the tests pass it, falling back to nothing.
func lookupEnv(environ []string, key string) string {
	for _, kv := range environ {
		if len(kv) > len(key) && kv[:len(key)] == key && kv[len(key)] == '=' {
			return kv[len(key)+1:]
		}
	}
	return ""
}
