package alipay

import (
	"context"
	"fmt"
	"sync"

	sdk "github.com/smartwalle/alipay/v3"

	"github.com/tongban/tongban/push/channel"
)

const methodSend = "alipay.open.app.mini.templatemessage.send"

// Sender sends Alipay mini-program subscription messages. It is safe for concurrent use.
type Sender struct {
	opts Options
	apps map[string]*program
}

// program is one mini-program with its SDK client: the client holds the app's signing key and
// Alipay's verifying key.
type program struct {
	mp         MiniProgram
	client     *sdk.Client
	byTemplate map[string]Template
	byCategory map[string]Template
}

var (
	_ channel.Sender    = (*Sender)(nil)
	_ channel.Registrar = (*Sender)(nil)
	_ channel.Templates = (*Sender)(nil)
)

// New checks the options and makes one SDK client per mini-program.
func New(o Options) (*Sender, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.defaults()
	s := &Sender{opts: o, apps: make(map[string]*program, len(o.MiniPrograms))}
	for _, mp := range o.MiniPrograms {
		c, err := sdk.New(mp.AppID, mp.PrivateKey, true,
			sdk.WithProductionGateway(o.Endpoint), sdk.WithHTTPClient(o.HTTPClient),
			sdk.WithTimeLocation(beijing))
		if err != nil {
			// The SDK's error names the parsing step, never the key.
			return nil, fmt.Errorf("alipay: app %q: private key: %w", mp.App, err)
		}
		if err := c.LoadAliPayPublicKey(mp.AlipayPublicKey); err != nil {
			return nil, fmt.Errorf("alipay: app %q: Alipay public key: %w", mp.App, err)
		}
		p := &program{mp: mp, client: c, byTemplate: map[string]Template{}, byCategory: map[string]Template{}}
		for _, t := range mp.Templates {
			p.byTemplate[t.TemplateID] = t
			p.byCategory[t.Category] = t
		}
		s.apps[mp.App] = p
	}
	return s, nil
}

// Kind is channel.Alipay.
func (s *Sender) Kind() channel.Kind { return channel.Alipay }

// Batch is how many messages one Send takes: each is its own signed request, so a batch is
// only what runs concurrently and what a crash can leave to be sent twice.
func (s *Sender) Batch() int { return 4 * s.opts.Concurrency }

// Template answers the template id configured for app and category.
func (s *Sender) Template(app, category string) (string, bool) {
	p := s.apps[app]
	if p == nil {
		return "", false
	}
	t, ok := p.byCategory[category]
	return t.TemplateID, ok
}

// Send sends each message, Concurrency at a time, and answers one Result per message.
func (s *Sender) Send(ctx context.Context, msgs []channel.Message) []channel.Result {
	out := make([]channel.Result, len(msgs))
	sem := make(chan struct{}, s.opts.Concurrency)
	var wg sync.WaitGroup
	for i := range msgs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			for j := i; j < len(msgs); j++ {
				out[j] = channel.Result{Outcome: channel.Retry, Wait: s.opts.RetryWait, Reason: ReasonTransport}
			}
			wg.Wait()
			return out
		}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = s.sendOne(ctx, msgs[i])
		})
	}
	wg.Wait()
	return out
}

func (s *Sender) sendOne(ctx context.Context, m channel.Message) (res channel.Result) {
	defer func() {
		// Never let an odd answer take the worker down: the SDK decodes what it is given.
		if r := recover(); r != nil {
			s.opts.Logger.Error("alipay: send: panic reading the answer", "app", m.To.App, "panic", fmt.Sprint(r))
			res = channel.Result{Outcome: channel.Retry, Wait: s.opts.RetryWait, Reason: ReasonBadAnswer}
		}
	}()
	p := s.apps[m.To.App]
	if p == nil {
		return channel.Result{Outcome: channel.Fail, Reason: ReasonUnknownApp}
	}
	if m.To.Address == "" {
		return channel.Result{Outcome: channel.Fail, Reason: ReasonNoAddress}
	}
	t, ok := p.byTemplate[m.To.Template]
	if !ok {
		return channel.Result{Outcome: channel.Fail, Reason: ReasonNoTemplate}
	}
	page, data, ok := render(t, m.Note)
	if !ok {
		return channel.Result{Outcome: channel.Fail, Reason: ReasonDataTooLong}
	}
	to := "to_user_id"
	if p.mp.OpenID {
		to = "to_open_id"
	}
	param := sdk.NewPayload(methodSend).
		AddBizField(to, m.To.Address).
		AddBizField("user_template_id", t.TemplateID).
		AddBizField("page", page).
		AddBizField("data", data)
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	var ans struct{ sdk.Error }
	err := p.client.Request(ctx, param, &ans)
	res = s.outcome(err, &ans.Error)
	switch res.Reason {
	case ReasonBadSignature:
		s.opts.Logger.Warn("alipay: send: answer's signature does not verify", "app", m.To.App, "method", methodSend)
	case ReasonTransport, ReasonBadAnswer:
		// err names the gateway URL and the failing step; addresses travel in the body only.
		s.opts.Logger.Info("alipay: send: no answer", "app", m.To.App, "reason", res.Reason, "err", err)
	}
	return res
}
