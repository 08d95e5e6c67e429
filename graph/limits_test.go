package graph

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// limitsOperation parses a document without a schema, as the limits extension sees it after
// validation, and returns the context of its only operation.
func limitsOperation(t testing.TB, query string) *graphql.OperationContext {
	t.Helper()
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		t.Fatalf("parse %q: %v", query, err)
	}
	if len(doc.Operations) != 1 {
		t.Fatalf("want one operation in %q, got %d", query, len(doc.Operations))
	}
	return &graphql.OperationContext{RawQuery: query, Doc: doc, Operation: doc.Operations[0]}
}

// limitsCode is the extensions.code of an error the limits extension returned, "" for none.
func limitsCode(err *gqlerror.Error) string {
	if err == nil {
		return ""
	}
	c, _ := err.Extensions[extensionCode].(string)
	return c
}

// manyAliases is a query with n aliased fields.
func manyAliases(n int) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		fmt.Fprintf(&b, " a%d: me", i)
	}
	b.WriteString(" }")
	return b.String()
}

func TestLimits(t *testing.T) {
	const depth, aliases = 3, 3
	tests := []struct {
		name          string
		query         string
		method        string
		introspection bool
		wantCode      Code   // "" means the operation passes
		wantMessage   string // part of the message, when rejected
	}{
		// Depth.
		{name: "nesting exactly at the limit", query: `{ a { b { c } } }`},
		{name: "plain nesting one past the limit", query: `{ a { b { c { d } } } }`,
			wantCode: CodeDepthLimitExceeded, wantMessage: "depth 4, which exceeds the limit of 3"},
		{name: "deepest of several branches counts", query: `{ x y { z } a { b { c { d } } } }`,
			wantCode: CodeDepthLimitExceeded, wantMessage: "depth 4"},
		{name: "inline fragment adds no level of its own", query: `{ a { ... on T { b { c } } } }`},
		{name: "depth through inline fragment", query: `{ a { ... on T { b { c { d } } } } }`,
			wantCode: CodeDepthLimitExceeded},
		{name: "depth through fragment spread",
			query:    `{ a { ...F } } fragment F on T { b { c { d } } }`,
			wantCode: CodeDepthLimitExceeded},
		{name: "depth through nested fragment spreads",
			query:    `{ a { ...F } } fragment F on T { b { ...G } } fragment G on T { c { d } }`,
			wantCode: CodeDepthLimitExceeded, wantMessage: "depth 4"},
		{name: "nested fragment spreads exactly at the limit",
			query: `{ a { ...F } } fragment F on T { b { ...G } } fragment G on T { c }`},
		{name: "fragment spread in a mutation", method: http.MethodPost,
			query:    `mutation { a { ...F } } fragment F on T { b { c { d } } }`,
			wantCode: CodeDepthLimitExceeded},
		{name: "introspection fields are not counted", introspection: true,
			query: `{ __schema { types { fields { type { ofType { ofType { name } } } } } } a { b { c } } }`},
		{name: "__type is not counted either", introspection: true,
			query: `{ __type(name: "Person") { fields { type { ofType { name } } } } }`},

		// Aliases.
		{name: "aliases exactly at the limit", query: `{ x: a y: a z: a }`},
		{name: "aliases one past the limit", query: `{ w: a x: a y: a z: a }`,
			wantCode: CodeBadUserInput, wantMessage: "4 aliases, which exceeds the limit of 3"},
		{name: "field aliased to its own name is no alias", query: `{ a: a b: b c: c d: d e: e x: y }`},
		{name: "aliases in nested selections", query: `{ a { x: b y: b } z: c w: c }`,
			wantCode: CodeBadUserInput, wantMessage: "4 aliases"},
		{name: "aliases through inline fragment", query: `{ ... on Query { w: a x: a } y: a z: a }`,
			wantCode: CodeBadUserInput},
		{name: "aliases counted each time a fragment is spread",
			query:    `{ a { ...F } b { ...F } } fragment F on T { x: c y: c }`,
			wantCode: CodeBadUserInput, wantMessage: "4 aliases"},
		{name: "aliases counted through nested fragments",
			query:    `{ a { ...F } } fragment F on T { ...G ...G } fragment G on T { x: c y: c }`,
			wantCode: CodeBadUserInput, wantMessage: "4 aliases"},
		{name: "fragment spread once stays under the limit",
			query: `{ a { ...F } } fragment F on T { x: c y: c }`},
		{name: "1000 aliases", query: manyAliases(1000),
			wantCode: CodeBadUserInput, wantMessage: "1000 aliases"},

		// Method.
		{name: "mutation over GET", method: http.MethodGet, query: `mutation { signOut }`,
			wantCode: CodeBadUserInput, wantMessage: "send mutations with POST"},
		{name: "subscription over GET", method: http.MethodGet, query: `subscription { inbox { id } }`,
			wantCode: CodeBadUserInput, wantMessage: "send subscriptions with POST"},
		{name: "query over GET", method: http.MethodGet, query: `{ me { id } }`},
		{name: "mutation over POST", method: http.MethodPost, query: `mutation { signOut }`},
		{name: "mutation over websocket (no method)", query: `mutation { signOut }`},

		// Introspection.
		{name: "__schema at the root while introspection is off", query: `{ __schema { types { name } } }`,
			wantCode: CodeForbidden, wantMessage: "introspection is disabled"},
		{name: "__type at the root while introspection is off", query: `{ __type(name: "Person") { name } }`,
			wantCode: CodeForbidden},
		{name: "aliased __schema while introspection is off", query: `{ s: __schema { types { name } } }`,
			wantCode: CodeForbidden},
		{name: "__schema inside a fragment while introspection is off",
			query:    `{ me { id } ...F } fragment F on Query { __schema { types { name } } }`,
			wantCode: CodeForbidden},
		{name: "__type inside a nested fragment while introspection is off",
			query:    `{ ...F } fragment F on Query { ...G } fragment G on Query { __type(name: "App") { name } }`,
			wantCode: CodeForbidden},
		{name: "__schema inside an inline fragment while introspection is off",
			query:    `{ ... on Query { __schema { queryType { name } } } }`,
			wantCode: CodeForbidden},
		{name: "__typename while introspection is off", query: `{ __typename me { __typename } }`},
		{name: "__schema while introspection is on", introspection: true, query: `{ __schema { types { name } } }`},
		{name: "__type in a fragment while introspection is on", introspection: true,
			query: `{ ...F } fragment F on Query { __type(name: "App") { name } }`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := limitsOperation(t, tt.query)
			ctx := context.Background()
			if tt.method != "" {
				ctx = withMethod(ctx, tt.method)
			}
			l := limits{depth: depth, aliases: aliases, complexity: 100000, introspection: tt.introspection}
			err := l.MutateOperationContext(ctx, rc)
			if got := limitsCode(err); got != string(tt.wantCode) {
				t.Fatalf("code = %q (%v), want %q", got, err, tt.wantCode)
			}
			if err != nil && !strings.Contains(err.Message, tt.wantMessage) {
				t.Errorf("message = %q, want it to contain %q", err.Message, tt.wantMessage)
			}
		})
	}
}

