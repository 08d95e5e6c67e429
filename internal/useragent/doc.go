// Package useragent turns a User-Agent header into a coarse description of the client that
// sent it ("iPhone · WeChat", "Android · Alipay", "Windows · Browser"), which is what a person
// sees next to each of their sessions. The raw header is never kept: it is a fingerprint, and
// the description is all the person needs to recognise their own devices.
//
// Describe reads at most MaxLen bytes of the header. The description travels from the HTTP
// middleware to where a session is opened in the request's context (WithDevice, Device).
//
// The package owns no Redis keys.
package useragent
