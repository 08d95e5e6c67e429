package apns

import (
	"errors"
	"fmt"
)

// The bounds of a device token, in hexadecimal characters. Every token iOS has issued so far is
// 32 bytes (64 hex characters), but Apple says tokens are of variable length and may grow, and
// told developers at WWDC 2015 to allow up to 100 bytes: so 64 to 200 characters, and an even
// number of them, since a token is bytes written as hex.
const (
	minTokenHex = 64
	maxTokenHex = 200
)

// ValidToken reports whether t is shaped like an APNs device token: hexadecimal digits (either
// case: APNs reads them case-blind, and apps write them either way), an even number of them,
// from 64 to 200. Anything else (the "<abcd 1234 …>" of NSData's description, base64, an FCM
// token) is refused, because APNs would refuse it with BadDeviceToken, and because the token
// becomes a URL path segment. The error never quotes the token.
func ValidToken(t string) error {
	switch n := len(t); {
	case n == 0:
		return errors.New("apns: device token is empty")
	case n < minTokenHex || n > maxTokenHex:
		return fmt.Errorf("apns: device token has %d characters, want %d to %d hex digits", n, minTokenHex, maxTokenHex)
	case n%2 != 0:
		return fmt.Errorf("apns: device token has an odd number (%d) of hex digits; it is bytes written as hex", n)
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return fmt.Errorf("apns: device token has a character that is not a hex digit at %d", i)
		}
	}
	return nil
}
