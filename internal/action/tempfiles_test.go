package action

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fileState is what a restore must bring back.
type fileState struct {
	SHA256 string
	Mode   fs.FileMode
	MTime  time.Time
}

func stateOf(t *testing.T, path string) fileState {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return fileState{SHA256: hex.EncodeToString(sum[:]), Mode: fi.Mode(), MTime: fi.ModTime().UTC()}
}

// writeAged writes a file with mode perm and modification time mtime.
func writeAged(t *testing.T, path string, data []byte, perm fs.FileMode, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // past the umask
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// tempTree is a folder to clean, with files old and new, and things that
// must never be touched.
type tempTree struct {
	root, outside, quarantine string
	old                       []string // relative to root
	kept                      []string
	states                    map[string]fileState
}

func newTempTree(t *testing.T) *tempTree {
	t.Helper()
	tr := &tempTree{root: t.TempDir(), outside: t.TempDir(), quarantine: filepath.Join(t.TempDir(), "quarantine"), states: map[string]fileState{}}
	old := testNow.Add(-2 * time.Hour).Add(123456789 * time.Nanosecond)
	binary := make([]byte, 70000)
	for i := range binary {
		binary[i] = byte(i * 7)
	}
	writeAged(t, filepath.Join(tr.root, "a.txt"), []byte("alpha\n"), 0o640, old)
	writeAged(t, filepath.Join(tr.root, "sub", "b.bin"), binary, 0o600, old.Add(-time.Hour))
	writeAged(t, filepath.Join(tr.root, "sub", "deep", "c"), nil, 0o755, old.Add(-48*time.Hour))
	writeAged(t, filepath.Join(tr.root, "new.txt"), []byte("recent"), 0o644, testNow.Add(-10*time.Minute))
	writeAged(t, filepath.Join(tr.root, "sub", "new2"), []byte("recent"), 0o644, testNow.Add(-59*time.Minute))
	tr.old = []string{"a.txt", "sub/b.bin", "sub/deep/c"}
	tr.kept = []string{"new.txt", "sub/new2"}

	// Outside the root, old: reachable only through symbolic links.
	writeAged(t, filepath.Join(tr.outside, "secret"), []byte("do not touch"), 0o600, old)
	writeAged(t, filepath.Join(tr.outside, "dir", "inner"), []byte("nor this"), 0o600, old)
	if err := os.Symlink(filepath.Join(tr.outside, "secret"), filepath.Join(tr.root, "link-to-secret")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(tr.outside, "dir"), filepath.Join(tr.root, "sub", "link-to-dir")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(tr.root, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(tr.root, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for _, p := range []string{"fifo", "sock", "link-to-secret"} {
		if err := os.Chtimes(filepath.Join(tr.root, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range append(slices.Clone(tr.old), tr.kept...) {
		tr.states[p] = stateOf(t, filepath.Join(tr.root, p))
	}
	tr.states["outside/secret"] = stateOf(t, filepath.Join(tr.outside, "secret"))
	tr.states["outside/dir/inner"] = stateOf(t, filepath.Join(tr.outside, "dir", "inner"))
	return tr
}

// checkUntouched checks that what must never move is where it was.
func (tr *tempTree) checkUntouched(t *testing.T) {
	t.Helper()
	for _, p := range tr.kept {
		if got := stateOf(t, filepath.Join(tr.root, p)); got != tr.states[p] {
			t.Errorf("%s: got %+v, want %+v untouched", p, got, tr.states[p])
		}
	}
	if got := stateOf(t, filepath.Join(tr.outside, "secret")); got != tr.states["outside/secret"] {
		t.Errorf("outside file: got %+v, want %+v untouched", got, tr.states["outside/secret"])
	}
	if got := stateOf(t, filepath.Join(tr.outside, "dir", "inner")); got != tr.states["outside/dir/inner"] {
		t.Errorf("outside folder's file: got %+v, want %+v untouched", got, tr.states["outside/dir/inner"])
	}
	for _, p := range []string{"link-to-secret", "sub/link-to-dir", "fifo", "sock"} {
		if _, err := os.Lstat(filepath.Join(tr.root, p)); err != nil {
			t.Errorf("%s: got %v, want it left in place", p, err)
		}
	}
}

func (tr *tempTree) checkRestored(t *testing.T, paths []string) {
	t.Helper()
	for _, p := range paths {
		if got := stateOf(t, filepath.Join(tr.root, p)); got != tr.states[p] {
			t.Errorf("%s: got %+v after rollback, want %+v", p, got, tr.states[p])
		}
	}
}

func TestCleanTempFilesMovesOldFilesAndRollsBack(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		crossDevice bool
	}{
		{name: "on one file system files are renamed"},
		{name: "across file systems files are copied and removed", crossDevice: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := newTempTree(t)
			c, err := NewCleanTempFiles([]string{tr.root}, tr.quarantine, fixedClock(testNow), nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.crossDevice {
				c.rename = func(int, string, int, string) error { return unix.EXDEV }
			}
			res, err := c.Run(t.Context(), Request{RunID: "run-1", Params: map[string]string{"path": tr.root}})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(res.Summary, "moved 3 files (70006 bytes) not modified for 1h from "+tr.root) {
				t.Errorf("got summary %q, want 3 files moved", res.Summary)
			}
			for _, p := range tr.old {
				if _, err := os.Lstat(filepath.Join(tr.root, p)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s: got %v, want it moved away", p, err)
				}
				q := filepath.Join(tr.quarantine, "run-1", "files", p)
				if got := stateOf(t, q); got != tr.states[p] {
					t.Errorf("%s in quarantine: got %+v, want %+v", p, got, tr.states[p])
				}
			}
			tr.checkUntouched(t)

			var m quarantineManifest
			b, err := os.ReadFile(filepath.Join(tr.quarantine, "run-1", "manifest.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range m.Files {
				got = append(got, f.Rel)
				if f.SHA256 != tr.states[f.Rel].SHA256 || fs.FileMode(f.Mode) != tr.states[f.Rel].Mode.Perm() || !f.MTime.Equal(tr.states[f.Rel].MTime) {
					t.Errorf("manifest entry %+v, want %+v", f, tr.states[f.Rel])
				}
				if f.Path != filepath.Join(tr.root, f.Rel) {
					t.Errorf("got manifest path %q, want %q", f.Path, filepath.Join(tr.root, f.Rel))
				}
			}
			if !slices.Equal(got, tr.old) {
				t.Errorf("got manifest files %q, want %q", got, tr.old)
			}
			var u cleanUndo
			if err := json.Unmarshal(res.Undo, &u); err != nil || u.Manifest != filepath.Join(tr.quarantine, "run-1", "manifest.json") {
				t.Errorf("got undo %s, %v, want the manifest's path", res.Undo, err)
			}

			rb, err := c.Rollback(t.Context(), "run-1", res.Undo)
			if err != nil {
				t.Fatal(err)
			}
			if want := "restored 3 files to " + tr.root; rb.Summary != want {
				t.Errorf("got rollback summary %q, want %q", rb.Summary, want)
			}
			tr.checkRestored(t, tr.old)
			tr.checkUntouched(t)
			if _, err := os.Lstat(filepath.Join(tr.quarantine, "run-1")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("got %v, want the emptied quarantine removed", err)
			}
		})
	}
}

func TestCleanTempFilesRollbackDoesNotOverwriteARecreatedFile(t *testing.T) {
	t.Parallel()
	tr := newTempTree(t)
	c, err := NewCleanTempFiles([]string{tr.root}, tr.quarantine, fixedClock(testNow), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(t.Context(), Request{RunID: "run-1", Params: map[string]string{"path": tr.root}})
	if err != nil {
		t.Fatal(err)
	}
	recreated := filepath.Join(tr.root, "sub", "b.bin")
	if err := os.WriteFile(recreated, []byte("a new file"), 0o644); err != nil {
		t.Fatal(err)
	}
	rb, err := c.Rollback(t.Context(), "run-1", res.Undo)
	if err == nil || !strings.Contains(err.Error(), recreated+": recreated since the clean; not overwritten") {
		t.Fatalf("got %v, want an error naming %s", err, recreated)
	}
	if IsRetryable(err) {
		t.Error("got a retryable error, want not retryable")
	}
	if want := "restored 2 files to " + tr.root + "; 1 left in " + filepath.Join(tr.quarantine, "run-1"); rb.Summary != want {
		t.Errorf("got summary %q, want %q", rb.Summary, want)
	}
	tr.checkRestored(t, []string{"a.txt", "sub/deep/c"})
	if b, err := os.ReadFile(recreated); err != nil || string(b) != "a new file" {
		t.Errorf("got %q, %v, want the recreated file untouched", b, err)
	}

	// Once it is out of the way, a second rollback restores the rest.
	if err := os.Remove(recreated); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Rollback(t.Context(), "run-1", res.Undo); err != nil {
		t.Fatal(err)
	}
	tr.checkRestored(t, tr.old)
	if _, err := os.Lstat(filepath.Join(tr.quarantine, "run-1")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want the quarantine removed", err)
	}
}

func TestCleanTempFilesRollbackRefusesATamperedQuarantine(t *testing.T) {
	t.Parallel()
	tr := newTempTree(t)
	c, err := NewCleanTempFiles([]string{tr.root}, tr.quarantine, fixedClock(testNow), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(t.Context(), Request{RunID: "run-1", Params: map[string]string{"path": tr.root}})
	if err != nil {
		t.Fatal(err)
	}
	q := filepath.Join(tr.quarantine, "run-1", "files", "a.txt")
	if err := os.WriteFile(q, []byte("tampered"), 0o640); err != nil {
		t.Fatal(err)
	}
	_, err = c.Rollback(t.Context(), "run-1", res.Undo)
	if err == nil || !strings.Contains(err.Error(), "the quarantined copy changed") {
		t.Errorf("got %v, want the changed copy reported", err)
	}
	if _, err := os.Lstat(filepath.Join(tr.root, "a.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want the changed copy left in the quarantine", err)
	}
	tr.checkRestored(t, []string{"sub/b.bin", "sub/deep/c"})

	tests := []struct {
		name  string
		runID string
		undo  string
	}{
		{name: "an undo naming another manifest is refused", runID: "run-1", undo: `{"manifest":"/etc/shadow"}`},
		{name: "an undo of another run is refused", runID: "run-2", undo: string(res.Undo)},
		{name: "a run id with a slash is refused", runID: "../run-1", undo: string(res.Undo)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.Rollback(t.Context(), tt.runID, json.RawMessage(tt.undo)); !errors.Is(err, ErrRefused) {
				t.Errorf("got %v, want a refusal", err)
			}
		})
	}
}

func TestCleanTempFilesDryRunAndRefusals(t *testing.T) {
	t.Parallel()
	tr := newTempTree(t)
	c, err := NewCleanTempFiles([]string{tr.root}, tr.quarantine, fixedClock(testNow), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(t.Context(), Request{DryRun: true, Params: map[string]string{"path": tr.root}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "would move 3 files (70006 bytes) not modified for 1h from " + tr.root + " to a quarantine"; res.Summary != want {
		t.Errorf("got summary %q, want %q", res.Summary, want)
	}
	if res.Target != tr.root {
		t.Errorf("got target %q, want %q", res.Target, tr.root)
	}
	tr.checkRestored(t, tr.old) // i.e. still there
	tr.checkUntouched(t)
	if _, err := os.Lstat(tr.quarantine); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want no quarantine made in a dry run", err)
	}

	tests := []struct {
		name   string
		runID  string
		params map[string]string
	}{
		{name: "a path out of the roots is refused", runID: "r", params: map[string]string{"path": tr.outside}},
		{name: "a symbolic link out of the root is refused", runID: "r", params: map[string]string{"path": filepath.Join(tr.root, "sub", "link-to-dir")}},
		{name: "dot-dot out of the root is refused", runID: "r", params: map[string]string{"path": tr.root + "/../" + filepath.Base(tr.outside)}},
		{name: "a file is refused", runID: "r", params: map[string]string{"path": filepath.Join(tr.root, "new.txt")}},
		{name: "an age under a minute is refused", runID: "r", params: map[string]string{"path": tr.root, "older_than": "10s"}},
		{name: "a run id that is not a file name is refused", runID: "../../etc", params: map[string]string{"path": tr.root}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.Run(t.Context(), Request{RunID: tt.runID, Params: tt.params}); !errors.Is(err, ErrRefused) {
				t.Errorf("got %v, want a refusal", err)
			}
		})
	}
	tr.checkRestored(t, tr.old)
	tr.checkUntouched(t)
}

func TestCleanTempFilesNeverFollowsASymbolicLinkWhenItOpens(t *testing.T) {
	t.Parallel()
	tr := newTempTree(t)
	c, err := NewCleanTempFiles([]string{tr.root}, tr.quarantine, fixedClock(testNow), nil)
	if err != nil {
		t.Fatal(err)
	}
	// A link that stays in the root passes validation, as one swapped in
	// after validation would; opening it is still refused.
	if err := os.Rename(filepath.Join(tr.root, "sub"), filepath.Join(tr.root, "sub-moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(tr.root, "sub-moved"), filepath.Join(tr.root, "sub")); err != nil {
		t.Fatal(err)
	}
	if _, err := (Param{Type: TypePath, Roots: []string{tr.root}}).Check(filepath.Join(tr.root, "sub")); err != nil {
		t.Fatalf("got %v, want the link to pass validation", err)
	}
	_, err = c.Run(t.Context(), Request{RunID: "r1", Params: map[string]string{"path": filepath.Join(tr.root, "sub")}})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "is not a folder (a symbolic link or a file)") {
		t.Errorf("got %v, want a refusal to follow the link", err)
	}
	if _, err := os.Lstat(filepath.Join(tr.root, "sub-moved", "b.bin")); err != nil {
		t.Errorf("got %v, want the folder behind the link untouched", err)
	}
}

func TestCleanTempFilesSkipsTheQuarantineInsideTheRoot(t *testing.T) {
	t.Parallel()
	tr := newTempTree(t)
	q := filepath.Join(tr.root, ".quarantine")
	c, err := NewCleanTempFiles([]string{tr.root}, q, fixedClock(testNow), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Run(t.Context(), Request{RunID: "r1", Params: map[string]string{"path": tr.root}}); err != nil {
		t.Fatal(err)
	}
	// Everything in the quarantine is old now; a second run must leave it.
	res, err := c.Run(t.Context(), Request{RunID: "r2", Params: map[string]string{"path": tr.root}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Summary, "moved 0 files") || res.Undo != nil {
		t.Errorf("got %q, undo %s, want nothing moved and no undo", res.Summary, res.Undo)
	}
}

func TestPruneQuarantine(t *testing.T) {
	t.Parallel()
	tr := newTempTree(t)
	clock := testNow
	c, err := NewCleanTempFiles([]string{tr.root}, tr.quarantine, func() time.Time { return clock }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Run(t.Context(), Request{RunID: "old-run", Params: map[string]string{"path": filepath.Join(tr.root, "sub")}}); err != nil {
		t.Fatal(err)
	}
	clock = testNow.Add(10 * 24 * time.Hour)
	if _, err := c.Run(t.Context(), Request{RunID: "new-run", Params: map[string]string{"path": tr.root}}); err != nil {
		t.Fatal(err)
	}
	// Not a run's folder: left alone.
	if err := os.Symlink(tr.outside, filepath.Join(tr.quarantine, "link")); err != nil {
		t.Fatal(err)
	}
	pruned, err := PruneQuarantine(tr.quarantine, testNow.Add(7*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pruned, []string{"old-run"}) {
		t.Errorf("got pruned %q, want [old-run]", pruned)
	}
	for name, want := range map[string]bool{"old-run": false, "new-run": true, "link": true} {
		_, err := os.Lstat(filepath.Join(tr.quarantine, name))
		if got := err == nil; got != want {
			t.Errorf("%s: got exists %v, want %v", name, got, want)
		}
	}
	if got := stateOf(t, filepath.Join(tr.outside, "secret")); got != tr.states["outside/secret"] {
		t.Errorf("got outside file %+v, want it untouched", got)
	}
	if pruned, err := PruneQuarantine(filepath.Join(tr.root, "none"), testNow); err != nil || pruned != nil {
		t.Errorf("missing folder: got %q, %v, want nothing", pruned, err)
	}
}

// posixACL encodes an access ACL as the system.posix_acl_access extended
// attribute holds it: owner rwx, user 1234 r-x, group r-x, mask r-x,
// others r-x (which agrees with mode 0755's group bits).
func posixACL() []byte {
	const undefined = 0xffffffff
	entries := []struct {
		tag, perm uint16
		id        uint32
	}{{0x01, 7, undefined}, {0x02, 5, 1234}, {0x04, 5, undefined}, {0x10, 5, undefined}, {0x20, 5, undefined}}
	b := []byte{2, 0, 0, 0} // version 2, little endian
	for _, e := range entries {
		b = append(b, byte(e.tag), byte(e.tag>>8), byte(e.perm), byte(e.perm>>8),
			byte(e.id), byte(e.id>>8), byte(e.id>>16), byte(e.id>>24))
	}
	return b
}

// exactState is everything a rollback must bring back of a file.
type exactState struct {
	Mode     uint32 // with setuid, setgid and sticky
	UID, GID uint32
	SHA256   string
	MTime    time.Time
	Xattrs   map[string]string
}

func exactStateOf(t *testing.T, path string) exactState {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	xs, err := fileXattrs(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	s := exactState{Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid, SHA256: stateOf(t, path).SHA256, MTime: timespecTime(st.Mtim), Xattrs: map[string]string{}}
	for k, v := range xs {
		s.Xattrs[k] = string(v)
	}
	return s
}

func TestCleanTempFilesRollbackAcrossFileSystemsIsExact(t *testing.T) {
	t.Parallel()
	root, qfs := mountFS(t, "tmpfs"), mountFS(t, "tmpfs")
	old := testNow.Add(-3 * time.Hour)
	files := map[string]struct {
		mode   uint32
		uid    int
		xattrs map[string][]byte
	}{
		"setuid":  {mode: 0o4755, uid: 0},
		"setgid":  {mode: 0o2750, uid: 4242},
		"sticky":  {mode: 0o1644, uid: 4242},
		"attrs":   {mode: 0o755, uid: 4243, xattrs: map[string][]byte{"user.note": []byte("keep me"), "system.posix_acl_access": posixACL()}},
		"suidacl": {mode: 0o4755, uid: 4244, xattrs: map[string][]byte{"user.x": {0, 1, 2}, "system.posix_acl_access": posixACL()}},
	}
	want := map[string]exactState{}
	for name, f := range files {
		p := filepath.Join(root, name)
		if err := os.WriteFile(p, []byte("#!/bin/true\n"+name), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, f.uid, 4000); err != nil {
			t.Fatal(err)
		}
		for k, v := range f.xattrs {
			if err := unix.Lsetxattr(p, k, v, 0); err != nil {
				t.Fatalf("setxattr %s %s: %v", p, k, err)
			}
		}
		if err := unix.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
		want[name] = exactStateOf(t, p)
	}
	if got := want["setuid"].Mode; got != 0o4755 {
		t.Fatalf("the test's setuid file has mode %04o, want 4755", got)
	}
	if _, ok := want["attrs"].Xattrs["system.posix_acl_access"]; !ok {
		t.Fatalf("the test's file has no ACL: %v", want["attrs"].Xattrs)
	}

	c, err := NewCleanTempFiles([]string{root}, filepath.Join(qfs, "quarantine"), fixedClock(testNow), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(t.Context(), Request{RunID: "run-x", Params: map[string]string{"path": root}})
	if err != nil {
		t.Fatalf("Run: %v (%s)", err, res.Output)
	}
	if !strings.HasPrefix(res.Summary, "moved 5 files") {
		t.Fatalf("got summary %q, output %q, want 5 files moved", res.Summary, res.Output)
	}
	for name, w := range want {
		if got := exactStateOf(t, filepath.Join(qfs, "quarantine", "run-x", "files", name)); !reflect.DeepEqual(got, w) {
			t.Errorf("%s in the quarantine: got %+v, want %+v", name, got, w)
		}
	}
	rb, err := c.Rollback(t.Context(), "run-x", res.Undo)
	if err != nil {
		t.Fatalf("Rollback: %v (%s)", err, rb.Summary)
	}
	for name, w := range want {
		if got := exactStateOf(t, filepath.Join(root, name)); !reflect.DeepEqual(got, w) {
			t.Errorf("%s after the rollback: got %+v, want %+v", name, got, w)
		}
	}
}

func TestCleanTempFilesLeavesInPlaceWhatTheQuarantineCannotHoldExactly(t *testing.T) {
	t.Parallel()
	root := mountFS(t, "tmpfs")
	qfs := mountFS(t, "ramfs") // holds no user.* extended attributes
	old := testNow.Add(-3 * time.Hour)
	writeAged(t, filepath.Join(root, "plain"), []byte("plain"), 0o644, old)
	writeAged(t, filepath.Join(root, "tagged"), []byte("tagged"), 0o644, old)
	if err := unix.Lsetxattr(filepath.Join(root, "tagged"), "user.note", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	writeAged(t, filepath.Join(root, "linked"), []byte("linked"), 0o644, old)
	if err := os.Link(filepath.Join(root, "linked"), filepath.Join(root, "sub-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(root, "linked"), old, old); err != nil {
		t.Fatal(err)
	}
	c, err := NewCleanTempFiles([]string{root}, filepath.Join(qfs, "quarantine"), fixedClock(testNow), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(t.Context(), Request{RunID: "run-y", Params: map[string]string{"path": root}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !strings.HasPrefix(res.Summary, "moved 1 files") {
		t.Errorf("got summary %q, want only the plain file moved", res.Summary)
	}
	for _, want := range []string{
		filepath.Join(root, "tagged") + " cannot be quarantined exactly",
		"user.note",
		filepath.Join(root, "linked") + " has 2 hard links",
	} {
		if !strings.Contains(res.Output, want) {
			t.Errorf("got output %q, want it to say %q", res.Output, want)
		}
	}
	for _, p := range []string{"tagged", "linked", "sub-link"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s: got %v, want it left in place", p, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(root, "plain")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("plain: got %v, want it moved", err)
	}
}

func TestCleanTempFilesRollbackReportsAFileThatDiffersFromItsManifest(t *testing.T) {
	t.Parallel()
	tr := newTempTree(t)
	c, err := NewCleanTempFiles([]string{tr.root}, tr.quarantine, fixedClock(testNow), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(t.Context(), Request{RunID: "run-1", Params: map[string]string{"path": tr.root}})
	if err != nil {
		t.Fatal(err)
	}
	// The manifest says a.txt had an extended attribute that the
	// quarantined file has not: its bytes are intact, so the restore goes
	// ahead, and the comparison finds what is missing.
	var m quarantineManifest
	b, err := os.ReadFile(filepath.Join(tr.quarantine, "run-1", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m.Files[0].Xattrs = map[string][]byte{"user.gone": []byte("1")}
	if err := writeManifest(filepath.Join(tr.quarantine, "run-1", "manifest.json"), m); err != nil {
		t.Fatal(err)
	}
	_, err = c.Rollback(t.Context(), "run-1", res.Undo)
	var diff *restoredDiffers
	if !errors.As(err, &diff) {
		t.Fatalf("got %v, want a restored file that differs reported", err)
	}
	if want := "extended attribute user.gone missing"; !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want it to say %q", err, want)
	}
	if _, err := os.Lstat(filepath.Join(tr.root, "a.txt")); err != nil {
		t.Errorf("got %v, want a.txt put back all the same", err)
	}
	tr.checkRestored(t, []string{"sub/b.bin", "sub/deep/c"})
}
