package federation

import "net/http"

// WriteStatement answers an entity configuration request (§9.2) or a fetch request (§8.1.2)
// with a signed statement: status 200 and the application/entity-statement+jwt content type.
// It is what Tongban's /.well-known/openid-federation and federation_fetch_endpoint handlers
// will write once wired.
func WriteStatement(w http.ResponseWriter, jws string) {
	w.Header().Set("Content-Type", ContentTypeEntityStatement)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(jws))
}

// WriteError answers a federation endpoint request with an error (§8.9): a JSON object with
// error and error_description, content type application/json, and the status §8.9 gives the
// code (not_found for an unknown sub at the fetch endpoint, §8.1.2).
func WriteError(w http.ResponseWriter, code, description string) {
	status := http.StatusInternalServerError
	switch code {
	case "invalid_request", "invalid_trust_chain", "invalid_metadata", "unsupported_parameter":
		status = http.StatusBadRequest
	case "invalid_client":
		status = http.StatusUnauthorized
	case "invalid_issuer", "invalid_subject", "invalid_trust_anchor", "not_found":
		status = http.StatusNotFound
	case "temporarily_unavailable":
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":` + jsonString(code) + `,"error_description":` + jsonString(description) + `}`))
}

func jsonString(s string) string {
	b := []byte(canonical(s))
	return string(b[:len(b)-1]) // canonical ends with the encoder's newline
}
