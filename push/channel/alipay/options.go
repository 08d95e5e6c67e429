package alipay

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Production is Alipay's open-platform gateway, used when Options.Endpoint is empty.
const Production = "https://openapi.alipay.com/gateway.do"

// Options configures a Sender.
type Options struct {
	// Endpoint overrides the gateway ("" = Production); dev mode and tests point it at
	// internal/fakealipay.
	Endpoint     string
	MiniPrograms []MiniProgram
	// HTTPClient carries the requests (default: a client with no timeout of its own; each
	// request is bounded by Timeout).
	HTTPClient *http.Client
	Now        func() time.Time
	Logger     *slog.Logger
	// Concurrency bounds the sends in flight within one Send (default 16).
	Concurrency int
	// Timeout bounds one request (default 10 s).
	Timeout time.Duration
	// RetryWait is the Wait of a Retry for an outage, a bad signature or a garbled answer
	// (default 30 s); QuotaWait that of an exhausted quota (default 10 min): Alipay's answer
	// carries no hint of either.
	RetryWait time.Duration
	QuotaWait time.Duration
}

// MiniProgram is one member app's Alipay mini-program.
type MiniProgram struct {
	App   string // the member app's id, e.g. "suishenban"
	AppID string // the mini-program's Alipay app id
	// PrivateKey is the app's RSA2 private key: PEM, or the base64 PKCS#1 or PKCS#8 DER that
	// Alipay's key tool writes.
	PrivateKey string
	// AlipayPublicKey verifies the answers: PEM or base64 PKIX DER, as the console shows it.
	AlipayPublicKey string
	// OpenID: the mini-program is on Alipay's open_id model (apps created since 2023 get no
	// user_id): Exchange answers the open_id and Send addresses to_open_id.
	OpenID    bool
	Templates []Template
}

// Template maps a category's notices onto a subscription template.
type Template struct {
	Category   string
	TemplateID string
	// Page is the mini-program page the message opens; "{id}" in it becomes the notice's id.
	Page string
	// Fields maps each keyword of the template to its source: "title", "service" (the
	// service's name), "body", "date", "time", "category" or a literal "text:…".
	Fields map[string]string
	// MaxRunes bounds every keyword's value (default MaxValue); longer values are cut on a
	// character boundary with "…".
	MaxRunes int
}

// Limits of the send's parameters, in characters (see doc.go).
const (
	MaxTemplateID = 64
	MaxPage       = 128
	MaxData       = 2048
	MaxValue      = 20
)

var sources = map[string]bool{"title": true, "service": true, "body": true, "date": true, "time": true, "category": true}

func (o *Options) validate() error {
	if len(o.MiniPrograms) == 0 {
		return errors.New("alipay: no mini-programs")
	}
	if o.Endpoint != "" && !strings.HasPrefix(o.Endpoint, "http://") && !strings.HasPrefix(o.Endpoint, "https://") {
		return fmt.Errorf("alipay: endpoint %q is not an http(s) URL", o.Endpoint)
	}
	apps := map[string]bool{}
	for i, m := range o.MiniPrograms {
		switch {
		case m.App == "":
			return fmt.Errorf("alipay: mini-program %d: no app", i)
		case apps[m.App]:
			return fmt.Errorf("alipay: app %q: configured twice", m.App)
		case m.AppID == "":
			return fmt.Errorf("alipay: app %q: no app id", m.App)
		case m.PrivateKey == "":
			return fmt.Errorf("alipay: app %q: no private key", m.App)
		case m.AlipayPublicKey == "":
			return fmt.Errorf("alipay: app %q: no Alipay public key (answers could not be verified)", m.App)
		}
		apps[m.App] = true
		cats := map[string]bool{}
		for _, t := range m.Templates {
			if err := t.validate(); err != nil {
				return fmt.Errorf("alipay: app %q: %w", m.App, err)
			}
			if cats[t.Category] {
				return fmt.Errorf("alipay: app %q: category %q: two templates", m.App, t.Category)
			}
			cats[t.Category] = true
		}
	}
	if o.Concurrency < 0 || o.Timeout < 0 || o.RetryWait < 0 || o.QuotaWait < 0 {
		return errors.New("alipay: negative concurrency, timeout or wait")
	}
	return nil
}

func (t Template) validate() error {
	switch {
	case t.Category == "":
		return errors.New("template with no category")
	case t.TemplateID == "":
		return fmt.Errorf("category %q: no template id", t.Category)
	case utf8.RuneCountInString(t.TemplateID) > MaxTemplateID:
		return fmt.Errorf("category %q: template id longer than %d", t.Category, MaxTemplateID)
	case t.Page == "":
		return fmt.Errorf("category %q: no page (Alipay requires one)", t.Category)
	case utf8.RuneCountInString(t.Page) > MaxPage:
		return fmt.Errorf("category %q: page longer than %d", t.Category, MaxPage)
	case len(t.Fields) == 0:
		return fmt.Errorf("category %q: no fields", t.Category)
	case t.MaxRunes < 0:
		return fmt.Errorf("category %q: negative max runes", t.Category)
	}
	for k, src := range t.Fields {
		if k == "" {
			return fmt.Errorf("category %q: empty keyword", t.Category)
		}
		if !sources[src] && !strings.HasPrefix(src, "text:") {
			return fmt.Errorf("category %q: keyword %q: unknown source %q (want title, service, body, date, time, category or text:…)", t.Category, k, src)
		}
	}
	return nil
}

func (o *Options) defaults() {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Concurrency == 0 {
		o.Concurrency = 16
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.RetryWait == 0 {
		o.RetryWait = 30 * time.Second
	}
	if o.QuotaWait == 0 {
		o.QuotaWait = 10 * time.Minute
	}
	if o.Endpoint == "" {
		o.Endpoint = Production
	}
}
