package action

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/deus-ex-machina/deus/internal/atomicfile"
)

// maxWalkDepth bounds how deep clean_temp_files descends.
const maxWalkDepth = 64

// CleanTempFiles is clean_temp_files: move the regular files below a
// folder whose modification time is older than a bound into a quarantine,
// <quarantine>/<run id>/files/<path relative to the folder>, with a
// manifest (manifest.json) of each file's original path, size, SHA-256,
// mode (setuid, setgid and sticky bits included), owner, times and
// extended attributes (ACLs included). Symbolic links, sockets, FIFOs and
// devices are left alone, and no symbolic link is followed: every folder
// is opened relative to its parent with O_NOFOLLOW. Files are renamed when
// the quarantine is on the same file system, copied (fsync'd), then removed
// otherwise. A file that could not be put back exactly is left in place
// and reported: one whose extended attributes the quarantine's file system
// cannot hold, or, across file systems, one with more than one hard link.
//
// Rollback puts every file back byte for byte, with its owner, then its
// mode, its times and its extended attributes, and compares each restored
// file with its manifest entry: a difference is a rollback error. A file
// created since at its path stays in the quarantine, is reported, and a
// later Rollback tries it again. PruneQuarantine deletes quarantines past
// their retention.
type CleanTempFiles struct {
	roots      []string
	quarantine string
	now        func() time.Time
	logger     *slog.Logger
	// rename is renameNoReplace; tests make it fail with EXDEV.
	rename func(olddir int, oldname string, newdir int, newname string) error
}

