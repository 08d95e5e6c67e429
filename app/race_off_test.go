//go:build !race

package app

// raceDetector says the tests run with -race, which makes byte-by-byte work (decoding and
// lexing megabytes of queries) some forty times slower.
const raceDetector = false
