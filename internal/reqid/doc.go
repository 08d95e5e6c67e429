// Package reqid carries a request id through a request's context and onto every log line
// written with that context, so that one request's lines, and the requestId an INTERNAL error
// shows the client, can be found together. It also carries a request's bound (WithTimeout,
// request_timeout) and a way out of it for the part of a request with a lifetime of its own
// (WithoutTimeout). It owns no Redis keys.
package reqid
