package entity

import (
	"context"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/federation"
)

// FetchJWKS fetches entityID's own entity configuration (§9), checks that it is self-signed
// with the keys it carries (§3.2, federation.Verifier.VerifyConfiguration) and returns those
// keys, checked as a subordinate's: what `tongban federation add-subordinate --fetch-jwks`
// pins. Trust in the keys is the operator's, on first use: the caller prints them to be
// compared with what the entity's operator sent out of band.
func FetchJWKS(ctx context.Context, entityID string, opts federation.FetchOptions) (jose.JSONWebKeySet, error) {
	if err := CheckEntityID(entityID, opts.AllowLoopback); err != nil {
		return jose.JSONWebKeySet{}, err
	}
	raw, err := federation.NewHTTPFetcher(opts).Fetch(ctx, federation.ConfigurationURL(entityID))
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("federation/entity: fetch the configuration of %s: %w", entityID, err)
	}
	var v federation.Verifier
	st, err := v.VerifyConfiguration(string(raw), entityID)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("federation/entity: the configuration of %s: %w", entityID, err)
	}
	if err := CheckJWKS(*st.JWKS); err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("federation/entity: the configuration of %s: %w", entityID, err)
	}
	return *st.JWKS, nil
}
