package hms

import "fmt"

// Token bounds. A Push Kit token (from pushService.getToken() on the device) is an opaque
// string; the ones seen are around 130 characters of base64-like text, e.g. "MAMzLg…lPW".
// Huawei documents no length or alphabet, so ValidToken is lenient but bounded: it keeps out
// what cannot be a token (empty, whitespace, control characters, a pasted JSON), not what
// might be.
const (
	MinTokenLen = 16
	MaxTokenLen = 512
)

// ValidToken says whether t may be a Push Kit token: MinTokenLen to MaxTokenLen characters of
// ASCII letters, digits and + / = - _ . : (base64, URL-safe base64 and separators). Its error
// describes what is wrong without quoting the token.
func ValidToken(t string) error {
	if len(t) < MinTokenLen || len(t) > MaxTokenLen {
		return fmt.Errorf("hms: a push token is %d to %d characters, not %d", MinTokenLen, MaxTokenLen, len(t))
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '+' || c == '/' || c == '=' || c == '-' || c == '_' || c == '.' || c == ':':
		default:
			return fmt.Errorf("hms: a push token has letters, digits and +/=-_.: only; character %d is not one", i+1)
		}
	}
	return nil
}
