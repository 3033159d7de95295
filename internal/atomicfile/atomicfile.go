// Package atomicfile replaces files so that a crash leaves either the old
// content or the new, never a torn file, and makes the change durable: the
// content is written to a temporary file in the same folder, fsync'd,
// renamed over the target, and the folder fsync'd.
package atomicfile

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with what r yields, with permissions perm. A
// symbolic link at path is replaced, not followed. No temporary file is
// left. On an error before the rename path is as it was; after it (the
// folder's fsync failed) path holds the new content, which a crash may
// still undo.
func Write(path string, r io.Reader, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly once renamed
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// WriteFile replaces path with data, with permissions perm, as Write does.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return Write(path, bytes.NewReader(data), perm)
}

// SyncDir fsyncs a folder, so that the names created, renamed or removed in
// it survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