// At a production-sized limit, a thousand aliases of one field are refused and the limit
// itself passes.
func TestLimitsThousandAliases(t *testing.T) {
	l := limits{depth: 10, aliases: 100, complexity: 100000}
	if err := l.MutateOperationContext(context.Background(), limitsOperation(t, manyAliases(100))); err != nil {
		t.Fatalf("100 aliases under a limit of 100: %v", err)
	}
	err := l.MutateOperationContext(context.Background(), limitsOperation(t, manyAliases(1000)))
	if limitsCode(err) != string(CodeBadUserInput) || !strings.Contains(err.Message, "1000 aliases") {
		t.Errorf("1000 aliases: %v, want BAD_USER_INPUT naming the count", err)
	}
}

// A fragment spread twice at every level is 2^n fields when expanded; the walker must memoize
// each fragment and saturate the count instead of walking or overflowing.
func TestLimitsExponentialFragments(t *testing.T) {
	const levels = 40
	var b strings.Builder
	b.WriteString("{ ...F1 }\n")
	for i := 1; i < levels; i++ {
		fmt.Fprintf(&b, "fragment F%d on Query { ...F%d ...F%d }\n", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on Query { x: me { id } }\n", levels)
	rc := limitsOperation(t, b.String())

	err := limits{depth: 10, aliases: 100, complexity: 100000}.MutateOperationContext(context.Background(), rc)
	if limitsCode(err) != string(CodeBadUserInput) {
		t.Fatalf("want BAD_USER_INPUT, got %v", err)
	}
	// 2^39 aliases when expanded; the count stops at its ceiling.
	if want := fmt.Sprintf("has %d aliases", 1<<30); !strings.Contains(err.Message, want) {
		t.Errorf("message = %q, want the saturated count (%q)", err.Message, want)
	}

	w := walker{fragments: rc.Doc.Fragments, memo: map[string]size{}, visiting: map[string]bool{}}
	if d := w.measure(rc.Operation.SelectionSet).depth; d != 2 {
		t.Errorf("depth = %d, want 2 (fragments add no level)", d)
	}
}

// Validation rejects cyclic and unknown fragments before the extension runs, but the walker
// must still terminate on them.
func TestLimitsWalkerSurvivesInvalidFragments(t *testing.T) {
	for _, q := range []string{
		`{ ...A } fragment A on Query { x: a { ...B } } fragment B on T { y: b { ...A } }`,
		`{ ...Missing a { ...A } } fragment A on T { ...A }`,
	} {
		rc := limitsOperation(t, q)
		_ = limits{depth: 10, aliases: 10, complexity: 100000}.MutateOperationContext(context.Background(), rc)
	}
}

func FuzzLimits(f *testing.F) {
	for _, seed := range []string{
		`{ a { b { c } } }`,
		`query Q($id: ID!) { x: node(id: $id) { ... on Person { id name } } }`,
		`{ a { ...F } } fragment F on T { b { ...G ...G } } fragment G on T { x: c y: c }`,
		`{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }`,
		`mutation M { signOut } subscription S { inbox { id } }`,
		`{ __schema { types { name } } __type(name: "X") { name } __typename }`,
		`{ ... on Query { ... { ... on Query { a: a } } } }`,
		`fragment F on T { a } { ...F ...Nope }`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, query string) {
		doc, err := parser.ParseQuery(&ast.Source{Input: query})
		if err != nil {
			return
		}
		for _, op := range doc.Operations {
			rc := &graphql.OperationContext{RawQuery: query, Doc: doc, Operation: op}
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				for _, introspection := range []bool{false, true} {
					l := limits{depth: 5, aliases: 10, complexity: 100000, introspection: introspection}
					if err := l.MutateOperationContext(withMethod(context.Background(), method), rc); err != nil {
						if limitsCode(err) == "" {
							t.Fatalf("rejection without a code: %v", err)
						}
					}
				}
			}
			w := walker{fragments: doc.Fragments, memo: map[string]size{}, visiting: map[string]bool{}}
			if d := w.measure(op.SelectionSet).depth; d < 0 {
				t.Fatalf("negative depth %d", d)
			}
			if a := w.measure(op.SelectionSet).aliases; a < 0 || a > 1<<30 {
				t.Fatalf("alias count %d outside [0, 2^30]", a)
			}
		}
	})
}

func TestFieldsOfExpandsFragmentsOnceEach(t *testing.T) {
	rc := limitsOperation(t, `{ a { b } ...F ...F } fragment F on Query { c d { e } }`)
	w := walker{fragments: rc.Doc.Fragments, memo: map[string]size{}, visiting: map[string]bool{}}
	if n := w.measure(rc.Operation.SelectionSet).fields; n != 8 {
		t.Fatalf("fields = %d, want 8 (a, b, then c, d, e twice)", n)
	}
	err := limits{depth: 10, aliases: 10, complexity: 7}.MutateOperationContext(context.Background(), rc)
	if limitsCode(err) != string(CodeComplexityLimitExceeded) {
		t.Fatalf("want COMPLEXITY_LIMIT_EXCEEDED at a limit of 7, got %v", err)
	}
	if err := (limits{depth: 10, aliases: 10, complexity: 8}).MutateOperationContext(context.Background(), rc); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
}
