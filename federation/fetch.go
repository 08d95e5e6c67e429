package federation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Fetcher gets an entity configuration or a subordinate statement by URL and returns the
// body (a compact JWS). The resolver uses an HTTPFetcher unless given another one (a
// deployment that serves its own statements may answer those without HTTP).
type Fetcher interface {
	Fetch(ctx context.Context, url string) ([]byte, error)
}

// FetchOptions bound every fetch (§18.1).
type FetchOptions struct {
	// Timeout of one fetch, connection included; 0 means 5 s.
	Timeout time.Duration
	// MaxResponseBytes is the largest body accepted; 0 means 64 KiB.
	MaxResponseBytes int64
	// AllowLoopback allows http:// and loopback addresses (127.0.0.0/8, ::1), as Tongban
	// does for loopback everywhere (dev, tests). Otherwise only https to public addresses.
	AllowLoopback bool
	// AllowPrivate allows private, link-local, CGNAT and unspecified addresses.
	AllowPrivate bool
	// Transport, when set, replaces the default transport (its dialer is then the caller's
	// and the address checks above apply only to literal IPs in URLs).
	Transport http.RoundTripper
}

// HTTPFetcher fetches with the bounds of FetchOptions: https only (http on loopback when
// allowed), the connected address checked at dial time (so a name resolving to a private
// address is refused too), no redirects, a per-fetch timeout, a size limit, and the
// application/entity-statement+jwt content type (§9.2, §8.1.2).
type HTTPFetcher struct {
	opts   FetchOptions
	client *http.Client
}

// NewHTTPFetcher returns a fetcher with opts.
func NewHTTPFetcher(opts FetchOptions) *HTTPFetcher {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = 64 << 10
	}
	f := &HTTPFetcher{opts: opts}
	tr := opts.Transport
	if tr == nil {
		d := &net.Dialer{Timeout: opts.Timeout, Control: f.dialControl}
		tr = &http.Transport{
			Proxy:                 nil, // a proxy would hide the address checked
			DialContext:           d.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          64,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   opts.Timeout,
			ResponseHeaderTimeout: opts.Timeout,
		}
	}
	f.client = &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errRedirect
		},
	}
	return f
}

var errRedirect = errors.New("redirect refused")

type addrRefused struct{ addr netip.Addr }

func (e addrRefused) Error() string { return fmt.Sprintf("address %s refused", e.addr) }

// dialControl checks the address actually dialled.
func (f *HTTPFetcher) dialControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return err
	}
	if !f.addrAllowed(ap.Addr()) {
		return addrRefused{ap.Addr()}
	}
	return nil
}

func (f *HTTPFetcher) addrAllowed(a netip.Addr) bool {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return f.opts.AllowLoopback
	case a.IsPrivate(), a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsUnspecified(),
		a.IsMulticast(), a.IsInterfaceLocalMulticast(), cgnat.Contains(a):
		return f.opts.AllowPrivate
	}
	return true
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// CheckURL reports whether the fetcher would fetch u (scheme and literal address), with
// ReasonFetchRefused.
func (f *HTTPFetcher) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return refuse(ReasonFetchRefused, raw, "not an absolute URL")
	}
	loopback := isLoopbackHost(u.Hostname())
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback && f.opts.AllowLoopback:
	default:
		return refuse(ReasonFetchRefused, raw, "scheme %s (https only, http on loopback when allowed)", u.Scheme)
	}
	if u.User != nil {
		return refuse(ReasonFetchRefused, raw, "credentials in the URL")
	}
	if a, err := netip.ParseAddr(u.Hostname()); err == nil && !f.addrAllowed(a) {
		return refuse(ReasonFetchRefused, raw, "address %s", a)
	}
	if loopback && !f.opts.AllowLoopback {
		return refuse(ReasonFetchRefused, raw, "loopback host")
	}
	return nil
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") || strings.HasSuffix(strings.ToLower(h), ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

// Fetch GETs raw and returns the body; failures are *Error with a fetch reason.
func (f *HTTPFetcher) Fetch(ctx context.Context, raw string) ([]byte, error) {
	if err := f.CheckURL(raw); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, &Error{Reason: ReasonFetchRefused, Entity: raw, Err: err}
	}
	req.Header.Set("Accept", ContentTypeEntityStatement)
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, f.transportErr(ctx, raw, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, refuse(ReasonFetchFailed, raw, "status %d", resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != ContentTypeEntityStatement {
		return nil, refuse(ReasonWrongContentType, raw, "content type %q", resp.Header.Get("Content-Type"))
	}
	if resp.ContentLength > f.opts.MaxResponseBytes {
		return nil, refuse(ReasonResponseTooLarge, raw, "%d bytes announced, limit %d", resp.ContentLength, f.opts.MaxResponseBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.opts.MaxResponseBytes+1))
	if err != nil {
		return nil, f.transportErr(ctx, raw, err)
	}
	if int64(len(body)) > f.opts.MaxResponseBytes {
		return nil, refuse(ReasonResponseTooLarge, raw, "more than %d bytes", f.opts.MaxResponseBytes)
	}
	return body, nil
}

func (f *HTTPFetcher) transportErr(ctx context.Context, raw string, err error) error {
	var ar addrRefused
	switch {
	case errors.As(err, &ar):
		return &Error{Reason: ReasonFetchRefused, Entity: raw, Detail: "private address", Err: ar}
	case errors.Is(err, errRedirect):
		return refuse(ReasonFetchRefused, raw, "redirect")
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return refuse(ReasonFetchTimeout, raw, "no answer within %s", f.opts.Timeout)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return refuse(ReasonFetchTimeout, raw, "no answer within %s", f.opts.Timeout)
	}
	return &Error{Reason: ReasonFetchFailed, Entity: raw, Err: err}
}

// ConfigurationURL is where an entity's configuration is published: the entity id without
// a trailing slash, then /.well-known/openid-federation (§9).
func ConfigurationURL(entityID string) string {
	return strings.TrimSuffix(entityID, "/") + "/.well-known/openid-federation"
}

// FetchURL is the fetch request for the subordinate statement about sub (§8.1.1).
func FetchURL(endpoint, sub string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("fetch endpoint %q is not a URL", endpoint)
	}
	q := u.Query()
	q.Set("sub", sub)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
