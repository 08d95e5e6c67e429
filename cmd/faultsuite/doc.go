// Command faultsuite injects faults into Tongban by process, under a bounded mixed load, and
// verifies over Redis and over the API that nothing was lost, duplicated beyond one chunk in
// flight, or refused for a reason that is not true (docs/faults.md).
//
//	go run ./cmd/faultsuite -redis redis://127.0.0.1:6390/0
//	go run ./cmd/faultsuite -cluster 127.0.0.1:30001,127.0.0.1:30002 -scenarios master-kill,stall
//
// It starts Tongban instances itself (procs.go), in dev mode against the given Redis, with an
// FCM backend and an OpenID provider of its own (outside.go) that outlive the instances it
// kills, and people of its own with ID numbers new to the Redis (people.go); drives sign-ins,
// `me` and births through the API (load.go, api.go); faults Redis (redis.go: the server
// processes from INFO server) or an instance, one scenario a file (stall.go, masterkill.go,
// killdelivery.go, killbackfill.go, applyfault.go, redisdown.go: the server shut down and
// started again; underload.go is the shape the load-driven ones share); reads an instance's
// goroutines and heap from its /metrics (metrics.go); and reads the result back (verify.go)
// into figures and checks (report.go).
//
// It exits 1 when a check fails or a scenario could not be carried out; -report-only (or
// FAULTSUITE_REPORT_ONLY=1) exits 0 after printing them, for local runs before a fix is in.
// It never flushes or deletes anything; whatever ends it, it continues a stopped server,
// restores the ACL it changed, starts a killed cluster node or a shut-down server again and
// stops its instances.
package main
