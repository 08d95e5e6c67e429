package graph

import (
	"context"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

func TestSelectionLimit(t *testing.T) {
	tests := []struct {
		name   string
		query  string
		reject bool
	}{
		{"at the limit", "{" + strings.Repeat(" __typename", 10) + " }", false},
		{"one over the limit", "{" + strings.Repeat(" __typename", 11) + " }", true},
		{"nested fields count", "{ a { b { c { d { e { f { g { h { i { j { k } } } } } } } } } } }", true},
		{"fields in fragments count", "{ ...F } fragment F on Query {" + strings.Repeat(" x", 11) + " }", true},
		{"fields in inline fragments count", "{ ... on Query {" + strings.Repeat(" x", 11) + " } }", true},
		{"a parse error is left to gqlgen", "{ x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := selectionLimit{limit: 10, tokenLimit: 15000, cache: lru.New[*ast.QueryDocument](10)}
			err := s.MutateOperationParameters(context.Background(), &graphql.RawParams{Query: tt.query})
			if (err != nil) != tt.reject {
				t.Fatalf("rejected = %v (%v), want %v", err != nil, err, tt.reject)
			}
			if err != nil && err.Extensions[extensionCode] != string(CodeBadUserInput) {
				t.Fatalf("code = %v", err.Extensions[extensionCode])
			}
		})
	}
}

func TestSelectionLimitSkipsCachedDocuments(t *testing.T) {
	cache := lru.New[*ast.QueryDocument](10)
	q := "{" + strings.Repeat(" __typename", 50) + " }"
	doc, err := parser.ParseQuery(&ast.Source{Input: q})
	if err != nil {
		t.Fatal(err)
	}
	cache.Add(context.Background(), q, doc) // only validated documents get into the cache
	s := selectionLimit{limit: 10, tokenLimit: 15000, cache: cache}
	if err := s.MutateOperationParameters(context.Background(), &graphql.RawParams{Query: q}); err != nil {
		t.Fatalf("a cached document was checked again: %v", err)
	}
}

func FuzzCountFields(f *testing.F) {
	f.Add("{ a b { c } ...F } fragment F on Q { d ... on Q { e } }")
	f.Add("query { x(y: 1) @skip(if: true) }")
	f.Fuzz(func(t *testing.T, q string) {
		doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: q}, 2000)
		if err != nil {
			return
		}
		if n := countFields(doc); n < 0 {
			t.Fatalf("negative count %d", n)
		}
	})
}
