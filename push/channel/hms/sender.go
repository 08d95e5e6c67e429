package hms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tongban/tongban/push/channel"
)

// DefaultEndpoint is Push Kit's REST base URL; the send path /v3/{projectId}/messages:send goes
// under it.
const DefaultEndpoint = "https://push-api.cloud.huawei.com"

// DefaultCategory is the notification category we send under: ACCOUNT (账号动态), a
// service-and-communication (服务与通讯) class. A 免申即享 notice tells one person about a
// benefit found on their own record, which is an update to their account with the service,
// not content they subscribed to (SUBSCRIPTION) nor a work item (WORK). The project must hold
// the self-classification right for it (see doc.go).
const DefaultCategory = "ACCOUNT"

// Marketing is the 资讯营销 category, which New refuses: government notices are not marketing,
// and Push Kit delivers marketing silently and caps it at 2–5 a day per device.
const Marketing = "MARKETING"

// Options configures a Sender.
type Options struct {
	// ProjectID is the AppGallery Connect project; the service account's when empty.
	ProjectID string
	// ServiceAccount signs the JWTs (ParseServiceAccount reads the key file). Required.
	ServiceAccount *ServiceAccount
	// Endpoint is the REST base URL; DefaultEndpoint when empty. Tests and dev mode point it
	// at internal/fakehms.
	Endpoint   string
	HTTPClient *http.Client     // http.DefaultClient's transport with Timeout when nil
	Now        func() time.Time // time.Now when nil
	Logger     *slog.Logger     // slog.Default() when nil
	// Concurrency is the most requests in flight in one Send; 16 when 0.
	Concurrency int
	// Batch is the most messages one Send takes; 100 when 0, delivery's own batch: it bounds
	// what a crash mid-Send can send twice (and notifyId makes such a twin replace the first).
	Batch int
	// Category is the notification category; DefaultCategory when empty; never MARKETING.
	Category string
	// NoticeAction, when set, opens the app's page with that action (clickAction actionType 1);
	// when empty a tap opens the app's home page (actionType 0). Either way clickAction.data
	// carries the notification id and link.
	NoticeAction string
	// TTL is how long Push Kit keeps the message for an offline device; 72 h when 0, at most
	// 15 days.
	TTL time.Duration
	// Timeout bounds one request; 10 s when 0.
	Timeout time.Duration
	// QuotaBackoff is the wait for flow control and server errors that name none; 30 s when 0.
	QuotaBackoff time.Duration
	// TestMessage marks messages as test messages (pushOptions.testMessage), which Push Kit
	// lets through before the app's release, 1000 a day per project.
	TestMessage bool
}

// maxTTL is Push Kit's longest pushOptions.ttl, 15 days.
const maxTTL = 15 * 24 * time.Hour

// Sender sends notices through HarmonyOS Push Kit, one token per request. It implements
// channel.Sender and is safe for concurrent use.
type Sender struct {
	opts   Options
	url    string
	client *http.Client
	jwt    *signer
}

var _ channel.Sender = (*Sender)(nil)