// NewCleanTempFiles returns clean_temp_files, which may clean below roots
// and keeps what it moves in quarantineDir (created 0700 when needed). A
// nil now means time.Now.
func NewCleanTempFiles(roots []string, quarantineDir string, now func() time.Time, logger *slog.Logger) (*CleanTempFiles, error) {
	if len(roots) > 0 && !filepath.IsAbs(quarantineDir) {
		return nil, fmt.Errorf("clean_temp_files: quarantine dir %q is not an absolute path", quarantineDir)
	}
	c := &CleanTempFiles{quarantine: filepath.Clean(quarantineDir), now: now, logger: logger, rename: renameNoReplace}
	for _, r := range roots {
		if !filepath.IsAbs(r) {
			return nil, fmt.Errorf("clean_temp_files: root %q is not an absolute path", r)
		}
		c.roots = append(c.roots, filepath.Clean(r))
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Spec implements Action.
func (c *CleanTempFiles) Spec() Spec {
	return Spec{
		Name:       "clean_temp_files",
		Doc:        "Move regular files under path not modified for older_than into a quarantine, from which a rollback restores them.",
		Tier:       TierLow,
		Timeout:    5 * time.Minute,
		Reversible: true,
		Params: []Param{
			{Name: "path", Type: TypePath, Roots: c.roots, Required: true, Doc: "Folder to clean."},
			{Name: "older_than", Type: TypeDuration, Default: "1h", Min: Bound(60), Doc: "Move files whose modification time is older than this."},
		},
	}
}

// quarantineManifest is manifest.json.
type quarantineManifest struct {
	// Version is 2 when each file's extended attributes are recorded
	// (Xattrs, empty for none); before, they were not.
	Version   int               `json:"version,omitempty"`
	RunID     string            `json:"run_id"`
	Root      string            `json:"root"`
	Path      string            `json:"path"`
	OlderThan string            `json:"older_than"`
	Created   time.Time         `json:"created"`
	Files     []quarantinedFile `json:"files"`
}

// quarantinedFile is one moved file.
type quarantinedFile struct {
	// Path is where it was; Rel is Path relative to the manifest's Path,
	// and where it is below files/.
	Path   string    `json:"path"`
	Rel    string    `json:"rel"`
	Size   int64     `json:"size"`
	SHA256 string    `json:"sha256"`
	Mode   uint32    `json:"mode"`
	UID    uint32    `json:"uid"`
	GID    uint32    `json:"gid"`
	MTime  time.Time `json:"mtime"`
	ATime  time.Time `json:"atime"`
	// Xattrs are its extended attributes by name, ACLs included.
	Xattrs map[string][]byte `json:"xattrs,omitempty"`
}

// manifestVersion is the version of the manifests Run writes.
const manifestVersion = 2

func (f quarantinedFile) meta() fileMeta {
	return fileMeta{mode: f.Mode, uid: f.UID, gid: f.GID, atime: f.ATime, mtime: f.MTime, xattrs: f.Xattrs}
}

// cleanUndo is clean_temp_files' Undo.
type cleanUndo struct {
	Manifest string `json:"manifest"`
}

// cleanRun is the state of one run.
type cleanRun struct {
	dryRun   bool
	cutoff   time.Time
	base     string // the cleaned folder
	runDir   string // <quarantine>/<run id>
	files    *os.File
	skipDev  uint64 // the quarantine folder, never cleaned
	skipIno  uint64
	moved    []quarantinedFile
	bytes    int64
	skipped  int
	problems []error
}

// Run implements Action.
func (c *CleanTempFiles) Run(ctx context.Context, req Request) (Result, error) {
	params, err := validate(c.Spec(), req)
	if err != nil {
		return Result{}, err
	}
	path := params["path"]
	res := Result{Target: path}
	root, ok := rootOf(path, c.roots)
	if !ok {
		return res, refusef("clean_temp_files: %s is not under a root", path)
	}
	olderThan, err := ParseDuration(params["older_than"])
	if err != nil {
		return res, refusef("clean_temp_files: older_than: %v", err)
	}
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return res, refusef("clean_temp_files: %v", err)
	}
	dir, err := openDirBeneath(root, rel)
	if err != nil {
		return res, refusef("clean_temp_files: %v", err)
	}
	defer dir.Close()

	run := &cleanRun{dryRun: req.DryRun, cutoff: c.now().Add(-olderThan), base: path}
	var qst unix.Stat_t
	if err := unix.Stat(c.quarantine, &qst); err == nil {
		run.skipDev, run.skipIno = qst.Dev, qst.Ino
	}
	if !req.DryRun {
		run.runDir = filepath.Join(c.quarantine, req.RunID)
		if _, err := os.Lstat(run.runDir); err == nil {
			return res, refusef("clean_temp_files: quarantine %s already exists", run.runDir)
		}
	}
	walkErr := c.cleanDir(ctx, run, dir, "", 0)
	if run.files != nil {
		run.files.Close()
	}

	if req.DryRun {
		res.Summary = fmt.Sprintf("would move %d files (%d bytes) not modified for %s from %s to a quarantine", len(run.moved), run.bytes, params["older_than"], path)
		var b strings.Builder
		for i, f := range run.moved {
			if i == 100 {
				fmt.Fprintf(&b, "... and %d more\n", len(run.moved)-i)
				break
			}
			b.WriteString(f.Path + "\n")
		}
		res.Output = b.String()
		return res, walkErr
	}
	if len(run.moved) > 0 {
		m := quarantineManifest{Version: manifestVersion, RunID: req.RunID, Root: root, Path: path, OlderThan: params["older_than"], Created: c.now().UTC(), Files: run.moved}
		manifest := filepath.Join(run.runDir, "manifest.json")
		if err := writeManifest(manifest, m); err != nil {
			// The files are in the quarantine without a manifest; say
			// where.
			return res, final(fmt.Errorf("clean_temp_files: moved %d files to %s but: %w", len(run.moved), run.runDir, err))
		}
		res.Undo, _ = json.Marshal(cleanUndo{Manifest: manifest})
	}
	res.Summary = fmt.Sprintf("moved %d files (%d bytes) not modified for %s from %s to %s", len(run.moved), run.bytes, params["older_than"], path, run.runDir)
	if len(run.problems) > 0 {
		res.Output = errors.Join(run.problems...).Error()
	}
	c.logger.Info("temp_files_quarantined", "path", path, "files", len(run.moved), "bytes", run.bytes, "skipped", run.skipped)
	if walkErr != nil {
		if len(run.moved) == 0 {
			return res, retryable(fmt.Errorf("clean_temp_files: %w", walkErr))
		}
		return res, final(fmt.Errorf("clean_temp_files: %w", walkErr))
	}
	return res, nil
}

// cleanDir moves the old regular files below dir, whose path relative to
// the cleaned folder is rel.
func (c *CleanTempFiles) cleanDir(ctx context.Context, run *cleanRun, dir *os.File, rel string, depth int) error {
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir.Name(), err)
	}
	slices.Sort(names)
	var dst *os.File // the matching quarantine folder, made when needed
	defer func() {
		if dst != nil {
			if !run.dryRun {
				_ = dst.Sync()
				_ = dir.Sync()
			}
			dst.Close()
		}
	}()
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstatat(int(dir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // gone since the listing
		}
		fileRel := filepath.Join(rel, name)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if st.Dev == run.skipDev && st.Ino == run.skipIno || depth >= maxWalkDepth {
				run.skipped++
				continue
			}
			sub, err := openDirAt(dir, name)
			if err != nil {
				run.problems = append(run.problems, err)
				continue
			}
			err = c.cleanDir(ctx, run, sub, fileRel, depth+1)
			sub.Close()
			if err != nil {
				return err
			}
		case unix.S_IFREG:
			if !timespecTime(st.Mtim).Before(run.cutoff) {
				continue
			}
			if run.dryRun {
				run.moved = append(run.moved, quarantinedFile{Path: filepath.Join(run.base, fileRel), Size: st.Size})
				run.bytes += st.Size
				continue
			}
			if dst == nil {
				if dst, err = c.quarantineDir(run, rel); err != nil {
					return err
				}
			}
			f, err := c.moveFile(dir, name, dst, st)
			if err != nil {
				run.problems = append(run.problems, err)
				continue
			}
			f.Path, f.Rel = filepath.Join(run.base, fileRel), fileRel
			run.moved = append(run.moved, f)
			run.bytes += f.Size
		default:
			run.skipped++ // symbolic links, sockets, FIFOs, devices
		}
	}
	return nil
}

