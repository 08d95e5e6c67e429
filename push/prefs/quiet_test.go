package prefs_test

import (
	"testing"
	"time"

	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push/prefs"
)

func zone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func window(tz, start, end string) prefs.Preferences {
	return prefs.Preferences{TimeZone: tz, QuietStart: start, QuietEnd: end, PushEnabled: true}
}

// loaded is the window as Prefs returns it, its zone loaded once: for the loops.
func loaded(t testing.TB, tz, start, end string) prefs.Preferences {
	t.Helper()
	q := ""
	if start != "" {
		q = start + "-" + end
	}
	p, err := prefs.New(testenv.Embedded(t), prefs.Defaults{TimeZone: tz, QuietHours: q}, categories)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Get(ctx, "pX")
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestQuietUntil(t *testing.T) {
	sh, ny := zone(t, "Asia/Shanghai"), zone(t, "America/New_York")
	at := func(loc *time.Location, y int, mo time.Month, d, h, m, s int) time.Time {
		return time.Date(y, mo, d, h, m, s, 0, loc)
	}
	utc := func(y int, mo time.Month, d, h, m int) time.Time { return time.Date(y, mo, d, h, m, 0, 0, time.UTC) }
	night := window("Asia/Shanghai", "22:00", "08:00")
	tests := []struct {
		name string
		p    prefs.Preferences
		now  time.Time
		want time.Time // zero: not quiet
	}{
		{"before the window", night, at(sh, 2025, 6, 1, 21, 59, 59), time.Time{}},
		{"at the start, inclusive", night, at(sh, 2025, 6, 1, 22, 0, 0), at(sh, 2025, 6, 2, 8, 0, 0)},
		{"before midnight", night, at(sh, 2025, 6, 1, 23, 30, 0), at(sh, 2025, 6, 2, 8, 0, 0)},
		{"at midnight", night, at(sh, 2025, 6, 2, 0, 0, 0), at(sh, 2025, 6, 2, 8, 0, 0)},
		{"just before the end", night, at(sh, 2025, 6, 2, 7, 59, 59), at(sh, 2025, 6, 2, 8, 0, 0)},
		{"at the end, exclusive", night, at(sh, 2025, 6, 2, 8, 0, 0), time.Time{}},
		{"midday", night, at(sh, 2025, 6, 2, 12, 0, 0), time.Time{}},
		{"read in the person's zone, not now's", night, utc(2025, 6, 1, 15, 0), utc(2025, 6, 2, 0, 0)},
		{"across the month's end", night, at(sh, 2025, 6, 30, 23, 0, 0), at(sh, 2025, 7, 1, 8, 0, 0)},
		{"within one day, inside", window("Asia/Shanghai", "12:00", "13:30"), at(sh, 2025, 6, 1, 13, 29, 0), at(sh, 2025, 6, 1, 13, 30, 0)},
		{"within one day, after", window("Asia/Shanghai", "12:00", "13:30"), at(sh, 2025, 6, 1, 13, 30, 0), time.Time{}},
		{"within one day, before", window("Asia/Shanghai", "12:00", "13:30"), at(sh, 2025, 6, 1, 11, 59, 0), time.Time{}},
		{"no quiet hours", window("Asia/Shanghai", "", ""), at(sh, 2025, 6, 1, 23, 0, 0), time.Time{}},
		{"start equal to end is no window", window("Asia/Shanghai", "08:00", "08:00"), at(sh, 2025, 6, 1, 8, 0, 0), time.Time{}},
		{"malformed is no window", window("Asia/Shanghai", "25:00", "08:00"), at(sh, 2025, 6, 1, 23, 0, 0), time.Time{}},

		// New York springs forward on 2025-03-09 at 02:00 EST to 03:00 EDT: that night is an
		// hour shorter, and 08:00 is 12:00 UTC, not 13:00.
		{"night the clocks go forward", window("America/New_York", "22:00", "08:00"), at(ny, 2025, 3, 8, 23, 0, 0), utc(2025, 3, 9, 12, 0)},
		{"night the clocks go back", window("America/New_York", "22:00", "08:00"), at(ny, 2025, 11, 1, 23, 0, 0), utc(2025, 11, 2, 13, 0)},
		{"after the jump forward", window("America/New_York", "22:00", "08:00"), utc(2025, 3, 9, 7, 30), utc(2025, 3, 9, 12, 0)},
		// A window ending at 02:30 on the night the clock skips from 02:00 to 03:00 ends at
		// the jump.
		{"end skipped by the clock", window("America/New_York", "22:00", "02:30"), at(ny, 2025, 3, 9, 1, 45, 0), utc(2025, 3, 9, 7, 0)},
		{"start skipped by the clock", window("America/New_York", "02:30", "04:00"), utc(2025, 3, 9, 7, 0), utc(2025, 3, 9, 8, 0)},
		// 01:00-01:59 happens twice on 2025-11-02 (EDT, then EST): quiet both times.
		{"repeated hour, first pass", window("America/New_York", "00:30", "01:30"), utc(2025, 11, 2, 5, 15), utc(2025, 11, 2, 5, 30)},
		{"repeated hour, between", window("America/New_York", "00:30", "01:30"), utc(2025, 11, 2, 5, 40), time.Time{}},
		{"repeated hour, second pass", window("America/New_York", "00:30", "01:30"), utc(2025, 11, 2, 6, 15), utc(2025, 11, 2, 6, 30)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.p.QuietUntil(tt.now)
			if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
				t.Fatalf("QuietUntil(%v) = %v, %v; want %v", tt.now, got, ok, tt.want)
			}
		})
	}
}

