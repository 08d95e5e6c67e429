package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tongban/tongban/internal/reqid"
)

// presenterLog is a logger that writes JSON lines, with request ids, into a buffer.
func presenterLog() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(reqid.Handler{Handler: slog.NewJSONHandler(&buf, nil)}), &buf
}

// leakedSecret stands for whatever an internal error may hold that a client must never see.
const leakedSecret = "dial tcp 10.0.0.7:6379: password hunter2 rejected"

func TestPresentError(t *testing.T) {
	coded := func(code, msg string) func() error {
		return func() error {
			return &gqlerror.Error{Message: msg, Extensions: map[string]any{extensionCode: code, "detail": "kept"}}
		}
	}
	tests := []struct {
		name        string
		in          func() error // called twice: once to present, once to compare against
		wantCode    Code
		wantMessage string
	}{
		{name: "contract code kept", in: coded("FORBIDDEN", "not your inbox"),
			wantCode: CodeForbidden, wantMessage: "not your inbox"},
		{name: "contract code kept through wrapping",
			in:       func() error { return fmt.Errorf("resolve me: %w", newError(CodeNotFound, "no such app")) },
			wantCode: CodeNotFound, wantMessage: "no such app"},
		{name: "limit code kept", in: coded("DEPTH_LIMIT_EXCEEDED", "too deep"),
			wantCode: CodeDepthLimitExceeded, wantMessage: "too deep"},
		{name: "validation failure is bad input", in: coded(gqlgenValidationFailed, `Cannot query field "x" on type "Query".`),
			wantCode: CodeBadUserInput, wantMessage: `Cannot query field "x"`},
		{name: "parse failure is bad input", in: coded(gqlgenParseFailed, "Expected Name, found <EOF>"),
			wantCode: CodeBadUserInput, wantMessage: "Expected Name"},
		{name: "persisted query miss", in: coded(persistedQueryNotFoundGqlgen, "PersistedQueryNotFound"),
			wantCode: CodePersistedQueryNotFound, wantMessage: "PersistedQueryNotFound"},
		{name: "gqlerror without code or cause is about the request",
			in:       func() error { return gqlerror.Errorf("operation Foo not found") },
			wantCode: CodeBadUserInput, wantMessage: "operation Foo not found"},

		{name: "plain error", in: func() error { return errors.New(leakedSecret) },
			wantCode: CodeInternal, wantMessage: internalMessage},
		{name: "wrapped plain error", in: func() error { return fmt.Errorf("load person: %w", errors.New(leakedSecret)) },
			wantCode: CodeInternal, wantMessage: internalMessage},
		{name: "gqlerror without code but with a cause",
			in:       func() error { return &gqlerror.Error{Message: leakedSecret, Err: errors.New(leakedSecret)} },
			wantCode: CodeInternal, wantMessage: internalMessage},
		{name: "resolver error as gqlgen wraps it", in: func() error {
			return gqlerror.WrapPath(ast.Path{ast.PathName("me")}, errors.New(leakedSecret))
		}, wantCode: CodeInternal, wantMessage: internalMessage},
		{name: "unknown code", in: coded("REDIS_DOWN", leakedSecret),
			wantCode: CodeInternal, wantMessage: internalMessage},
		{name: "code of the wrong type", in: func() error {
			return &gqlerror.Error{Message: leakedSecret, Err: errors.New("x"), Extensions: map[string]any{extensionCode: 500}}
		}, wantCode: CodeInternal, wantMessage: internalMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logBuf := presenterLog()
			ctx := reqid.With(context.Background(), "req-42")
			in := tt.in()
			out := presentError(log, nil)(ctx, in)

			if got, _ := out.Extensions[extensionCode].(string); got != string(tt.wantCode) {
				t.Fatalf("code = %q, want %q (%+v)", got, tt.wantCode, out)
			}
			if out.Message != tt.wantMessage && !strings.Contains(out.Message, tt.wantMessage) {
				t.Errorf("message = %q, want %q", out.Message, tt.wantMessage)
			}
			if !reflect.DeepEqual(in, tt.in()) {
				t.Errorf("the presenter changed its input: %+v", in)
			}

			if tt.wantCode != CodeInternal {
				if _, ok := out.Extensions[extensionRequestID]; ok {
					t.Errorf("requestId on a non-internal error: %v", out.Extensions)
				}
				if logBuf.Len() != 0 {
					t.Errorf("an error about the request was logged: %s", logBuf)
				}
				return
			}
			if out.Message != internalMessage {
				t.Errorf("internal error message = %q, want %q", out.Message, internalMessage)
			}
			if got := out.Extensions[extensionRequestID]; got != "req-42" {
				t.Errorf("requestId = %v, want req-42", got)
			}
			wire, err := json.Marshal(out)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(wire), "hunter2") {
				t.Errorf("client sees the internal error: %s", wire)
			}
			logged := logBuf.String()
			if !strings.Contains(logged, "hunter2") {
				t.Errorf("log lacks the original error: %s", logged)
			}
			if !strings.Contains(logged, `"request_id":"req-42"`) {
				t.Errorf("log line lacks the request id: %s", logged)
			}
		})
	}
}

