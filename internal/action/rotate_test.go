package action

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func logContent() []byte {
	var b bytes.Buffer
	for i := range 5000 {
		b.WriteString("2026-03-01T12:00:00Z level=info msg=\"request served\" n=")
		b.WriteString(strings.Repeat("x", i%37))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func gunzipFile(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRotateLogAndRollback(t *testing.T) {
	t.Parallel()
	content := logContent()
	mtime := testNow.Add(-time.Hour).Add(42 * time.Nanosecond)
	tests := []struct {
		name       string
		backupDir  bool
		writeSince string
		want       func(content []byte) []byte
		wantMTime  bool
	}{
		{name: "with nothing written since, the log is restored exactly", want: func(c []byte) []byte { return c }, wantMTime: true},
		{name: "what was written since stays after the restored bytes", writeSince: "after rotation\n", want: func(c []byte) []byte { return append(c, "after rotation\n"...) }},
		{name: "a backup folder works the same", backupDir: true, want: func(c []byte) []byte { return c }, wantMTime: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			log := filepath.Join(root, "app", "app.log")
			writeAged(t, log, content, 0o640, mtime)
			before := stateOf(t, log)
			backupDir := ""
			wantBackup := log + ".run-1.gz"
			if tt.backupDir {
				backupDir = filepath.Join(t.TempDir(), "backups")
				wantBackup = filepath.Join(backupDir, "app.log.run-1.gz")
			}
			r, err := NewRotateLog([]string{root}, backupDir, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.Run(t.Context(), Request{RunID: "run-1", Params: map[string]string{"path": log}})
			if err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(log); err != nil || fi.Size() != 0 {
				t.Fatalf("got %v, %v, want the log truncated to 0", fi, err)
			}
			if got := gunzipFile(t, wantBackup); !bytes.Equal(got, content) {
				t.Errorf("got a backup of %d bytes, want the log's %d", len(got), len(content))
			}
			if fi, err := os.Stat(wantBackup); err != nil || fi.Size() >= int64(len(content))/2 {
				t.Errorf("got backup %v, %v, want it compressed", fi, err)
			}
			var u rotateUndo
			if err := json.Unmarshal(res.Undo, &u); err != nil || u.Backup != wantBackup || u.Size != int64(len(content)) {
				t.Errorf("got undo %s, %v, want backup %s and size %d", res.Undo, err, wantBackup, len(content))
			}
			if tt.writeSince != "" {
				f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteString(tt.writeSince); err != nil {
					t.Fatal(err)
				}
				f.Close()
			}

			if _, err := r.Rollback(t.Context(), "run-1", res.Undo); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(log)
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want(content); !bytes.Equal(got, want) {
				t.Errorf("got %d bytes after rollback, want %d", len(got), len(want))
			}
			after := stateOf(t, log)
			if after.Mode != before.Mode {
				t.Errorf("got mode %v, want %v", after.Mode, before.Mode)
			}
			if tt.wantMTime && !after.MTime.Equal(before.MTime) {
				t.Errorf("got mtime %v, want %v", after.MTime, before.MTime)
			}
			if _, err := os.Lstat(wantBackup); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("got %v, want the backup removed", err)
			}
		})
	}
}

func TestRotateLogEmptyFile(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	log := filepath.Join(root, "empty.log")
	writeAged(t, log, nil, 0o600, testNow)
	r, err := NewRotateLog([]string{root}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(t.Context(), Request{RunID: "r1", Params: map[string]string{"path": log}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Rollback(t.Context(), "r1", res.Undo); err != nil {
		t.Fatal(err)
	}
	if got := stateOf(t, log); got.MTime != testNow {
		t.Errorf("got mtime %v, want %v", got.MTime, testNow)
	}
}

func TestRotateLogDryRunAndRefusals(t *testing.T) {
	t.Parallel()
	root, outside := t.TempDir(), t.TempDir()
	log := filepath.Join(root, "app.log")
	writeAged(t, log, []byte("line\n"), 0o644, testNow)
	writeAged(t, filepath.Join(outside, "secret"), []byte("do not touch\n"), 0o600, testNow)
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "escape.log")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(log, filepath.Join(root, "inside.log")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "fifo.log"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "dir.log"), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := NewRotateLog([]string{root}, "", nil)
	if err != nil {
		t.Fatal(err)
	}

	res, err := r.Run(t.Context(), Request{DryRun: true, Params: map[string]string{"path": log}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "would copy 5 bytes of " + log + " to a gzip'd backup and truncate it"; res.Summary != want {
		t.Errorf("got summary %q, want %q", res.Summary, want)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 5 {
		t.Errorf("got %d entries after the dry run, want 5 (no backup)", len(entries))
	}

	tests := []struct {
		name string
		path string
	}{
		{name: "a symbolic link out of the root is refused", path: filepath.Join(root, "escape.log")},
		{name: "a symbolic link within the root is not followed", path: filepath.Join(root, "inside.log")},
		{name: "a FIFO is refused without blocking", path: filepath.Join(root, "fifo.log")},
		{name: "a folder is refused", path: filepath.Join(root, "dir.log")},
		{name: "the root itself is refused", path: root},
		{name: "a file out of the root is refused", path: filepath.Join(outside, "secret")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Run(t.Context(), Request{RunID: "r1", Params: map[string]string{"path": tt.path}})
			if !errors.Is(err, ErrRefused) {
				t.Errorf("got %v, want a refusal", err)
			}
		})
	}
	if b, err := os.ReadFile(log); err != nil || string(b) != "line\n" {
		t.Errorf("got %q, %v, want the log untouched", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "secret")); err != nil || string(b) != "do not touch\n" {
		t.Errorf("got %q, %v, want the outside file untouched", b, err)
	}
}

func TestRotateLogRollbackRefusals(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	log := filepath.Join(root, "app.log")
	writeAged(t, log, logContent(), 0o644, testNow)
	r, err := NewRotateLog([]string{root}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(t.Context(), Request{RunID: "r1", Params: map[string]string{"path": log}})
	if err != nil {
		t.Fatal(err)
	}
	var u rotateUndo
	if err := json.Unmarshal(res.Undo, &u); err != nil {
		t.Fatal(err)
	}
	other := u
	other.Backup = "/etc/shadow"
	otherUndo, _ := json.Marshal(other)
	for _, tc := range []struct {
		name  string
		runID string
		undo  json.RawMessage
	}{
		{name: "a backup elsewhere is refused", runID: "r1", undo: otherUndo},
		{name: "another run's undo is refused", runID: "r2", undo: res.Undo},
	} {
		if _, err := r.Rollback(t.Context(), tc.runID, tc.undo); !errors.Is(err, ErrRefused) {
			t.Errorf("%s: got %v, want a refusal", tc.name, err)
		}
	}

	// A corrupt backup changes nothing.
	if err := os.WriteFile(u.Backup, []byte("not gzip"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log, []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Rollback(t.Context(), "r1", res.Undo); err == nil || !strings.Contains(err.Error(), "does not hold what was copied") {
		t.Errorf("got %v, want the bad backup reported", err)
	}
	if b, _ := os.ReadFile(log); string(b) != "new\n" {
		t.Errorf("got log %q, want it untouched", b)
	}
}
