package app

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/testenv"
)

// A sign-out's trace reaches each member app's logout POST: the signOut request's span, the
// logout job it queued (its trace context carried in the {logout}:jobs entry) and the POST of
// the token are one trace. No span holds the logout token, the grant's sid (the session id the
// app knows), the app's sub or the person's tokens; and the member app is sent no traceparent,
// which would be one id across the apps a person signed out of.
func TestTraceFollowsASignOutToItsLogoutPost(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	rec := loNewRecorder(t)
	var traceparents []string
	inner := rec.srv.Config.Handler
	rec.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get("traceparent"); v != "" {
			rec.mu.Lock()
			traceparents = append(traceparents, v)
			rec.mu.Unlock()
		}
		inner.ServeHTTP(w, r)
	})
	// A query on the endpoint, which url.full must not show.
	mutate := loMutate(rec, func(c *config.Config) {
		for i := range c.Clients {
			c.Clients[i].BackchannelLogoutURI += "?k=query-secret"
		}
	})
	h := startIdentity(t, mutate, WithTracing(tp))
	s := &loScene{h: h, r: &swrRig{h: h}, rec: rec, grants: map[string]*loGrant{}}
	s.a = h.signIn("zheliban", "wang-fang")
	for _, app := range []string{"suishenban", "sufuban"} {
		if res := h.gql(grantConsent, map[string]any{"a": app, "s": []string{"profile", "phone", "id_number"}}, s.a.access); len(res.Errors) > 0 {
			t.Fatalf("grantConsent %s: %s", app, res.Raw)
		}
	}
	s.loSwitch(t, "a-ssb", s.a, "suishenban", "openid profile phone id_number")
	s.loSwitch(t, "a-sfb", s.a, "sufuban", "openid profile phone id_number")
	exp.Reset() // the sign-in and switches are traces of their own

	s.mustGQL(t, loSignOut, nil, s.a.access)
	var sends, posts []tracetest.SpanStub
	testenv.Eventually(t, 20*time.Second, func() bool {
		sends, posts = nil, nil
		for _, sp := range exp.GetSpans() {
			switch sp.Name {
			case "logout send":
				sends = append(sends, sp)
			case "logout POST":
				posts = append(posts, sp)
			}
		}
		return len(posts) == 2 && len(sends) == 2 && rec.count() == 2
	}, "two logout POSTs traced")

	var signOut trace.TraceID
	for _, sp := range exp.GetSpans() {
		if sp.Name == "graphql mutation" {
			signOut = sp.SpanContext.TraceID()
		}
	}
	if !signOut.IsValid() {
		t.Fatalf("no span of the signOut mutation: %v", spanNames(exp.GetSpans()))
	}
	bySpan := map[trace.SpanID]tracetest.SpanStub{}
	for _, sp := range sends {
		bySpan[sp.SpanContext.SpanID()] = sp
	}
	clients := map[string]bool{}
	for _, post := range posts {
		if post.SpanContext.TraceID() != signOut {
			t.Errorf("the logout POST's span is not in the signOut's trace")
		}
		send, ok := bySpan[post.Parent.SpanID()]
		if !ok {
			t.Errorf("the logout POST's span is not a child of a logout send span")
			continue
		}
		if send.SpanContext.TraceID() != signOut {
			t.Errorf("the logout send span is not in the signOut's trace")
		}
		for _, a := range send.Attributes {
			if a.Key == "tongban.client" {
				clients[a.Value.AsString()] = true
			}
		}
		attrs := map[string]string{}
		for _, a := range post.Attributes {
			attrs[string(a.Key)] = a.Value.Emit()
		}
		if attrs["http.response.status_code"] != "200" {
			t.Errorf("the POST's span says status %q, want 200", attrs["http.response.status_code"])
		}
		if u := attrs["url.full"]; !strings.HasPrefix(u, rec.srv.URL+"/") || strings.Contains(u, "?") {
			t.Errorf("the POST's url.full = %q, want the endpoint without its query", u)
		}
	}
	if !clients["suishenban"] || !clients["sufuban"] {
		t.Errorf("logout send spans of clients %v, want suishenban and sufuban", clients)
	}
	rec.mu.Lock()
	if len(traceparents) > 0 {
		t.Errorf("a member app was sent a traceparent: %v", traceparents)
	}
	rec.mu.Unlock()

	// Nothing secret or linkable in any span: names, attributes, events, status.
	secrets := []string{s.a.access, s.a.refresh, "query-secret", idNumberOf(t, "wang-fang"), "王芳"}
	for _, toks := range rec.snapshot() {
		for _, tok := range toks {
			c := loClaims(t, tok)
			sid, _ := c["sid"].(string)
			sub, _ := c["sub"].(string)
			jti, _ := c["jti"].(string)
			secrets = append(secrets, tok, sid, sub, jti)
		}
	}
	for _, g := range s.grants {
		secrets = append(secrets, g.access, g.refresh, g.idToken, g.sid, g.sub)
	}
	for _, sp := range exp.GetSpans() {
		b := spanText(sp)
		for _, secret := range secrets {
			if secret != "" && strings.Contains(b, secret) {
				t.Errorf("span %q holds %q", sp.Name, secret)
			}
		}
	}
}

// spanText is everything a span says: name, attributes, events, status.
func spanText(s tracetest.SpanStub) string {
	var b strings.Builder
	b.WriteString(s.Name + " " + s.Status.Description)
	for _, a := range s.Attributes {
		b.WriteString(" " + string(a.Key) + "=" + a.Value.Emit())
	}
	for _, e := range s.Events {
		b.WriteString(" " + e.Name)
		for _, a := range e.Attributes {
			b.WriteString(" " + a.Value.Emit())
		}
	}
	return b.String()
}

func spanNames(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
