package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tongban/tongban/internal/reqid"
)

// Code is a stable extensions.code (docs/api.md lists them), the part of an error a client may branch on.
type Code string

const (
	CodeUnauthenticated         Code = "UNAUTHENTICATED"
	CodeForbidden               Code = "FORBIDDEN"
	CodeNotFound                Code = "NOT_FOUND"
	CodeBadUserInput            Code = "BAD_USER_INPUT"
	CodeInvalidToken            Code = "INVALID_TOKEN"
	CodeAssuranceTooLow         Code = "ASSURANCE_TOO_LOW"
	CodeRateLimited             Code = "RATE_LIMITED"
	CodeComplexityLimitExceeded Code = "COMPLEXITY_LIMIT_EXCEEDED"
	CodeDepthLimitExceeded      Code = "DEPTH_LIMIT_EXCEEDED"
	CodePersistedQueryNotFound  Code = "PERSISTED_QUERY_NOT_FOUND"
	CodeInternal                Code = "INTERNAL"
)

const (
	internalMessage = "internal error"
	// Codes gqlgen sets, which clients never see: the presenter maps them to ours.
	gqlgenParseFailed            = "GRAPHQL_PARSE_FAILED"
	gqlgenValidationFailed       = "GRAPHQL_VALIDATION_FAILED"
	persistedQueryNotFoundGqlgen = "PersistedQueryNotFound"
	// Extension keys.
	extensionCode      = "code"
	extensionRequestID = "requestId"
)

// contractCodes are the codes a client may see. Anything else is rewritten by the presenter.
var contractCodes = map[Code]bool{
	CodeUnauthenticated: true, CodeForbidden: true, CodeNotFound: true, CodeBadUserInput: true,
	CodeInvalidToken: true, CodeAssuranceTooLow: true, CodeRateLimited: true,
	CodeComplexityLimitExceeded: true, CodeDepthLimitExceeded: true,
	CodePersistedQueryNotFound: true, CodeInternal: true, CodeProviderUnavailable: true,
}

// newError is how resolvers and extensions say something a client can act on.
func newError(code Code, format string, args ...any) *gqlerror.Error {
	return &gqlerror.Error{
		Message:    fmt.Sprintf(format, args...),
		Extensions: map[string]any{extensionCode: string(code)},
	}
}

// badInput is BAD_USER_INPUT about one argument field, named in extensions.field so that a
// client can put the message beside the right input.
func badInput(field, message string) *gqlerror.Error {
	e := newError(CodeBadUserInput, "%s", message)
	e.Extensions["field"] = field
	return e
}

// presentError gives every error a contract code. Errors the schema layer raised about the
// request itself (parse, validation, limits, a variable or argument value that does not parse:
// see inputerrors.go) keep or get a message naming what is wrong; anything else a resolver
// returned that is not already a coded error is an internal failure: it is logged with the
// request id and the client sees only "internal error" and that id.
func presentError(log *slog.Logger, schema *ast.Schema) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		if e := sessionEndedError(ctx, err); e != nil {
			return e
		}
		var gerr *gqlerror.Error
		if !errors.As(err, &gerr) {
			return internalError(ctx, log, err)
		}
		if code, _ := gerr.Extensions[extensionCode].(string); code == "" && schema != nil {
			if arg, ok := argumentError(ctx, schema, gerr); ok {
				return arg
			}
		}
		out := *gerr // never mutate an error gqlgen may have cached
		out.Extensions = make(map[string]any, len(gerr.Extensions)+1)
		for k, v := range gerr.Extensions {
			out.Extensions[k] = v
		}
		if out.Path == nil && graphql.GetFieldContext(ctx) != nil {
			out.Path = graphql.GetPath(ctx)
		}
		code, _ := gerr.Extensions[extensionCode].(string)
		switch {
		case contractCodes[Code(code)]:
		case code == gqlgenParseFailed || code == gqlgenValidationFailed:
			out.Extensions[extensionCode] = string(CodeBadUserInput)
			nameVariable(&out)
		case code == persistedQueryNotFoundGqlgen:
			out.Extensions[extensionCode] = string(CodePersistedQueryNotFound)
		case code == "" && gerr.Err == nil && graphql.GetFieldContext(ctx) == nil:
			// Raised by gqlgen about the request before anything executed, such as an
			// operationName the document does not hold. (Bodies it cannot decode never reach
			// it: postJSON and checkGETParams answer those.)
			out.Extensions[extensionCode] = string(CodeBadUserInput)
		default:
			return internalError(ctx, log, err)
		}
		if out.Extensions[extensionCode] == string(CodeInternal) {
			out.Extensions[extensionRequestID] = reqid.From(ctx)
		}
		return &out
	}
}

func internalError(ctx context.Context, log *slog.Logger, err error) *gqlerror.Error {
	log.ErrorContext(ctx, "graphql: internal error", "err", err, "path", pathString(ctx))
	out := newError(CodeInternal, internalMessage)
	out.Extensions[extensionRequestID] = reqid.From(ctx)
	if graphql.GetFieldContext(ctx) != nil {
		out.Path = graphql.GetPath(ctx)
	}
	return out
}

// recoverPanic turns a panic in a resolver into an INTERNAL error for that field; the panic
// value and stack go to the log only.
func recoverPanic(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "graphql: panic in resolver", "panic", fmt.Sprint(p),
			"path", pathString(ctx), "stack", string(debug.Stack()))
		return newError(CodeInternal, internalMessage)
	}
}

func pathString(ctx context.Context) string {
	if graphql.GetFieldContext(ctx) == nil {
		return ""
	}
	return graphql.GetPath(ctx).String()
}
