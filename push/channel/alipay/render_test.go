package alipay

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tongban/tongban/push/channel"
)

func TestTruncate(t *testing.T) {
	cases := []struct {
		name, in string
		max      int
		want     string
	}{
		{"short stays", "待遇已发放", 20, "待遇已发放"},
		{"exactly max stays", strings.Repeat("字", 20), 20, strings.Repeat("字", 20)},
		{"long cut on a rune with an ellipsis", strings.Repeat("字", 21), 20, strings.Repeat("字", 19) + "…"},
		{"mixed widths count runes", "ab养老cd保险ef", 6, "ab养老c…"},
		{"emoji is one rune", "😀😀😀", 2, "😀…"},
		{"line breaks become one space", "第一行\n\n第二行", 20, "第一行 第二行"},
		{"invalid UTF-8 dropped", "ab\xffcd", 20, "abcd"},
		{"max one", "abc", 1, "a"},
		{"empty", "", 5, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := truncate(c.in, c.max)
			if got != c.want {
				t.Fatalf("truncate(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
			}
			if !utf8.ValidString(got) || utf8.RuneCountInString(got) > c.max {
				t.Fatalf("%q is not valid or too long", got)
			}
		})
	}
}

func TestRender(t *testing.T) {
	n := channel.Note{ID: "a b/1", Service: "svc", Title: strings.Repeat("标", 30), Body: "正文", Category: "c",
		Created: time.Date(2026, 12, 31, 17, 30, 0, 0, time.UTC)}
	tp := Template{Page: "pages/n?id={id}", Fields: map[string]string{
		"keyword1": "title", "keyword2": "date", "keyword3": "time", "keyword4": "service",
		"keyword5": "text:请及时查看", "keyword6": "category", "keyword7": "body"}}
	page, data, ok := render(tp, n)
	if !ok || page != "pages/n?id=a+b%2F1" {
		t.Fatalf("page %q ok %v", page, ok)
	}
	var got map[string]struct{ Value string }
	if err := json.Unmarshal([]byte(data), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"keyword1": strings.Repeat("标", 19) + "…", "keyword2": "2027-01-01", "keyword3": "2027-01-01 01:30",
		"keyword4": "svc", "keyword5": "请及时查看", "keyword6": "c", "keyword7": "正文",
	}
	for k, v := range want {
		if got[k].Value != v {
			t.Errorf("%s = %q, want %q", k, got[k].Value, v)
		}
	}
	tp.MaxRunes = 40
	_, data, _ = render(tp, n)
	if !strings.Contains(data, strings.Repeat("标", 30)) {
		t.Error("MaxRunes 40 cut a 30-character title")
	}
}

func TestRenderDataOverLimit(t *testing.T) {
	f := map[string]string{}
	for i := range 120 {
		f["keyword"+strings.Repeat("x", i)] = "title"
	}
	_, _, ok := render(Template{Page: "p", Fields: f, MaxRunes: 20}, channel.Note{Title: strings.Repeat("标", 20)})
	if ok {
		t.Fatal("data over 2048 characters rendered")
	}
}

func TestRenderLongIDKeepsPageWithinLimit(t *testing.T) {
	page, _, _ := render(Template{Page: "pages/n?id={id}", Fields: map[string]string{"k": "title"}},
		channel.Note{ID: strings.Repeat("i", 200)})
	if page != "pages/n?id=" {
		t.Fatalf("page %q", page)
	}
}
