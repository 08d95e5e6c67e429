package config

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
)

func docHash(q string) string {
	sum := sha256.Sum256([]byte(q))
	return hex.EncodeToString(sum[:])
}

func TestGraphQLBoundsDefaults(t *testing.T) {
	g := Defaults().GraphQL
	want := PersistedQueries{MaxDocumentBytes: 16384, MaxDocuments: 10000,
		RegistrationsPerIPPerHour: 100, RegistrationsPerSessionPerHour: 50}
	if g.PersistedQueries != want || g.QueryCacheBytes != 33554432 {
		t.Fatalf("defaults: %+v, query_cache_bytes %d", g.PersistedQueries, g.QueryCacheBytes)
	}
}

func TestGraphQLBoundsRejects(t *testing.T) {
	q := "query Apps { apps { id } }"
	const key = "graphql.persisted_queries.trusted_documents_file"
	tests := []struct {
		name   string
		mutate func(c *Config)
		key    string
		msg    string
	}{
		{"query cache under 1 MiB", func(c *Config) { c.GraphQL.QueryCacheBytes = 1000 }, "graphql.query_cache_bytes", "at least 1048576"},
		{"max_document_bytes zero", func(c *Config) { c.GraphQL.PersistedQueries.MaxDocumentBytes = 0 }, "graphql.persisted_queries.max_document_bytes", "must be positive"},
		{"max_documents negative", func(c *Config) { c.GraphQL.PersistedQueries.MaxDocuments = -1 }, "graphql.persisted_queries.max_documents", "must be positive"},
		{"no registrations per address", func(c *Config) { c.GraphQL.PersistedQueries.RegistrationsPerIPPerHour = 0 }, "graphql.persisted_queries.registrations_per_ip_per_hour", "must be positive"},
		{"no registrations per session", func(c *Config) { c.GraphQL.PersistedQueries.RegistrationsPerSessionPerHour = 0 }, "graphql.persisted_queries.registrations_per_session_per_hour", "must be positive"},
		{"trusted documents file missing", func(c *Config) {
			c.GraphQL.PersistedQueries.TrustedDocumentsFile = filepath.Join(t.TempDir(), "missing.json")
		}, key, "cannot read"},
		{"trusted documents not JSON", func(c *Config) {
			c.GraphQL.PersistedQueries.TrustedDocumentsFile = writeFile(t, "d.json", "apps: {id}")
		}, key, "not a JSON object"},
		{"trusted documents a list", func(c *Config) {
			c.GraphQL.PersistedQueries.TrustedDocumentsFile = writeFile(t, "d.json", `["`+q+`"]`)
		}, key, "not a JSON object"},
		{"trusted documents an Apollo manifest", func(c *Config) {
			c.GraphQL.PersistedQueries.TrustedDocumentsFile = writeFile(t, "d.json", `{"format": "apollo-persisted-query-manifest", "operations": []}`)
		}, key, "not a JSON object"},
		{"trusted documents empty", func(c *Config) {
			c.GraphQL.PersistedQueries.TrustedDocumentsFile = writeFile(t, "d.json", `{}`)
		}, key, "holds no documents"},
		{"trusted documents followed by more", func(c *Config) {
			c.GraphQL.PersistedQueries.TrustedDocumentsFile = writeFile(t, "d.json", `{"`+docHash(q)+`": "`+q+`"} {}`)
		}, key, "more after its JSON object"},
		{"hash not the document's", func(c *Config) {
			c.GraphQL.PersistedQueries.TrustedDocumentsFile = writeFile(t, "d.json", `{"`+docHash(q+" ")+`": "`+q+`"}`)
		}, key, "is not the SHA-256 of its document"},
		{"hash in upper case", func(c *Config) {
			c.GraphQL.PersistedQueries.TrustedDocumentsFile = writeFile(t, "d.json", `{"`+strings.ToUpper(docHash(q))+`": "`+q+`"}`)
		}, key, "64 lower-case hex digits"},
		{"document empty", func(c *Config) {
			c.GraphQL.PersistedQueries.TrustedDocumentsFile = writeFile(t, "d.json", `{"`+docHash(" ")+`": " "}`)
		}, key, "the document is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(c)
			ps := problems(t, c.Validate())
			if len(ps) != 1 {
				t.Fatalf("want exactly one problem, got %d:\n%v", len(ps), ps)
			}
			if ps[0].Key != tt.key || !strings.Contains(ps[0].Message, tt.msg) {
				t.Errorf("got %q\nwant key %q with message containing %q", ps[0].String(), tt.key, tt.msg)
			}
		})
	}
}

// Many wrong entries are reported a few at a time, with a count of the rest.
func TestTrustedDocumentsNamesTheFirstWrongEntries(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range 5 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"` + strings.Repeat(string(rune('a'+i)), 64) + `": "{ apps { id } }"`)
	}
	b.WriteString("}")
	_, err := PersistedQueries{TrustedDocumentsFile: writeFile(t, "d.json", b.String())}.TrustedDocuments()
	if err == nil || !strings.Contains(err.Error(), strings.Repeat("a", 64)) || !strings.Contains(err.Error(), "(and 2 more)") {
		t.Fatalf("got %v", err)
	}
}

func TestTrustedDocumentsLoad(t *testing.T) {
	apps, me := "query Apps { apps { id name } }", "query Me {\n  me { id }\n}"
	path := writeFile(t, "trusted.json", `{"`+docHash(apps)+`": "`+apps+`", "`+docHash(me)+`": "query Me {\n  me { id }\n}"}`)
	c := validConfig()
	c.GraphQL.PersistedQueries.TrustedDocumentsFile = path
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	docs, err := c.GraphQL.PersistedQueries.TrustedDocuments()
	if err != nil || len(docs) != 2 || docs[docHash(apps)] != apps || docs[docHash(me)] != me {
		t.Fatalf("%v %v", docs, err)
	}
	if docs, err := (PersistedQueries{}).TrustedDocuments(); docs != nil || err != nil {
		t.Fatalf("without a file: %v %v", docs, err)
	}
}

func TestGraphQLBoundsFromEnvironment(t *testing.T) {
	c := Defaults()
	ps := applyEnv(c, []string{
		"TONGBAN_GRAPHQL_QUERY_CACHE_BYTES=8388608",
		"TONGBAN_GRAPHQL_PERSISTED_QUERIES_MAX_DOCUMENTS=500",
		"TONGBAN_GRAPHQL_PERSISTED_QUERIES_REGISTRATIONS_PER_IP_PER_HOUR=7",
		"TONGBAN_GRAPHQL_PERSISTED_QUERIES_TRUSTED_DOCUMENTS_FILE=/etc/tongban/trusted.json",
	})
	p := c.GraphQL.PersistedQueries
	if len(ps) != 0 || c.GraphQL.QueryCacheBytes != 8<<20 || p.MaxDocuments != 500 ||
		p.RegistrationsPerIPPerHour != 7 || p.TrustedDocumentsFile != "/etc/tongban/trusted.json" {
		t.Fatalf("%v %+v", ps, c.GraphQL)
	}
}
