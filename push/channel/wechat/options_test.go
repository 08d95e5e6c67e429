package wechat

import (
	"strings"
	"testing"

	"github.com/tongban/tongban/internal/testenv"
)

// New refuses options it cannot send with, naming the app, the category and the key.
func TestNewRefuses(t *testing.T) {
	store := testenv.Redis(t)
	cases := []struct {
		name   string
		mutate func(*Options)
		want   string
	}{
		{"no_store", func(o *Options) { o.Store = nil }, "Store is required"},
		{"bad_endpoint", func(o *Options) { o.Endpoint = "ftp://x" }, "Endpoint"},
		{"no_mini_programs", func(o *Options) { o.MiniPrograms = nil }, "no MiniPrograms"},
		{"no_app", func(o *Options) { o.MiniPrograms[0].App = "" }, "App (the member app id) is required"},
		{"duplicate_app", func(o *Options) { o.MiniPrograms = append(o.MiniPrograms, o.MiniPrograms[0]) }, `"zheliban": configured twice`},
		{"no_appid", func(o *Options) { o.MiniPrograms[0].AppID = "" }, "AppID is required"},
		{"no_secret", func(o *Options) { o.MiniPrograms[0].Secret = "" }, "Secret is required"},
		{"bad_state", func(o *Options) { o.MiniPrograms[0].State = "beta" }, `State "beta"`},
		{"duplicate_category", func(o *Options) {
			o.MiniPrograms[0].Templates = append(o.MiniPrograms[0].Templates, o.MiniPrograms[0].Templates[0])
		}, `category "subsidy": configured twice`},
		{"no_template_id", func(o *Options) { o.MiniPrograms[0].Templates[0].TemplateID = "" }, "TemplateID is required"},
		{"no_fields", func(o *Options) { o.MiniPrograms[0].Templates[0].Fields = nil }, "no Fields"},
		{"unknown_type", func(o *Options) { o.MiniPrograms[0].Templates[0].Fields["colour1"] = "title" }, `key "colour1": unknown type "colour"`},
		{"key_without_number", func(o *Options) { o.MiniPrograms[0].Templates[0].Fields["thing"] = "title" }, `key "thing": a key is a type and a number`},
		{"unknown_source", func(o *Options) { o.MiniPrograms[0].Templates[0].Fields["thing1"] = "author" }, `key "thing1": unknown source "author"`},
		{"source_wrong_for_type", func(o *Options) { o.MiniPrograms[0].Templates[0].Fields["number5"] = "title" }, `a number key cannot show "title"`},
		{"date_from_body", func(o *Options) { o.MiniPrograms[0].Templates[0].Fields["date5"] = "body" }, `a date key cannot show "body"`},
		{"literal_too_long", func(o *Options) {
			o.MiniPrograms[0].Templates[0].Fields["phrase4"] = "text:这是六个汉字"
		}, `key "phrase4": literal "这是六个汉字" is not a valid phrase value`},
		{"bad_concurrency", func(o *Options) { o.Concurrency = 1000 }, "Concurrency 1000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := testOptions()
			o.Store = store
			c.mutate(&o)
			_, err := New(o)
			if err == nil {
				t.Fatal("New accepted the options")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "wechat: options:") {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("the error holds the secret: %v", err)
			}
		})
	}
}

func TestNewAcceptsAndNamesTemplates(t *testing.T) {
	o := testOptions()
	o.Store = testenv.Redis(t)
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := s.Template(testApp, "subsidy"); !ok || id != testTpl {
		t.Fatalf("Template = %q %v", id, ok)
	}
	if _, ok := s.Template(testApp, "elsewhere"); ok {
		t.Fatal("a category without a template has one")
	}
	if _, ok := s.Template("other-app", "subsidy"); ok {
		t.Fatal("an unknown app has a template")
	}
}
