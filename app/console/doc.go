// Package console is the service owner's rule editor at /console/: a page that talks to
// /graphql with a machine token of scope `rules` exactly as a department's own tool would.
// It lists the services of the owner's departments and the facts they may read, checks a
// condition as it is typed (previewPushRule, debounced) with the problems underlined at their
// line and column, runs it on sample profiles, estimates the audience only on request (that
// spends privacy budget), and creates, publishes (with the backfill's progress), pauses and
// archives rules, with each rule's released stats.
//
// The page is plain HTML, CSS and JavaScript modules, embedded and served through
// internal/webui (gzip, cached); it uses the shared modules at /ui/. The token lives only in
// the page (memory and the tab's sessionStorage) and goes only to /graphql; the server keeps
// nothing of it. In dev mode the page offers to sign in as the dev service owners with their
// published dev secrets; outside it, the owner pastes a token.
//
// It owns no Redis keys.
package console
