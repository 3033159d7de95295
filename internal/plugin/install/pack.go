package install

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// ErrUnsafe means a tree or an archive holds something a plugin may not:
// a path outside its folder, a link leading out of it, a device, a setuid
// bit, a hard link.
var ErrUnsafe = errors.New("unsafe entry")

// epoch is every entry's modification time, so that packing the same tree
// twice gives the same bytes (and the same signature).
var epoch = time.Unix(0, 0)

// Pack archives the tree at dir as a gzipped tar, deterministically: the
// entries in lexical order, owned by 0:0 with no names, dated 1970-01-01,
// directories 0755 and files 0755 when any execute bit is set and 0644
// otherwise. Symbolic links are kept when they resolve inside the tree;
// one that leads outside it or nowhere, a device, pipe or socket, and a
// setuid, setgid or sticky bit are refused (ErrUnsafe), since Install
// would refuse them too.
//
// The bytes are stable for a given build of the healer; compress/gzip
// does not promise the same output across Go releases, so a signature
// should travel with the archive it was made of rather than be remade
// from the tree.
func Pack(dir string) ([]byte, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	if fi, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("pack %s: not a directory", dir)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return packEntry(tw, root, p, name, fi)
	})
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	return buf.Bytes(), nil
}

func packEntry(tw *tar.Writer, root, p, name string, fi fs.FileInfo) error {
	mode := fi.Mode()
	if mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
		return fmt.Errorf("%w: %s has a setuid, setgid or sticky bit", ErrUnsafe, name)
	}
	hdr := &tar.Header{Name: name, ModTime: epoch, Format: tar.FormatPAX}
	switch {
	case mode.IsDir():
		hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
	case mode.IsRegular():
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, int64(normalPerm(mode)), fi.Size()
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if filepath.IsAbs(target) {
			return fmt.Errorf("%w: symlink %s points to the absolute path %s", ErrUnsafe, name, target)
		}
		if err := resolvesInside(root, p); err != nil {
			return fmt.Errorf("%w: symlink %s: %w", ErrUnsafe, name, err)
		}
		hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, filepath.ToSlash(target), 0o777
	default:
		return fmt.Errorf("%w: %s is a %s, not a file, folder or symlink", ErrUnsafe, name, kind(mode))
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	// The header promised fi.Size bytes; a file that grows or shrinks
	// meanwhile fails the write rather than corrupting the archive.
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// normalPerm is the permission every file is packed and unpacked with.
func normalPerm(mode fs.FileMode) fs.FileMode {
	return execPerm(mode&0o111 != 0)
}

// execPerm is 0755 for an executable and 0644 for anything else: plugins
// are the operator's to read, and only their owner writes them.
func execPerm(executable bool) fs.FileMode {
	if executable {
		return 0o755
	}
	return 0o644
}

// resolvesInside checks that the symlink at p, with every link on its way,
// resolves to something that exists inside root (itself resolved).
func resolvesInside(root, p string) error {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return fmt.Errorf("points to nothing: %w", err)
	}
	rel, err := filepath.Rel(root, real)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return fmt.Errorf("resolves to %s, outside the plugin", real)
	}
	return nil
}

func kind(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeDevice != 0 && mode&fs.ModeCharDevice != 0:
		return "character device"
	case mode&fs.ModeDevice != 0:
		return "block device"
	case mode&fs.ModeNamedPipe != 0:
		return "named pipe"
	case mode&fs.ModeSocket != 0:
		return "socket"
	default:
		return "irregular file"
	}
}
