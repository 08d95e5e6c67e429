package wechat

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/silenceper/wechat/v2/miniprogram"
	"github.com/silenceper/wechat/v2/miniprogram/config"

	"github.com/tongban/tongban/internal/redisx"
)

// Options configures a Sender.
type Options struct {
	// Store holds the access tokens every replica shares (doc.go: Redis keys). Required.
	Store *redisx.Store
	// Endpoint replaces https://api.weixin.qq.com for this Sender's calls (the fake's base
	// URL, with any path prefix it is mounted under); "" talks to WeChat. See doc.go for how
	// the override reaches the SDK.
	Endpoint     string
	MiniPrograms []MiniProgram
	// Now is the clock of quota waits; default time.Now.
	Now func() time.Time
	// TimeZone is where the date and time sources are told (push.time_zone); default
	// Asia/Shanghai.
	TimeZone *time.Location
	Logger   *slog.Logger
	// Concurrency bounds the messages one Send has in flight; default 16, at most 64.
	Concurrency int
	// Timeout bounds one HTTP call to WeChat (token, send, code2Session); default 10s.
	Timeout time.Duration
}

// MiniProgram is one member app's WeChat mini-program.
type MiniProgram struct {
	App    string // the member app id ("zheliban")
	AppID  string
	Secret string
	// State is the version of the mini-program a message opens: "formal" (the default),
	// "trial" or "developer" (miniprogram_state).
	State     string
	Templates []Template
}

// Template is the subscription template that carries one category's notices.
type Template struct {
	Category   string
	TemplateID string
	// Page is the mini-program page a message opens ("pages/notice/index?id={id}"); {id},
	// {link}, {category} and {service} are replaced, query-escaped. Empty: no page.
	Page string
	// Fields maps each key of the template ("thing1", "time2") onto what it shows: "title",
	// "service" (the service's name), "body", "date" (the notice's creation date in China),
	// "time" (that date and time), "category", or a literal "text:…".
	Fields map[string]string
}

// The defaults and bounds of Options.
const (
	DefaultConcurrency = 16
	MaxConcurrency     = 64
	DefaultTimeout     = 10 * time.Second
	// BatchSize is the most messages one Send takes.
	BatchSize = 100
)

// app is one configured mini-program, ready to send.
type app struct {
	name      string
	appID     string
	secret    string
	state     string
	cfg       *config.Config
	tokens    *tokenSource
	mp        *miniprogram.MiniProgram
	templates map[string]*template // by category
	byID      map[string]*template // by template id
	quota     quotaGate
}

type template struct {
	category string
	id       string
	page     string
	fields   []field
}

// check checks o and fills its defaults; every error names the app, category and key.
func (o Options) check() (Options, *url.URL, error) {
	var errs []error
	if o.Store == nil {
		errs = append(errs, errors.New("Store is required: the access token is shared through it"))
	}
	var base *url.URL
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			errs = append(errs, fmt.Errorf("Endpoint %q: want an http(s) base URL such as http://127.0.0.1:8080/dev/wechat", o.Endpoint))
		} else {
			u.Path = strings.TrimRight(u.Path, "/")
			base = u
		}
	}
	if o.Concurrency < 0 || o.Concurrency > MaxConcurrency {
		errs = append(errs, fmt.Errorf("Concurrency %d: want 0 (default %d) to %d", o.Concurrency, DefaultConcurrency, MaxConcurrency))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("Timeout %v is negative", o.Timeout))
	}
	o.Concurrency = cmp.Or(o.Concurrency, DefaultConcurrency)
	o.Timeout = cmp.Or(o.Timeout, DefaultTimeout)
	if o.TimeZone == nil {
		o.TimeZone = shanghai
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if len(o.MiniPrograms) == 0 {
		errs = append(errs, errors.New("no MiniPrograms configured"))
	}
	seen := map[string]bool{}
	for i, mp := range o.MiniPrograms {
		name := mp.App
		if name == "" {
			name = fmt.Sprintf("#%d", i)
			errs = append(errs, fmt.Errorf("mini-program %s: App (the member app id) is required", name))
		} else if seen[name] {
			errs = append(errs, fmt.Errorf("mini-program %q: configured twice", name))
		}
		seen[name] = true
		if mp.AppID == "" {
			errs = append(errs, fmt.Errorf("mini-program %q: AppID is required", name))
		}
		if strings.ContainsAny(mp.AppID, "{}/?&= ") {
			errs = append(errs, fmt.Errorf("mini-program %q: AppID %q has characters no app id has", name, mp.AppID))
		}
		if mp.Secret == "" {
			errs = append(errs, fmt.Errorf("mini-program %q: Secret is required", name))
		}
		switch mp.State {
		case "", "formal", "trial", "developer":
		default:
			errs = append(errs, fmt.Errorf("mini-program %q: State %q: want formal, trial or developer", name, mp.State))
		}
		cats := map[string]bool{}
		for _, t := range mp.Templates {
			where := fmt.Sprintf("mini-program %q, category %q", name, t.Category)
			switch {
			case t.Category == "":
				errs = append(errs, fmt.Errorf("mini-program %q: a template has no Category", name))
			case cats[t.Category]:
				errs = append(errs, fmt.Errorf("%s: configured twice (one template per app and category)", where))
			}
			cats[t.Category] = true
			if t.TemplateID == "" {
				errs = append(errs, fmt.Errorf("%s: TemplateID is required", where))
			}
			if len(t.Fields) == 0 {
				errs = append(errs, fmt.Errorf("%s: no Fields: a template has at least one key", where))
			}
			for key, src := range t.Fields {
				if _, err := parseField(key, src); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", where, err))
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return o, nil, fmt.Errorf("wechat: options: %w", err)
	}
	return o, base, nil
}

// newTemplate builds a checked template; check has already refused bad fields.
func newTemplate(t Template) *template {
	tp := &template{category: t.Category, id: t.TemplateID, page: t.Page}
	for key, src := range t.Fields {
		f, _ := parseField(key, src)
		tp.fields = append(tp.fields, f)
	}
	return tp
}

// pageFor fills the page's placeholders for n.
func (t *template) pageFor(id, link, category, service string) string {
	if t.page == "" || !strings.Contains(t.page, "{") {
		return t.page
	}
	return strings.NewReplacer(
		"{id}", url.QueryEscape(id),
		"{link}", url.QueryEscape(link),
		"{category}", url.QueryEscape(category),
		"{service}", url.QueryEscape(service),
	).Replace(t.page)
}