// An internal error already coded INTERNAL (as recoverPanic makes) gets the request id too.
func TestPresentErrorCodedInternalGetsRequestID(t *testing.T) {
	log, _ := presenterLog()
	ctx := reqid.With(context.Background(), "req-7")
	out := presentError(log, nil)(ctx, newError(CodeInternal, internalMessage))
	if out.Extensions[extensionCode] != string(CodeInternal) || out.Extensions[extensionRequestID] != "req-7" {
		t.Errorf("extensions = %v, want INTERNAL with requestId req-7", out.Extensions)
	}
}

func TestPresentErrorPath(t *testing.T) {
	ctx := graphql.WithFieldContext(reqid.With(context.Background(), "req-1"),
		&graphql.FieldContext{Field: graphql.CollectedField{Field: &ast.Field{Alias: "me", Name: "me"}}})

	t.Run("coded error takes the field's path", func(t *testing.T) {
		log, _ := presenterLog()
		out := presentError(log, nil)(ctx, newError(CodeUnauthenticated, "sign in"))
		if got := out.Path.String(); got != "me" {
			t.Errorf("path = %q, want me", got)
		}
	})
	t.Run("coded error keeps its own path", func(t *testing.T) {
		log, _ := presenterLog()
		in := newError(CodeNotFound, "gone")
		in.Path = ast.Path{ast.PathName("apps"), ast.PathIndex(2)}
		out := presentError(log, nil)(ctx, in)
		if got := out.Path.String(); got != "apps[2]" {
			t.Errorf("path = %q, want apps[2]", got)
		}
	})
	t.Run("internal error names the field in the response and the log", func(t *testing.T) {
		log, logBuf := presenterLog()
		out := presentError(log, nil)(ctx, errors.New(leakedSecret))
		if got := out.Path.String(); got != "me" {
			t.Errorf("path = %q, want me", got)
		}
		if !strings.Contains(logBuf.String(), `"path":"me"`) {
			t.Errorf("log lacks the path: %s", logBuf)
		}
	})
}

func TestRecoverPanic(t *testing.T) {
	log, logBuf := presenterLog()
	ctx := reqid.With(context.Background(), "req-9")
	err := recoverPanic(log)(ctx, fmt.Errorf("nil map write near %s", leakedSecret))

	var gerr *gqlerror.Error
	if !errors.As(err, &gerr) {
		t.Fatalf("recover returned %T, want *gqlerror.Error", err)
	}
	if gerr.Message != internalMessage || gerr.Extensions[extensionCode] != string(CodeInternal) {
		t.Errorf("recovered error = %+v, want INTERNAL %q", gerr, internalMessage)
	}
	out := presentError(log, nil)(ctx, err)
	wire, _ := json.Marshal(out)
	if strings.Contains(string(wire), "hunter2") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("client sees the panic value: %s", wire)
	}
	if out.Extensions[extensionRequestID] != "req-9" {
		t.Errorf("presented panic lacks the request id: %v", out.Extensions)
	}
	logged := logBuf.String()
	for _, want := range []string{"hunter2", `"request_id":"req-9"`, `"stack":`} {
		if !strings.Contains(logged, want) {
			t.Errorf("log lacks %s: %s", want, logged)
		}
	}
}
