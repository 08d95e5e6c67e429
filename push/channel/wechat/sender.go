package wechat

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/silenceper/wechat/v2/miniprogram"
	"github.com/silenceper/wechat/v2/miniprogram/config"
	mpcontext "github.com/silenceper/wechat/v2/miniprogram/context"
	"github.com/silenceper/wechat/v2/miniprogram/subscribe"

	"github.com/tongban/tongban/push/channel"
)

// Sender sends WeChat subscription messages for the configured mini-programs, exchanges their
// login codes for openids, and names the template of each category. It is a channel.Sender,
// channel.Registrar and channel.Templates, safe for concurrent use.
type Sender struct {
	apps  map[string]*app
	now   func() time.Time
	loc   *time.Location
	log   *slog.Logger
	conc  int
	route *route
}

var (
	_ channel.Sender    = (*Sender)(nil)
	_ channel.Registrar = (*Sender)(nil)
	_ channel.Templates = (*Sender)(nil)
)

// New checks the options and makes a Sender. It installs the process-wide routing transport
// of silenceper's client the first time (doc.go).
func New(o Options) (*Sender, error) {
	o, base, err := o.check()
	if err != nil {
		return nil, err
	}
	rt := installRouter()
	s := &Sender{
		apps:  make(map[string]*app, len(o.MiniPrograms)),
		now:   o.Now,
		loc:   o.TimeZone,
		log:   o.Logger,
		conc:  o.Concurrency,
		route: &route{base: base, timeout: o.Timeout},
	}
	for _, mp := range o.MiniPrograms {
		ts, err := newTokenSource(o.Store, mp.AppID, mp.Secret, s.route, rt, o.Logger)
		if err != nil {
			return nil, err
		}
		// NewMiniProgram insists on a cache for its own token handle, which SetAccessTokenContextHandle
		// replaces at once; noCache keeps nothing, so nothing of the SDK's caches a token.
		cfg := &config.Config{AppID: mp.AppID, AppSecret: mp.Secret, Cache: noCache{}}
		m := miniprogram.NewMiniProgram(cfg)
		m.SetAccessTokenContextHandle(ts)
		a := &app{
			name: mp.App, appID: mp.AppID, secret: mp.Secret, state: mp.State, cfg: cfg,
			tokens: ts, mp: m,
			templates: make(map[string]*template), byID: make(map[string]*template),
		}
		if a.state == "" {
			a.state = "formal"
		}
		for _, t := range mp.Templates {
			tp := newTemplate(t)
			a.templates[t.Category] = tp
			if _, dup := a.byID[t.TemplateID]; !dup {
				a.byID[t.TemplateID] = tp
			}
		}
		s.apps[mp.App] = a
	}
	return s, nil
}

// Kind is channel.WeChat.
func (s *Sender) Kind() channel.Kind { return channel.WeChat }

// Batch is the most messages one Send takes.
func (s *Sender) Batch() int { return BatchSize }

// Template answers the template id of app's category.
func (s *Sender) Template(app, category string) (string, bool) {
	a := s.apps[app]
	if a == nil {
		return "", false
	}
	t := a.templates[category]
	if t == nil {
		return "", false
	}
	return t.id, true
}

// Send sends each message, at most Concurrency at once, and answers one Result per message.
// When ctx ends, messages not yet started and those still in flight are Retry "transport":
// an abandoned call finishes (or times out) in the background, so such a message may have
// reached the person and come again on the retry.
func (s *Sender) Send(ctx context.Context, msgs []channel.Message) []channel.Result {
	res := make([]channel.Result, len(msgs))
	sem := make(chan struct{}, s.conc)
	var wg sync.WaitGroup
	for i := range msgs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			res[i] = channel.Result{Outcome: channel.Retry, Reason: "transport"}
			continue
		}
		if ctx.Err() != nil {
			<-sem
			res[i] = channel.Result{Outcome: channel.Retry, Reason: "transport"}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res[i] = s.sendOne(ctx, msgs[i])
		}()
	}
	wg.Wait()
	return res
}

// quotaGate remembers until when an app's daily quota is spent, so that the rest of the day's
// messages wait without calling WeChat.
type quotaGate struct{ until atomic.Int64 } // unix nanoseconds

