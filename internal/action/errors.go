package action

import (
	"errors"
	"fmt"
	"regexp"
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

// runIDRE is what a RunID must look like: actions put it in file names and
// firewall comments.
var runIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// checkRunID refuses a RunID that cannot be a file name or a comment.
func checkRunID(id string) error {
	if !runIDRE.MatchString(id) {
		return refusef("run id %q is not 1 to 128 of [A-Za-z0-9._:-] starting with a letter or digit", id)
	}
	return nil
}

// validate checks req's parameters against spec once more: Run is exported,
// and the values come from alerts.
func validate(spec Spec, req Request) (map[string]string, error) {
	p, err := spec.Validate(req.Params)
	if err != nil {
		return nil, &Error{Err: fmt.Errorf("%w: %s: %w", ErrRefused, spec.Name, err)}
	}
	if !req.DryRun {
		if err := checkRunID(req.RunID); err != nil {
			return nil, err
		}
	}
	return p, nil
}
