package devpartner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/federation"
)

// The alliance's trust mark, as an app gets it from Tongban (OpenID Federation 1.0 §8.6): find
// the federation_trust_mark_endpoint in Tongban's own entity configuration, ask it for the mark
// of trust_mark_type for sub = the app, keep the answer until the mark's exp.

// contentTypeTrustMark is the trust mark endpoint's answer (§8.6.2, §15.2).
const contentTypeTrustMark = "application/trust-mark+jwt"

// errNotIssued is Tongban answering that it issues no such mark to the app (yet): 404 (§8.6.2).
var errNotIssued = errors.New("devpartner: Tongban issues no trust mark to this app")

// markEntry is what an app last learnt of its trust mark: the mark ("" when none) and until
// when to keep that answer.
type markEntry struct {
	raw   string
	until time.Time
}

// trustMark is the app's current trust mark, "" when there is none to present. A kept answer is
// reused until it lapses; otherwise one flight per app asks Tongban, bounded by the fetch
// timeout whatever the caller's context, so that a configuration request that gives up does
// not cancel the answer the next one would use.
func (d *Partners) trustMark(ctx context.Context, m *member) string {
	if d.fed.markType == "" {
		return ""
	}
	now := d.fed.now()
	d.mu.Lock()
	e, ok := d.marks[m.entityID]
	d.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.raw
	}
	ch := d.flight.DoChan(m.entityID, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.fed.timeout)
		defer cancel()
		raw, until, err := d.fetchMark(fctx, m)
		if err != nil {
			d.fed.log.Info("devpartner: trust mark not obtained", "app", m.id, "type", d.fed.markType, "err", err)
			raw, until = "", d.fed.now().Add(d.fed.retry)
		}
		d.mu.Lock()
		d.marks[m.entityID] = markEntry{raw: raw, until: until}
		d.mu.Unlock()
		return raw, nil
	})
	select {
	case res := <-ch:
		raw, _ := res.Val.(string)
		return raw
	case <-ctx.Done():
		return ""
	}
}

// fetchMark asks Tongban for the app's mark and checks it, returning it with when to ask again.
func (d *Partners) fetchMark(ctx context.Context, m *member) (string, time.Time, error) {
	body, _, err := d.get(ctx, federation.ConfigurationURL(d.fed.anchor), federation.ContentTypeEntityStatement)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("Tongban's entity configuration: %w", err)
	}
	v := &federation.Verifier{Now: d.fed.now}
	anchor, err := v.VerifyConfiguration(string(body), d.fed.anchor)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("Tongban's entity configuration: %w", err)
	}
	endpoint, _ := anchor.Metadata["federation_entity"]["federation_trust_mark_endpoint"].(string)
	u, err := url.Parse(endpoint)
	if endpoint == "" || err != nil || u.Host == "" {
		return "", time.Time{}, fmt.Errorf("Tongban's configuration has no usable federation_trust_mark_endpoint (%q)", endpoint)
	}
	q := u.Query()
	q.Set("trust_mark_type", d.fed.markType)
	q.Set("sub", m.entityID)
	u.RawQuery = q.Encode()
	body, status, err := d.get(ctx, u.String(), contentTypeTrustMark)
	if status == http.StatusNotFound {
		return "", time.Time{}, errNotIssued
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("trust mark endpoint: %w", err)
	}
	tm, err := checkMark(string(body), m.entityID, d.fed.markType, anchor, d.fed.now())
	if err != nil {
		return "", time.Time{}, err
	}
	until := tm.Expiry()
	if until.IsZero() || until.Sub(d.fed.now()) > d.fed.markRefresh {
		// A mark without exp, or a long one, is asked for again now and then: Tongban may
		// have stopped issuing it (the app was removed from the alliance).
		until = d.fed.now().Add(d.fed.markRefresh)
	}
	return tm.Raw, until, nil
}

// checkMark is what an app checks before presenting a mark Tongban issued it: a trust-mark+jwt
// signed with one of Tongban's federation keys (the dev alliance's anchor issues its own marks),
// iss Tongban, sub the app, the type asked for, iat present and past, exp (if any) future. The
// trust anchor's recognition of the issuer (§7.3, trust_mark_issuers) is the relying party's
// check, not the holder's.
func checkMark(raw, subject, markType string, anchor *federation.EntityStatement, now time.Time) (*federation.TrustMark, error) {
	jws, err := jose.ParseSigned(raw, federation.DefaultAlgorithms)
	if err != nil {
		return nil, fmt.Errorf("devpartner: trust mark: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("devpartner: trust mark: not one signature")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != federation.TypeTrustMark {
		return nil, fmt.Errorf("devpartner: trust mark: typ %q", typ)
	}
	if anchor == nil || anchor.JWKS == nil || h.KeyID == "" {
		return nil, errors.New("devpartner: trust mark: no kid, or no key of Tongban's to check it with")
	}
	keys := anchor.JWKS.Key(h.KeyID)
	if len(keys) != 1 {
		return nil, fmt.Errorf("devpartner: trust mark: kid %q is not one of Tongban's federation keys", h.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return nil, fmt.Errorf("devpartner: trust mark: signature: %w", err)
	}
	var tm federation.TrustMark
	if err := json.Unmarshal(payload, &tm); err != nil {
		return nil, fmt.Errorf("devpartner: trust mark: claims: %w", err)
	}
	tm.Raw, tm.KeyID = raw, h.KeyID
	const leeway = time.Minute
	switch {
	case tm.Issuer != anchor.Subject:
		return nil, fmt.Errorf("devpartner: trust mark: iss %q is not Tongban", tm.Issuer)
	case tm.Subject != subject:
		return nil, fmt.Errorf("devpartner: trust mark: sub %q is not the app", tm.Subject)
	case tm.TrustMarkType != markType:
		return nil, fmt.Errorf("devpartner: trust mark: type %q, asked for %q", tm.TrustMarkType, markType)
	case tm.IssuedAt == 0 || time.Unix(tm.IssuedAt, 0).After(now.Add(leeway)):
		return nil, errors.New("devpartner: trust mark: iat missing or in the future")
	case tm.ExpiresAt != 0 && !time.Unix(tm.ExpiresAt, 0).After(now):
		return nil, errors.New("devpartner: trust mark: expired")
	}
	return &tm, nil
}

// get fetches u from Tongban, bounded in time (the context), size and redirects, and returns
// the body of a 200 answer of content type want; otherwise the status, if any, with an error.
func (d *Partners) get(ctx context.Context, u, want string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", want)
	resp, err := d.fetcher.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, resp.StatusCode, fmt.Errorf("status %d", resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != want {
		return nil, resp.StatusCode, fmt.Errorf("content type %q, want %s", resp.Header.Get("Content-Type"), want)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, d.fed.maxResponse+1))
	if err != nil {
		return nil, resp.StatusCode, err
	}
	if int64(len(body)) > d.fed.maxResponse {
		return nil, resp.StatusCode, fmt.Errorf("more than %d bytes", d.fed.maxResponse)
	}
	return body, resp.StatusCode, nil
}

// newFetcher is the HTTP client for Tongban's federation endpoints: no redirects (an answer
// elsewhere is not Tongban's), no proxy; time is bounded by the caller's context.
func newFetcher() *http.Client {
	return &http.Client{
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("redirect refused")
		},
	}
}
