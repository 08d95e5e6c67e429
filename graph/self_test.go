package graph

import (
	"context"
	"errors"
	"testing"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tongban/tongban/graph/model"
)

func TestRequireSelf(t *testing.T) {
	t.Parallel()
	fx := newAuthFixture(t)
	as := func(token string) context.Context {
		return withViewer(context.Background(), &viewer{auth: fx.sessions, token: token})
	}
	for _, tt := range []struct {
		name    string
		ctx     context.Context
		person  string
		code    Code // "" for no refusal
		message string
	}{
		{name: "no session", ctx: context.Background(), person: "p-1", code: CodeUnauthenticated},
		{name: "unknown token", ctx: as(unknownToken), person: "p-1", code: CodeUnauthenticated},
		{name: "another person", ctx: as(fx.token), person: "p-2", code: CodeForbidden, message: "only the person can read their devices"},
		{name: "no person id", ctx: as(fx.token), person: "", code: CodeForbidden, message: "only the person can read their devices"},
		{name: "the person", ctx: as(fx.token), person: fx.session.PersonID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := requireSelf(tt.ctx, &model.Person{ID: tt.person}, "devices")
			if tt.code == "" {
				if err != nil {
					t.Fatalf("refused the person: %v", err)
				}
				return
			}
			var ge *gqlerror.Error
			if !errors.As(err, &ge) || ge.Extensions[extensionCode] != string(tt.code) {
				t.Fatalf("err = %v, want %s", err, tt.code)
			}
			if tt.message != "" && ge.Message != tt.message {
				t.Errorf("message %q, want %q", ge.Message, tt.message)
			}
		})
	}
	// A check that failed is an error of its own, not a refusal that blames the caller.
	broken := withViewer(context.Background(), &viewer{auth: brokenSessions(t), token: fx.token})
	err := requireSelf(broken, &model.Person{ID: fx.session.PersonID}, "devices")
	var ge *gqlerror.Error
	if err == nil || (errors.As(err, &ge) && ge.Extensions[extensionCode] == string(CodeForbidden)) {
		t.Errorf("a failed session check: %v", err)
	}
}
