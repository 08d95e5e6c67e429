package push

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Placeholders a rule's title and body may use. The set is closed and small on purpose: a
// notification is plain text shown by the phone's system UI, and anything a template language
// could do beyond substitution is a way to get it wrong.
//
//	{{name}}     the person's display name, or 您 when no sign-in brought one
//	{{service}}  the name of the rule's service
var placeholders = map[string]bool{"name": true, "service": true}

// fallbackName stands in for a person whose name no sign-in brought (someone known only from a
// data platform's events).
const fallbackName = "您"

// checkTemplate refuses an unknown or unterminated placeholder, naming where it starts.
func checkTemplate(field, s string, max int) *InputError {
	if strings.TrimSpace(s) == "" {
		return inputErr(field, "must not be empty")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return inputErr(field, "must be at most %d characters (got %d)", max, n)
	}
	if !utf8.ValidString(s) {
		return inputErr(field, "must be valid UTF-8")
	}
	for i, r := range s {
		if unicode.IsControl(r) && r != '\n' {
			return inputErr(field, "control character U+%04X at byte %d", r, i)
		}
	}
	rest, at := s, 0
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			return nil
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return inputErr(field, "placeholder at byte %d is not closed with }}", at+i)
		}
		name := strings.TrimSpace(rest[i+2 : i+j])
		if !placeholders[name] {
			return inputErr(field, "unknown placeholder {{%s}} at byte %d; use {{name}} or {{service}}", name, at+i)
		}
		at += i + j + 2
		rest = rest[i+j+2:]
	}
}

// render substitutes the placeholders in one pass, so that a value holding "{{service}}" is
// shown as it is and never expanded. Values are stripped of control characters, which a name
// from a provider could carry into a lock screen.
func render(tmpl, name, service string) string {
	tmpl = dropInvisible(tmpl) // a rule saved before they were dropped on save
	if name == "" {
		name = fallbackName
	}
	vals := map[string]string{"name": clean(name), "service": clean(service)}
	var b strings.Builder
	rest := tmpl
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			b.WriteString(rest)
			return b.String()
		}
		b.WriteString(rest[:i])
		key := strings.TrimSpace(rest[i+2 : i+j])
		if v, ok := vals[key]; ok {
			b.WriteString(v)
		} else {
			b.WriteString(rest[i : i+j+2])
		}
		rest = rest[i+j+2:]
	}
}

func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || invisible(r) {
			return -1
		}
		return r
	}, s)
}

// invisible reports the characters a notification drops: bidirectional controls, which can
// make a lock screen show text in another order than it was written (a "Trojan Source" link or
// amount), and zero-width characters, which hide text or make two strings look alike.
func invisible(r rune) bool {
	switch {
	case r == '\u061C', // ARABIC LETTER MARK
		r == '\u200E', r == '\u200F', // LRM, RLM
		r >= '\u202A' && r <= '\u202E', // LRE, RLE, PDF, LRO, RLO
		r >= '\u2066' && r <= '\u2069', // LRI, RLI, FSI, PDI
		r >= '\u200B' && r <= '\u200D', // ZERO WIDTH SPACE, NON-JOINER, JOINER
		r == '\u2060',                  // WORD JOINER
		r == '\uFEFF',                  // ZERO WIDTH NO-BREAK SPACE (BOM)
		r == '\u180E':                  // MONGOLIAN VOWEL SEPARATOR
		return true
	}
	return false
}

// dropInvisible removes what invisible reports from s.
func dropInvisible(s string) string {
	if !strings.ContainsFunc(s, invisible) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if invisible(r) {
			return -1
		}
		return r
	}, s)
}
