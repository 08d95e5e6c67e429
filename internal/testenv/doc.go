// Package testenv gives tests the real things they run against: an isolated Redis store
// (embedded by default, the Redis at REDIS_URL or the Redis Cluster at REDIS_CLUSTER_ADDRS
// when set), and a headless Chromium for the browser tests (Browser, Screenshot: skipped where
// none is installed, failed instead under TONGBAN_REQUIRE_BROWSER).
//
// Isolation on a shared Redis is by key prefix: every test gets a random prefix without a hash
// tag, so keys that a package forgot to tag land in different slots of a cluster and a
// multi-key command over them fails there, as it would in production.
package testenv
