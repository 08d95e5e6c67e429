package push

import (
	"errors"
	"fmt"

	"github.com/tongban/tongban/push/condition"
)

// InputError is input the caller must fix: which field and what is wrong with it. A condition
// that does not compile carries CEL's problems with their positions.
type InputError struct {
	Field    string
	Message  string
	Problems []condition.Problem
}

func (e *InputError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Message) }

func inputErr(field, format string, args ...any) *InputError {
	return &InputError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// ForbiddenError is a request the caller may not make: a rule of another department's service,
// a role that does not hold the scope.
type ForbiddenError struct{ Message string }

func (e *ForbiddenError) Error() string { return e.Message }

// ErrNotFound means the rule does not exist or belongs to a department the caller does not
// own; the two are not told apart, so ids of other departments' rules do not leak.
var ErrNotFound = errors.New("push: no such rule")
