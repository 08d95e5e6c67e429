package miniprogram

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/seal"
	"github.com/tongban/tongban/push/channel"
)

// Template is a subscription template of an app's mini-program on a platform: the one that
// carries a category's notices.
type Template struct {
	Kind     channel.Kind // WeChat or Alipay
	App      string
	Category string
	ID       string
	// LongTerm: the platform grants this template long-term subscriptions (government
	// services may ask for them); otherwise only one-time ones are recorded.
	LongTerm bool
}

// Binding is a mini-program the person signed in to, as they see it: never the platform's id.
type Binding struct {
	Kind          channel.Kind
	App           string
	BoundAt       time.Time
	Subscriptions []Subscription
}

// Subscription is a template the person allowed in a mini-program.
type Subscription struct {
	Template string
	Category string
	LongTerm bool
	// Remaining is how many messages a one-time subscription still lets through; 0 for
	// long-term ones.
	Remaining  int
	RecordedAt time.Time
}

// InputError is input the caller must fix: which field and what is wrong. It never repeats a
// login code or a platform's id.
type InputError struct {
	Field   string
	Message string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Message }

// ErrNotBound refuses recording subscriptions in a mini-program the person has not registered.
var ErrNotBound = &InputError{"app", "the mini-program is not registered for this person: call registerMiniProgram with a login code first"}

// Defaults.
const (
	// DefaultMaxOneTime caps a template's one-time sends left: each "allow" adds one, and a
	// mini-program that reports in a loop must not bank an unbounded number.
	DefaultMaxOneTime = 50
	// MaxTemplatesPerCall bounds recordSubscriptions; WeChat lets a mini-program ask for at
	// most 3 templates at once, Alipay a few more.
	MaxTemplatesPerCall = 10
	// MaxTemplatesPerApp bounds the templates of one app's mini-program (one per category),
	// and so a binding's subscriptions.
	MaxTemplatesPerApp = 64
	// MaxBindingsPerPerson bounds the mini-programs one person registers (apps times platforms).
	MaxBindingsPerPerson = 16
	maxCodeBytes         = 512
)

// Options configure Bindings.
type Options struct {
	Store *redisx.Store
	KEK   []byte // 32 bytes; seals the platforms' user ids
	// Registrars exchange login codes, one per platform in use; a platform without one is
	// off, and registering with it is refused.
	Registrars []channel.Registrar
	Templates  []Template
	Now        func() time.Time
	MaxOneTime int
}

// Bindings keeps people's mini-program bindings and subscriptions.
type Bindings struct {
	store      *redisx.Store
	kek        []byte
	registrars map[channel.Kind]channel.Registrar
	templates  map[tplKey]Template // by kind, app, template id
	byCategory map[catKey]Template // by kind, app, category
	apps       map[channel.Kind][]string
	now        func() time.Time
	maxOneTime int
}

type tplKey struct {
	kind    channel.Kind
	app, id string
}

type catKey struct {
	kind          channel.Kind
	app, category string
}

