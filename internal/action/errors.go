package action

import (
	"errors"
	"fmt"
)

// ErrRefused is wrapped by the errors of runs an action would not make: a
// value its schema refuses, a protected process or address, a path out of
// its roots. Nothing was changed, but the same request would be refused
// again, so these errors are not Retryable.
var ErrRefused = errors.New("refused")

// Error is a failed run that says whether a retry is safe.
type Error struct {
	Err error
	// Retry is true when the run failed before it changed anything.
	Retry bool
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Retryable implements Retryable.
func (e *Error) Retryable() bool { return e.Retry }

// retryable marks err as having happened before anything changed.
func retryable(err error) error { return &Error{Err: err, Retry: true} }

// final marks err as having happened after something may have changed.
func final(err error) error { return &Error{Err: err} }

// refusef returns a refusal, which wraps ErrRefused and is not Retryable.
func refusef(format string, a ...any) error {
	return &Error{Err: fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, a...))}
}
