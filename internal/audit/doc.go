// Package audit is the audit trail: who switched from which app to which, redeemed or exchanged
// what, granted or revoked consent, signed in where, and when. It holds no token, ticket, code
// or ID number.
//
// It is built first and handed to those who record into it: identity records sign-ins; the
// bridge records tickets, redemptions, exchanges and consent changes. The person reads their
// own trail as me.activity (List); operators read the operators' stream directly.
//
// Recording is best effort: a failed record is logged and the citizen's action goes on. Each
// recorded entry is also one info line of the service log ("audit: signed in", kind, the
// person's opaque id, the apps), so that an operator reading the log sees every crossing.
//
// Redis keys (under the store prefix):
//
//	{p:<pid>}:activity         stream the person's audit trail (kind, from, to, at; never a token, ticket or
//	                                  ID number); XADD trims entries older than 180 days (MINID ~). The tag is
//	                                  the person's, shared with the person's keys of identity and bridge
//	audit                      stream the operators' copy of every entry, with the person; MAXLEN ~ 1,000,000
//
// The two are written in one pipeline, not one transaction: they are in different slots.
package audit
