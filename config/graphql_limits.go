package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// PersistedQueries bounds automatic persisted queries (APQ), which anyone may register: a
// registered document is kept in the shared Redis and served by hash to every client.
type PersistedQueries struct {
	// MaxDocumentBytes is the largest document that may be registered.
	MaxDocumentBytes int `yaml:"max_document_bytes"`
	// MaxDocuments caps the store; a registration past it evicts the least recently used.
	MaxDocuments int `yaml:"max_documents"`
	// RegistrationsPerIPPerHour and RegistrationsPerSessionPerHour are how many new documents
	// one client address, and one session (or machine client), may register in an hour. Only
	// new documents count: the documents of one app version are the same for all its users,
	// so behind a carrier NAT the first user registers them and everyone else hits.
	RegistrationsPerIPPerHour      int `yaml:"registrations_per_ip_per_hour"`
	RegistrationsPerSessionPerHour int `yaml:"registrations_per_session_per_hour"`
	// TrustedDocumentsFile turns on allowlist mode ("trusted documents", Apollo's safelisting):
	// only the documents in this file run, by hash or by their exact text; nothing is
	// registered; any other query is refused (outside dev mode). The file is a JSON object
	// mapping each document's SHA-256 (64 lower-case hex digits) to its text.
	TrustedDocumentsFile string `yaml:"trusted_documents_file"`
}

// Defaults of the GraphQL resource bounds, used by Defaults.
const (
	defaultQueryCacheBytes         = 32 << 20
	defaultMaxDocumentBytes        = 16 << 10
	defaultMaxDocuments            = 10000
	defaultRegistrationsPerIP      = 100
	defaultRegistrationsPerSession = 50
)

func defaultPersistedQueries() PersistedQueries {
	return PersistedQueries{
		MaxDocumentBytes:               defaultMaxDocumentBytes,
		MaxDocuments:                   defaultMaxDocuments,
		RegistrationsPerIPPerHour:      defaultRegistrationsPerIP,
		RegistrationsPerSessionPerHour: defaultRegistrationsPerSession,
	}
}

// minQueryCacheBytes keeps a configured cache useful: below it most documents would not fit.
const minQueryCacheBytes = 1 << 20

func (c *Config) validateGraphQLBounds(ps *Problems) {
	g := c.GraphQL
	p := g.PersistedQueries
	const key = "graphql.persisted_queries."
	ps.check(
		check{"graphql.query_cache_bytes", when(g.QueryCacheBytes < minQueryCacheBytes,
			fmt.Sprintf("must be at least %d (1 MiB), like 33554432 (got %d)", minQueryCacheBytes, g.QueryCacheBytes))},
		check{key + "max_document_bytes", positive(int64(p.MaxDocumentBytes))},
		check{key + "max_documents", positive(int64(p.MaxDocuments))},
		check{key + "registrations_per_ip_per_hour", positive(int64(p.RegistrationsPerIPPerHour))},
		check{key + "registrations_per_session_per_hour", positive(int64(p.RegistrationsPerSessionPerHour))},
	)
	if p.TrustedDocumentsFile != "" {
		_, err := p.TrustedDocuments()
		ps.check(check{key + "trusted_documents_file", problemOf(err)})
	}
}

// maxTrustedDocumentsFile bounds what start-up reads: a manifest is an app's operations, a few
// hundred kilobytes at most.
const maxTrustedDocumentsFile = 64 << 20

// TrustedDocuments reads TrustedDocumentsFile: nil when allowlist mode is off. Every entry is
// checked, so that a file that does not match its builds fails at start rather than refusing
// an app's queries in production; the error names the first entries wrong.
func (p PersistedQueries) TrustedDocuments() (map[string]string, error) {
	if p.TrustedDocumentsFile == "" {
		return nil, nil
	}
	f, err := os.Open(p.TrustedDocumentsFile)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %v", p.TrustedDocumentsFile, unwrapPathError(err))
	}
	defer f.Close()
	var docs map[string]string
	dec := json.NewDecoder(&limitedReader{f, maxTrustedDocumentsFile})
	if err := dec.Decode(&docs); err != nil {
		return nil, fmt.Errorf(`%q is not a JSON object of "<sha256 hex>": "<document>" entries: %v`, p.TrustedDocumentsFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%q has more after its JSON object; want one object", p.TrustedDocumentsFile)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%q holds no documents; allowlist mode would refuse every query", p.TrustedDocumentsFile)
	}
	var bad []string
	for _, hash := range sortedDocKeys(docs) {
		sum := sha256.Sum256([]byte(docs[hash]))
		switch want := hex.EncodeToString(sum[:]); {
		case strings.TrimSpace(docs[hash]) == "":
			bad = append(bad, fmt.Sprintf("%q: the document is empty", hash))
		case hash != want:
			bad = append(bad, fmt.Sprintf("%q: is not the SHA-256 of its document (64 lower-case hex digits; the document's is %s)", hash, want))
		}
	}
	if len(bad) > 0 {
		const shown = 3
		more := ""
		if len(bad) > shown {
			more = fmt.Sprintf(" (and %d more)", len(bad)-shown)
			bad = bad[:shown]
		}
		return nil, fmt.Errorf("%q: %s%s", p.TrustedDocumentsFile, strings.Join(bad, "; "), more)
	}
	return docs, nil
}

func sortedDocKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// limitedReader fails, rather than truncating as io.LimitReader does, past n bytes.
type limitedReader struct {
	f interface{ Read([]byte) (int, error) }
	n int64
}

func (l *limitedReader) Read(b []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("the file is larger than %d bytes", maxTrustedDocumentsFile)
	}
	if int64(len(b)) > l.n {
		b = b[:l.n]
	}
	n, err := l.f.Read(b)
	l.n -= int64(n)
	return n, err
}
