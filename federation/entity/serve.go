package entity

// The endpoints: the entity configuration (§9), fetch (§8.1), subordinate listing (§8.2) and
// trust mark issuance (§8.6). Errors are §8.9's JSON objects through federation.WriteError.

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/tongban/tongban/federation"
)

// ContentTypeTrustMark is the trust mark endpoint's response type (§8.6.2, §15.2).
const ContentTypeTrustMark = "application/trust-mark+jwt"

// maxQuery bounds a request's query string: the longest legitimate one holds an entity id and
// a trust-mark type.
const maxQuery = 4096

// Routes registers the endpoints with route (the app's mux helper: pattern, metric name,
// handler). GET only; the mux answers 405 to other methods.
func (e *Entity) Routes(route func(pattern, name string, h http.Handler)) {
	route("GET "+e.prefix+ConfigurationPath, "federation_configuration", http.HandlerFunc(e.serveConfiguration))
	route("GET "+e.prefix+FetchPath, "federation_fetch", http.HandlerFunc(e.serveFetch))
	route("GET "+e.prefix+ListPath, "federation_list", http.HandlerFunc(e.serveList))
	if len(e.issuer.Types) > 0 {
		route("GET "+e.prefix+TrustMarkPath, "federation_trust_mark", http.HandlerFunc(e.serveTrustMark))
	}
}

// badRequest is a refused request: the §8.9 code and its description.
type badRequest struct{ code, desc string }

func (b *badRequest) Error() string { return b.code + ": " + b.desc }

// query parses the query string: bounded, each of the named parameters at most once.
func query(r *http.Request, names ...string) (url.Values, *badRequest) {
	if len(r.URL.RawQuery) > maxQuery {
		return nil, &badRequest{"invalid_request", "the query string is too long"}
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, &badRequest{"invalid_request", "the query string does not parse"}
	}
	for _, n := range names {
		if len(q[n]) > 1 {
			return nil, &badRequest{"invalid_request", n + " is given more than once"}
		}
	}
	return q, nil
}

// entityParam reads a required entity id parameter.
func (e *Entity) entityParam(q url.Values, name string) (string, *badRequest) {
	v := q.Get(name)
	if v == "" {
		return "", &badRequest{"invalid_request", name + " is required"}
	}
	if err := CheckEntityID(v, e.o.AllowLoopback); err != nil {
		return "", &badRequest{"invalid_request", name + " is not an entity identifier"}
	}
	return v, nil
}

// fail writes err: a badRequest as itself, anything else (Redis, signing) as
// temporarily_unavailable or server_error, logged, never described to the caller.
func (e *Entity) fail(w http.ResponseWriter, r *http.Request, err error) {
	if b, ok := errors.AsType[*badRequest](err); ok {
		federation.WriteError(w, b.code, b.desc)
		return
	}
	e.o.Log.Error("federation/entity: request failed", "path", r.URL.Path, "err", err)
	if errors.Is(err, errNoKeys) {
		federation.WriteError(w, "temporarily_unavailable", "the federation key is not loaded yet")
		return
	}
	federation.WriteError(w, "server_error", "the request could not be served")
}

func (e *Entity) serveConfiguration(w http.ResponseWriter, r *http.Request) {
	jws, err := e.configuration()
	if err != nil {
		e.fail(w, r, err)
		return
	}
	federation.WriteStatement(w, jws)
}

