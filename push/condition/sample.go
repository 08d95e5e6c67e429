package condition

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tongban/tongban/internal/division"
)

// ParseSample reads a preview sample: a profile, and optionally an event, that a rule author
// evaluates a draft condition against. Every key is optional:
//
//	{"birthDate": "1966-11-01", "age": 60, "gender": "M",
//	 "hukou": {"code": "330402"}, "residence": {"city": "嘉兴"},
//	 "apps": ["zheliban"], "facts": {...},
//	 "event": {"type": "birth.registered", "occurredAt": "2026-11-27T10:00:00+08:00", "attributes": {...}}}
//
// birthDate is a date (YYYY-MM-DD, read in now's location) or an RFC 3339 time, and gives the
// age at now unless age is given. A region is a division code, completed with its names, or
// names (any of province, city, district), completed with the most specific code; names the
// division table cannot place are refused, since a rule could never match them either. Without
// an event the sample is a backfill; an event's occurredAt defaults to now. Unknown keys and
// values of the wrong type are errors that name the key.
func ParseSample(v map[string]any, now time.Time) (Person, Event, error) {
	var p Person
	var ev Event
	ageGiven := false
	// Keys in order, so that a sample with several mistakes always reports the same one first.
	for _, key := range slices.Sorted(maps.Keys(v)) {
		val, err := normalize(v[key], key)
		if err != nil {
			return Person{}, Event{}, fmt.Errorf("condition: sample: %w", err)
		}
		switch key {
		case "birthDate":
			s, err := stringAt(val, key)
			if err != nil {
				return Person{}, Event{}, err
			}
			if p.BirthDate, err = parseBirthDate(s, now.Location()); err != nil {
				return Person{}, Event{}, fmt.Errorf("condition: sample: birthDate: %w", err)
			}
		case "age":
			age, ok := val.(int64)
			if !ok || age < 0 || age > maxAge {
				return Person{}, Event{}, fmt.Errorf("condition: sample: age: want a whole number of years from 0 to %d, got %v", maxAge, val)
			}
			p.Age, ageGiven = age, true
		case "gender":
			s, err := stringAt(val, key)
			if err != nil {
				return Person{}, Event{}, err
			}
			if s != "M" && s != "F" {
				return Person{}, Event{}, fmt.Errorf("condition: sample: gender: want \"M\" or \"F\", got %q", s)
			}
			p.Gender = s
		case "hukou":
			if p.Hukou, err = sampleRegion(val, key); err != nil {
				return Person{}, Event{}, err
			}
		case "residence":
			if p.Residence, err = sampleRegion(val, key); err != nil {
				return Person{}, Event{}, err
			}
		case "apps":
			if p.Apps, err = stringsAt(val, key); err != nil {
				return Person{}, Event{}, err
			}
		case "facts":
			if p.Facts, err = objectAt(val, key); err != nil {
				return Person{}, Event{}, err
			}
		case "event":
			if ev, err = sampleEvent(val, now); err != nil {
				return Person{}, Event{}, err
			}
		default:
			return Person{}, Event{}, fmt.Errorf("condition: sample: %s: unknown key (want birthDate, age, gender, hukou, residence, apps, facts or event)", key)
		}
	}
	if !ageGiven && !p.BirthDate.IsZero() {
		p.Age = AgeAt(p.BirthDate, now)
	}
	return p, ev, nil
}

// maxAge bounds a sample's age: older than any living person, young enough to catch a year typed
// as an age.
const maxAge = 150

func parseBirthDate(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want YYYY-MM-DD or an RFC 3339 time, got %q", s)
	}
	return t, nil
}

func sampleRegion(v any, key string) (Region, error) {
	obj, err := objectAt(v, key)
	if err != nil {
		return Region{}, err
	}
	var code, province, city, district string
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		s, err := stringAt(obj[k], key+"."+k)
		if err != nil {
			return Region{}, err
		}
		switch k {
		case "code":
			code = s
		case "province":
			province = s
		case "city":
			city = s
		case "district":
			district = s
		default:
			return Region{}, fmt.Errorf("condition: sample: %s.%s: unknown key (want code, province, city or district)", key, k)
		}
	}
	named := province != "" || city != "" || district != ""
	switch {
	case code != "" && named:
		return Region{}, fmt.Errorf("condition: sample: %s: give either a code or names, not both", key)
	case code != "":
		r, ok := division.Lookup(code)
		if !ok {
			return Region{}, fmt.Errorf("condition: sample: %s.code: %q is not a division code", key, code)
		}
		return fromDivision(r), nil
	case named:
		r, ok := division.Find(province, city, district)
		if !ok || city != "" && r.City == "" || district != "" && r.District == "" {
			return Region{}, fmt.Errorf("condition: sample: %s: the division table cannot place %q", key, joinNames(province, city, district))
		}
		return fromDivision(r), nil
	}
	return Region{}, nil
}

func joinNames(names ...string) string {
	return strings.Join(slices.DeleteFunc(names, func(n string) bool { return n == "" }), " ")
}

func sampleEvent(v any, now time.Time) (Event, error) {
	obj, err := objectAt(v, "event")
	if err != nil {
		return Event{}, err
	}
	ev := Event{OccurredAt: now}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		raw, key := obj[k], "event."+k
		switch k {
		case "type":
			if ev.Type, err = stringAt(raw, key); err != nil {
				return Event{}, err
			}
		case "occurredAt":
			s, err := stringAt(raw, key)
			if err != nil {
				return Event{}, err
			}
			if ev.OccurredAt, err = time.Parse(time.RFC3339, s); err != nil {
				return Event{}, fmt.Errorf("condition: sample: %s: want an RFC 3339 time, got %q", key, s)
			}
		case "attributes":
			if ev.Attributes, err = objectAt(raw, key); err != nil {
				return Event{}, err
			}
		default:
			return Event{}, fmt.Errorf("condition: sample: %s: unknown key (want type, occurredAt or attributes)", key)
		}
	}
	if ev.Type == "" {
		// An event without a type would look like a backfill to every rule.
		return Event{}, fmt.Errorf("condition: sample: event.type: required when an event is given")
	}
	return ev, nil
}

func stringAt(v any, key string) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("condition: sample: %s: want a string, got %s", key, kindOf(v))
	}
	return s, nil
}

func stringsAt(v any, key string) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("condition: sample: %s: want a list of strings, got %s", key, kindOf(v))
	}
	out := make([]string, len(list))
	for i, e := range list {
		s, err := stringAt(e, fmt.Sprintf("%s[%d]", key, i))
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

func objectAt(v any, key string) (map[string]any, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("condition: sample: %s: want an object, got %s", key, kindOf(v))
	}
	return obj, nil
}
