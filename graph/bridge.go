package graph

import (
	"errors"
	"strings"

	"github.com/tongban/tongban/bridge"
	"github.com/tongban/tongban/graph/model"
)

// bridgeError maps a bridge error to its contract code; anything else is returned as is (the
// presenter makes it INTERNAL).
func bridgeError(err error) error {
	var (
		ae *bridge.AssuranceError
		se *bridge.ScopeError
	)
	switch {
	case errors.As(err, &ae):
		e := newError(CodeAssuranceTooLow, "this service needs assurance level %d and the session has %d: sign in again at that level", ae.Need, ae.Have)
		e.Extensions["required"] = ae.Need
		return e
	case errors.As(err, &se):
		if len(se.Scopes) == 0 {
			return newError(CodeBadUserInput, "scopes must name at least one scope")
		}
		return newError(CodeBadUserInput, "%s may not receive %s", se.Client, strings.Join(se.Scopes, ", "))
	case errors.Is(err, bridge.ErrUnknownClient):
		return newError(CodeBadUserInput, "that app does not receive switches")
	case errors.Is(err, bridge.ErrSameApp):
		return newError(CodeBadUserInput, "the session is already in that app")
	case errors.Is(err, bridge.ErrUnknownService):
		return newError(CodeNotFound, "no such service")
	}
	return err
}

func (r *Resolver) consent(c bridge.Consent) *model.Consent {
	return &model.Consent{App: r.app(c.Client), Scopes: c.Scopes, GrantedAt: c.GrantedAt}
}
