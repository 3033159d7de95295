package action

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// rootOf returns the longest of roots that holds p.
func rootOf(p string, roots []string) (string, bool) {
	best := ""
	for _, r := range roots {
		r = filepath.Clean(r)
		if within(p, r) && len(r) > len(best) {
			best = r
		}
	}
	return best, best != ""
}

// openDirBeneath opens root/rel as a folder without following a symbolic
// link anywhere below root. root itself comes from configuration.
func openDirBeneath(root, rel string) (*os.File, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: root, Err: err}
	}
	d := os.NewFile(uintptr(fd), root)
	defer d.Close()
	return openDirAt(d, rel)
}

// openDirAt opens the folder rel below dir, each component relative to the
// one before with O_NOFOLLOW, so that no symbolic link is followed and a
// folder renamed or replaced meanwhile cannot redirect it.
func openDirAt(dir *os.File, rel string) (*os.File, error) {
	name := filepath.Join(dir.Name(), rel)
	fd, err := unix.Openat(int(dir.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir.Name(), Err: err}
	}
	for _, c := range strings.Split(filepath.ToSlash(rel), "/") {
		if c == "" || c == "." {
			continue
		}
		if c == ".." {
			_ = unix.Close(fd)
			return nil, fmt.Errorf("open %s: %q leads out of the root", name, rel)
		}
		next, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		_ = unix.Close(fd)
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("open %s: %s is not a folder (a symbolic link or a file)", name, c)
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		fd = next
	}
	return os.NewFile(uintptr(fd), name), nil
}

// mkdirBeneath opens the folder rel below dir, creating what is missing
// with perm, and never following a symbolic link.
func mkdirBeneath(dir *os.File, rel string, perm uint32) (*os.File, error) {
	fd, err := unix.Openat(int(dir.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	for _, c := range strings.Split(filepath.ToSlash(rel), "/") {
		if c == "" || c == "." {
			continue
		}
		if c == ".." {
			_ = unix.Close(fd)
			return nil, fmt.Errorf("mkdir %s: leads out of the root", rel)
		}
		if err := unix.Mkdirat(fd, c, perm); err != nil && !errors.Is(err, unix.EEXIST) {
			_ = unix.Close(fd)
			return nil, &fs.PathError{Op: "mkdir", Path: rel, Err: err}
		}
		next, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		_ = unix.Close(fd)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: rel, Err: err}
		}
		fd = next
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir.Name(), rel)), nil
}

// renameNoReplace renames without replacing an existing target
// (RENAME_NOREPLACE), falling back to a check and a plain rename on file
// systems without it. Both names are single components relative to their
// folders, so no symbolic link is followed.
func renameNoReplace(olddir int, oldname string, newdir int, newname string) error {
	err := unix.Renameat2(olddir, oldname, newdir, newname, unix.RENAME_NOREPLACE)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(newdir, newname, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		return unix.EEXIST
	}
	return unix.Renameat(olddir, oldname, newdir, newname)
}

// openNoFollow opens name in dir for reading, refusing a symbolic link, and
// without blocking on a FIFO put there in a race.
func openNoFollow(dir *os.File, name string) (*os.File, unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, st, &fs.PathError{Op: "open", Path: filepath.Join(dir.Name(), name), Err: err}
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir.Name(), name))
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, st, &fs.PathError{Op: "stat", Path: f.Name(), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, st, fmt.Errorf("%s is not a regular file", f.Name())
	}
	return f, st, nil
}

// fileMeta is what a copy of a file must carry besides its bytes.
type fileMeta struct {
	mode, uid, gid uint32
	atime, mtime   time.Time
	// xattrs are set on the copy; a file system that cannot hold one
	// fails the copy.
	xattrs map[string][]byte
}

// copyFileAt copies src (from its start) to a new file name in dir,
// created exclusively, and returns the SHA-256 of what it copied. The copy
// is fsync'd and gets the owner, then the extended attributes (ACLs
// included), then the mode (after the owner, because chown clears the
// setuid and setgid bits) and the times. Anything that cannot be set fails
// the copy, which is then removed: a copy is exact or there is none.
func copyFileAt(src *os.File, dir *os.File, name string, m fileMeta) (string, int64, error) {
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return "", 0, err
	}
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return "", 0, &fs.PathError{Op: "create", Path: filepath.Join(dir.Name(), name), Err: err}
	}
	dst := os.NewFile(uintptr(fd), filepath.Join(dir.Name(), name))
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(dst, h), src)
	if err == nil {
		if cerr := unix.Fchown(fd, int(m.uid), int(m.gid)); cerr != nil {
			err = fmt.Errorf("set owner %d:%d: %w", m.uid, m.gid, cerr)
		}
	}
	if err == nil {
		err = setXattrs(fd, m.xattrs)
	}
	if err == nil {
		err = unix.Fchmod(fd, m.mode)
	}
	if err == nil {
		err = unix.UtimesNanoAt(int(dir.Fd()), name, []unix.Timespec{unix.NsecToTimespec(m.atime.UnixNano()), unix.NsecToTimespec(m.mtime.UnixNano())}, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = unix.Unlinkat(int(dir.Fd()), name, 0)
		return "", 0, fmt.Errorf("copy to %s: %w", filepath.Join(dir.Name(), name), err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// fileXattrs returns every extended attribute of the open file fd (ACLs
// are the system.posix_acl_* ones), or none on a file system without them.
func fileXattrs(fd int) (map[string][]byte, error) {
	var names []byte
	for {
		size, err := unix.Flistxattr(fd, nil)
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list extended attributes: %w", err)
		}
		if size == 0 {
			return nil, nil
		}
		names = make([]byte, size)
		n, err := unix.Flistxattr(fd, names)
		if errors.Is(err, unix.ERANGE) {
			continue // one was added meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("list extended attributes: %w", err)
		}
		names = names[:n]
		break
	}
	out := map[string][]byte{}
	for name := range strings.SplitSeq(strings.TrimRight(string(names), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		for {
			size, err := unix.Fgetxattr(fd, name, nil)
			if errors.Is(err, unix.ENODATA) {
				break // removed meanwhile
			}
			if err != nil {
				return nil, fmt.Errorf("read extended attribute %s: %w", name, err)
			}
			val := make([]byte, size)
			n, err := unix.Fgetxattr(fd, name, val)
			if errors.Is(err, unix.ERANGE) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("read extended attribute %s: %w", name, err)
			}
			out[name] = val[:n]
			break
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// setXattrs sets the extended attributes xs on fd, in name order.
func setXattrs(fd int, xs map[string][]byte) error {
	names := make([]string, 0, len(xs))
	for k := range xs {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if err := unix.Fsetxattr(fd, k, xs[k], 0); err != nil {
			return fmt.Errorf("set extended attribute %s: %w", k, err)
		}
	}
	return nil
}

// hashFile returns the SHA-256 and size of f from its start.
func hashFile(f *os.File) (string, int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", 0, err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func timespecTime(ts unix.Timespec) time.Time { return time.Unix(ts.Unix()).UTC() }
