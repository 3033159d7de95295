package install

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// ErrTooLarge means an archive, or what it unpacks to, exceeds a limit.
var ErrTooLarge = errors.New("too large")

// limits bound what one archive may unpack to, against archives that
// inflate without end.
type limits struct {
	files int
	bytes int64
}

// unpack extracts the gzipped tar r into dest, an empty folder. Every
// entry is checked before it is written: its name must be a relative path
// without "..", it must not lie under a symlink, and it must be a folder,
// a regular file or a symlink whose target stays inside dest; setuid,
// setgid and sticky bits, hard links and devices are refused. Permissions
// are normalised as Pack writes them. Writes go through an os.Root, so
// even a check missed cannot reach outside dest. A returned error leaves
// whatever was written in dest, which the caller removes.
func unpack(r io.Reader, dest string, lim limits) error {
	root, err := os.OpenRoot(dest)
	if err != nil {
		return err
	}
	defer root.Close() //nolint:errcheck // closing the handle loses nothing; files are closed checked
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	tr := tar.NewReader(gz)
	links := map[string]bool{}
	var files int
	var total int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if files++; files > lim.files {
			return fmt.Errorf("%w: more than %d entries", ErrTooLarge, lim.files)
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "." {
			if hdr.Typeflag == tar.TypeDir {
				continue
			}
			return fmt.Errorf("%w: entry %q names the plugin's folder itself", ErrUnsafe, hdr.Name)
		}
		if under := underLink(name, links); under != "" {
			return fmt.Errorf("%w: %s lies under the symlink %s", ErrUnsafe, name, under)
		}
		if hdr.Mode&0o7000 != 0 {
			return fmt.Errorf("%w: %s has a setuid, setgid or sticky bit (mode %#o)", ErrUnsafe, name, hdr.Mode)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return fmt.Errorf("unpack %s: %w", name, err)
			}
			if err := root.Chmod(name, 0o755); err != nil {
				return fmt.Errorf("unpack %s: %w", name, err)
			}
		case tar.TypeReg:
			n, err := writeFile(root, name, execPerm(hdr.Mode&0o111 != 0), tr, lim.bytes-total)
			total += n
			if errors.Is(err, errBudget) {
				return fmt.Errorf("%w: the archive unpacks to more than %d bytes (at %s)", ErrTooLarge, lim.bytes, name)
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := checkLinkTarget(name, hdr.Linkname); err != nil {
				return err
			}
			if err := mkdirParent(root, name); err != nil {
				return err
			}
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return fmt.Errorf("unpack %s: %w", name, err)
			}
			links[name] = true
		case tar.TypeLink:
			return fmt.Errorf("%w: %s is a hard link (to %s); plugins carry files and symlinks only", ErrUnsafe, name, hdr.Linkname)
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			return fmt.Errorf("%w: %s is a device or a pipe", ErrUnsafe, name)
		default:
			return fmt.Errorf("%w: %s has entry type %q; plugins carry files, folders and symlinks only", ErrUnsafe, name, hdr.Typeflag)
		}
	}
	// Each link was checked by name as it came; now that the tree is whole,
	// resolve each through the links it passes, which a name alone cannot
	// tell (a link to "x/.." where x is itself a link).
	for _, name := range slices.Sorted(maps.Keys(links)) {
		if err := linkStaysInside(dest, name); err != nil {
			return err
		}
	}
	return nil
}

// entryName validates an archive entry's name and returns it clean.
func entryName(raw string) (string, error) {
	if raw == "" || strings.ContainsAny(raw, "\x00\\") {
		return "", fmt.Errorf("%w: entry name %q", ErrUnsafe, raw)
	}
	if strings.HasPrefix(raw, "/") {
		return "", fmt.Errorf("%w: %s is an absolute path", ErrUnsafe, raw)
	}
	if slices.Contains(strings.Split(raw, "/"), "..") {
		return "", fmt.Errorf("%w: %s has a .. element, which could climb out of the plugin", ErrUnsafe, raw)
	}
	name := path.Clean(raw)
	if name != "." && !filepath.IsLocal(name) {
		return "", fmt.Errorf("%w: entry name %q", ErrUnsafe, raw)
	}
	return name, nil
}

// underLink returns the symlink among name's parents, if there is one.
func underLink(name string, links map[string]bool) string {
	for p := path.Dir(name); p != "."; p = path.Dir(p) {
		if links[p] {
			return p
		}
	}
	return ""
}

func checkLinkTarget(name, target string) error {
	if target == "" || strings.ContainsRune(target, '\x00') {
		return fmt.Errorf("%w: symlink %s has no target", ErrUnsafe, name)
	}
	if strings.HasPrefix(target, "/") {
		return fmt.Errorf("%w: symlink %s points to the absolute path %s", ErrUnsafe, name, target)
	}
	if !filepath.IsLocal(path.Join(path.Dir(name), target)) {
		return fmt.Errorf("%w: symlink %s points to %s, outside the plugin", ErrUnsafe, name, target)
	}
	return nil
}

func linkStaysInside(dest, name string) error {
	realDest, err := filepath.EvalSymlinks(dest)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(filepath.Join(dest, filepath.FromSlash(name)))
	if err != nil {
		return fmt.Errorf("%w: symlink %s points to nothing in the plugin", ErrUnsafe, name)
	}
	rel, err := filepath.Rel(realDest, real)
	if err != nil || rel != "." && !filepath.IsLocal(rel) {
		return fmt.Errorf("%w: symlink %s resolves outside the plugin", ErrUnsafe, name)
	}
	return nil
}

func mkdirParent(root *os.Root, name string) error {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("unpack %s: %w", name, err)
		}
	}
	return nil
}

var errBudget = errors.New("over budget")

// writeFile creates name (never over an existing entry: an archive naming
// a file twice is refused) with at most budget bytes from r, and returns
// how many it wrote; errBudget when r held more.
func writeFile(root *os.Root, name string, perm fs.FileMode, r io.Reader, budget int64) (int64, error) {
	if err := mkdirParent(root, name); err != nil {
		return 0, err
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return 0, fmt.Errorf("%w: %s appears twice in the archive", ErrUnsafe, name)
		}
		return 0, fmt.Errorf("unpack %s: %w", name, err)
	}
	defer f.Close()
	n, err := io.Copy(f, io.LimitReader(r, budget+1))
	if err != nil {
		return n, fmt.Errorf("unpack %s: %w", name, err)
	}
	if n > budget {
		return n, errBudget
	}
	if err := f.Chmod(perm); err != nil { // the umask may have taken bits off
		return n, fmt.Errorf("unpack %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return n, fmt.Errorf("unpack %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return n, fmt.Errorf("unpack %s: %w", name, err)
	}
	return n, nil
}
