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
	var seen, visitingDepth, visitingAliases, visitingFields map[string]bool
	w := walker{fragments: rc.Doc.Fragments}
	if len(rc.Doc.Fragments) > 0 {
		seen, visitingDepth, visitingAliases, visitingFields = map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
		w.depth, w.aliases, w.fields = map[string]int{}, map[string]int{}, map[string]int{}
	}
	if !l.introspection && selectsIntrospection(op.SelectionSet, rc.Doc.Fragments, seen) {
		return newError(CodeForbidden, "introspection is disabled on this server")
	}
	if d := w.depthOf(op.SelectionSet, visitingDepth); d > l.depth {
		return newError(CodeDepthLimitExceeded, "operation has depth %d, which exceeds the limit of %d", d, l.depth)
	}
	if a := w.aliasesOf(op.SelectionSet, visitingAliases); a > l.aliases {
		return newError(CodeBadUserInput, "operation has %d aliases, which exceeds the limit of %d", a, l.aliases)
	}
	if f := w.fieldsOf(op.SelectionSet, visitingFields); f > l.complexity {
		return newError(CodeComplexityLimitExceeded,
			"operation selects %s fields once fragments are expanded, which exceeds the complexity limit of %d", atLeast(f), l.complexity)
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

// walker measures a selection set through its fragment spreads, remembering each named
// fragment's result so that fragments spread many times cost one walk each.
type walker struct {
	fragments ast.FragmentDefinitionList
	depth     map[string]int
	aliases   map[string]int
	fields    map[string]int
}

// depthOf counts nested fields; introspection fields do not count, so that GraphiQL's own
// schema query works under a tight limit (introspection is switched off in production).
func (w walker) depthOf(set ast.SelectionSet, visiting map[string]bool) int {
	deepest := 0
	for _, sel := range set {
		d := 0
		switch s := sel.(type) {
		case *ast.Field:
			if isIntrospectionField(s.Name) {
				continue
			}
			d = 1 + w.depthOf(s.SelectionSet, visiting)
		case *ast.InlineFragment:
			d = w.depthOf(s.SelectionSet, visiting)
		case *ast.FragmentSpread:
			d = w.fragment(s.Name, w.depth, visiting, w.depthOf)
		}
		deepest = max(deepest, d)
	}
	return deepest
}

// aliasesOf counts fields whose response key differs from their name, through fragments as
// many times as they are spread. The sum saturates so that a pathological document cannot
// overflow it.
func (w walker) aliasesOf(set ast.SelectionSet, visiting map[string]bool) int {
	n := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Alias != "" && s.Alias != s.Name {
				n++
			}
			n += w.aliasesOf(s.SelectionSet, visiting)
		case *ast.InlineFragment:
			n += w.aliasesOf(s.SelectionSet, visiting)
		case *ast.FragmentSpread:
			n += w.fragment(s.Name, w.aliases, visiting, w.aliasesOf)
		}
		n = min(n, saturation)
	}
	return n
}

// fieldsOf counts the fields an operation selects with every fragment expanded where it is
// spread, as gqlgen's complexity does (which also leaves out __schema).
func (w walker) fieldsOf(set ast.SelectionSet, visiting map[string]bool) int {
	n := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name == "__schema" {
				continue
			}
			n += 1 + w.fieldsOf(s.SelectionSet, visiting)
		case *ast.InlineFragment:
			n += w.fieldsOf(s.SelectionSet, visiting)
		case *ast.FragmentSpread:
			n += w.fragment(s.Name, w.fields, visiting, w.fieldsOf)
		}
		n = min(n, saturation)
	}
	return n
}

func (w walker) fragment(name string, memo map[string]int, visiting map[string]bool,
	measure func(ast.SelectionSet, map[string]bool) int) int {
	if v, ok := memo[name]; ok {
		return v
	}
	def := w.fragments.ForName(name)
	if def == nil || visiting[name] {
		return 0 // validation already rejected unknown and cyclic fragments
	}
	visiting[name] = true
	v := measure(def.SelectionSet, visiting)
	delete(visiting, name)
	memo[name] = v
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
