package prefs

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	_ "time/tzdata" // time zones must load on hosts (and images) without a zoneinfo database
)

// clockForm is what a quiet-hours time must look like, for messages.
const clockForm = "want HH:MM, two digits each, on a 24-hour clock from 00:00 to 23:59, like 07:30"

// zoneForm is what a time zone must look like, for messages.
const zoneForm = "want an IANA time zone name like Asia/Shanghai"

// fields checks u and returns the hash fields it sets, or the first problem.
func (p *Prefs) fields(u Update) ([]any, error) {
	var fields []any
	switch {
	case u.QuietStart != nil && u.QuietEnd == nil:
		return nil, &InputError{"quietEnd", `must be given together with quietStart; set both, or both to "" for no quiet hours`}
	case u.QuietStart == nil && u.QuietEnd != nil:
		return nil, &InputError{"quietStart", `must be given together with quietEnd; set both, or both to "" for no quiet hours`}
	case u.QuietStart != nil:
		start, end := *u.QuietStart, *u.QuietEnd
		if start != "" || end != "" {
			if _, _, err := checkQuiet(start, end); err != nil {
				return nil, err
			}
		}
		fields = append(fields, fieldQuietStart, start, fieldQuietEnd, end)
	}
	if u.TimeZone != nil {
		if _, msg := p.zone(*u.TimeZone); msg != "" {
			return nil, &InputError{"timeZone", msg}
		}
		fields = append(fields, fieldTimeZone, *u.TimeZone)
	}
	if u.MutedCategories != nil {
		muted, err := p.muted(u.MutedCategories)
		if err != nil {
			return nil, err
		}
		blob, _ := json.Marshal(muted)
		fields = append(fields, fieldMuted, string(blob))
	}
	if u.PushEnabled != nil {
		v := "0"
		if *u.PushEnabled {
			v = "1"
		}
		fields = append(fields, fieldPush, v)
	}
	return fields, nil
}

// checkQuiet checks a quiet window, both ends set, and returns them as minutes after
// midnight.
func checkQuiet(start, end string) (int, int, error) {
	const both = `set both quietStart and quietEnd, or both to "" for no quiet hours`
	switch {
	case start == "":
		return 0, 0, &InputError{"quietStart", "empty while quietEnd is set; " + both}
	case end == "":
		return 0, 0, &InputError{"quietEnd", "empty while quietStart is set; " + both}
	}
	s, msg := parseClock(start)
	if msg != "" {
		return 0, 0, &InputError{"quietStart", msg}
	}
	e, msg := parseClock(end)
	if msg != "" {
		return 0, 0, &InputError{"quietEnd", msg}
	}
	if s == e {
		return 0, 0, &InputError{"quietEnd", fmt.Sprintf(`the same as quietStart (%s), which makes no window; set both to "" for no quiet hours`, start)}
	}
	return s, e, nil
}

// parseClock reads "HH:MM" as minutes after midnight; msg says what is wrong otherwise.
func parseClock(s string) (minutes int, msg string) {
	digit := func(i int) (int, bool) { return int(s[i] - '0'), '0' <= s[i] && s[i] <= '9' }
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Sprintf("%s is not HH:MM; %s", quote(s), clockForm)
	}
	h1, ok1 := digit(0)
	h2, ok2 := digit(1)
	m1, ok3 := digit(3)
	m2, ok4 := digit(4)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, fmt.Sprintf("%s is not HH:MM; %s", quote(s), clockForm)
	}
	h, m := h1*10+h2, m1*10+m2
	switch {
	case h > 23:
		return 0, fmt.Sprintf("%s: hour %d is past 23 (midnight is 00:00); %s", quote(s), h, clockForm)
	case m > 59:
		return 0, fmt.Sprintf("%s: minute %d is past 59; %s", quote(s), m, clockForm)
	}
	return h*60 + m, ""
}

// zone loads a time zone a person (or the operator) chose; msg says why it is refused.
func (p *Prefs) zone(name string) (*time.Location, string) {
	if loc, ok := p.zones.Load(name); ok {
		return loc.(*time.Location), ""
	}
	switch {
	case name == "":
		return nil, "required; " + zoneForm
	case name == "Local":
		return nil, `"Local" is the server's time zone, not a place; ` + zoneForm
	}
	// LoadLocation reads files named after the zone: keep to what zone names are made of,
	// so input never names a path.
	ok := len(name) <= 64 && name[0] != '/' && !strings.Contains(name, "..")
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("/_+-", c) >= 0
	}
	var loc *time.Location
	if ok {
		var err error
		loc, err = time.LoadLocation(name)
		ok = err == nil
	}
	if !ok {
		return nil, fmt.Sprintf("unknown time zone %s; %s", quote(name), zoneForm)
	}
	p.zones.Store(name, loc) // only names that load: the cache is bounded by the zone database
	return loc, ""
}

// muted checks a list of categories to mute and returns it without repeats, in the order of
// the categories.
func (p *Prefs) muted(in []string) ([]string, error) {
	if len(in) > len(p.categories) {
		return nil, &InputError{"mutedCategories", fmt.Sprintf("%d given; there are only %d categories", len(in), len(p.categories))}
	}
	for _, c := range in {
		if !slices.Contains(p.categories, c) {
			return nil, &InputError{"mutedCategories", fmt.Sprintf("unknown category %s; want some of %s", quote(c), strings.Join(p.categories, ", "))}
		}
	}
	out := []string{}
	for _, c := range p.categories {
		if slices.Contains(in, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// quote quotes a short part of input for a message.
func quote(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return fmt.Sprintf("%q", s)
}
