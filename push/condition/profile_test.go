package condition

import (
	"testing"
	"time"
)

func TestAgeAt(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, shanghaiTZ) }
	tests := []struct {
		name       string
		birth, now time.Time
		want       int64
	}{
		{"birthday today", day(1966, 11, 27), day(2026, 11, 27), 60},
		{"birthday today, late evening", day(1966, 11, 27), day(2026, 11, 27).Add(23*time.Hour + 59*time.Minute), 60},
		{"day before birthday", day(1966, 11, 27), day(2026, 11, 26).Add(23 * time.Hour), 59},
		{"day after birthday", day(1966, 11, 27), day(2026, 11, 28), 60},
		{"earlier month", day(1966, 11, 27), day(2026, 10, 30), 59},
		{"leap day, common year, 28 February", day(2000, 2, 29), day(2025, 2, 28), 24},
		{"leap day, common year, 1 March", day(2000, 2, 29), day(2025, 3, 1), 25},
		{"leap day, leap year", day(2000, 2, 29), day(2024, 2, 29), 24},
		{"newborn", day(2026, 11, 27), day(2026, 11, 27), 0},
		{"before birth", day(2027, 1, 1), day(2026, 11, 27), 0},
		{"unknown birth date", time.Time{}, day(2026, 11, 27), 0},
		// 16:30 UTC on the 26th is already the 27th in Shanghai: age follows now's calendar.
		{"now's location decides", day(1966, 11, 27), time.Date(2026, 11, 26, 16, 30, 0, 0, time.UTC).In(shanghaiTZ), 60},
		{"same instant in UTC", day(1966, 11, 27), time.Date(2026, 11, 26, 16, 30, 0, 0, time.UTC), 59},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AgeAt(tt.birth, tt.now); got != tt.want {
				t.Errorf("AgeAt(%v, %v) = %d, want %d", tt.birth, tt.now, got, tt.want)
			}
		})
	}
}

func TestRegionOf(t *testing.T) {
	tests := []struct {
		code string
		want Region
	}{
		{"330402", Region{"330402", "浙江", "嘉兴", "南湖区"}},
		{"310104", Region{"310104", "上海", "上海", "徐汇区"}},
		{"440305", Region{"440305", "广东", "", ""}},
		{"999999", Region{Code: "999999"}},
		{"33040", Region{Code: "33040"}},
		{"", Region{}},
	}
	for _, tt := range tests {
		if got := RegionOf(tt.code); got != tt.want {
			t.Errorf("RegionOf(%q) = %+v, want %+v", tt.code, got, tt.want)
		}
	}
}
