package collector

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// integrityFixture is a host root with /etc/passwd (and no /etc/missing), a
// state file outside it and a clock the test moves.
type integrityFixture struct {
	root  string
	state string
	now   *time.Time
}

// integrityStart is when the fixture's clock starts; a whole second, since the
// baseline timestamp is taken in seconds.
var integrityStart = time.Unix(1_790_000_000, 0)

const rootPasswd = "root:x:0:0:root:/root:/bin/bash\n"

func newIntegrityFixture(t *testing.T) integrityFixture {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	now := integrityStart
	f := integrityFixture{root: root, state: filepath.Join(t.TempDir(), "integrity.json"), now: &now}
	f.write(t, "/etc/passwd", rootPasswd)
	return f
}

// collector returns a fresh Integrity, as after an exporter restart.
func (f integrityFixture) collector() *Integrity {
	return &Integrity{
		Paths:     Paths{Proc: filepath.Join(f.root, "proc"), Root: f.root},
		Files:     []string{"/etc/passwd", "/etc/missing"},
		StateFile: f.state,
		Now:       func() time.Time { return *f.now },
	}
}

func (f integrityFixture) path(name string) string { return filepath.Join(f.root, name) }

// write replaces the content of a file in place, as an editor that keeps the
// inode would.
func (f integrityFixture) write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(f.path(name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// advance moves the clock, so that a timestamp taken by the clock tells which
// scrape took it.
func (f integrityFixture) advance(d time.Duration) { *f.now = f.now.Add(d) }

// ctime is the change time of a file as Integrity reports it.
func (f integrityFixture) ctime(t *testing.T, name string) float64 {
	t.Helper()
	fi, err := os.Lstat(f.path(name))
	if err != nil {
		t.Fatal(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Skip("no syscall.Stat_t on this platform")
	}
	return float64(st.Ctim.Sec*1e9+st.Ctim.Nsec) / 1e9
}

// fileWant is what the four families say about one watched file.
type fileWant struct {
	exists     bool
	changes    float64
	baseline   float64
	lastChange float64 // 0: the series is absent
}

func wantFiles(files map[string]fileWant) map[string]float64 {
	want := map[string]float64{}
	for path, f := range files {
		l := `{path="` + path + `"}`
		want["deus_file_exists"+l] = b2f(f.exists)
		want["deus_file_changes_total"+l] = f.changes
		want["deus_file_baseline_timestamp_seconds"+l] = f.baseline
		if f.lastChange != 0 {
			want["deus_file_last_change_timestamp_seconds"+l] = f.lastChange
		}
	}
	return want
}

func checkFiles(t *testing.T, c *Integrity, files map[string]fileWant) {
	t.Helper()
	if diff := cmp.Diff(wantFiles(files), mustUpdate(t, c)); diff != "" {
		t.Errorf("samples mismatch (-want +got):\n%s", diff)
	}
}

func TestIntegrity(t *testing.T) {
	t.Parallel()
	base := float64(integrityStart.Unix())
	tests := []struct {
		name string
		run  func(t *testing.T, f integrityFixture)
	}{
		{
			name: "the first update takes a baseline of present and missing files",
			run: func(t *testing.T, f integrityFixture) {
				c := f.collector()
				want := map[string]fileWant{
					"/etc/passwd":  {exists: true, baseline: base},
					"/etc/missing": {exists: false, baseline: base},
				}
				checkFiles(t, c, want)
				f.advance(time.Minute)
				checkFiles(t, c, want)
			},
		},
		{
			name: "a content change is counted once and dated by the file's ctime",
			run: func(t *testing.T, f integrityFixture) {
				c := f.collector()
				mustUpdate(t, c)
				f.advance(time.Minute)
				f.write(t, "/etc/passwd", rootPasswd+"mallory:x:0:0::/root:/bin/sh\n")
				want := map[string]fileWant{
					"/etc/passwd":  {exists: true, changes: 1, baseline: base, lastChange: f.ctime(t, "/etc/passwd")},
					"/etc/missing": {exists: false, baseline: base},
				}
				checkFiles(t, c, want)
				f.advance(time.Minute)
				checkFiles(t, c, want)
			},
		},
		{
			name: "a mode change is counted",
			run: func(t *testing.T, f integrityFixture) {
				c := f.collector()
				mustUpdate(t, c)
				if err := os.Chmod(f.path("/etc/passwd"), 0o666); err != nil {
					t.Fatal(err)
				}
				checkFiles(t, c, map[string]fileWant{
					"/etc/passwd":  {exists: true, changes: 1, baseline: base, lastChange: f.ctime(t, "/etc/passwd")},
					"/etc/missing": {exists: false, baseline: base},
				})
			},
		},
		{
			name: "an ownership change is counted",
			run: func(t *testing.T, f integrityFixture) {
				if os.Geteuid() != 0 {
					t.Skip("chown needs root")
				}
				c := f.collector()
				mustUpdate(t, c)
				if err := os.Lchown(f.path("/etc/passwd"), 1, 1); err != nil {
					t.Fatal(err)
				}
				checkFiles(t, c, map[string]fileWant{
					"/etc/passwd":  {exists: true, changes: 1, baseline: base, lastChange: f.ctime(t, "/etc/passwd")},
					"/etc/missing": {exists: false, baseline: base},
				})
			},
		},
		{
			name: "a touch without a content change is not counted, and a later edit is",
			run: func(t *testing.T, f integrityFixture) {
				c := f.collector()
				mustUpdate(t, c)
				when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
				if err := os.Chtimes(f.path("/etc/passwd"), when, when); err != nil {
					t.Fatal(err)
				}
				checkFiles(t, c, map[string]fileWant{
					"/etc/passwd":  {exists: true, baseline: base},
					"/etc/missing": {exists: false, baseline: base},
				})
				f.write(t, "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
				checkFiles(t, c, map[string]fileWant{
					"/etc/passwd":  {exists: true, changes: 1, baseline: base, lastChange: f.ctime(t, "/etc/passwd")},
					"/etc/missing": {exists: false, baseline: base},
				})
			},
		},
		{
			name: "the baseline and the count survive a restart",
			run: func(t *testing.T, f integrityFixture) {
				c := f.collector()
				mustUpdate(t, c)
				f.write(t, "/etc/passwd", rootPasswd+"alice:x:1000:1000::/home/alice:/bin/bash\n")
				mustUpdate(t, c)

				// Changed while the exporter is down: the new process
				// counts it on its first scrape, once, on top of the first
				// change, and keeps the first baseline's timestamp.
				f.write(t, "/etc/passwd", rootPasswd+"mallory:x:0:0::/root:/bin/sh\n")
				f.advance(time.Hour)
				restarted := f.collector()
				want := map[string]fileWant{
					"/etc/passwd":  {exists: true, changes: 2, baseline: base, lastChange: f.ctime(t, "/etc/passwd")},
					"/etc/missing": {exists: false, baseline: base},
				}
				checkFiles(t, restarted, want)
				checkFiles(t, restarted, want)
				checkFiles(t, f.collector(), want)
			},
		},
		{
			name: "a file that appears counts a change",
			run: func(t *testing.T, f integrityFixture) {
				c := f.collector()
				mustUpdate(t, c)
				f.write(t, "/etc/missing", "now here\n")
				want := map[string]fileWant{
					"/etc/passwd":  {exists: true, baseline: base},
					"/etc/missing": {exists: true, changes: 1, baseline: base, lastChange: f.ctime(t, "/etc/missing")},
				}
				checkFiles(t, c, want)
				checkFiles(t, c, want)
			},
		},
		{
			name: "a file that disappears counts a change dated by the clock",
			run: func(t *testing.T, f integrityFixture) {
				c := f.collector()
				mustUpdate(t, c)
				if err := os.Remove(f.path("/etc/passwd")); err != nil {
					t.Fatal(err)
				}
				f.advance(90*time.Second + 500*time.Millisecond)
				gone := float64(f.now.UnixNano()) / 1e9
				want := map[string]fileWant{
					"/etc/passwd":  {exists: false, changes: 1, baseline: base, lastChange: gone},
					"/etc/missing": {exists: false, baseline: base},
				}
				checkFiles(t, c, want)
				f.advance(time.Minute)
				checkFiles(t, c, want)
			},
		},
		{
			name: "a file larger than MaxSize counts a change when its stat moves",
			run: func(t *testing.T, f integrityFixture) {
				c := f.collector()
				c.MaxSize = int64(len(rootPasswd)) - 1
				mustUpdate(t, c)
				f.write(t, "/etc/passwd", rootPasswd+"mallory:x:0:0::/root:/bin/sh\n")
				want := map[string]fileWant{
					"/etc/passwd":  {exists: true, changes: 1, baseline: base, lastChange: f.ctime(t, "/etc/passwd")},
					"/etc/missing": {exists: false, baseline: base},
				}
				checkFiles(t, c, want)
				checkFiles(t, c, want)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newIntegrityFixture(t))
		})
	}
}
