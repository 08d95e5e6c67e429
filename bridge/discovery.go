package bridge

import (
	"net/http"
	"slices"
)

// serveDiscovery is the OpenID Provider Metadata: exactly what the bridge supports.
func (b *Bridge) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("Content-Type", "application/json")
	writeDoc(w, b.ProviderMetadata())
}

// ProviderMetadata is the discovery document as a map: what /.well-known/openid-configuration
// serves, and the openid_provider metadata of Tongban's entity configuration. With federation
// on it also says how federated clients register and authenticate (§12, §5.1.3).
func (b *Bridge) ProviderMetadata() map[string]any {
	doc := map[string]any{
		"issuer":                                        b.issuer,
		"authorization_endpoint":                        b.issuer + "/oauth2/authorize",
		"token_endpoint":                                b.issuer + "/oauth2/token",
		"userinfo_endpoint":                             b.issuer + "/oauth2/userinfo",
		"jwks_uri":                                      b.issuer + "/oauth2/jwks",
		"revocation_endpoint":                           b.issuer + "/oauth2/revoke",
		"introspection_endpoint":                        b.issuer + "/oauth2/introspect",
		"response_types_supported":                      []string{"code"},
		"response_modes_supported":                      []string{"query"},
		"grant_types_supported":                         []string{"authorization_code", "refresh_token", "client_credentials", grantTypeTokenExchange},
		"subject_types_supported":                       []string{"pairwise", "public"},
		"id_token_signing_alg_values_supported":         b.clients.Algorithms(),
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":              []string{"S256"},
		"scopes_supported":                              []string{"openid", "profile", "phone", "id_number", "offline_access"},
		"claims_supported": []string{"iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "acr", "amr", "nonce",
			"at_hash", "sid", "name", "phone_number", "id_number"},
		"acr_values_supported":                           acrValues,
		"claims_parameter_supported":                     false,
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
		"authorization_response_iss_parameter_supported": true,
		// Every grant is its own session at its app: sid in its ID tokens is the grant id, and a
		// logout token names exactly one grant (sid and sub), never "all of the person's
		// sessions", so an app never has to guess which of its sessions a token ends.
		"backchannel_logout_supported":         true,
		"backchannel_logout_session_supported": true,
		"end_session_endpoint":                 b.issuer + "/oauth2/logout",
	}
	if b.fed != nil {
		algs := joinAlgsList()
		secrets := []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}
		doc["request_parameter_supported"] = true
		doc["request_object_signing_alg_values_supported"] = algs
		doc["token_endpoint_auth_methods_supported"] = secrets
		doc["token_endpoint_auth_signing_alg_values_supported"] = algs
		doc["revocation_endpoint_auth_methods_supported"] = secrets
		doc["revocation_endpoint_auth_signing_alg_values_supported"] = algs
		doc["introspection_endpoint_auth_methods_supported"] = secrets
		doc["introspection_endpoint_auth_signing_alg_values_supported"] = algs
		doc["client_registration_types_supported"] = []string{registrationAutomatic, registrationExplicit}
		doc["federation_registration_endpoint"] = b.issuer + RegistrationPath
		if b.keys != nil {
			// A federated client may ask for any algorithm the bridge holds keys for.
			doc["id_token_signing_alg_values_supported"] = slices.Clone(b.keys.algs)
		}
	}
	return doc
}

func joinAlgsList() []string {
	out := make([]string, len(clientJWTAlgs))
	for i, a := range clientJWTAlgs {
		out[i] = string(a)
	}
	return out
}

func writeDoc(w http.ResponseWriter, v any) {
	w.WriteHeader(http.StatusOK)
	_ = jsonEncoder(w).Encode(v)
}
