package entity_test

import (
	"context"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/tongban/tongban/federation/entity"
)

// BenchmarkConfiguration is the well-known endpoint, served from the signed cache.
func BenchmarkConfiguration(b *testing.B) {
	tb := serve(b, store(b), entity.Options{})
	h := tb.srv.Config.Handler
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", entity.ConfigurationPath, nil))
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkFetch is a subordinate statement: one Redis round trip and one ES256 signature.
func BenchmarkFetch(b *testing.B) {
	tb := serve(b, store(b), entity.Options{})
	sub, _ := member("https://leaf.example")
	if err := tb.Add(context.Background(), sub); err != nil {
		b.Fatal(err)
	}
	h := tb.srv.Config.Handler
	target := entity.FetchPath + "?sub=" + url.QueryEscape(sub.EntityID)
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
