package app

import (
	"runtime/debug"
	"testing"
)

func TestTuneRuntime(t *testing.T) {
	t.Parallel()
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	tests := []struct {
		name        string
		environ     []string
		current     int // what the runtime holds before, as if it had read GOGC at start-up
		wantPercent int
		wantFromEnv bool
	}{
		{"no GOGC: the server default", []string{"HOME=/root", "GOMEMLIMIT=1GiB"}, 100, DefaultGCPercent, false},
		{"empty GOGC counts as unset, as the runtime reads it", []string{"GOGC="}, 100, DefaultGCPercent, false},
		{"GOGC set: left as the runtime read it", []string{"GOGC=150"}, 150, 150, true},
		{"GOGC=off: left off", []string{"GOGC=off"}, -1, -1, true},
		{"a variable merely ending in GOGC is not GOGC", []string{"XGOGC=50"}, 100, DefaultGCPercent, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(tc.current)
			percent, fromEnv := TuneRuntime(tc.environ)
			if percent != tc.wantPercent || fromEnv != tc.wantFromEnv {
				t.Errorf("TuneRuntime = %d, %v; want %d, %v", percent, fromEnv, tc.wantPercent, tc.wantFromEnv)
			}
			if got := debug.SetGCPercent(tc.current); got != tc.wantPercent {
				t.Errorf("the runtime runs with GOGC %d, want %d", got, tc.wantPercent)
			}
		})
	}
}
