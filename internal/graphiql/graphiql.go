package graphiql

import (
	"crypto/sha512"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"

	"github.com/99designs/gqlgen/graphql/playground"
)

//go:embed assets/*.js assets/*.css assets/LICENSE.* assets/README.md
var files embed.FS

// assets is files with the "assets/" prefix taken off, as they are served.
var assets = func() fs.FS {
	sub, err := fs.Sub(files, "assets")
	if err != nil {
		panic(err) // the embed directive above guarantees the directory
	}
	return sub
}()

// Page is the GraphiQL page for the GraphQL endpoint, loading its assets from under prefix
// (the path Assets is mounted at, ending in "/").
func Page(title, endpoint, prefix string) http.Handler {
	url := func(name string) string { return path.Join(prefix, name) }
	return playground.Handler(title, endpoint,
		playground.WithGraphiqlVersion(url("graphiql.min.js"), url("graphiql.min.css"), integrity("graphiql.min.js"), integrity("graphiql.min.css")),
		playground.WithGraphiqlReactVersion(url("react.production.min.js"), url("react-dom.production.min.js"),
			integrity("react.production.min.js"), integrity("react-dom.production.min.js")),
	)
}

// Assets serves the embedded files under prefix. They change only with the binary, so they
// may be cached for a day; the page's integrity attributes catch any mix-up.
func Assets(prefix string) http.Handler {
	files := http.StripPrefix(prefix, http.FileServerFS(assets))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}

// integrity is the subresource-integrity value of an embedded file: "sha384-" and its digest.
func integrity(name string) string {
	b, err := fs.ReadFile(assets, name)
	if err != nil {
		panic("graphiql: missing embedded asset " + name) // a build without the file is broken
	}
	sum := sha512.Sum384(b)
	return "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
}
