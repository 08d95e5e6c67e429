package identity

import (
	"errors"
	"fmt"
)

// Reasons an ID token is refused, as docs/api.md names them (extensions.reason of INVALID_TOKEN).
const (
	ReasonBadSignature         = "bad_signature"
	ReasonIssuerMismatch       = "issuer_mismatch"
	ReasonAudienceMismatch     = "audience_mismatch"
	ReasonExpired              = "expired"
	ReasonNotYetValid          = "not_yet_valid"
	ReasonNonceMismatch        = "nonce_mismatch"
	ReasonMissingClaim         = "missing_claim"
	ReasonUnsupportedAlgorithm = "unsupported_algorithm"
	ReasonUnknownKey           = "unknown_key"
	ReasonMalformed            = "malformed"
	ReasonReplayed             = "replayed"
	// ReasonAccessTokenMismatch is an addition to the contract's list: the at_hash claim does not
	// match the access token that came with the ID token, so one of them was swapped.
	ReasonAccessTokenMismatch = "access_token_mismatch"
)

// TokenError is an ID token refused for Reason. Message is safe to show to the caller: it never
// contains claim values that could be personal data.
type TokenError struct {
	Reason  string
	Message string
	Err     error // the underlying cause, for logs only
}

func (e *TokenError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("identity: ID token refused (%s): %s: %v", e.Reason, e.Message, e.Err)
	}
	return fmt.Sprintf("identity: ID token refused (%s): %s", e.Reason, e.Message)
}

func (e *TokenError) Unwrap() error { return e.Err }

func tokenErr(reason, format string, args ...any) *TokenError {
	return &TokenError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// InputError is a request that cannot be right whatever the state: an unknown app, a redirect
// URI that is not registered, a malformed argument. Field names the argument.
type InputError struct {
	Field   string
	Message string
}

func (e *InputError) Error() string { return fmt.Sprintf("identity: %s: %s", e.Field, e.Message) }

func inputErr(field, format string, args ...any) *InputError {
	return &InputError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// ForbiddenError is a request the caller may not make in the current state (unlinking the
// account of the current session, linking someone else's ID number).
type ForbiddenError struct{ Message string }

func (e *ForbiddenError) Error() string { return "identity: " + e.Message }

// ErrProviderUnavailable means the app's identity provider has not been discovered yet or did
// not answer. Sign-ins with other apps go on working.
var ErrProviderUnavailable = errors.New("identity: identity provider unavailable")

// ProviderError says which provider is unavailable.
type ProviderError struct {
	App string
	Err error
}

func (e *ProviderError) Error() string {
	return fmt.Sprintf("identity: identity provider %s unavailable: %v", e.App, e.Err)
}

func (e *ProviderError) Unwrap() []error { return []error{ErrProviderUnavailable, e.Err} }
