package app

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/federation/entity"
	"github.com/tongban/tongban/graph"
)

// alliance is graph.Alliance over the federation entity's registry: the admin operations on
// the members of the alliance this deployment runs.
type alliance struct{ a *App }

var _ graph.Alliance = alliance{}

func (al alliance) AddSubordinate(ctx context.Context, in graph.SubordinateInput) (graph.Subordinate, error) {
	f := al.a.fed
	sub := entity.Subordinate{EntityID: in.EntityID, TrustMarks: in.TrustMarks}
	if err := entity.CheckEntityID(in.EntityID, al.a.fed.loopback); err != nil {
		return graph.Subordinate{}, &graph.AllianceInputError{Field: "entityId", Message: inputMessage(err)}
	}
	switch {
	case in.FetchJWKS && in.JWKS != "":
		return graph.Subordinate{}, &graph.AllianceInputError{Field: "jwks", Message: "give jwks or fetchJwks: true, not both"}
	case in.FetchJWKS:
		ks, err := entity.FetchJWKS(ctx, in.EntityID, federation.FetchOptions{AllowLoopback: al.a.fed.loopback,
			AllowPrivate: al.a.cfg.Federation.AllowPrivateAddresses})
		if err != nil {
			return graph.Subordinate{}, &graph.AllianceInputError{Field: "fetchJwks", Message: "its entity configuration: " + inputMessage(err)}
		}
		sub.JWKS = ks
	case in.JWKS != "":
		ks, err := entity.ParseJWKS([]byte(in.JWKS))
		if err != nil {
			return graph.Subordinate{}, &graph.AllianceInputError{Field: "jwks", Message: inputMessage(err)}
		}
		sub.JWKS = ks
	default:
		return graph.Subordinate{}, &graph.AllianceInputError{Field: "jwks", Message: "required (or fetchJwks: true): the member's federation keys"}
	}
	if in.MetadataPolicy != "" {
		p, err := entity.ParsePolicy([]byte(in.MetadataPolicy))
		if err != nil {
			return graph.Subordinate{}, &graph.AllianceInputError{Field: "metadataPolicy", Message: inputMessage(err)}
		}
		sub.MetadataPolicy = p
	}
	if err := f.entity.Add(ctx, sub); err != nil {
		if errors.Is(err, entity.ErrInvalid) || errors.Is(err, entity.ErrTooMany) {
			field := "entityId"
			switch msg := err.Error(); {
			case strings.Contains(msg, "trust"):
				field = "trustMarks"
			case strings.Contains(msg, "polic"):
				field = "metadataPolicy"
			}
			return graph.Subordinate{}, &graph.AllianceInputError{Field: field, Message: inputMessage(err)}
		}
		return graph.Subordinate{}, err
	}
	al.a.log.Info("federation: member added", "entity", sub.EntityID, "kids", len(sub.JWKS.Keys), "trust_marks", strings.Join(sub.TrustMarks, " "))
	got, ok, err := f.entity.Get(ctx, sub.EntityID)
	if err != nil || !ok {
		return subordinateView(sub), err
	}
	return subordinateView(got), nil
}

// RemoveSubordinate removes a member; its grants end on whichever replica claims the ending
// (runEndings).
func (al alliance) RemoveSubordinate(ctx context.Context, entityID string) (bool, error) {
	removed, err := al.a.fed.entity.Remove(ctx, entityID)
	if err != nil {
		return false, err
	}
	if removed {
		al.a.log.Info("federation: member removed", "entity", entityID)
	}
	return removed, nil
}

func (al alliance) Subordinates(ctx context.Context) ([]graph.Subordinate, error) {
	subs, err := al.a.fed.entity.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]graph.Subordinate, len(subs))
	for i, s := range subs {
		out[i] = subordinateView(s)
	}
	slices.SortFunc(out, func(x, y graph.Subordinate) int { return strings.Compare(x.EntityID, y.EntityID) })
	return out, nil
}

func subordinateView(s entity.Subordinate) graph.Subordinate {
	v := graph.Subordinate{EntityID: s.EntityID, TrustMarks: s.TrustMarks, Runtime: !s.Configured, AddedAt: s.AddedAt}
	for _, k := range s.JWKS.Keys {
		v.KeyIDs = append(v.KeyIDs, k.KeyID)
	}
	return v
}

// inputMessage is an error's text without the package prefixes a reader of the API does not
// need ("federation/entity: invalid subordinate: …").
func inputMessage(err error) string {
	msg := err.Error()
	for _, p := range []string{"federation/entity: invalid subordinate: ", "federation/entity: ", "federation: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return "is not JSON: " + msg
	}
	return msg
}