// Over a year, every few minutes, in zones with and without DST (one with a half-hour DST,
// one whose clock skips midnight): a quiet moment's end is after it, the clock there reads
// outside the window, and just before it inside.
func TestQuietUntilOverAYear(t *testing.T) {
	zones := []string{"Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata"}
	windows := [][2]string{{"22:00", "08:00"}, {"00:00", "06:00"}, {"01:30", "02:30"}, {"12:00", "13:00"}, {"23:59", "00:00"}}
	for _, tz := range zones {
		for _, w := range windows {
			p := loaded(t, tz, w[0], w[1])
			for now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC); now.Year() < 2025; now = now.Add(17 * time.Minute) {
				until, ok := p.QuietUntil(now)
				if !ok {
					continue
				}
				if !until.After(now) || until.Sub(now) > 24*time.Hour {
					t.Fatalf("%s %v: QuietUntil(%v) = %v", tz, w, now, until)
				}
				if _, still := p.QuietUntil(until); still && until.Sub(now) < 23*time.Hour {
					t.Fatalf("%s %v: QuietUntil(%v) = %v, still quiet then", tz, w, now, until)
				}
				if _, before := p.QuietUntil(until.Add(-time.Second)); !before {
					t.Fatalf("%s %v: QuietUntil(%v) = %v, but not quiet a second before", tz, w, now, until)
				}
			}
		}
	}
}

func TestDayAndNextDay(t *testing.T) {
	sh, ny := zone(t, "Asia/Shanghai"), zone(t, "America/New_York")
	tests := []struct {
		name    string
		tz      string
		now     time.Time
		day     string
		nextDay time.Time
	}{
		{"a second before local midnight", "Asia/Shanghai", time.Date(2025, 6, 1, 23, 59, 59, 0, sh), "2025-06-01", time.Date(2025, 6, 2, 0, 0, 0, 0, sh)},
		{"at local midnight", "Asia/Shanghai", time.Date(2025, 6, 2, 0, 0, 0, 0, sh), "2025-06-02", time.Date(2025, 6, 3, 0, 0, 0, 0, sh)},
		{"local midnight is 16:00 UTC", "Asia/Shanghai", time.Date(2025, 6, 1, 16, 0, 0, 0, time.UTC), "2025-06-02", time.Date(2025, 6, 2, 16, 0, 0, 0, time.UTC)},
		{"year's end", "Asia/Shanghai", time.Date(2025, 12, 31, 12, 0, 0, 0, sh), "2025-12-31", time.Date(2026, 1, 1, 0, 0, 0, 0, sh)},
		{"day before the clocks go forward", "America/New_York", time.Date(2025, 3, 8, 12, 0, 0, 0, ny), "2025-03-08", time.Date(2025, 3, 9, 5, 0, 0, 0, time.UTC)},
		{"the 23-hour day", "America/New_York", time.Date(2025, 3, 9, 1, 0, 0, 0, ny), "2025-03-09", time.Date(2025, 3, 10, 4, 0, 0, 0, time.UTC)},
		{"the 25-hour day", "America/New_York", time.Date(2025, 11, 2, 1, 30, 0, 0, ny), "2025-11-02", time.Date(2025, 11, 3, 5, 0, 0, 0, time.UTC)},
		// Chile moves its clocks at midnight: 2024-09-08 begins at 01:00 -03.
		{"a day whose midnight is skipped", "America/Santiago", time.Date(2024, 9, 7, 12, 0, 0, 0, time.UTC), "2024-09-07", time.Date(2024, 9, 8, 4, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := window(tt.tz, "", "")
			if got := p.Day(tt.now); got != tt.day {
				t.Errorf("Day = %s, want %s", got, tt.day)
			}
			if got := p.NextDay(tt.now); !got.Equal(tt.nextDay) {
				t.Errorf("NextDay = %v, want %v", got, tt.nextDay)
			}
		})
	}
}

// NextDay is always the first moment of another day, in any zone, any day of the year.
func TestNextDayOverAYear(t *testing.T) {
	for _, tz := range []string{"Asia/Shanghai", "America/New_York", "America/Santiago", "Australia/Lord_Howe", "Pacific/Chatham", "UTC"} {
		p := loaded(t, tz, "", "")
		for now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC); now.Year() < 2025; now = now.Add(53 * time.Minute) {
			next := p.NextDay(now)
			if !next.After(now) || next.Sub(now) > 25*time.Hour ||
				p.Day(next) == p.Day(now) || p.Day(next.Add(-time.Nanosecond)) != p.Day(now) {
				t.Fatalf("%s: NextDay(%v) = %v (days %s, %s)", tz, now, next, p.Day(now), p.Day(next))
			}
		}
	}
}

func TestLocationOfHandMadePreferences(t *testing.T) {
	if got := (prefs.Preferences{TimeZone: "Mars/Olympus"}).Location(); got != time.UTC {
		t.Errorf("unknown zone: %v, want UTC", got)
	}
	if got := (prefs.Preferences{TimeZone: "Local"}).Location(); got != time.UTC {
		t.Errorf("Local: %v, want UTC", got)
	}
	if got := (prefs.Preferences{TimeZone: "Asia/Tokyo"}).Location(); got.String() != "Asia/Tokyo" {
		t.Errorf("Asia/Tokyo: %v", got)
	}
}
