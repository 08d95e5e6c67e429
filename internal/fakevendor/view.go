package fakevendor

import (
	"net/http"
)

// JSONView serves GET and HEAD with what list returns, uncached, written by write (the fake's
// own JSON encoder, which answers 200 with it): the dev-mode page of what a fake received.
// list is called on each request and should return a copy with identifiers already masked.
// Other methods answer 405 with Allow: GET, HEAD.
func JSONView(list func() any, write func(http.ResponseWriter, any)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		v := list()
		w.Header().Set("Cache-Control", "no-store")
		write(w, v)
	})
}
