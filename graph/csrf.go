package graph

import (
	"mime"
	"net/http"
	"strings"
)

// preflightHeaders are request headers a browser will not send cross-origin without a CORS
// preflight, so their presence proves the request is not a forged "simple request". The
// Apollo names are what existing GraphQL clients already send; Authorization is on the list
// because a cross-site form or <img> cannot carry it either.
var preflightHeaders = []string{"Apollo-Require-Preflight", "X-Apollo-Operation-Name", "GraphQL-Require-Preflight", "Authorization"}

// simpleContentTypes are the request content types a cross-site HTML form can send.
var simpleContentTypes = map[string]bool{
	"application/x-www-form-urlencoded": true,
	"multipart/form-data":               true,
	"text/plain":                        true,
}

// csrfSafe reports whether a request cannot be a cross-site request forgery: it either needed
// a CORS preflight (non-simple content type or header), or it is a websocket upgrade, whose
// origin is checked separately. A GET has no content type, so it needs one of the headers,
// as Apollo Server requires: even a query can leak through timing to a hostile page.
func csrfSafe(r *http.Request) bool {
	if r.Method == http.MethodOptions || r.Header.Get("Upgrade") != "" {
		return true
	}
	for _, h := range preflightHeaders {
		if strings.TrimSpace(r.Header.Get(h)) != "" {
			return true
		}
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return false
	}
	mt, ok := mediaType(r.Header.Get("Content-Type"))
	return ok && !simpleContentTypes[mt]
}

// mediaType returns the media type of a Content-Type value, lower-case and without parameters.
func mediaType(ct string) (string, bool) {
	if ct == "application/json" { // what nearly every request sends; skip the parser
		return ct, true
	}
	if ct == "" {
		return "", false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return mt, err == nil
}

// isJSON reports whether a Content-Type is the one the GraphQL endpoint reads.
func isJSON(ct string) bool {
	mt, ok := mediaType(ct)
	return ok && mt == "application/json"
}

const csrfMessage = "This request has been blocked as a possible cross-site request forgery. " +
	"Send it with Content-Type: application/json, or add a non-empty Apollo-Require-Preflight header."
