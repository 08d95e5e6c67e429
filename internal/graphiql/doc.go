// Package graphiql serves dev mode's GraphiQL page with its scripts and styles from the binary,
// so that the page works on a machine without the internet (a train, a locked-down office
// network) and loads nothing a third party could change.
//
// The page itself is gqlgen's (graphql/playground), pointed at the embedded files instead of a
// CDN, with subresource-integrity hashes computed from them. The files and where each came from
// are listed in assets/README.md. It owns no Redis keys.
package graphiql
