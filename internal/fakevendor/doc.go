// Package fakevendor holds the mechanisms the in-process vendor fakes (fakefcm, fakehms,
// fakeapns, fakewechat, fakealipay) share, so that each keeps only what is particular to its
// vendor: Replies, the queue of scripted replies behind their Fail and Script, and JSONView,
// the read-only JSON handler behind their dev-mode MessagesHandler.
//
// It is for tests and dev mode only, like the fakes themselves.
package fakevendor
