package logout_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tongban/tongban/internal/testenv"
)

// A job queued inside a trace is sent inside it, retries included: the trace context travels
// in the stream entry, into the retry set and back onto the stream (releaseDueScript). Each
// attempt is a "logout send" span, its POST a "logout POST" child; the endpoint's query reaches
// the member app but not url.full, the member app gets no traceparent, and no span holds the
// token, the sub, the sid or the jti.
func TestTheTraceOfAJobReachesEachAttempt(t *testing.T) {
	otel.SetTextMapPropagator(propagation.TraceContext{}) // as telemetry.Setup installs it
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	store := testenv.Redis(t)
	sg := newSigner(t)
	var mu sync.Mutex
	var queries, traceparents []string
	p := newPartner(t, sg, "app1", func(w http.ResponseWriter, r *http.Request, n int) int {
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		traceparents = append(traceparents, r.Header.Get("traceparent"))
		mu.Unlock()
		if n == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return http.StatusServiceUnavailable
		}
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	})
	plain := newPartner(t, sg, "app2", status(http.StatusOK))
	o := fast(endpoints{"app1": p.srv.URL + "/bcl?tenant=t-secret", "app2": plain.srv.URL}, sg)
	o.Tracer = tp
	s, _ := start(t, store, o)

	ctx, parent := tp.Tracer("test").Start(context.Background(), "sign out")
	queueCtx(t, ctx, store, s, job("app1"))
	queue(t, store, s, job("app2")) // outside the trace: a trace of its own
	parent.End()

	testenv.Eventually(t, 10*time.Second, func() bool {
		return len(p.receipts()) == 2 && len(plain.receipts()) == 1 && settled(t, store)
	}, "the untraced job sent, the traced one retried and sent")

	var sends, posts []tracetest.SpanStub
	for _, sp := range exp.GetSpans() {
		switch sp.Name {
		case "logout send":
			sends = append(sends, sp)
		case "logout POST":
			posts = append(posts, sp)
		}
	}
	if len(sends) != 3 || len(posts) != 3 {
		t.Fatalf("%d send and %d POST spans, want 3 of each", len(sends), len(posts))
	}
	traced := map[int64]bool{} // attempt -> seen in the parent's trace
	sendIDs := map[string]bool{}
	for _, sp := range sends {
		sendIDs[sp.SpanContext.SpanID().String()] = true
		if sp.SpanContext.TraceID() != parent.SpanContext().TraceID() {
			continue
		}
		if sp.Parent.SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("a traced attempt's span is not a child of the span that queued it")
		}
		for _, a := range sp.Attributes {
			if a.Key == "tongban.attempt" {
				traced[a.Value.AsInt64()] = true
			}
		}
	}
	if !traced[1] || !traced[2] || len(traced) != 2 {
		t.Errorf("attempts in the queuing trace: %v, want 1 and 2 (the retry keeps the trace)", traced)
	}
	for _, sp := range posts {
		if !sendIDs[sp.Parent.SpanID().String()] {
			t.Errorf("a logout POST span is not a child of a logout send span")
		}
		for _, a := range sp.Attributes {
			if u := a.Value.AsString(); a.Key == "url.full" && u != p.srv.URL+"/bcl" && u != plain.srv.URL {
				t.Errorf("url.full = %q, want the endpoint without its query", a.Value.AsString())
			}
		}
	}
	mu.Lock()
	for i := range queries {
		if queries[i] != "tenant=t-secret" {
			t.Errorf("POST %d reached the member app with query %q, want the endpoint's", i+1, queries[i])
		}
		if traceparents[i] != "" {
			t.Errorf("POST %d carried a traceparent to the member app: %q", i+1, traceparents[i])
		}
	}
	mu.Unlock()

	secrets := []string{"t-secret", "sub-of-app1", "sub-of-app2", "gid-1"}
	for _, r := range append(p.receipts(), plain.receipts()...) {
		secrets = append(secrets, r.claims.ID)
	}
	for _, sp := range exp.GetSpans() {
		text := sp.Name + " " + sp.Status.Description
		for _, a := range sp.Attributes {
			text += " " + string(a.Key) + "=" + a.Value.Emit()
		}
		for _, e := range sp.Events {
			text += " " + e.Name
			for _, a := range e.Attributes {
				text += " " + a.Value.Emit()
			}
		}
		for _, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("span %q holds %q", sp.Name, secret)
			}
		}
	}
}