// quarantineDir opens (creating) <run dir>/files/<rel>.
func (c *CleanTempFiles) quarantineDir(run *cleanRun, rel string) (*os.File, error) {
	if run.files == nil {
		if err := os.MkdirAll(c.quarantine, 0o700); err != nil {
			return nil, fmt.Errorf("quarantine: %w", err)
		}
		q, err := openDirBeneath(c.quarantine, "")
		if err != nil {
			return nil, fmt.Errorf("quarantine: %w", err)
		}
		defer q.Close()
		if run.files, err = mkdirBeneath(q, filepath.Join(filepath.Base(run.runDir), "files"), 0o700); err != nil {
			return nil, fmt.Errorf("quarantine: %w", err)
		}
	}
	return mkdirBeneath(run.files, rel, 0o700)
}

// moveFile moves dir/name, whose lstat was pre, into dst and describes it.
func (c *CleanTempFiles) moveFile(dir *os.File, name string, dst *os.File, pre unix.Stat_t) (quarantinedFile, error) {
	f, st, err := openNoFollow(dir, name)
	if err != nil {
		return quarantinedFile{}, err
	}
	defer f.Close()
	if st.Dev != pre.Dev || st.Ino != pre.Ino {
		return quarantinedFile{}, fmt.Errorf("%s changed while being moved", f.Name())
	}
	q := quarantinedFile{
		Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid,
		MTime: timespecTime(st.Mtim), ATime: timespecTime(st.Atim),
	}
	if q.Xattrs, err = fileXattrs(int(f.Fd())); err != nil {
		return q, fmt.Errorf("%s: %w; left in place", f.Name(), err)
	}
	err = c.rename(int(dir.Fd()), name, int(dst.Fd()), name)
	switch {
	case err == nil:
		// Hash what was moved: the open file is the moved one.
		if q.SHA256, q.Size, err = hashFile(f); err != nil {
			return q, err
		}
	case errors.Is(err, unix.EXDEV):
		if st.Nlink > 1 {
			// A copy would be a new file; the other links would keep
			// the old one, and a rollback could not join them again.
			return q, fmt.Errorf("%s has %d hard links, which a copy to the quarantine on another file system would break; left in place", f.Name(), st.Nlink)
		}
		// The copy takes every attribute or fails (and is removed): what
		// the quarantine's file system cannot hold is not quarantined.
		if q.SHA256, q.Size, err = copyFileAt(f, dst, name, q.meta()); err != nil {
			return q, fmt.Errorf("%s cannot be quarantined exactly: %w; left in place", f.Name(), err)
		}
		// Remove the original only if it is still what was copied.
		var now unix.Stat_t
		if err := unix.Fstatat(int(dir.Fd()), name, &now, unix.AT_SYMLINK_NOFOLLOW); err != nil || now.Ino != st.Ino || now.Size != q.Size || now.Mtim != st.Mtim {
			_ = unix.Unlinkat(int(dst.Fd()), name, 0)
			return q, fmt.Errorf("%s changed while being copied; left in place", f.Name())
		}
		if err := unix.Unlinkat(int(dir.Fd()), name, 0); err != nil {
			_ = unix.Unlinkat(int(dst.Fd()), name, 0)
			return q, fmt.Errorf("remove %s: %w", f.Name(), err)
		}
	default:
		return q, fmt.Errorf("move %s: %w", f.Name(), err)
	}
	return q, nil
}

