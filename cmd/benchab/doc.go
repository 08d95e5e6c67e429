// Command benchab compares one benchmark between two builds of Tongban on a shared machine,
// where only ratios measured in the same run mean anything: it builds the test binary of the
// package holding the benchmark at each of two git revisions (the working tree by default for
// the second), runs them alternately A, B, A, B, ... so that drift in the machine's load hits
// both alike, and prints every round's figures and the median ratio B/A of each.
//
//	go run ./cmd/benchab -bench SignInWithIDToken
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./cmd/benchab -bench Switch -rounds 4
//	go run ./cmd/benchab -a 78fc3f8 -b HEAD -pkg-b ./app -bench SignInWithIDToken
//
// The figures are the metrics the benchmark reports with b.ReportMetric (the custom units of
// its result line: signins/s, flows/s, ratio, ...) plus those its own output prints that
// -metric names (by default the first "p99 <n> ms", as p99-ms). The package is found in each
// tree by the benchmark's function name, so a package that moved between the two revisions
// needs no flag; -pkg-a and -pkg-b name it where the search is ambiguous.
//
// The environment passes through to the benchmarks, REDIS_URL included (-redis sets it).
// Nothing is written outside a temporary directory, which is removed at the end.
package main
