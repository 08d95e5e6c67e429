package graph

import (
	"context"
	"fmt"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// limits rejects operations that are valid GraphQL but that a public API must not run: too
// deep, too many aliases (the cheap way to multiply one expensive field), introspection when
// it is off, and a mutation sent with GET (which a link or an <img> could trigger). It runs
// after parsing and validation, before anything executes.
//
// Complexity is gqlgen's own extension, which runs next; but gqlgen walks a fragment again at
// every spread, so a kilobyte of fragments that each spread the next twice costs it seconds.
// limits first counts the fields as expanded, with each fragment walked once, and refuses an
// operation whose count alone exceeds the complexity limit (every field costs at least one),
// so gqlgen only ever walks operations of bounded size.
type limits struct {
	depth         int
	aliases       int
	complexity    int
	introspection bool
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = limits{}

func (limits) ExtensionName() string                   { return "TongbanLimits" }
func (limits) Validate(graphql.ExecutableSchema) error { return nil }
func (l limits) MutateOperationContext(ctx context.Context, rc *graphql.OperationContext) *gqlerror.Error {
	op := rc.Operation
	if methodFrom(ctx) == http.MethodGet && op.Operation != ast.Query {
		return newError(CodeBadUserInput, "GET requests may only carry queries; send %ss with POST", op.Operation)
	}
	// The bookkeeping maps are needed only when there are fragments to follow; most
	// operations have none, and this runs on every request.
	var seen map[string]bool
	w := walker{fragments: rc.Doc.Fragments}
	if len(rc.Doc.Fragments) > 0 {
		seen, w.memo, w.visiting = map[string]bool{}, map[string]size{}, map[string]bool{}
	}
	if !l.introspection && selectsIntrospection(op.SelectionSet, rc.Doc.Fragments, seen) {
		return newError(CodeForbidden, "introspection is disabled on this server")
	}
	m := w.measure(op.SelectionSet)
	if m.depth > l.depth {
		return newError(CodeDepthLimitExceeded, "operation has depth %d, which exceeds the limit of %d", m.depth, l.depth)
	}
	if m.aliases > l.aliases {
		return newError(CodeBadUserInput, "operation has %d aliases, which exceeds the limit of %d", m.aliases, l.aliases)
	}
	if m.fields > l.complexity {
		return newError(CodeComplexityLimitExceeded,
			"operation selects %s fields once fragments are expanded, which exceeds the complexity limit of %d", atLeast(m.fields), l.complexity)
	}
	return nil
}

func atLeast(n int) string {
	if n >= saturation {
		return fmt.Sprintf("more than %d", saturation)
	}
	return fmt.Sprint(n)
}

// saturation caps the walker's sums, so that a document built to overflow them cannot.
const saturation = 1 << 30

// size is what limits measures of a selection set, in one walk:
//   - depth: nested fields; __schema and __type do not count, so that GraphiQL's own schema
//     query works under a tight limit (introspection is switched off in production);
//   - aliases: fields whose response key differs from their name, through fragments as many
//     times as they are spread;
//   - fields: fields with every fragment expanded where it is spread, as gqlgen's complexity
//     counts them (which also leaves out __schema).
//
// Sums saturate, so that a pathological document cannot overflow them.
type size struct{ depth, aliases, fields int }

// walker measures a selection set through its fragment spreads, remembering each named
// fragment's size so that fragments spread many times cost one walk each.
type walker struct {
	fragments ast.FragmentDefinitionList
	memo      map[string]size
	visiting  map[string]bool
}

func (w walker) measure(set ast.SelectionSet) size {
	var m size
	for _, sel := range set {
		var sub size
		switch s := sel.(type) {
		case *ast.Field:
			inner := w.measure(s.SelectionSet)
			if s.Alias != "" && s.Alias != s.Name {
				sub.aliases = 1
			}
			sub.aliases += inner.aliases
			if s.Name != "__schema" {
				sub.fields = 1 + inner.fields
			}
			if !isIntrospectionField(s.Name) {
				sub.depth = 1 + inner.depth
			}
		case *ast.InlineFragment:
			sub = w.measure(s.SelectionSet)
		case *ast.FragmentSpread:
			sub = w.fragment(s.Name)
		}
		m.depth = max(m.depth, sub.depth)
		m.aliases = min(m.aliases+sub.aliases, saturation)
		m.fields = min(m.fields+sub.fields, saturation)
	}
	return m
}

func (w walker) fragment(name string) size {
	if v, ok := w.memo[name]; ok {
		return v
	}
	def := w.fragments.ForName(name)
	if def == nil || w.visiting[name] {
		return size{} // validation already rejected unknown and cyclic fragments
	}
	w.visiting[name] = true
	v := w.measure(def.SelectionSet)
	delete(w.visiting, name)
	w.memo[name] = v
	return v
}

func isIntrospectionField(name string) bool {
	return name == "__schema" || name == "__type"
}

// selectsIntrospection reports whether a root selection asks for __schema or __type
// (__typename is harmless and stays allowed).
func selectsIntrospection(set ast.SelectionSet, fragments ast.FragmentDefinitionList, seen map[string]bool) bool {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if isIntrospectionField(s.Name) {
				return true
			}
		case *ast.InlineFragment:
			if selectsIntrospection(s.SelectionSet, fragments, seen) {
				return true
			}
		case *ast.FragmentSpread:
			if def := fragments.ForName(s.Name); def != nil && !seen[s.Name] {
				seen[s.Name] = true
				if selectsIntrospection(def.SelectionSet, fragments, seen) {
					return true
				}
			}
		}
	}
	return false
}

type methodKey struct{}

func withMethod(ctx context.Context, method string) context.Context {
	return context.WithValue(ctx, methodKey{}, method)
}

func methodFrom(ctx context.Context) string {
	m, _ := ctx.Value(methodKey{}).(string)
	return m
}
