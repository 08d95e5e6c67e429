package graph

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

func parsed(t testing.TB, q string) *ast.QueryDocument {
	t.Helper()
	doc, err := parser.ParseQuery(&ast.Source{Input: q})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestQueryCacheEvictsLeastRecentlyUsed(t *testing.T) {
	ctx := context.Background()
	q := func(name string) string { return "{ " + name + ": apps { id } }" } // all the same length
	c := newQueryCache(3 * queryCost(q("a")))
	for _, name := range []string{"a", "b", "c"} {
		c.Add(ctx, q(name), parsed(t, q(name)))
	}
	if _, ok := c.Get(ctx, q("a")); !ok {
		t.Fatal("a is missing")
	}
	c.Add(ctx, q("d"), parsed(t, q("d")))
	for name, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if _, ok := c.Get(ctx, q(name)); ok != want {
			t.Errorf("%s cached = %v, want %v", name, ok, want)
		}
	}
}

// A document comes back for the same text in another string, never for another text.
func TestQueryCacheKeysByTheText(t *testing.T) {
	ctx := context.Background()
	c := newQueryCache(1 << 20)
	q := "{ apps { id } }"
	doc := parsed(t, q)
	c.Add(ctx, q, doc)
	if got, ok := c.Get(ctx, strings.Clone(q)); !ok || got != doc {
		t.Fatalf("the same text in another string: %v %v", got, ok)
	}
	for _, other := range []string{"{ apps { id } } ", "{ apps { name } }", ""} {
		if _, ok := c.Get(ctx, other); ok {
			t.Errorf("%q found the document of %q", other, q)
		}
	}
	c.Add(ctx, q, parsed(t, q)) // a second parse of the same text, as two requests at once make
	if bytes, n := c.size(); n != 1 || bytes != queryCost(q) {
		t.Errorf("after adding the same text twice: %d documents, %d bytes", n, bytes)
	}
}

func TestQueryCacheStaysWithinItsBudget(t *testing.T) {
	ctx := context.Background()
	budget := int64(1 << 20)
	c := newQueryCache(budget)
	for i := range 300 {
		q := fmt.Sprintf("{ a%d: apps { id } }%s", i, strings.Repeat(" ", (i*37)%3000))
		c.Add(ctx, q, parsed(t, q))
		if used, _ := c.size(); used > budget {
			t.Fatalf("after %d documents the cache holds %d bytes, over its budget of %d", i+1, used, budget)
		}
	}
	if _, n := c.size(); n == 0 {
		t.Fatal("nothing was kept")
	}
	// A document that alone would take the budget is not kept, and evicts nothing.
	_, before := c.size()
	huge := "{ apps { id } }" + strings.Repeat(" ", int(budget/astBytesPerQueryByte))
	c.Add(ctx, huge, parsed(t, huge))
	if _, ok := c.Get(ctx, huge); ok {
		t.Error("a document over the whole budget was kept")
	}
	if _, after := c.size(); after != before {
		t.Errorf("it evicted %d documents", before-after)
	}
}

// gqlgen calls the cache from every request's goroutine (run with -race).
func TestQueryCacheConcurrentUse(t *testing.T) {
	ctx := context.Background()
	c := newQueryCache(20 * queryCost("{ a00: apps { id } }"))
	docs := make([]*ast.QueryDocument, 40)
	for i := range docs {
		docs[i] = parsed(t, fmt.Sprintf("{ a%02d: apps { id } }", i))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 500 {
				i := (g*7 + j) % len(docs)
				q := fmt.Sprintf("{ a%02d: apps { id } }", i)
				if doc, ok := c.Get(ctx, q); ok && doc != docs[i] {
					t.Errorf("%q returned another query's document", q)
					return
				}
				c.Add(ctx, q, docs[i])
			}
		}()
	}
	wg.Wait()
	if used, n := c.size(); n > 20 || used > 20*queryCost("{ a00: apps { id } }") {
		t.Fatalf("%d documents, %d bytes", n, used)
	}
}

// queryCost must never be below what a document holds. This measures the densest shapes the
// schema validates within the token limit (how astBytesPerQueryByte was found) and an
// everyday query, each parsed and validated 20 times, as the heap held after runtime.GC.
// Not parallel: other tests' allocations would count.
func TestQueryCostCoversParsedDocuments(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap")
	}
	schema := NewExecutableSchema(Config{Resolvers: &Resolver{}}).Schema()
	const rule = `previewPushRule(input: {serviceId: "s", name: "n", condition: "true", triggers: ["t"], title: "t", body: "b", category: "c"}`
	shapes := []struct {
		name string
		make func(i int) string
	}{
		{"list of one-digit IDs", func(i int) string {
			return fmt.Sprintf("mutation M%d { markNotificationsRead(ids: [%s]) }", i, strings.Repeat("1 ", 14900))
		}},
		{"JSON list of one-digit numbers", func(i int) string {
			return fmt.Sprintf("mutation M%d { %s, samples: [%s]) { matches } }", i, rule, strings.Repeat("1 ", 14900))
		}},
		{"JSON list of variables", func(i int) string {
			return fmt.Sprintf("mutation M%d($a: JSON!) { %s, samples: [%s]) { matches } }", i, rule, strings.Repeat("$a", 7400))
		}},
		{"JSON list of empty objects", func(i int) string {
			return fmt.Sprintf("mutation M%d { %s, samples: [%s]) { matches } }", i, rule, strings.Repeat("{}", 7400))
		}},
		{"nested JSON lists", func(i int) string {
			return fmt.Sprintf("mutation M%d { %s, samples: %s%s) { matches } }", i, rule, strings.Repeat("[", 990), strings.Repeat("]", 990))
		}},
		{"aliased fields", func(i int) string {
			var b strings.Builder
			for j := range 490 {
				fmt.Fprintf(&b, "a%d: __typename ", j)
			}
			return fmt.Sprintf("query Q%d { %s }", i, b.String())
		}},
		{"everyday query", func(i int) string {
			return fmt.Sprintf("query Q%d { me { id displayName } apps { id name region canSignIn canReceiveSwitch } }", i)
		}},
	}
	for _, shape := range shapes {
		const n = 20
		queries := make([]string, n)
		var length int64
		for i := range queries {
			queries[i] = shape.make(i)
			length += int64(len(queries[i]))
		}
		docs := make([]*ast.QueryDocument, n)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range docs {
			doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: queries[i]}, 15000)
			if err != nil {
				t.Fatalf("%s: %v", shape.name, err)
			}
			if errs := validator.Validate(schema, doc); len(errs) > 0 {
				t.Fatalf("%s does not validate (it would not be cached): %v", shape.name, errs[0])
			}
			docs[i] = doc
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(docs)
		held := int64(after.HeapAlloc) - int64(before.HeapAlloc) + length // the text, allocated before
		var estimate int64
		for _, q := range queries {
			estimate += queryCost(q)
		}
		t.Logf("%-30s %6d bytes of query hold %8d bytes (%.1f per byte); estimated %d", shape.name,
			length/n, held/n, float64(held-length)/float64(length), estimate/n)
		if held > estimate {
			t.Errorf("%s: documents hold %d bytes, more than the estimate of %d: raise astBytesPerQueryByte",
				shape.name, held/n, estimate/n)
		}
	}
}