// New checks the options.
func New(o Options) (*Bindings, error) {
	switch {
	case o.Store == nil:
		return nil, errors.New("miniprogram: no store")
	case len(o.KEK) != seal.KeySize:
		return nil, fmt.Errorf("miniprogram: key-encryption key is %d bytes, want %d", len(o.KEK), seal.KeySize)
	case o.MaxOneTime < 0:
		return nil, fmt.Errorf("miniprogram: MaxOneTime is %d, want 0 (the default, %d) or more", o.MaxOneTime, DefaultMaxOneTime)
	}
	b := &Bindings{
		store: o.Store, kek: slices.Clone(o.KEK), registrars: map[channel.Kind]channel.Registrar{},
		templates: map[tplKey]Template{}, byCategory: map[catKey]Template{}, apps: map[channel.Kind][]string{},
		now: o.Now, maxOneTime: o.MaxOneTime,
	}
	for _, r := range o.Registrars {
		if !r.Kind().Subscription() {
			return nil, fmt.Errorf("miniprogram: a registrar of %q: only wechat and alipay have mini-programs", r.Kind())
		}
		b.registrars[r.Kind()] = r
	}
	for _, t := range o.Templates {
		switch {
		case !t.Kind.Subscription():
			return nil, fmt.Errorf("miniprogram: template %q: kind %q is not a mini-program platform", t.ID, t.Kind)
		case t.App == "" || t.Category == "" || t.ID == "":
			return nil, fmt.Errorf("miniprogram: a %s template needs an app, a category and an id", t.Kind)
		}
		if n := len(b.perApp(t.Kind, t.App)); n >= MaxTemplatesPerApp {
			return nil, fmt.Errorf("miniprogram: %s app %s has more than %d templates", t.Kind, t.App, MaxTemplatesPerApp)
		}
		if _, dup := b.byCategory[catKey{t.Kind, t.App, t.Category}]; dup {
			return nil, fmt.Errorf("miniprogram: %s app %s has two templates for category %s", t.Kind, t.App, t.Category)
		}
		b.byCategory[catKey{t.Kind, t.App, t.Category}] = t
		b.templates[tplKey{t.Kind, t.App, t.ID}] = t
		if !slices.Contains(b.apps[t.Kind], t.App) {
			b.apps[t.Kind] = append(b.apps[t.Kind], t.App)
		}
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.maxOneTime == 0 {
		b.maxOneTime = DefaultMaxOneTime
	}
	return b, nil
}

func (b *Bindings) perApp(kind channel.Kind, app string) []Template {
	var out []Template
	for k, t := range b.templates {
		if k.kind == kind && k.app == app {
			out = append(out, t)
		}
	}
	return out
}

// Enabled reports whether people can register mini-programs of kind.
func (b *Bindings) Enabled(kind channel.Kind) bool { return b.registrars[kind] != nil }

// record shapes in the hash.
type bindingRec struct {
	User string `json:"u"` // sealed
	Hash string `json:"h"`
	At   int64  `json:"at"`
}

type subRec struct {
	Kind string `json:"k"`
	Left int    `json:"n"`
	Hash string `json:"h"` // the binding's: a subscription of an account since replaced is void
	At   int64  `json:"at"`
}

const (
	oneTime  = "one_time"
	longTerm = "long_term"
)

func (b *Bindings) key(pid string) string { return b.store.Key("{p:" + pid + "}:mp") }
func (b *Bindings) indexKey(kind channel.Kind, app, hash string) string {
	return b.store.Key("mpuser:" + string(kind) + ":" + app + ":" + hash)
}

func bindingField(kind channel.Kind, app string) string { return "b|" + string(kind) + "|" + app }
func subField(kind channel.Kind, app, tpl string) string {
	return "s|" + string(kind) + "|" + app + "|" + tpl
}

func userHash(user string) string {
	h := sha256.Sum256([]byte(user))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func endpointID(kind channel.Kind, app, tpl, hash string) string {
	h := sha256.Sum256([]byte(string(kind) + "|" + app + "|" + tpl + "|" + hash))
	return "s_" + base64.RawURLEncoding.EncodeToString(h[:])[:22]
}

func sealPurpose(kind channel.Kind) string { return string(kind) + "-user" }

// checkPID refuses a person id that would break the key's hash tag: a programming error.
func checkPID(pid string) error {
	if pid == "" || len(pid) > 64 || strings.ContainsAny(pid, "{} \t\r\n") {
		return fmt.Errorf("miniprogram: malformed person id %q", pid)
	}
	return nil
}

func (b *Bindings) checkApp(kind channel.Kind, app string) error {
	switch {
	case !kind.Subscription():
		return &InputError{"platform", fmt.Sprintf("%q is not a mini-program platform; want WECHAT or ALIPAY", strings.ToUpper(string(kind)))}
	case b.registrars[kind] == nil:
		return &InputError{"platform", fmt.Sprintf("%s mini-programs are not configured on this server", strings.ToUpper(string(kind)))}
	case app == "":
		return &InputError{"app", "required; want the id of a member app"}
	case !slices.Contains(b.apps[kind], app):
		return &InputError{"app", fmt.Sprintf("%s has no %s mini-program with subscription templates here", quote(app), strings.ToUpper(string(kind)))}
	}
	return nil
}

// quote quotes a short part of input for a message.
func quote(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

func decodeBinding(raw string) (bindingRec, bool) {
	var r bindingRec
	return r, json.Unmarshal([]byte(raw), &r) == nil && r.Hash != ""
}

func decodeSub(raw string) (subRec, bool) {
	var r subRec
	return r, json.Unmarshal([]byte(raw), &r) == nil && (r.Kind == oneTime || r.Kind == longTerm)
}

// parseField splits a hash field into its parts; ok is false for a field of another shape.
func parseField(f string) (typ string, kind channel.Kind, app, tpl string, ok bool) {
	parts := strings.SplitN(f, "|", 4)
	switch {
	case len(parts) == 3 && parts[0] == "b":
		return "b", channel.Kind(parts[1]), parts[2], "", true
	case len(parts) == 4 && parts[0] == "s":
		return "s", channel.Kind(parts[1]), parts[2], parts[3], true
	}
	return "", "", "", "", false
}

// List returns the person's bindings with their live subscriptions, by platform and app.
func (b *Bindings) List(ctx context.Context, pid string) ([]Binding, error) {
	if err := checkPID(pid); err != nil {
		return nil, err
	}
	m, err := b.store.Client.HGetAll(ctx, b.key(pid)).Result()
	if err != nil {
		return nil, fmt.Errorf("miniprogram: list: %w", err)
	}
	return b.decode(m), nil
}

func (b *Bindings) decode(m map[string]string) []Binding {
	type bk struct {
		kind channel.Kind
		app  string
	}
	binds := map[bk]*Binding{}
	hashes := map[bk]string{}
	for f, raw := range m {
		if typ, kind, app, _, ok := parseField(f); ok && typ == "b" {
			r, ok := decodeBinding(raw)
			if !ok {
				continue
			}
			binds[bk{kind, app}] = &Binding{Kind: kind, App: app, BoundAt: time.Unix(r.At, 0).UTC(), Subscriptions: []Subscription{}}
			hashes[bk{kind, app}] = r.Hash
		}
	}
	for f, raw := range m {
		typ, kind, app, tpl, ok := parseField(f)
		if !ok || typ != "s" {
			continue
		}
		bd := binds[bk{kind, app}]
		r, ok := decodeSub(raw)
		if bd == nil || !ok || r.Hash != hashes[bk{kind, app}] || (r.Kind == oneTime && r.Left <= 0) {
			continue
		}
		s := Subscription{Template: tpl, LongTerm: r.Kind == longTerm, RecordedAt: time.Unix(r.At, 0).UTC()}
		if !s.LongTerm {
			s.Remaining = r.Left
		}
		if t, ok := b.templates[tplKey{kind, app, tpl}]; ok {
			s.Category = t.Category
		}
		bd.Subscriptions = append(bd.Subscriptions, s)
	}
	out := make([]Binding, 0, len(binds))
	for _, bd := range binds {
		slices.SortFunc(bd.Subscriptions, func(x, y Subscription) int { return strings.Compare(x.Template, y.Template) })
		out = append(out, *bd)
	}
	slices.SortFunc(out, func(x, y Binding) int {
		if c := strings.Compare(string(x.Kind), string(y.Kind)); c != 0 {
			return c
		}
		return strings.Compare(x.App, y.App)
	})
	return out
}
