package push

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRender(t *testing.T) {
	for _, c := range []struct{ name, tmpl, person, service, want string }{
		{"both placeholders", "{{name}}，{{service}}已开通", "王芳", "老年人乘车优惠", "王芳，老年人乘车优惠已开通"},
		{"spaces inside the braces", "{{ name }}", "王芳", "", "王芳"},
		{"no name known", "{{name}}好", "", "", "您好"},
		{"a name that looks like a placeholder is not expanded", "{{name}}", "{{service}}", "秘密", "{{service}}"},
		{"control characters are dropped", "{{name}}", "王\x1b[31m芳\n", "", "王[31m芳"},
		{"unknown placeholders stay as written", "{{x}}", "a", "b", "{{x}}"},
		{"bidi controls in a name are dropped", "{{name}}", "王\u202E芳\u2066x\u2069\u200F", "", "王芳x"},
		{"zero-width characters in a template are dropped", "补贴\u200B已\uFEFF到账\u200D", "", "", "补贴已到账"},
		{"an unclosed placeholder stays as written", "a {{name", "王芳", "", "a {{name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := render(c.tmpl, c.person, c.service); got != c.want {
				t.Fatalf("render(%q) = %q, want %q", c.tmpl, got, c.want)
			}
		})
	}
}

func TestCheckTemplateRejects(t *testing.T) {
	for _, c := range []struct{ name, tmpl, fragment string }{
		{"empty", "  ", "empty"},
		{"too long", strings.Repeat("长", 101), "at most 100"},
		{"unknown placeholder", "{{idNumber}}", "unknown placeholder {{idNumber}} at byte 0"},
		{"unclosed placeholder", "您好{{name", "not closed"},
		{"control character", "a\x00b", "control character"},
		{"invalid UTF-8", "a\xffb", "UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkTemplate("title", c.tmpl, 100)
			if err == nil || !strings.Contains(err.Error(), c.fragment) {
				t.Fatalf("got %v, want %q", err, c.fragment)
			}
		})
	}
	if err := checkTemplate("title", "{{name}}，{{ service }}", 100); err != nil {
		t.Fatalf("a good title refused: %v", err)
	}
}

// Whatever a service owner writes, a template that passes the check renders to valid text
// without control characters, whatever the person's name.
func FuzzTemplate(f *testing.F) {
	f.Add("{{name}}，{{service}}", "王芳")
	f.Add("{{", "{{name}}")
	f.Add("}}{{name}}{{", "\x00")
	f.Fuzz(func(t *testing.T, tmpl, name string) {
		if checkTemplate("body", tmpl, 500) != nil {
			return
		}
		out := render(tmpl, name, "服务")
		if !utf8.ValidString(name) {
			return
		}
		for _, r := range out {
			if r < 0x20 && r != '\n' {
				t.Fatalf("render(%q, %q) = %q holds a control character", tmpl, name, out)
			}
		}
	})
}

// Titles and bodies lose bidi controls and zero-width characters when a rule is saved, so what
// the owner reads back is what the lock screen shows.
func TestInvisibleDroppedOnSave(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"退款\u202E0001\u202C元", "退款0001元"},
		{"\u2067点击\u2069领取", "点击领取"},
		{"a\u200Bb\u200Cc\u2060d\u180Ee\u061Cf\u200Eg", "abcdefg"},
		{"plain 文本", "plain 文本"},
	} {
		if got := dropInvisible(c.in); got != c.want {
			t.Errorf("dropInvisible(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
