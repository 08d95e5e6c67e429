package bridge

import "net/http"

// serveDiscovery is the OpenID Provider Metadata: exactly what the bridge supports.
func (b *Bridge) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("Content-Type", "application/json")
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
	writeDoc(w, doc)
}

func writeDoc(w http.ResponseWriter, v any) {
	w.WriteHeader(http.StatusOK)
	_ = jsonEncoder(w).Encode(v)
}
