// Package webui serves the browser pages' shared modules (a GraphQL client over fetch and
// graphql-transport-ws, Chinese-first text with an English toggle, a base style sheet) under
// /ui/, and any page's own embedded files the same way: compressed with gzip when the browser
// accepts it (the demo's first load must stay small), cached for a day (they change only with
// the binary), never fetched from the network at run time.
//
// Plain JavaScript modules, no build step: what is committed is what runs.
//
// It owns no Redis keys.
package webui
