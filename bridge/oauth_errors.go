package bridge

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// OAuthError is an error of RFC 6749 §5.2 / RFC 8693 §2.2.2: a code from the registry and a
// description for the developer reading it.
type OAuthError struct {
	Code        string
	Description string
	Status      int
}

func (e *OAuthError) Error() string { return fmt.Sprintf("bridge: %s: %s", e.Code, e.Description) }

func oauthErr(status int, code, format string, args ...any) *OAuthError {
	return &OAuthError{Code: code, Description: fmt.Sprintf(format, args...), Status: status}
}

func invalidRequest(format string, args ...any) *OAuthError {
	return oauthErr(http.StatusBadRequest, "invalid_request", format, args...)
}

func invalidGrant(format string, args ...any) *OAuthError {
	return oauthErr(http.StatusBadRequest, "invalid_grant", format, args...)
}

func invalidClient(format string, args ...any) *OAuthError {
	return oauthErr(http.StatusUnauthorized, "invalid_client", format, args...)
}

// writeOAuthError answers with the error as JSON. invalid_client through HTTP Basic also gets a
// WWW-Authenticate challenge (RFC 6749 §5.2).
func writeOAuthError(w http.ResponseWriter, err *OAuthError) {
	if err.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="tongban", charset="UTF-8"`)
	}
	writeJSON(w, err.Status, map[string]string{"error": err.Code, "error_description": err.Description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