func writeManifest(path string, m quarantineManifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o600)
}

// Rollback implements Reverser.
func (c *CleanTempFiles) Rollback(_ context.Context, runID string, undo json.RawMessage) (Result, error) {
	if err := checkRunID(runID); err != nil {
		return Result{}, err
	}
	var u cleanUndo
	if err := json.Unmarshal(undo, &u); err != nil {
		return Result{}, &Error{Err: fmt.Errorf("clean_temp_files: rollback: decode undo: %w", err)}
	}
	runDir := filepath.Join(c.quarantine, runID)
	manifest := filepath.Join(runDir, "manifest.json")
	if u.Manifest != manifest {
		return Result{}, refusef("clean_temp_files: rollback: manifest %q is not %q", u.Manifest, manifest)
	}
	b, err := os.ReadFile(manifest)
	if err != nil {
		return Result{}, &Error{Err: fmt.Errorf("clean_temp_files: rollback: %w", err)}
	}
	var m quarantineManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Result{}, &Error{Err: fmt.Errorf("clean_temp_files: rollback: %s: %w", manifest, err)}
	}
	root, ok := rootOf(m.Path, c.roots)
	if m.RunID != runID || !ok || root != m.Root {
		return Result{}, refusef("clean_temp_files: rollback: manifest %s is for run %q under %s, not one of this run under the roots", manifest, m.RunID, m.Root)
	}
	res := Result{Target: m.Path}
	files, err := openDirBeneath(c.quarantine, filepath.Join(runID, "files"))
	if err != nil {
		return res, &Error{Err: fmt.Errorf("clean_temp_files: rollback: %w", err)}
	}
	defer files.Close()

	var left []quarantinedFile
	var problems []error
	restored := 0
	for _, f := range m.Files {
		err := c.restoreFile(root, m.Path, files, f, m.Version >= manifestVersion)
		var diff *restoredDiffers
		if err != nil && !errors.As(err, &diff) {
			left = append(left, f)
			problems = append(problems, err)
			continue
		}
		// A file that differs from its manifest is back in place all
		// the same: reported, not retried.
		if err != nil {
			problems = append(problems, err)
		}
		restored++
	}
	if len(left) == 0 && len(problems) == 0 {
		if err := os.RemoveAll(runDir); err != nil {
			return res, final(fmt.Errorf("clean_temp_files: rollback: restored %d files but: %w", restored, err))
		}
		res.Summary = fmt.Sprintf("restored %d files to %s", restored, m.Path)
		return res, nil
	}
	m.Files = left
	if err := writeManifest(manifest, m); err != nil {
		problems = append(problems, err)
	}
	res.Summary = fmt.Sprintf("restored %d files to %s; %d left in %s", restored, m.Path, len(left), runDir)
	if len(left) == 0 {
		res.Summary = fmt.Sprintf("restored %d files to %s, not all exactly", restored, m.Path)
	}
	return res, final(fmt.Errorf("clean_temp_files: rollback: %w", errors.Join(problems...)))
}

