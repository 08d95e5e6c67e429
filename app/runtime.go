package app

import (
	"runtime/debug"
	"strings"
)

// DefaultGCPercent is the garbage collector's target (GOGC) a tongban process runs with when
// its environment sets none.
//
// Why not Go's 100: Tongban keeps its state in Redis, so its live heap is small (rules,
// catalog, connection buffers: tens of MiB), while every GraphQL request allocates tens of
// KiB that die at once (gqlgen builds a field context per resolved field). At 100 the
// collector runs every few hundred requests: its marking took 11% of a server's CPU under the
// `apps` benchmark (BenchmarkServerOverhead), 4% at 400, and the server's throughput rose by
// a sixth. The price is a heap up to five times a small live heap (with the embedded store,
// a dev convenience, the data lives in that heap too). Only GOGC makes this default step
// aside: operators who prefer memory to CPU set it. GOMEMLIMIT, which the runtime honours
// as well, caps the heap under either.
const DefaultGCPercent = 400

// TuneRuntime applies the process-wide runtime defaults of a tongban server: the GC target
// above, unless environ (KEY=value pairs, as os.Environ) sets GOGC. It returns the GC target
// the process runs with and whether it came from the environment.
//
// It belongs to a binary's main, not to New: an App embedded in another program (a test, a
// tool) must not change that program's collector.
func TuneRuntime(environ []string) (gcPercent int, fromEnv bool) {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GOGC="); ok && v != "" {
			// The runtime read GOGC at start-up; reading its current value back (by setting
			// and restoring it) reports what it understood, "off" included (-1).
			current := debug.SetGCPercent(100)
			debug.SetGCPercent(current)
			return current, true
		}
	}
	debug.SetGCPercent(DefaultGCPercent)
	return DefaultGCPercent, false
}
