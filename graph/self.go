package graph

import (
	"context"

	"github.com/tongban/tongban/graph/model"
)

// requireSelf lets a person's private fields (their activity, consents, devices, preferences,
// inbox) resolve only for that person: UNAUTHENTICATED without a session, FORBIDDEN for
// anyone else's person, "only the person can read their <what>".
func requireSelf(ctx context.Context, obj *model.Person, what string) error {
	s, err := requireSession(ctx)
	if err != nil {
		return err
	}
	if obj.ID != s.PersonID {
		return newError(CodeForbidden, "only the person can read their %s", what)
	}
	return nil
}
