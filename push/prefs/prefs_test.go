package prefs_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push/prefs"
)

var ctx = context.Background()

var categories = []string{"教育", "就业", "社保", "医疗", "养老", "居住", "婚育", "出行", "民政", "税务", "公积金"}

var shanghai = prefs.Defaults{TimeZone: "Asia/Shanghai", QuietHours: "22:00-08:00"}

func newPrefs(t testing.TB, d prefs.Defaults) (*prefs.Prefs, *redisx.Store) {
	t.Helper()
	store := testenv.Redis(t)
	p, err := prefs.New(store, d, categories)
	if err != nil {
		t.Fatal(err)
	}
	return p, store
}

func ptr[T any](v T) *T { return &v }

func TestNewRefuses(t *testing.T) {
	store := testenv.Redis(t)
	tests := []struct {
		name       string
		store      *redisx.Store
		d          prefs.Defaults
		categories []string
		want       string
	}{
		{"no store", nil, shanghai, categories, "no store"},
		{"no time zone", store, prefs.Defaults{}, categories, "required"},
		{"unknown time zone", store, prefs.Defaults{TimeZone: "Mars/Olympus"}, categories, `unknown time zone "Mars/Olympus"`},
		{"quiet hours without a dash", store, prefs.Defaults{TimeZone: "UTC", QuietHours: "22:00"}, categories, `want "HH:MM-HH:MM"`},
		{"quiet hours past 23", store, prefs.Defaults{TimeZone: "UTC", QuietHours: "22:00-24:00"}, categories, "hour 24 is past 23"},
		{"quiet hours start equals end", store, prefs.Defaults{TimeZone: "UTC", QuietHours: "08:00-08:00"}, categories, "the same as quietStart"},
		{"no categories", store, shanghai, nil, "no categories"},
		{"repeated category", store, shanghai, []string{"教育", "教育"}, "repeated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := prefs.New(tt.store, tt.d, tt.categories)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one with %q", err, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	p, _ := newPrefs(t, shanghai)
	got, err := p.Get(ctx, "pA")
	if err != nil {
		t.Fatal(err)
	}
	if got.QuietStart != "22:00" || got.QuietEnd != "08:00" || got.TimeZone != "Asia/Shanghai" ||
		!got.PushEnabled || got.MutedCategories == nil || len(got.MutedCategories) != 0 {
		t.Errorf("defaults = %+v", got)
	}
	if got.Location().String() != "Asia/Shanghai" {
		t.Errorf("Location = %v", got.Location())
	}

	none, _ := newPrefs(t, prefs.Defaults{TimeZone: "UTC"})
	if got, err = none.Get(ctx, "pA"); err != nil {
		t.Fatal(err)
	}
	if got.QuietStart != "" || got.QuietEnd != "" || got.TimeZone != "UTC" {
		t.Errorf("defaults without quiet hours = %+v", got)
	}
}

// Every refusal of Update, named by its reason: the field, a message saying what is wrong,
// and nothing written.
func TestUpdateRefuses(t *testing.T) {
	p, store := newPrefs(t, shanghai)
	tests := []struct {
		name          string
		u             prefs.Update
		field, inText string
	}{
		{"quietStart without quietEnd", prefs.Update{QuietStart: ptr("22:00")}, "quietEnd", "must be given together with quietStart"},
		{"quietEnd without quietStart", prefs.Update{QuietEnd: ptr("08:00")}, "quietStart", "must be given together with quietEnd"},
		{"quietStart empty, quietEnd set", prefs.Update{QuietStart: ptr(""), QuietEnd: ptr("08:00")}, "quietStart", "empty while quietEnd is set"},
		{"quietEnd empty, quietStart set", prefs.Update{QuietStart: ptr("22:00"), QuietEnd: ptr("")}, "quietEnd", "empty while quietStart is set"},
		{"hour 25", prefs.Update{QuietStart: ptr("25:00"), QuietEnd: ptr("08:00")}, "quietStart", `"25:00": hour 25 is past 23`},
		{"hour 24", prefs.Update{QuietStart: ptr("22:00"), QuietEnd: ptr("24:00")}, "quietEnd", "midnight is 00:00"},
		{"minute 60", prefs.Update{QuietStart: ptr("22:60"), QuietEnd: ptr("08:00")}, "quietStart", "minute 60 is past 59"},
		{"single digits", prefs.Update{QuietStart: ptr("7:5"), QuietEnd: ptr("08:00")}, "quietStart", `"7:5" is not HH:MM; want HH:MM, two digits each`},
		{"single-digit hour", prefs.Update{QuietStart: ptr("22:00"), QuietEnd: ptr("8:00")}, "quietEnd", "is not HH:MM"},
		{"seconds", prefs.Update{QuietStart: ptr("22:00:00"), QuietEnd: ptr("08:00")}, "quietStart", "is not HH:MM"},
		{"no colon", prefs.Update{QuietStart: ptr("22h00"), QuietEnd: ptr("08:00")}, "quietStart", "is not HH:MM"},
		{"sign", prefs.Update{QuietStart: ptr("-1:00"), QuietEnd: ptr("08:00")}, "quietStart", "is not HH:MM"},
		{"spaces", prefs.Update{QuietStart: ptr(" 2:00"), QuietEnd: ptr("08:00")}, "quietStart", "is not HH:MM"},
		{"full-width digits", prefs.Update{QuietStart: ptr("２２:００"), QuietEnd: ptr("08:00")}, "quietStart", "is not HH:MM"},
		{"start equals end", prefs.Update{QuietStart: ptr("08:00"), QuietEnd: ptr("08:00")}, "quietEnd", `set both to "" for no quiet hours`},
		{"time zone empty", prefs.Update{TimeZone: ptr("")}, "timeZone", "required"},
		{"time zone Local", prefs.Update{TimeZone: ptr("Local")}, "timeZone", `"Local" is the server's time zone`},
		{"time zone unknown", prefs.Update{TimeZone: ptr("Mars/Olympus")}, "timeZone", `unknown time zone "Mars/Olympus"; want an IANA time zone name like Asia/Shanghai`},
		{"time zone a path", prefs.Update{TimeZone: ptr("../../etc/passwd")}, "timeZone", "unknown time zone"},
		{"time zone absolute path", prefs.Update{TimeZone: ptr("/usr/share/zoneinfo/UTC")}, "timeZone", "unknown time zone"},
		{"time zone very long", prefs.Update{TimeZone: ptr(strings.Repeat("Asia/", 1000))}, "timeZone", "…"},
		{"time zone an offset", prefs.Update{TimeZone: ptr("+08:00")}, "timeZone", "unknown time zone"},
		{"unknown category", prefs.Update{MutedCategories: []string{"教育", "彩票"}}, "mutedCategories", `unknown category "彩票"; want some of 教育, 就业`},
		{"empty category", prefs.Update{MutedCategories: []string{""}}, "mutedCategories", "unknown category"},
		{"more categories than there are", prefs.Update{MutedCategories: slices.Repeat([]string{"教育"}, 12)}, "mutedCategories", "12 given; there are only 11"},
		{"a bad field among good ones", prefs.Update{PushEnabled: ptr(false), TimeZone: ptr("UTC"), QuietStart: ptr("23:00"), QuietEnd: ptr("7:00")}, "quietEnd", "is not HH:MM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Update(ctx, "pA", tt.u)
			ie, ok := errors.AsType[*prefs.InputError](err)
			if !ok {
				t.Fatalf("err = %v, want *InputError", err)
			}
			if ie.Field != tt.field || !strings.Contains(ie.Message, tt.inText) {
				t.Errorf("err = %q, want field %s and a message with %q", ie, tt.field, tt.inText)
			}
		})
	}
	if keys := testenv.Keys(t, store); len(keys) != 0 {
		t.Errorf("refused updates wrote %v", keys)
	}
}

func TestUpdateChangesOnlyWhatItNames(t *testing.T) {
	p, store := newPrefs(t, shanghai)
	got, err := p.Update(ctx, "pA", prefs.Update{TimeZone: ptr("America/New_York")})
	if err != nil {
		t.Fatal(err)
	}
	if got.TimeZone != "America/New_York" || got.QuietStart != "22:00" || !got.PushEnabled {
		t.Fatalf("after time zone: %+v", got)
	}
	steps := []struct {
		u     prefs.Update
		check func(prefs.Preferences) bool
	}{
		{prefs.Update{PushEnabled: ptr(false)}, func(p prefs.Preferences) bool {
			return !p.PushEnabled && p.TimeZone == "America/New_York"
		}},
		{prefs.Update{MutedCategories: []string{"医疗", "教育", "医疗"}}, func(p prefs.Preferences) bool {
			return slices.Equal(p.MutedCategories, []string{"教育", "医疗"}) && p.Muted("医疗") && !p.Muted("社保") && !p.PushEnabled
		}},
		{prefs.Update{QuietStart: ptr("23:30"), QuietEnd: ptr("06:45")}, func(p prefs.Preferences) bool {
			return p.QuietStart == "23:30" && p.QuietEnd == "06:45" && len(p.MutedCategories) == 2 && p.TimeZone == "America/New_York"
		}},
		{prefs.Update{}, func(p prefs.Preferences) bool { // nothing to change: a read
			return p.QuietStart == "23:30" && !p.PushEnabled
		}},
		{prefs.Update{MutedCategories: []string{}}, func(p prefs.Preferences) bool {
			return len(p.MutedCategories) == 0 && p.QuietStart == "23:30"
		}},
		// Clearing quiet hours is the person's choice, kept over the operator's default.
		{prefs.Update{QuietStart: ptr(""), QuietEnd: ptr("")}, func(p prefs.Preferences) bool {
			return p.QuietStart == "" && p.QuietEnd == "" && !p.PushEnabled
		}},
		{prefs.Update{PushEnabled: ptr(true)}, func(p prefs.Preferences) bool {
			return p.PushEnabled && p.QuietStart == "" && p.TimeZone == "America/New_York"
		}},
	}
	for i, s := range steps {
		got, err := p.Update(ctx, "pA", s.u)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		again, err := p.Get(ctx, "pA")
		if err != nil {
			t.Fatal(err)
		}
		if !s.check(got) || !s.check(again) {
			t.Fatalf("step %d: Update gave %+v, Get %+v", i, got, again)
		}
	}
	// Only the person's one hash, in the person's slot.
	if keys := testenv.Keys(t, store); !slices.Equal(keys, []string{store.Key("{p:pA}:prefs")}) {
		t.Errorf("keys %v", keys)
	}
	if other, err := p.Get(ctx, "pB"); err != nil {
		t.Fatal(err)
	} else if other.TimeZone != "Asia/Shanghai" || other.QuietStart != "22:00" {
		t.Errorf("pB = %+v", other)
	}
}

// Values stored before the catalog or the zone database changed give way to the defaults
// instead of failing.
func TestStaleStoredValues(t *testing.T) {
	p, store := newPrefs(t, shanghai)
	store.Client.HSet(ctx, store.Key("{p:pA}:prefs"), "tz", "Atlantis/Capital", "muted", `["教育","彩票"]`, "quiet_start", "99:00", "quiet_end", "08:00")
	got, err := p.Get(ctx, "pA")
	if err != nil {
		t.Fatal(err)
	}
	if got.TimeZone != "Asia/Shanghai" || !slices.Equal(got.MutedCategories, []string{"教育"}) || got.QuietStart != "22:00" {
		t.Errorf("Get = %+v", got)
	}
}

func TestQueueGet(t *testing.T) {
	p, store := newPrefs(t, shanghai)
	if _, err := p.Update(ctx, "pA", prefs.Update{PushEnabled: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	var a, b func() (prefs.Preferences, error)
	if _, err := store.Client.Pipelined(ctx, func(pl redis.Pipeliner) error {
		a = p.QueueGet(ctx, pl, "pA")
		b = p.QueueGet(ctx, pl, "pB")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pa, err1 := a()
	pb, err2 := b()
	if err1 != nil || err2 != nil || pa.PushEnabled || !pb.PushEnabled || pb.TimeZone != "Asia/Shanghai" {
		t.Errorf("pA %+v %v, pB %+v %v", pa, err1, pb, err2)
	}
}

func TestMalformedPersonIDs(t *testing.T) {
	p, _ := newPrefs(t, shanghai)
	for _, pid := range []string{"", "a}b", "{p:x}"} {
		if _, err := p.Get(ctx, pid); err == nil {
			t.Errorf("Get for %q accepted", pid)
		}
		if _, err := p.Update(ctx, pid, prefs.Update{PushEnabled: ptr(true)}); err == nil {
			t.Errorf("Update for %q accepted", pid)
		}
	}
}

// Whatever a client sends as quiet hours, Update answers with preferences or an InputError,
// never a panic, and what it keeps reads back as a window QuietUntil can use.
func FuzzUpdateQuietHours(f *testing.F) {
	p, _ := newPrefs(f, shanghai)
	for _, s := range [][2]string{{"22:00", "08:00"}, {"25:00", "08:00"}, {"7:5", "08:00"}, {"", ""}, {"24:00", "00:00"}, {"00:00", "23:59"}, {"\xff\xfe:00", "0０:00"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, start, end string) {
		got, err := p.Update(ctx, "pF", prefs.Update{QuietStart: &start, QuietEnd: &end})
		if err != nil {
			if _, ok := errors.AsType[*prefs.InputError](err); !ok {
				t.Fatalf("err = %v, want *InputError", err)
			}
			return
		}
		if got.QuietStart != start || got.QuietEnd != end {
			t.Fatalf("kept %q-%q, sent %q-%q", got.QuietStart, got.QuietEnd, start, end)
		}
		if start != "" {
			if len(start) != 5 || len(end) != 5 || start == end {
				t.Fatalf("accepted %q-%q", start, end)
			}
		}
	})
}
