package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tongban/tongban/internal/reqid"
)

// postJSON is the POST transport. gqlgen's own works, but it answers a body it cannot decode
// with a message that quotes Go types and echoes the whole body, and it passes every response
// through encoding/json again, which re-validates the data gqlgen has just encoded. This one
// differs in those two points only; ServeHTTP has already checked method and media type.
type postJSON struct {
	// hold takes the places a subscription occupies while it waits for its first event
	// (postsub.go); nil holds none.
	hold func(context.Context, *http.Request) (func(), *gqlerror.Error)
}

var _ graphql.Transport = postJSON{}

const badBody = `the body is not a GraphQL request: send one JSON object with "query" (a string) and, optionally, "operationName" (a string), "variables" and "extensions" (objects)`

func (postJSON) Supports(r *http.Request) bool {
	return r.Method == http.MethodPost && r.Header.Get("Upgrade") == ""
}

func (p postJSON) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	w.Header().Set("Content-Type", "application/json")
	start := graphql.Now()
	var params graphql.RawParams
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&params); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		writeResponse(w, exec.DispatchError(ctx, gqlerror.List{newError(CodeBadUserInput, badBody)}))
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}

	rc, errs := exec.CreateOperationContext(ctx, &params)
	if errs != nil {
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			w.WriteHeader(http.StatusUnprocessableEntity)
		}
		writeResponse(w, exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs))
		return
	}
	if p.hold != nil && rc.Operation != nil && rc.Operation.Operation == ast.Subscription {
		release, refusal := p.hold(ctx, r)
		if refusal != nil {
			writeResponse(w, exec.DispatchError(graphql.WithOperationContext(ctx, rc), gqlerror.List{refusal}))
			return
		}
		defer release()
		var cancel context.CancelFunc
		// It waits longer than request_timeout lets an ordinary request take.
		ctx, cancel = context.WithTimeout(reqid.WithoutTimeout(ctx), postSubscriptionWait)
		defer cancel()
	}
	responses, ctx := exec.DispatchOperation(ctx, rc)
	resp := responses(ctx)
	switch {
	case resp != nil:
	case rc.Operation != nil && rc.Operation.Operation == ast.Subscription:
		resp = subscriptionEnded(ctx)
	default:
		// gqlgen answers nothing once the request's context has ended: request_timeout
		// passed before the operation began (its Redis calls stalled while it was authorized).
		resp = &graphql.Response{Errors: gqlerror.List{requestTimedOut(ctx)}}
	}
	writeResponse(w, resp)
}

// requestTimedOut is the INTERNAL of a query or mutation that had no time left to run, with the
// request id to find it in the logs by.
func requestTimedOut(ctx context.Context) *gqlerror.Error {
	e := newError(CodeInternal, "the request took longer than the server allows; try again")
	e.Extensions[extensionRequestID] = reqid.From(ctx)
	return e
}

// subscriptionEnded answers a subscription sent as POST that ended before its first event
// (a POST answers one event): its session ended on some replica, or the server is going away.
func subscriptionEnded(ctx context.Context) *graphql.Response {
	if v, _ := ctx.Value(viewerKey{}).(*viewer); v != nil && v.revoked.Load() {
		return &graphql.Response{Errors: gqlerror.List{errSessionEnded()}}
	}
	return &graphql.Response{Errors: gqlerror.List{newError(CodeInternal, "the subscription ended before its first event; subscribe again")}}
}

func errSessionEnded() *gqlerror.Error {
	return newError(CodeUnauthenticated, "the session ended (signed out or revoked); sign in again")
}

var responseBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeResponse writes {"errors":…,"data":…,"extensions":…}. Data is JSON that gqlgen's
// marshalers produced, written as it is; only errors and extensions go through encoding/json.
// Label, path and hasNext belong to incremental delivery (@defer), which this API does not
// offer.
func writeResponse(w io.Writer, resp *graphql.Response) {
	buf := responseBuffers.Get().(*bytes.Buffer)
	defer func() { buf.Reset(); responseBuffers.Put(buf) }()
	buf.WriteByte('{')
	if len(resp.Errors) > 0 {
		buf.WriteString(`"errors":`)
		if b, err := json.Marshal(resp.Errors); err == nil {
			buf.Write(b)
		} else {
			buf.WriteString(`[{"message":"internal error","extensions":{"code":"INTERNAL"}}]`)
		}
		buf.WriteByte(',')
	}
	buf.WriteString(`"data":`)
	if len(resp.Data) == 0 {
		buf.WriteString("null")
	} else {
		buf.Write(resp.Data)
	}
	if len(resp.Extensions) > 0 {
		if b, err := json.Marshal(resp.Extensions); err == nil {
			buf.WriteString(`,"extensions":`)
			buf.Write(b)
		}
	}
	buf.WriteByte('}')
	_, _ = w.Write(buf.Bytes())
}
