package push

import (
	"strconv"
	"strings"
	"testing"
)

// A cursor is outside input: whatever a client sends, splitCursor answers without panicking,
// and a place it returns prints back to the cursor it came from.
func FuzzSplitCursor(f *testing.F) {
	for _, seed := range []string{"", "1700000000000:r_abc", "r_abc", ":", "x:y", "-1:r", "12:", "99999999999999999999:r"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, after string) {
		at, legacy, err := splitCursor(after)
		switch {
		case after == "":
			if at != nil || legacy || err != nil {
				t.Fatalf("empty cursor: %v %v %v", at, legacy, err)
			}
		case !strings.Contains(after, ":"):
			if !legacy || at != nil || err != nil {
				t.Fatalf("%q: want an earlier build's cursor, got %v %v %v", after, at, legacy, err)
			}
		case err != nil:
			if at != nil || err != ErrBadCursor {
				t.Fatalf("%q: %v with %v", after, err, at)
			}
		default:
			if at == nil || at.id == "" {
				t.Fatalf("%q: no place", after)
			}
			if back := strconv.FormatInt(at.at, 10) + ":" + at.id; back != after && !strings.HasPrefix(after, "+") && !strings.HasPrefix(after, "0") && !strings.HasPrefix(after, "-0") {
				t.Fatalf("%q reads back as %q", after, back)
			}
		}
	})
}