// serveFetch is §8.1: the subordinate statement about sub, signed now.
func (e *Entity) serveFetch(w http.ResponseWriter, r *http.Request) {
	q, bad := query(r, "sub")
	if bad != nil {
		e.fail(w, r, bad)
		return
	}
	sub, bad := e.entityParam(q, "sub")
	if bad != nil {
		e.fail(w, r, bad)
		return
	}
	s, ok, err := e.reg.Get(r.Context(), sub)
	switch {
	case err != nil:
		e.fail(w, r, err)
		return
	case !ok:
		federation.WriteError(w, "not_found", "no subordinate with this entity identifier")
		return
	}
	now := e.o.Now()
	jwks := s.JWKS
	st := &federation.EntityStatement{
		Issuer: e.o.EntityID, Subject: s.EntityID, IssuedAt: now.Unix(), ExpiresAt: now.Add(e.o.Lifetime).Unix(),
		JWKS: &jwks, MetadataPolicy: s.MetadataPolicy, Constraints: s.Constraints, SourceEndpoint: e.URL(FetchPath),
	}
	jws, err := e.o.Keys.Sign(e.o.Algorithm, federation.TypeEntityStatement, st)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	federation.WriteStatement(w, jws)
}

// serveList is §8.2: the entity ids of the subordinates, filtered by trust_marked and
// trust_mark_type. entity_type and intermediate need what a subordinate publishes about
// itself, which is not stored: unsupported_parameter (§8.2.1).
func (e *Entity) serveList(w http.ResponseWriter, r *http.Request) {
	q, bad := query(r, "trust_marked", "trust_mark_type", "intermediate")
	if bad != nil {
		e.fail(w, r, bad)
		return
	}
	for _, p := range []string{"entity_type", "intermediate"} {
		if q.Has(p) {
			federation.WriteError(w, "unsupported_parameter", p+" is not supported")
			return
		}
	}
	marked := q.Get("trust_marked")
	if q.Has("trust_marked") && marked != "true" && marked != "false" {
		e.fail(w, r, &badRequest{"invalid_request", "trust_marked must be true or false"})
		return
	}
	typ := q.Get("trust_mark_type")
	if q.Has("trust_mark_type") && typ == "" {
		e.fail(w, r, &badRequest{"invalid_request", "trust_mark_type is empty"})
		return
	}
	subs, err := e.reg.List(r.Context())
	if err != nil {
		e.fail(w, r, err)
		return
	}
	ids := []string{}
	for _, s := range subs {
		if marked == "true" && len(s.TrustMarks) == 0 || typ != "" && !slices.Contains(s.TrustMarks, typ) {
			continue
		}
		ids = append(ids, s.EntityID)
	}
	body, err := json.Marshal(ids)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

// serveTrustMark is §8.6: a trust mark of trust_mark_type about sub, when sub is a subordinate
// holding that type; not_found otherwise.
func (e *Entity) serveTrustMark(w http.ResponseWriter, r *http.Request) {
	q, bad := query(r, "trust_mark_type", "sub")
	if bad != nil {
		e.fail(w, r, bad)
		return
	}
	typ := q.Get("trust_mark_type")
	if typ == "" {
		e.fail(w, r, &badRequest{"invalid_request", "trust_mark_type is required"})
		return
	}
	sub, bad := e.entityParam(q, "sub")
	if bad != nil {
		e.fail(w, r, bad)
		return
	}
	if !slices.Contains(e.issuer.Types, typ) {
		federation.WriteError(w, "not_found", "this trust mark type is not issued here")
		return
	}
	s, ok, err := e.reg.Get(r.Context(), sub)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	if !ok || !slices.Contains(s.TrustMarks, typ) {
		federation.WriteError(w, "not_found", "the entity does not hold this trust mark type")
		return
	}
	jws, err := e.issueMark(s.EntityID, typ)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", ContentTypeTrustMark)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(jws))
}

// issueMark signs a trust mark with the issuer's key, or the federation key when it has none.
func (e *Entity) issueMark(sub, typ string) (string, error) {
	now := e.o.Now()
	tm := &federation.TrustMark{Issuer: e.o.EntityID, Subject: sub, TrustMarkType: typ,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(e.o.MarkLifetime).Unix()}
	if e.issuer.Key != nil {
		return federation.SignTrustMark(tm, *e.issuer.Key)
	}
	return e.o.Keys.Sign(e.o.Algorithm, federation.TypeTrustMark, tm)
}
