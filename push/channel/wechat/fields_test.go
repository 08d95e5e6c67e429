package wechat

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tongban/tongban/internal/fakewechat"
	"github.com/tongban/tongban/push/channel"
)

// Values are fitted to their key's type on a character boundary.
func TestRenderFitsTheType(t *testing.T) {
	cases := []struct {
		name, key, source, in, want string
	}{
		{"thing_25_chinese_cut_to_20", "thing1", "title", strings.Repeat("通", 25), strings.Repeat("通", 19) + "…"},
		{"thing_20_chinese_kept", "thing1", "title", strings.Repeat("办", 20), strings.Repeat("办", 20)},
		{"thing_mixed_ascii", "thing1", "title", "2026年度Subsidy补贴 payment notice", "2026年度Subsidy补贴 pay…"},
		{"thing_newlines_become_spaces", "thing1", "body", "第一行\n\n第二行\t完", "第一行 第二行 完"},
		{"thing_empty_is_a_dash", "thing1", "body", " \n", "-"},
		{"thing_no_space_before_ellipsis", "thing1", "title", strings.Repeat("a", 18) + " bcd", strings.Repeat("a", 18) + "…"},
		{"phrase_keeps_chinese", "phrase2", "category", "补贴 subsidy 发放中啊", "补贴发放中"},
		{"name_chinese_10", "name3", "service", "浙江省杭州市西湖区民政局社会救助", "浙江省杭州市西湖区民"},
		{"name_letters_20", "name3", "service", "Hangzhou Civil Affairs Bureau", "Hangzhou Civil Affai"},
		{"character_string_ascii_only", "character_string4", "category", "social-保障-security-benefit-2026-long", "social--security-benefit-2026-lon"[:32]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := parseField(c.key, c.source)
			if err != nil {
				t.Fatal(err)
			}
			n := channel.Note{Title: c.in, Body: c.in, Category: c.in, ServiceName: c.in}
			got, ok := f.value(n, shanghai)
			if !ok || got != c.want {
				t.Fatalf("got %q (ok %v), want %q", got, ok, c.want)
			}
			if !fakewechat.CheckValue(c.key, got) {
				t.Fatalf("the fake refuses %q for %s", got, c.key)
			}
		})
	}
}

func TestRenderDates(t *testing.T) {
	at := time.Date(2026, 1, 31, 16, 5, 0, 0, time.UTC) // 2026-02-01 00:05 in China
	for key, want := range map[string]string{"date1": "2026年2月1日", "time2": "2026年2月1日 00:05"} {
		src := map[string]string{"date1": "date", "time2": "time"}[key]
		f, err := parseField(key, src)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := f.value(channel.Note{Created: at}, shanghai)
		if !ok || got != want || !fakewechat.CheckValue(key, got) {
			t.Fatalf("%s = %q (ok %v), want %q", key, got, ok, want)
		}
	}
}

// A phrase from a title without Chinese has nothing valid to show: Fail, no call.
func TestRenderNothingValidFails(t *testing.T) {
	w := newWorld(t, func(o *Options) { o.MiniPrograms[0].Templates[0].Fields["phrase4"] = "title" })
	m := w.subscriber("o-person-000000r", false)
	m.Note.Title = "Benefit paid"
	if r := w.sendOne(m); r.Outcome != channel.Fail || r.Reason != "47003" {
		t.Fatalf("got %+v", r)
	}
	if n := w.fake.Requests("send", testAppID); n != 0 {
		t.Fatalf("the fake saw %d sends", n)
	}
}

// Whatever the note says, a rendered value is valid UTF-8 the fake (WeChat's rules) accepts,
// or the field says it has nothing valid.
func FuzzRender(f *testing.F) {
	f.Add("thing1", "title", "关于2026年度城乡居民基本医疗保险个人缴费补贴发放的通知")
	f.Add("phrase2", "category", "补贴 subsidy")
	f.Add("name3", "service", "A李\x00b")
	f.Add("character_string4", "category", "é\xff-x")
	f.Add("thing5", "body", "\n\t \u2028")
	f.Fuzz(func(t *testing.T, key, source, text string) {
		fl, err := parseField(key, source)
		if err != nil {
			return
		}
		got, ok := fl.value(channel.Note{Title: text, Body: text, Category: text, ServiceName: text, Created: time.Unix(int64(len(text))*86400, 0)}, time.UTC)
		if !ok {
			return
		}
		if !utf8.ValidString(got) {
			t.Fatalf("%s from %q: invalid UTF-8 %q", key, text, got)
		}
		if !fakewechat.CheckValue(key, got) {
			t.Fatalf("%s from %q: the fake refuses %q", key, text, got)
		}
	})
}
