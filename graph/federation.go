package graph

import (
	"context"
	"errors"
	"time"

	"github.com/tongban/tongban/graph/model"
)

// MaxSubordinatesListed bounds federationSubordinates: the first this many, in entity-id order.
const MaxSubordinatesListed = 500

// Alliance manages the subordinates of the alliance Tongban runs (OpenID Federation). app's
// adapter over federation/entity is the one in use; nil answers NOT_FOUND (no alliance here).
type Alliance interface {
	AddSubordinate(ctx context.Context, in SubordinateInput) (Subordinate, error)
	RemoveSubordinate(ctx context.Context, entityID string) (bool, error)
	Subordinates(ctx context.Context) ([]Subordinate, error)
}

// SubordinateInput is addFederationSubordinate's input, as parsed JSON left to the domain.
type SubordinateInput struct {
	EntityID       string
	JWKS           string // JSON JWK Set; "" with FetchJWKS
	FetchJWKS      bool
	MetadataPolicy string // JSON; "" none
	TrustMarks     []string
}

// Subordinate is one member as the API shows it.
type Subordinate struct {
	EntityID   string
	KeyIDs     []string
	TrustMarks []string
	Runtime    bool
	AddedAt    time.Time
}

// AllianceInputError is an input the domain refused; Field names the input field.
type AllianceInputError struct {
	Field, Message string
}

func (e *AllianceInputError) Error() string { return e.Field + ": " + e.Message }

// allianceError maps the domain's refusals to BAD_USER_INPUT naming the field; the rest is
// INTERNAL through the presenter.
func allianceError(err error) error {
	if ie, ok := errors.AsType[*AllianceInputError](err); ok {
		return badInput("input."+ie.Field, ie.Message)
	}
	return err
}

// alliance checks the caller (a machine client with scope federation) and that this
// deployment runs an alliance.
func (r *Resolver) alliance(ctx context.Context) (Alliance, error) {
	if _, err := requireMachine(ctx, "federation", "managing the alliance's members"); err != nil {
		return nil, err
	}
	if r.Alliance == nil {
		return nil, newError(CodeNotFound, "this deployment runs no alliance (OpenID Federation is off)")
	}
	return r.Alliance, nil
}

func subordinateModel(s Subordinate) model.FederationSubordinate {
	out := model.FederationSubordinate{EntityID: s.EntityID, KeyIds: s.KeyIDs, TrustMarks: s.TrustMarks,
		Source: model.FederationSubordinateSourceConfig}
	if out.KeyIds == nil {
		out.KeyIds = []string{}
	}
	if out.TrustMarks == nil {
		out.TrustMarks = []string{}
	}
	if s.Runtime {
		out.Source = model.FederationSubordinateSourceRuntime
		at := s.AddedAt
		out.AddedAt = &at
	}
	return out
}
