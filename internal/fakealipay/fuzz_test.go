package fakealipay

import (
	"testing"
	"unicode/utf8"
)

// FuzzParseData: the data parameter's reader never panics and keeps only what a string value
// had.
func FuzzParseData(f *testing.F) {
	for _, s := range []string{`{"keyword1":{"value":"a"}}`, `{}`, `[]`, `{"k":{}}`, `{"k":{"value":1}}`, `null`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, ok := parseData(s)
		if ok && len(m) == 0 {
			t.Fatalf("ok with no keywords for %q", s)
		}
		for _, v := range m {
			_ = utf8.RuneCountInString(v)
		}
	})
}
