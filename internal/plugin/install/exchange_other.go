//go:build !linux

package install

import "errors"

// exchange is not available here; replace moves the old version aside
// instead.
func exchange(_, _ string) error {
	return errors.ErrUnsupported
}