// restoredDiffers says a file was put back but differs from its manifest
// entry.
type restoredDiffers struct {
	path  string
	diffs []string
}

func (e *restoredDiffers) Error() string {
	return fmt.Sprintf("%s: restored, but not as it was: %s", e.path, strings.Join(e.diffs, "; "))
}

// restoreFile moves one file back from the quarantine, and compares what
// it put back with f (its extended attributes too when withXattrs: the
// manifest recorded them).
func (c *CleanTempFiles) restoreFile(root, base string, files *os.File, f quarantinedFile, withXattrs bool) error {
	if !filepath.IsLocal(f.Rel) || filepath.Join(base, f.Rel) != f.Path {
		return fmt.Errorf("%s: manifest entry %q is not below %s", f.Path, f.Rel, base)
	}
	if _, err := CheckPath(f.Path, c.roots); err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	qdir, err := openDirAt(files, filepath.Dir(f.Rel))
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	defer qdir.Close()
	name := filepath.Base(f.Rel)
	src, _, err := openNoFollow(qdir, name)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	defer src.Close()
	if sum, size, err := hashFile(src); err != nil || sum != f.SHA256 || size != f.Size {
		return fmt.Errorf("%s: the quarantined copy changed (sha256 %s, %d bytes; want %s, %d bytes)", f.Path, sum, size, f.SHA256, f.Size)
	}
	relToRoot, err := filepath.Rel(root, filepath.Dir(f.Path))
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	rootDir, err := openDirBeneath(root, "")
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	defer rootDir.Close()
	// Folders are never removed by the clean; if one was since, make it
	// again, private.
	tdir, err := mkdirBeneath(rootDir, relToRoot, 0o700)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	defer tdir.Close()
	var st unix.Stat_t
	if err := unix.Fstatat(int(tdir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		return fmt.Errorf("%s: recreated since the clean; not overwritten", f.Path)
	}
	err = c.rename(int(qdir.Fd()), name, int(tdir.Fd()), name)
	switch {
	case errors.Is(err, unix.EEXIST):
		return fmt.Errorf("%s: recreated since the clean; not overwritten", f.Path)
	case errors.Is(err, unix.EXDEV):
		meta := f.meta()
		if !withXattrs {
			// An older manifest did not record them: the quarantined
			// copy has what it was given.
			if meta.xattrs, err = fileXattrs(int(src.Fd())); err != nil {
				return fmt.Errorf("%s: %w", f.Path, err)
			}
		}
		if _, _, err := copyFileAt(src, tdir, name, meta); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s: recreated since the clean; not overwritten", f.Path)
			}
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		_ = unix.Unlinkat(int(qdir.Fd()), name, 0)
	case err != nil:
		return fmt.Errorf("restore %s: %w", f.Path, err)
	default:
		// The open file is the restored one: set what a rename may not
		// keep (the owner when restored by another user) and the times.
		// The owner first: chown clears the setuid and setgid bits, which
		// the mode then sets. An owner that cannot be set is found by the
		// comparison below.
		fd := int(src.Fd())
		if err := unix.Fchown(fd, int(f.UID), int(f.GID)); err != nil && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		if err := unix.Fchmod(fd, f.Mode); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		ts := []unix.Timespec{unix.NsecToTimespec(f.ATime.UnixNano()), unix.NsecToTimespec(f.MTime.UnixNano())}
		if err := unix.UtimesNanoAt(int(tdir.Fd()), name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
	}
	if err := tdir.Sync(); err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	return compareRestored(tdir, name, f, withXattrs)
}

// compareRestored compares the file put back at dir/name with its
// manifest entry: mode (setuid, setgid and sticky bits included), owner,
// size, SHA-256 and, when withXattrs, the extended attributes.
func compareRestored(dir *os.File, name string, f quarantinedFile, withXattrs bool) error {
	got, st, err := openNoFollow(dir, name)
	if err != nil {
		return &restoredDiffers{path: f.Path, diffs: []string{err.Error()}}
	}
	defer got.Close()
	var diffs []string
	if m := st.Mode & 0o7777; m != f.Mode {
		diffs = append(diffs, fmt.Sprintf("mode %04o, want %04o", m, f.Mode))
	}
	if st.Uid != f.UID || st.Gid != f.GID {
		diffs = append(diffs, fmt.Sprintf("owner %d:%d, want %d:%d", st.Uid, st.Gid, f.UID, f.GID))
	}
	sum, size, err := hashFile(got)
	switch {
	case err != nil:
		diffs = append(diffs, err.Error())
	case size != f.Size || f.SHA256 != "" && sum != f.SHA256:
		diffs = append(diffs, fmt.Sprintf("sha256 %s, %d bytes, want %s, %d bytes", sum, size, f.SHA256, f.Size))
	}
	if withXattrs {
		xs, err := fileXattrs(int(got.Fd()))
		if err != nil {
			diffs = append(diffs, err.Error())
		}
		for _, k := range xattrNames(xs, f.Xattrs) {
			v, ok := xs[k]
			w, want := f.Xattrs[k]
			switch {
			case !ok:
				diffs = append(diffs, "extended attribute "+k+" missing")
			case !want:
				diffs = append(diffs, "extended attribute "+k+" not in the manifest")
			case !bytes.Equal(v, w):
				diffs = append(diffs, "extended attribute "+k+" differs")
			}
		}
	}
	if len(diffs) > 0 {
		return &restoredDiffers{path: f.Path, diffs: diffs}
	}
	return nil
}

// xattrNames returns the names in a or b, sorted.
func xattrNames(a, b map[string][]byte) []string {
	var names []string
	for k := range a {
		names = append(names, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names
}

// PruneQuarantine deletes the quarantines in dir (one folder per run) made
// before the given time, by the time in their manifest or, without one,
// their folder's modification time. It returns the run ids it deleted.
func PruneQuarantine(dir string, before time.Time) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("prune quarantine: %w", err)
	}
	var pruned []string
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || checkRunID(e.Name()) != nil {
			continue // not a run's folder (and never a symbolic link)
		}
		p := filepath.Join(dir, e.Name())
		created := time.Time{}
		if b, err := os.ReadFile(filepath.Join(p, "manifest.json")); err == nil {
			var m quarantineManifest
			if json.Unmarshal(b, &m) == nil {
				created = m.Created
			}
		}
		if created.IsZero() {
			fi, err := e.Info()
			if err != nil {
				continue
			}
			created = fi.ModTime()
		}
		if !created.Before(before) {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("prune quarantine: %w", err))
			continue
		}
		pruned = append(pruned, e.Name())
	}
	return pruned, errors.Join(errs...)
}
