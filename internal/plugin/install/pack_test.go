package install

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPackIsDeterministic(t *testing.T) {
	t.Parallel()
	a, b := t.TempDir(), t.TempDir()
	writeTree(t, a, helloTree("1.0.0"))
	writeTree(t, b, helloTree("1.0.0"))
	later := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(b, "bin", "hello"), later, later); err != nil {
		t.Fatal(err)
	}
	pa, err := Pack(a)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := Pack(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pa, pb) {
		t.Error("two packs of the same tree at other times differ")
	}
}

type packed struct {
	Name     string
	Type     byte
	Mode     int64
	Linkname string
	UID, GID int
	Uname    string
	ModTime  int64
}

func readHeaders(t *testing.T, archive []byte) []packed {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out []packed
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, packed{h.Name, h.Typeflag, h.Mode, h.Linkname, h.Uid, h.Gid, h.Uname, h.ModTime.Unix()})
	}
}

func TestPackSortsEntriesAndNormalisesModesAndOwners(t *testing.T) {
	t.Parallel()
	got := readHeaders(t, packHello(t, "1.0.0"))
	want := []packed{
		{Name: "bin/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "bin/hello", Type: tar.TypeReg, Mode: 0o755},
		{Name: "bin/hi", Type: tar.TypeSymlink, Mode: 0o777, Linkname: "hello"},
		{Name: "plugin.yml", Type: tar.TypeReg, Mode: 0o644},
		{Name: "share/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "share/1.0.0", Type: tar.TypeReg, Mode: 0o644},
		{Name: "share/README", Type: tar.TypeReg, Mode: 0o644},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("packed headers (-want +got):\n%s", diff)
	}
}

func TestPackRefusesWhatInstallWould(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{
			name:  "a symlink to an absolute path",
			setup: func(t *testing.T, dir string) { writeTree(t, dir, map[string]file{"passwd": {link: "/etc/passwd"}}) },
			want:  "symlink passwd points to the absolute path /etc/passwd",
		},
		{
			name:  "a symlink out of the tree",
			setup: func(t *testing.T, dir string) { writeTree(t, dir, map[string]file{"bin/up": {link: "../.."}}) },
			want:  "symlink bin/up: resolves to",
		},
		{
			name:  "a symlink to nothing",
			setup: func(t *testing.T, dir string) { writeTree(t, dir, map[string]file{"gone": {link: "missing"}}) },
			want:  "symlink gone: points to nothing",
		},
		{
			name: "a setuid executable",
			setup: func(t *testing.T, dir string) {
				writeTree(t, dir, map[string]file{"bin/root": {body: "x", mode: 0o755}})
				if err := os.Chmod(filepath.Join(dir, "bin", "root"), fs.ModeSetuid|0o755); err != nil {
					t.Fatal(err)
				}
			},
			want: "bin/root has a setuid",
		},
		{
			name: "a named pipe",
			setup: func(t *testing.T, dir string) {
				if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
					t.Skipf("mkfifo: %v", err)
				}
			},
			want: "pipe is a named pipe",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeTree(t, dir, map[string]file{"plugin.yml": {body: manifest, mode: 0o644}})
			tc.setup(t, dir)
			_, err := Pack(dir)
			if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ErrUnsafe containing %q", err, tc.want)
			}
		})
	}
}

func TestReadMetaIgnoresOtherKeysAndRefusesUnsafeNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, data string
		want       Meta
		err        string
	}{
		{"a manifest with more keys", "name: disk-clean\nversion: 2.1.0\nexec: bin/run\ntimeout: 5s\n", Meta{"disk-clean", "2.1.0"}, ""},
		{"a name with a slash", "name: ../etc\nversion: 1\n", Meta{}, `name "../etc"`},
		{"a name with a dot", "name: a.b\nversion: 1\n", Meta{}, `name "a.b"`},
		{"no version", "name: a\n", Meta{}, `version ""`},
		{"a version with a slash", "name: a\nversion: 1/2\n", Meta{}, `version "1/2"`},
		{"not YAML", "name: [", Meta{}, "decode plugin.yml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeTree(t, dir, map[string]file{"plugin.yml": {body: tc.data, mode: 0o644}})
			got, err := ReadMeta(dir)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("got %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ReadMeta = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
