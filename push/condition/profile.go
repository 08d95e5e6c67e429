package condition

import (
	"time"

	"github.com/tongban/tongban/internal/division"
)

// Region is a place as rules see it: `person.hukou.city == "嘉兴"`. Province and City are short
// names, District the full name; see division.Region.
type Region struct {
	Code     string `cel:"code" json:"code,omitempty"`
	Province string `cel:"province" json:"province,omitempty"`
	City     string `cel:"city" json:"city,omitempty"`
	District string `cel:"district" json:"district,omitempty"`
}

// Person is the profile a rule sees as `person`. Unknown values are zero, which rules test with
// has(): `has(person.birthDate)` is false for an unknown birth date, which otherwise reads as
// 1970-01-01.
type Person struct {
	Age       int64          `cel:"age"`
	BirthDate time.Time      `cel:"birthDate"`
	Gender    string         `cel:"gender"` // "M" or "F"
	Hukou     Region         `cel:"hukou"`
	Residence Region         `cel:"residence"`
	Apps      []string       `cel:"apps"`
	Facts     map[string]any `cel:"facts"` // values as Normalize leaves them
}

// Event is the event a rule sees as `event`. In a backfill there is none and rules see the zero
// Event, in which `has(event.type)` is false.
type Event struct {
	Type       string         `cel:"type"`
	OccurredAt time.Time      `cel:"occurredAt"`
	Attributes map[string]any `cel:"attributes"` // values as Normalize leaves them
}

// RegionOf names a division code as precisely as the division table allows; a malformed or
// unknown code keeps only the code, so rules comparing names simply do not match.
func RegionOf(code string) Region {
	r, ok := division.Lookup(code)
	if !ok {
		return Region{Code: code}
	}
	return fromDivision(r)
}

func fromDivision(r division.Region) Region {
	return Region{Code: r.Code, Province: r.Province, City: r.City, District: r.District}
}

// AgeAt is the age in whole years on now's calendar date, in now's location: a person born on
// 1966-11-27 turns 60 on 2026-11-27, whatever the hour. Someone born on 29 February turns a
// year older on 1 March in common years. An age before birth is 0.
func AgeAt(birth, now time.Time) int64 {
	if birth.IsZero() {
		return 0
	}
	// The birth date is a date, not an instant: read it in its own location, not converted.
	by, bm, bd := birth.Date()
	ny, nm, nd := now.Date()
	age := int64(ny - by)
	if nm < bm || nm == bm && nd < bd {
		age--
	}
	if age < 0 {
		return 0
	}
	return age
}
