// Package reqid carries a request id through a request's context and onto every log line
// written with that context, so that one request's lines, and the requestId an INTERNAL error
// shows the client, can be found together. It also carries a request's bound (WithTimeout,
// request_timeout) and a way out of it for the part of a request with a lifetime of its own
// (WithoutTimeout). It owns no Redis keys.
//
// The bound runs on every request, so it is built to cost little (BenchmarkDeadline keeps the
// first version as its baseline). The first version made, per request, a cancelable context
// (which hooked itself onto net/http's per-request context, a map there) and a runtime timer
// with its callback: ten allocations and about 6% of the server's CPU. Now a request's bound
// is one object and its CancelFunc:
//
//   - Its error is worked out when asked, from how it ended and from its parent; the channel
//     that Done returns, and the hook onto the parent, are made only when something waits
//     on the request (Done, or a context derived with a cancellation of its own).
//   - No timer per request: one goroutine per process, started with the first bound, sweeps
//     every 100 ms a sharded list of the requests that are running and ends those past their
//     bound. Joining and leaving a list costs a lock and no allocation, about half of a runtime
//     timer's start and stop (BenchmarkWatch). The price is that a request's context may end
//     up to 100 ms after its bound; the deadline it reports, which the store's client puts
//     on its socket, is exact.
//
// context.WithDeadline was measured too (BenchmarkDeadline, stdlib-deadline): a timerCtx
// saves two of the first version's allocations, not the runtime timer nor the hook onto the
// parent, and its bound cannot be lifted.
package reqid
