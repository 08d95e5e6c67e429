package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// selectionLimit refuses a new query document with too many fields before gqlgen validates
// it. Validation compares fields pairwise (overlapping fields can be merged), so a document of
// a few thousand identical fields within the token limit costs seconds of CPU; counting them
// first costs a parse. Documents already in the query cache passed this check, and skip it.
type selectionLimit struct {
	limit      int
	tokenLimit int
	cache      graphql.Cache[*ast.QueryDocument]
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = selectionLimit{}

func (selectionLimit) ExtensionName() string                   { return "SelectionLimit" }
func (selectionLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (s selectionLimit) MutateOperationParameters(ctx context.Context, raw *graphql.RawParams) *gqlerror.Error {
	if _, ok := s.cache.Get(ctx, raw.Query); ok {
		return nil
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: raw.Query}, s.tokenLimit)
	if err != nil {
		return nil // gqlgen parses it again and reports the error with its position
	}
	if n := countFields(doc); n > s.limit {
		return newError(CodeBadUserInput, "the document has %d fields, which exceeds the limit of %d", n, s.limit)
	}
	return nil
}

// countFields counts every field and fragment spread written in the document, in operations
// and fragments alike.
func countFields(doc *ast.QueryDocument) int {
	var count func(ast.SelectionSet) int
	count = func(set ast.SelectionSet) int {
		n := 0
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				n += 1 + count(s.SelectionSet)
			case *ast.InlineFragment:
				n += count(s.SelectionSet)
			case *ast.FragmentSpread:
				// A spread is not a field, but validation compares spreads pairwise as it
				// does fields, so it counts the same.
				n++
			}
		}
		return n
	}
	n := 0
	for _, op := range doc.Operations {
		n += count(op.SelectionSet)
	}
	for _, f := range doc.Fragments {
		n += count(f.SelectionSet)
	}
	return n
}
