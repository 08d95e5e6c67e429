// Package reqid carries a request id through a request's context and onto every log line
// written with that context, so that one request's lines, and the requestId an INTERNAL error
// shows the client, can be found together. It owns no Redis keys.
package reqid