// New checks opts and returns a Sender.
func New(opts Options) (*Sender, error) {
	if opts.ServiceAccount == nil {
		return nil, errors.New("hms: options: ServiceAccount is required")
	}
	if opts.ServiceAccount.PrivateKey == nil || opts.ServiceAccount.KeyID == "" || opts.ServiceAccount.SubAccount == "" {
		return nil, errors.New("hms: options: ServiceAccount needs its private key, key_id and sub_account (use ParseServiceAccount)")
	}
	if opts.ServiceAccount.TokenURI == "" {
		acc := *opts.ServiceAccount
		acc.TokenURI = DefaultTokenURI
		opts.ServiceAccount = &acc
	}
	if opts.ProjectID == "" {
		opts.ProjectID = opts.ServiceAccount.ProjectID
	}
	if opts.ProjectID == "" || strings.ContainsAny(opts.ProjectID, "/?#% ") {
		return nil, errors.New("hms: options: ProjectID is required and may not contain / ? # % or spaces")
	}
	opts.Category = strings.ToUpper(strings.TrimSpace(opts.Category))
	switch opts.Category {
	case "":
		opts.Category = DefaultCategory
	case Marketing:
		return nil, errors.New("hms: options: Category MARKETING is refused: notices are service messages (服务与通讯), never 资讯营销")
	}
	if opts.Endpoint == "" {
		opts.Endpoint = DefaultEndpoint
	}
	u, err := url.Parse(opts.Endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("hms: options: Endpoint %q is not an http(s) URL", opts.Endpoint)
	}
	switch {
	case opts.TTL == 0:
		opts.TTL = 72 * time.Hour
	case opts.TTL < time.Second || opts.TTL > maxTTL:
		return nil, fmt.Errorf("hms: options: TTL %v is not between 1s and 15 days", opts.TTL)
	}
	if opts.Concurrency < 0 || opts.Batch < 0 || opts.Timeout < 0 || opts.QuotaBackoff < 0 {
		return nil, errors.New("hms: options: Concurrency, Batch, Timeout and QuotaBackoff may not be negative")
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = 16
	}
	if opts.Batch == 0 {
		opts.Batch = 100
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.QuotaBackoff == 0 {
		opts.QuotaBackoff = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	client := opts.HTTPClient
	if client == nil {
		// The default transport keeps 2 idle connections per host; with Concurrency requests
		// in flight the rest would be torn down after each send and dialled (TLS and all) anew.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = opts.Concurrency
		client = &http.Client{Transport: t, Timeout: opts.Timeout}
	}
	sig, err := newSigner(opts.ServiceAccount, opts.Now)
	if err != nil {
		return nil, err
	}
	return &Sender{
		opts:   opts,
		url:    strings.TrimRight(opts.Endpoint, "/") + "/v3/" + opts.ProjectID + "/messages:send",
		client: client,
		jwt:    sig,
	}, nil
}

// Kind is channel.HMS.
func (s *Sender) Kind() channel.Kind { return channel.HMS }

// Batch is Options.Batch.
func (s *Sender) Batch() int { return s.opts.Batch }

// Send sends each message in its own request, at most Concurrency at once, and answers their
// results in order.
func (s *Sender) Send(ctx context.Context, msgs []channel.Message) []channel.Result {
	out := make([]channel.Result, len(msgs))
	sem := make(chan struct{}, s.opts.Concurrency)
	var wg sync.WaitGroup
	for i := range msgs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			for j := i; j < len(msgs); j++ {
				out[j] = channel.Result{Outcome: channel.Retry, Reason: "transport"}
			}
			wg.Wait()
			return out
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = s.sendOne(ctx, msgs[i])
		}()
	}
	wg.Wait()
	return out
}

// sendOne sends one message; an authentication refusal earns one retry with a fresh JWT.
func (s *Sender) sendOne(ctx context.Context, m channel.Message) (res channel.Result) {
	defer func() {
		// A Sender never panics a worker: whatever went wrong, the message is retried later.
		if p := recover(); p != nil {
			s.opts.Logger.Error("hms: send panicked", "panic", fmt.Sprint(p), "notification", m.Note.ID)
			res = channel.Result{Outcome: channel.Retry, Reason: "transport"}
		}
	}()
	if m.To.Kind != channel.HMS {
		return channel.Result{Outcome: channel.Fail, Reason: "wrong_kind"}
	}
	if ValidToken(m.To.Address) != nil {
		// A token that cannot be one will never be delivered to: the endpoint is gone.
		return channel.Result{Outcome: channel.Drop, Reason: "token_format"}
	}
	body, err := s.body(m)
	if err != nil {
		return channel.Result{Outcome: channel.Fail, Reason: "encode"}
	}
	for attempt := 0; ; attempt++ {
		v, tok := s.post(ctx, body)
		if !v.auth {
			return v.Result
		}
		s.jwt.refused(tok)
		if attempt == 1 {
			s.opts.Logger.Warn("hms: Push Kit refused a freshly signed JWT; check the service account and project",
				"code", v.Reason, "project", s.opts.ProjectID)
			return v.Result
		}
	}
}

// post makes one request and reads its answer; it answers the JWT it used, so that a refusal
// can retire exactly that one.
func (s *Sender) post(ctx context.Context, body []byte) (verdict, string) {
	tok, err := s.jwt.token()
	if err != nil {
		s.opts.Logger.Error("hms: signing the JWT failed", "err", err)
		return retry("jwt", s.opts.QuotaBackoff), ""
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return retry("transport", 0), tok
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("push-type", "0")
	resp, err := s.client.Do(req)
	if err != nil {
		// The error names the URL, which holds only the project id: no token, no JWT.
		return retry("transport", 0), tok
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return retry("transport", 0), tok
	}
	return s.classify(resp.StatusCode, resp.Header, answer), tok
}
