package main

import (
	"fmt"
	"runtime/debug"
)

// runVersion is `tongban version`: what debug.ReadBuildInfo recorded. `go build` in a checkout
// records the VCS revision and time; `go run` and test binaries do not, and say so.
func runVersion(inv invocation) int {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(inv.stdout, "tongban (no build information: built without module support)")
		return 0
	}
	fmt.Fprintln(inv.stdout, describeBuild(info))
	return 0
}

// describeBuild is one line: tongban <version> (<revision>[, modified], <time>) <go version>.
func describeBuild(info *debug.BuildInfo) string {
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var rev, at, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	vcs := "revision unknown"
	if rev != "" {
		vcs = rev + modified + ", " + at
	}
	return fmt.Sprintf("tongban %s (%s) %s", version, vcs, info.GoVersion)
}