func (s *Sender) sendOne(ctx context.Context, m channel.Message) channel.Result {
	a := s.apps[m.To.App]
	if a == nil {
		s.log.LogAttrs(ctx, slog.LevelError, "wechat: message for an app without a mini-program", slog.String("app", m.To.App))
		return channel.Result{Outcome: channel.Fail, Reason: "unknown_app"}
	}
	t := a.byID[m.To.Template]
	if t == nil && m.To.Template == "" {
		t = a.templates[m.Note.Category]
	}
	if t == nil {
		s.log.LogAttrs(ctx, slog.LevelError, "wechat: subscription to a template not configured",
			slog.String("app", a.name), slog.String("template", m.To.Template), slog.String("category", m.Note.Category))
		return channel.Result{Outcome: channel.Fail, Reason: "unknown_template"}
	}
	now := s.now()
	if until := a.quota.until.Load(); until > now.UnixNano() {
		return channel.Result{Outcome: channel.Retry, Reason: fmt.Sprint(codeQuota), Wait: time.Duration(until - now.UnixNano())}
	}
	msg, bad := render(t, m, a.state, s.loc)
	if bad != "" {
		s.log.LogAttrs(ctx, slog.LevelError, "wechat: nothing valid to show in a template key",
			slog.String("app", a.name), slog.String("template", t.id), slog.String("key", bad))
		return channel.Result{Outcome: channel.Fail, Reason: fmt.Sprint(codeBadData)}
	}
	for attempt := 0; ; attempt++ {
		tok, err := a.tokens.GetAccessTokenContext(ctx)
		if err != nil {
			return s.tokenFailure(ctx, a, err)
		}
		ans := s.call(ctx, a, tok, msg)
		if ans.reason == "" && tokenRefused(ans.code) && attempt == 0 {
			// The token died early (another client fetched a new one, or it expired): drop
			// exactly this one, get the next, and send this message once more.
			a.tokens.invalidate(ctx, tok)
			continue
		}
		return s.result(ctx, a, t, ans, now)
	}
}

// render builds the SDK's message; bad names a key left without a valid value.
func render(t *template, m channel.Message, state string, loc *time.Location) (*subscribe.Message, string) {
	data := make(map[string]*subscribe.DataItem, len(t.fields))
	for _, f := range t.fields {
		v, ok := f.value(m.Note, loc)
		if !ok {
			return nil, f.key
		}
		data[f.key] = &subscribe.DataItem{Value: v}
	}
	service := m.Note.ServiceName
	if service == "" {
		service = m.Note.Service
	}
	return &subscribe.Message{
		ToUser:           m.To.Address,
		TemplateID:       t.id,
		Page:             t.pageFor(m.Note.ID, m.Note.Link, m.Note.Category, service),
		Data:             data,
		MiniprogramState: state,
		Lang:             "zh_CN",
	}, ""
}

// pinnedToken hands the SDK exactly the token this attempt fetched, so that a refusal is known
// to be about that token and no other.
type pinnedToken string

func (p pinnedToken) GetAccessToken() (string, error)                       { return string(p), nil }
func (p pinnedToken) GetAccessTokenContext(context.Context) (string, error) { return string(p), nil }

// call runs subscribe.Send, which has no context: the router's timeout bounds it, and when ctx
// ends first the call is left to finish on its own.
func (s *Sender) call(ctx context.Context, a *app, tok string, msg *subscribe.Message) answer {
	sub := subscribe.NewSubscribe(&mpcontext.Context{Config: a.cfg, AccessTokenContextHandle: pinnedToken(tok)})
	done := make(chan error, 1)
	go func() { done <- sub.Send(msg) }()
	select {
	case err := <-done:
		return readSendError(err)
	case <-ctx.Done():
		return answer{reason: "transport", detail: "gave up: " + ctx.Err().Error()}
	}
}

func (s *Sender) result(ctx context.Context, a *app, t *template, ans answer, now time.Time) channel.Result {
	r := outcome(ans, now)
	attrs := []slog.Attr{slog.String("app", a.name), slog.String("template", t.id), slog.String("reason", r.Reason)}
	switch {
	case ans.reason != "":
		s.log.LogAttrs(ctx, slog.LevelWarn, "wechat: send did not get an answer", append(attrs, slog.String("detail", ans.detail))...)
	case ans.code == codeQuota:
		a.quota.until.Store(now.Add(r.Wait).UnixNano())
		s.log.LogAttrs(ctx, slog.LevelWarn, "wechat: daily quota spent; waiting for midnight in China", append(attrs, slog.Duration("wait", r.Wait))...)
	case ans.code == codeBadData:
		s.log.LogAttrs(ctx, slog.LevelError, "wechat: template data refused", append(attrs, slog.String("key", fieldOf(ans.msg)))...)
	case r.Outcome == channel.Fail:
		s.log.LogAttrs(ctx, slog.LevelError, "wechat: message refused", attrs...)
	case r.Outcome == channel.Retry:
		s.log.LogAttrs(ctx, slog.LevelWarn, "wechat: send to retry", attrs...)
	}
	return r
}

// tokenFailure is the outcome of a message whose token could not be had. A refused appid or
// secret (40013, 40125, 40164 ip not whitelisted) is configuration: the message waits a minute
// rather than failing, so that fixing the configuration sends it.
func (s *Sender) tokenFailure(ctx context.Context, a *app, err error) channel.Result {
	reason := "transport"
	if te, ok := err.(*tokenError); ok {
		reason = te.Reason
	}
	s.log.LogAttrs(ctx, slog.LevelError, "wechat: no access token", slog.String("app", a.name), slog.String("error", err.Error()))
	wait := time.Duration(0)
	if reason != "transport" && reason != "bad_answer" && reason != "-1" {
		wait = time.Minute
	}
	return channel.Result{Outcome: channel.Retry, Reason: reason, Wait: wait}
}

// noCache is the SDK's cache.Cache that keeps nothing: the token lives in tokenSource.
type noCache struct{}

func (noCache) Get(string) any                       { return nil }
func (noCache) Set(string, any, time.Duration) error { return nil }
func (noCache) IsExist(string) bool                  { return false }
func (noCache) Delete(string) error                  { return nil }
