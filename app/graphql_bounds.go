package app

import (
	"fmt"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/graph"
)

// persistedQueryOptions turns graphql.persisted_queries into the endpoint's options, reading
// the trusted documents of allowlist mode. Dev mode lets other queries run beside them, so
// that GraphiQL keeps working while a manifest is tried out.
func persistedQueryOptions(cfg *config.Config) (graph.PersistedQueryOptions, error) {
	p := cfg.GraphQL.PersistedQueries
	trusted, err := p.TrustedDocuments()
	if err != nil {
		return graph.PersistedQueryOptions{}, fmt.Errorf("app: graphql.persisted_queries.trusted_documents_file: %w", err)
	}
	return graph.PersistedQueryOptions{
		MaxDocumentBytes:  p.MaxDocumentBytes,
		MaxDocuments:      p.MaxDocuments,
		PerIPPerHour:      p.RegistrationsPerIPPerHour,
		PerSessionPerHour: p.RegistrationsPerSessionPerHour,
		Trusted:           trusted,
		AllowUntrusted:    cfg.Dev,
	}, nil
}
