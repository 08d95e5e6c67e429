package graph

import (
	"context"
	"errors"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tongban/tongban/graph/model"
	"github.com/tongban/tongban/identity"
)

// CodeProviderUnavailable is an addition to the contract's codes: the app's identity provider
// cannot be reached (or was never discovered), so sign-in with that app is unavailable for now
// while the others work.
const CodeProviderUnavailable Code = "PROVIDER_UNAVAILABLE"

// Extension keys of identity errors.
const (
	extensionReason = "reason"
	extensionField  = "field"
)

// identityError maps an identity error to its contract code. Anything unrecognized is returned
// as is, and the presenter turns it into INTERNAL.
func identityError(err error) error {
	var (
		te *identity.TokenError
		ie *identity.InputError
		fe *identity.ForbiddenError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		e := newError(CodeInvalidToken, "%s", te.Message)
		e.Extensions[extensionReason] = te.Reason
		return e
	case errors.As(err, &ie):
		e := newError(CodeBadUserInput, "%s %s", ie.Field, ie.Message)
		e.Extensions[extensionField] = ie.Field
		return e
	case errors.As(err, &fe):
		return newError(CodeForbidden, "%s", fe.Message)
	case errors.Is(err, identity.ErrInvalidRefreshToken):
		return newError(CodeUnauthenticated, "the refresh token is invalid, expired or already used; sign in again")
	case errors.Is(err, identity.ErrInvalidSession), errors.Is(err, identity.ErrNoPerson):
		return errUnauthenticated()
	case errors.Is(err, identity.ErrProviderUnavailable):
		var pe *identity.ProviderError
		app := "the app"
		if errors.As(err, &pe) {
			app = pe.App
		}
		return newError(CodeProviderUnavailable, "the identity provider of %s cannot be reached; try again later or sign in with another app", app)
	}
	return err
}

func errUnauthenticated() *gqlerror.Error {
	return newError(CodeUnauthenticated, "sign in first: this needs a valid session (Authorization: Bearer <accessToken>)")
}

// requireSession returns the caller's session or UNAUTHENTICATED.
func requireSession(ctx context.Context) (*identity.Session, error) {
	s, err := sessionFrom(ctx)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, errUnauthenticated()
	}
	return s, nil
}

func (r *Resolver) app(id string) *model.App {
	for _, a := range r.Directory.Apps() {
		if a.ID == id {
			return &model.App{ID: a.ID, Name: a.Name, Region: a.Region, CanSignIn: a.CanSignIn, CanReceiveSwitch: a.CanReceiveSwitch}
		}
	}
	// An account of an app removed from the configuration still shows, by its id.
	return &model.App{ID: id, Name: id}
}

func (r *Resolver) person(p identity.Person) *model.Person {
	out := &model.Person{ID: p.ID, Accounts: make([]model.LinkedAccount, len(p.Accounts))}
	if p.DisplayName != "" {
		out.DisplayName = &p.DisplayName
	}
	if p.MaskedIDNumber != "" {
		out.MaskedIDNumber = &p.MaskedIDNumber
	}
	for i, a := range p.Accounts {
		out.Accounts[i] = model.LinkedAccount{App: r.app(a.App), Subject: a.Subject, Assurance: a.Assurance, LinkedAt: a.LinkedAt}
	}
	return out
}

func (r *Resolver) session(t identity.Tokens, p identity.Person) *model.Session {
	return &model.Session{
		AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, ExpiresAt: t.Session.ExpiresAt,
		App: r.app(t.Session.App), Assurance: t.Session.Assurance, Person: r.person(p),
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
