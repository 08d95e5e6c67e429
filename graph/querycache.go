package graph

import (
	"container/list"
	"context"
	"crypto/sha256"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// queryCache holds parsed and validated documents, so that a query seen before skips the
// parser and the validator. gqlgen's lru is keyed by the query text and bounded by a count of
// entries: a thousand one-megabyte queries, each padded with a comment, kept a gigabyte
// alive. This one is keyed by the query's SHA-256 and bounded by the memory its documents
// hold, evicting the least recently used; a document that alone would take the whole budget
// is not kept at all.
//
// gqlgen calls it from every request's goroutine; one mutex guards the list and the map. The
// hash, the costly part for a large query, is taken outside it.
type queryCache struct {
	budget int64

	mu      sync.Mutex
	used    int64
	order   *list.List // front: most recently used; values are *queryEntry
	entries map[[sha256.Size]byte]*list.Element
}

type queryEntry struct {
	key  [sha256.Size]byte
	doc  *ast.QueryDocument
	cost int64
}

var _ graphql.Cache[*ast.QueryDocument] = (*queryCache)(nil)

// What a cached document costs, estimated from the length of its query. A document keeps its
// query text alive (every position points at the source), and its syntax tree costs, per
// byte of query, at most astBytesPerQueryByte. That figure is the worst case measured by
// TestQueryCostCoversParsedDocuments: parsed and validated documents within the token limit,
// of the densest shapes the schema accepts (lists of one-digit values, "[1 1 1 …]", and of
// variables, "[$a$a…]", in a JSON argument), retained 107–109 bytes per byte of query after
// runtime.GC (runtime.MemStats.HeapAlloc before and after 20 of them); everyday queries retain
// about 28, a query padded with a comment almost nothing beyond its text. So the estimate is
// high for ordinary documents (about four times what they hold), never low for an attacker's.
const (
	astBytesPerQueryByte = 112
	// queryEntryOverhead is the entry, its list element and its map slot.
	queryEntryOverhead = 256
)

func queryCost(query string) int64 {
	return int64(len(query))*(1+astBytesPerQueryByte) + queryEntryOverhead
}

func newQueryCache(budget int64) *queryCache {
	return &queryCache{budget: budget, order: list.New(), entries: map[[sha256.Size]byte]*list.Element{}}
}

func (c *queryCache) Get(_ context.Context, query string) (*ast.QueryDocument, bool) {
	key := sha256.Sum256([]byte(query))
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*queryEntry).doc, true
}

func (c *queryCache) Add(_ context.Context, query string, doc *ast.QueryDocument) {
	cost := queryCost(query)
	if cost > c.budget {
		return
	}
	key := sha256.Sum256([]byte(query))
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok { // two requests parsed the same new query at once
		c.order.MoveToFront(e)
		return
	}
	for c.used+cost > c.budget {
		c.evictOldest()
	}
	c.entries[key] = c.order.PushFront(&queryEntry{key: key, doc: doc, cost: cost})
	c.used += cost
}

// evictOldest drops the least recently used entry; c.mu is held and the cache is not empty.
func (c *queryCache) evictOldest() {
	e := c.order.Back()
	c.order.Remove(e)
	entry := e.Value.(*queryEntry)
	delete(c.entries, entry.key)
	c.used -= entry.cost
}

// size is the estimated cost of what the cache holds and its number of documents.
func (c *queryCache) size() (bytes int64, documents int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used, len(c.entries)
}
