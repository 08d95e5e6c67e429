package graph

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/complexity"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/metrics"
	"github.com/tongban/tongban/internal/testenv"
)

// listField is a field of the schema that returns a list of objects or a connection.
type listField struct {
	object string // the type that has the field
	field  *ast.FieldDefinition
}

func (l listField) String() string { return l.object + "." + l.field.Name }

// returnsMany reports whether a field's type is a list of objects or a connection. Lists of
// scalars and enums (triggers, scopes, …) are not: their items have no selection to multiply
// and cost nothing to resolve.
func returnsMany(s *ast.Schema, t *ast.Type) bool {
	if t.Elem != nil {
		def := s.Types[t.Elem.Name()]
		return def != nil && def.Kind != ast.Scalar && def.Kind != ast.Enum
	}
	return strings.HasSuffix(t.NamedType, "Connection")
}

// listFields are every list field of the schema's own object types.
func listFields(s *ast.Schema) []listField {
	var out []listField
	for name, def := range s.Types {
		if def.Kind != ast.Object || strings.HasPrefix(name, "__") {
			continue
		}
		for _, f := range def.Fields {
			if !strings.HasPrefix(f.Name, "__") && returnsMany(s, f.Type) {
				out = append(out, listField{name, f})
			}
		}
	}
	return out
}

// costFunc is the field's complexity function in root, or an invalid value.
func costFunc(root ComplexityRoot, l listField) reflect.Value {
	obj := reflect.ValueOf(root).FieldByName(l.object)
	if !obj.IsValid() {
		return reflect.Value{}
	}
	return obj.FieldByName(strings.ToUpper(l.field.Name[:1]) + l.field.Name[1:])
}

// cost calls a complexity function with child as the selection's cost and first for a
// page's first (its first argument after the selection, by every connection's signature).
func cost(f reflect.Value, child, first int) int {
	t := f.Type()
	args := []reflect.Value{reflect.ValueOf(child)}
	for i := 1; i < t.NumIn(); i++ {
		v := reflect.New(t.In(i)).Elem()
		if i == 1 && t.In(i) == reflect.TypeFor[*int]() {
			v = reflect.ValueOf(&first)
		}
		args = append(args, v)
	}
	return int(f.Call(args)[0].Int())
}

func testSchema(t *testing.T) (*ast.Schema, ComplexityRoot) {
	t.Helper()
	root := listCosts(3)
	return NewExecutableSchema(Config{Resolvers: &Resolver{}, Complexity: root}).Schema(), root
}

// A list field without a cost function would cost as much for 100 items as for 1: every one
// that exists, and every one added later, must have one.
func TestEveryListFieldHasAComplexity(t *testing.T) {
	t.Parallel()
	s, root := testSchema(t)
	fields := listFields(s)
	if len(fields) < 10 {
		t.Fatalf("found only %d list fields: %v; the walk is broken", len(fields), fields)
	}
	for _, l := range fields {
		f := costFunc(root, l)
		if !f.IsValid() || f.IsNil() {
			t.Errorf("%s returns a list but has no complexity function: set one in listCosts() (limits_complexity.go)", l)
			continue
		}
		// The cost grows with the selection, and with the page where there is one.
		if cost(f, 10, 20) <= cost(f, 5, 20) {
			t.Errorf("%s: the cost does not grow with the selection", l)
		}
		if l.field.Arguments.ForName("first") != nil && cost(f, 5, 100) <= cost(f, 5, 1) {
			t.Errorf("%s: first: 100 costs no more than first: 1", l)
		}
	}
}

