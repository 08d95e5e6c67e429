package prefs

import (
	"slices"
	"time"
)

// Location is the person's time zone; UTC if TimeZone does not load (Preferences built by
// hand; those from Prefs always load).
func (p Preferences) Location() *time.Location {
	if p.loc != nil {
		return p.loc
	}
	if p.TimeZone != "" && p.TimeZone != "Local" {
		if loc, err := time.LoadLocation(p.TimeZone); err == nil {
			return loc
		}
	}
	return time.UTC
}

// Muted reports whether the person muted the category: its notifications reach the inbox
// but are not pushed.
func (p Preferences) Muted(category string) bool { return slices.Contains(p.MutedCategories, category) }

// QuietUntil reports whether now falls in the person's quiet hours, read on the clock of
// their time zone (start inclusive, end exclusive, a window past midnight such as 22:00-08:00
// running into the next day), and if so the moment the window ends: the next time their clock
// reads the end. Days on which the clock changes are taken as the clock shows them: the
// window ends when the clock jumps past its end, and an hour the clock repeats is quiet both
// times if it is inside the window. No window (both "", or start equal to end) is never quiet.
func (p Preferences) QuietUntil(now time.Time) (time.Time, bool) {
	start, ok1 := clockOf(p.QuietStart)
	end, ok2 := clockOf(p.QuietEnd)
	if !ok1 || !ok2 || start == end {
		return time.Time{}, false
	}
	loc := p.Location()
	local := now.In(loc)
	m := local.Hour()*60 + local.Minute()
	y, mo, d := local.Date()
	switch {
	case start < end && start <= m && m < end:
	case start > end && m >= start:
		d++ // the window runs into tomorrow
	case start > end && m < end:
	default:
		return time.Time{}, false
	}
	until := wallAfter(now, loc, y, mo, d, end)
	if !until.After(now) {
		return time.Time{}, false // cannot happen with a sane zone database; never defer into the past
	}
	return until, true
}

// Day is the person's calendar day at now, "2006-01-02": what a daily cap counts by.
func (p Preferences) Day(now time.Time) string { return now.In(p.Location()).Format(time.DateOnly) }

// NextDay is the start of the person's next calendar day after now: when a daily cap resets.
func (p Preferences) NextDay(now time.Time) time.Time {
	loc := p.Location()
	y, mo, d := now.In(loc).Date()
	return wallAfter(now, loc, y, mo, d+1, 0)
}

// clockOf reads a stored "HH:MM" as minutes after midnight.
func clockOf(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	m, msg := parseClock(s)
	return m, msg == ""
}

// wallAfter is when, after now, the clock of loc on day y-mo-d (normalized as time.Date does)
// first reads minutes after midnight.
func wallAfter(now time.Time, loc *time.Location, y int, mo time.Month, d, minutes int) time.Time {
	h, m := minutes/60, minutes%60
	t := time.Date(y, mo, d, h, m, 0, 0, loc)
	want := time.Date(y, mo, d, h, m, 0, 0, time.UTC)
	if got := wall(t); !got.Equal(want) {
		// The clock never reads that (it jumps forward across it, by an hour or, as Samoa's
		// did in 2011, by a day), so the reading is passed when the clock jumps. time.Date
		// gave a time on one side of the jump, in either direction: the jump is where that
		// time's zone period meets the wanted reading.
		start, end := t.ZoneBounds()
		if got.Before(want) {
			t = end
		} else {
			t = start
		}
	}
	if !t.After(now) {
		// The clock repeats an hour (it was set back) and now is in the second pass: the
		// reading comes again at now's offset.
		_, off := now.In(loc).Zone()
		t = want.Add(-time.Duration(off) * time.Second)
	}
	return t
}

// wall is t's clock reading as if it were UTC, to compare readings.
func wall(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, m, s := t.Clock()
	return time.Date(y, mo, d, h, m, s, t.Nanosecond(), time.UTC)
}
