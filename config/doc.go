// Package config is Tongban's configuration: the keys docs/config.md lists (their names are
// fixed: operators build on them), how they are read, and the checks that stop a bad
// configuration at start-up instead of at the first request that needs the broken part.
//
// Load builds a Config in this order; each step sees the result of the one before:
//
//  1. Start point. With no file (no path and no TONGBAN_CONFIG) it is Dev(): simulated identity
//     providers and apps, fixed dev secrets. With a file it is Defaults() with the YAML decoded
//     over it; an unknown key is an error naming the file and line, so a typo cannot silently
//     leave a default in place.
//  2. Environment. Every TONGBAN_<PATH> variable overrides one key (TONGBAN_REDIS_URL,
//     TONGBAN_PROVIDERS_0_CLIENT_SECRET); a variable that names no key is an error.
//  3. Secret files. Each *_file key is read and its contents, trailing newlines trimmed, become
//     the sibling key, so secrets can come from mounted files rather than the YAML or the
//     environment.
//  4. Per-element defaults (a provider's scopes, algorithms and claim names, a client's subject
//     type) and, in dev mode only, the fixed dev pepper and key-encryption key where the
//     secrets are still empty, and the URLs derived from public_url: simulated issuers and the
//     sample apps' redirect and launch URIs. They come after the environment and the secret
//     files so that TONGBAN_PUBLIC_URL moves the URLs and a secret given in any way wins. Dev
//     mode also listens on 127.0.0.1 (listen, metrics_listen) unless the file or the
//     environment set an address.
//  5. Validate, which reports every problem at once, one line each, naming the key. Outside
//     dev mode it refuses published secrets (safety.go): those of tongban.example.yaml and of
//     Dev().
//
// The package only reads: it owns no Redis keys and starts nothing.
package config