// A list costed fromOneRead counts its items' selection once: sound only while nothing inside
// them is a list in turn, whose cost would then be counted once for all of them.
func TestListsFromOneReadHoldNoLists(t *testing.T) {
	t.Parallel()
	s, root := testSchema(t)
	for _, l := range listFields(s) {
		f := costFunc(root, l)
		if !f.IsValid() || f.IsNil() {
			continue // TestEveryListFieldHasAComplexity says so
		}
		if cost(f, 20, 20)-cost(f, 10, 20) != 10 {
			continue // the selection is multiplied: each item counts its own lists
		}
		if strings.HasSuffix(l.object, "Connection") && l.field.Name == "edges" {
			continue // counted by its connection's field
		}
		seen := map[string]bool{}
		var walk func(typ string, path string)
		walk = func(typ, path string) {
			if seen[typ] {
				return
			}
			seen[typ] = true
			def := s.Types[typ]
			if def == nil {
				return
			}
			for _, f := range def.Fields {
				inConnection := strings.HasSuffix(typ, "Connection") && f.Name == "edges"
				if returnsMany(s, f.Type) && !inConnection {
					t.Errorf("%s is costed as one read, but its items hold the list %s.%s (at %s): cost it with eachItem", l, typ, f.Name, path)
				}
				walk(f.Type.Name(), path+"."+f.Name)
			}
		}
		walk(l.field.Type.Name(), l.String())
	}
}

// The cost of a page grows with first, so that a page of 100 is not as cheap as a page of 1.
func TestPageCostGrowsWithFirst(t *testing.T) {
	t.Parallel()
	s, root := testSchema(t)
	es := NewExecutableSchema(Config{Resolvers: &Resolver{}, Complexity: root})
	costOf := func(query string) int {
		t.Helper()
		doc, errs := gqlparser.LoadQuery(s, query)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", query, errs)
		}
		return complexity.Calculate(context.Background(), es, doc.Operations[0], nil)
	}
	for _, q := range []string{
		`{ pushRules(first: %d) { edges { cursor node { id name stats { backfillDone } } } pageInfo { hasNextPage } } }`,
		`{ me { notifications(first: %d) { edges { cursor node { id title readAt } } } } }`,
		`{ me { activity(first: %d) { edges { cursor node { kind at } } } } }`,
		`{ services(first: %d) { edges { node { id name } } } }`,
	} {
		one, hundred := costOf(strings.Replace(q, "%d", "1", 1)), costOf(strings.Replace(q, "%d", "100", 1))
		if hundred <= one {
			t.Errorf("%s: first: 100 costs %d, first: 1 costs %d", q, hundred, one)
		}
		t.Logf("%s: first: 1 costs %d, first: 100 costs %d", q, one, hundred)
	}
}

// An operation over the complexity limit is refused before anything runs, with the code
// clients know; the same operation with a small page passes the limit (and is then refused
// for want of a token, or answers null, which shows it got that far).
func TestOverBudgetPagesAreRefused(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(&Resolver{Directory: cfg}, Options{
		ComplexityLimit: 1000, DepthLimit: 10, AliasLimit: 5, TokenLimit: 2000, SelectionLimit: 100,
		PublicURL: "http://localhost:8080", Store: testenv.Redis(t), Metrics: metrics.New(prometheus.NewRegistry()),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	const rules = `{ pushRules(first: %s) { edges { cursor node { id name department condition title body category status version
	  stats { backfillScanned backfillDone people { matched { count fewerThan } notified { count fewerThan } } } } } pageInfo { hasNextPage endCursor } } }`
	const inbox = `{ me { notifications(first: %s) { edges { cursor node { id title body link category createdAt readAt
	  service { id name department category link minAssurance } } } pageInfo { hasNextPage endCursor } } } }`
	for _, c := range []struct {
		query, first, code string
	}{
		{rules, "100", string(CodeComplexityLimitExceeded)},
		{rules, "20", string(CodeUnauthenticated)},
		// One read: a full page of the inbox stays within 1000 (and me is null without a session).
		{inbox, "20", ""},
		{inbox, "100", ""},
	} {
		q := strings.Replace(c.query, "%s", c.first, 1)
		code, body := operationCode(t, h, q)
		if code != c.code {
			t.Errorf("first: %s of %.30s…: code %q, want %q (%s)", c.first, q, code, c.code, body)
		}
	}
}
