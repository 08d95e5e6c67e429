// Package fakevendor holds the mechanisms the in-process vendor fakes (fakefcm, fakehms,
// fakeapns, fakewechat, fakealipay) share, so that each keeps only what is particular to its
// vendor: Replies, the queue of scripted replies behind their Fail and Script; JSONView,
// the read-only JSON handler behind their dev-mode MessagesHandler; and Ring, the bounded record
// of the messages and attempts they saw.
//
// It is for tests and dev mode only, like the fakes themselves.
package fakevendor
