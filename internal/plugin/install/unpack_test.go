package install

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// FuzzUnpack holds unpack to its promise for any bytes: it never panics,
// never writes outside its folder, and what it accepts holds only folders
// (0755), files (0644 or 0755) and symlinks resolving inside. The input is
// tried both as it is and gzipped, so that the fuzzer reaches the tar
// reader rather than stopping at gzip's header.
func FuzzUnpack(f *testing.F) {
	f.Add(packHello(f, "1.0.0"))
	for _, entries := range [][]entry{
		{reg("../evil", "x")},
		{reg("/tmp/abs", "x")},
		{symlink("passwd", "/etc/passwd"), reg("passwd", "x")},
		{symlink("up", ".."), reg("up/evil", "x")},
		{dirEntry("d/"), symlink("d/s", ".."), symlink("d/l", "s/.."), reg("d/l/evil", "x")},
		{{hdr: tar.Header{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}},
		{{hdr: tar.Header{Name: "hard", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}}},
	} {
		archive := tarGz(f, entries...)
		f.Add(archive)
		if gz, err := gzip.NewReader(bytes.NewReader(archive)); err == nil {
			var raw bytes.Buffer
			if _, err := raw.ReadFrom(gz); err == nil {
				f.Add(raw.Bytes())
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var gzipped bytes.Buffer
		w := gzip.NewWriter(&gzipped)
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		for _, input := range [][]byte{data, gzipped.Bytes()} {
			base := t.TempDir()
			dest := filepath.Join(base, "dest")
			if err := os.Mkdir(dest, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(base, "sentinel"), []byte("keep"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := unpack(bytes.NewReader(input), dest, limits{files: 64, bytes: 1 << 20})
			if got := names(t, base); len(got) != 2 || got[0] != "dest" || got[1] != "sentinel" {
				t.Fatalf("unpack wrote beside its folder: %v", got)
			}
			if b, _ := os.ReadFile(filepath.Join(base, "sentinel")); string(b) != "keep" {
				t.Fatalf("unpack changed a file beside its folder: %q", b)
			}
			if err != nil {
				continue
			}
			checkTree(t, dest)
		}
	})
}

// checkTree fails unless dest holds only what unpack may accept.
func checkTree(t *testing.T, dest string) {
	t.Helper()
	realDest, err := filepath.EvalSymlinks(dest)
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dest {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch m := fi.Mode(); {
		case m.IsDir():
			if m.Perm() != 0o755 || m&^fs.ModePerm != fs.ModeDir {
				t.Errorf("%s: folder mode %v, want 0755", p, m)
			}
		case m.IsRegular():
			if m != 0o644 && m != 0o755 {
				t.Errorf("%s: file mode %v, want 0644 or 0755", p, m)
			}
		case m&fs.ModeSymlink != 0:
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				t.Errorf("%s: accepted a symlink to nothing: %v", p, err)
				return nil
			}
			if rel, err := filepath.Rel(realDest, real); err != nil || rel != "." && !filepath.IsLocal(rel) {
				t.Errorf("%s: accepted a symlink resolving to %s", p, real)
			}
		default:
			t.Errorf("%s: accepted a %v", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
