//go:build !unix

package audit

import (
	"os"
	"path/filepath"
)

// lockDir creates dir/audit.lock but cannot lock it on this platform: the
// caller must make sure that only one process writes the log.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
}
