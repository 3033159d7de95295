package action

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// RotateLog is rotate_log: copy a log file to a gzip'd backup, fsync it,
// then truncate the log to zero in place (logrotate's copytruncate), so the
// program writing it keeps its file open and need not be told. The backup
// is <path>.<run id>.gz next to the log, or <backup dir>/<name>.<run
// id>.gz; compressing it is what frees the space on the log's file system.
//
// As with copytruncate, lines written between the last copy and the
// truncation are lost (the copy is repeated until the file stops growing,
// at most four times), and a writer that did not open the log with
// O_APPEND goes on at its old offset, leaving a sparse file.
//
// Rollback puts the backed-up bytes back in front of whatever was written
// since, so nothing is lost either way; when nothing was written, the log
// is again byte for byte what it was, with its modification time.
type RotateLog struct {
	roots     []string
	backupDir string
	logger    *slog.Logger
}

// NewRotateLog returns rotate_log, which may rotate files below roots,
// keeping backups in backupDir or, when it is "", next to each log.
func NewRotateLog(roots []string, backupDir string, logger *slog.Logger) (*RotateLog, error) {
	r := &RotateLog{logger: logger}
	if backupDir != "" {
		if !filepath.IsAbs(backupDir) {
			return nil, fmt.Errorf("rotate_log: backup dir %q is not an absolute path", backupDir)
		}
		r.backupDir = filepath.Clean(backupDir)
	}
	for _, root := range roots {
		if !filepath.IsAbs(root) {
			return nil, fmt.Errorf("rotate_log: root %q is not an absolute path", root)
		}
		r.roots = append(r.roots, filepath.Clean(root))
	}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

// Spec implements Action.
func (r *RotateLog) Spec() Spec {
	return Spec{
		Name:       "rotate_log",
		Doc:        "Copy a log file to a gzip'd backup and truncate it in place (copytruncate); a rollback puts the old content back in front.",
		Tier:       TierLow,
		Timeout:    5 * time.Minute,
		Reversible: true,
		Params:     []Param{{Name: "path", Type: TypePath, Roots: r.roots, Required: true, Doc: "Log file to rotate."}},
	}
}

// rotateUndo is rotate_log's Undo.
type rotateUndo struct {
	Path   string    `json:"path"`
	Backup string    `json:"backup"`
	Size   int64     `json:"size"`
	SHA256 string    `json:"sha256"`
	Mode   uint32    `json:"mode"`
	MTime  time.Time `json:"mtime"`
}

// backupPath is where the backup of path for runID goes.
func (r *RotateLog) backupPath(path, runID string) string {
	if r.backupDir == "" {
		return path + "." + runID + ".gz"
	}
	return filepath.Join(r.backupDir, filepath.Base(path)+"."+runID+".gz")
}

// openLog opens the folder of path and the log in it, without following
// a symbolic link, and refuses anything but a regular file.
func (r *RotateLog) openLog(path string, flags int) (dir, log *os.File, st unix.Stat_t, err error) {
	root, ok := rootOf(path, r.roots)
	if !ok || path == root {
		return nil, nil, st, refusef("rotate_log: %s is not a file under a root", path)
	}
	rel, err := filepath.Rel(root, filepath.Dir(path))
	if err != nil {
		return nil, nil, st, refusef("rotate_log: %v", err)
	}
	dir, err = openDirBeneath(root, rel)
	if err != nil {
		return nil, nil, st, refusef("rotate_log: %v", err)
	}
	fd, err := unix.Openat(int(dir.Fd()), filepath.Base(path), flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		dir.Close()
		if errors.Is(err, unix.ELOOP) {
			return nil, nil, st, refusef("rotate_log: %s is a symbolic link", path)
		}
		if errors.Is(err, unix.EISDIR) {
			return nil, nil, st, refusef("rotate_log: %s is a folder", path)
		}
		return nil, nil, st, &Error{Err: fmt.Errorf("rotate_log: open %s: %w", path, err)}
	}
	log = os.NewFile(uintptr(fd), path)
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		log.Close()
		dir.Close()
		return nil, nil, st, refusef("rotate_log: %s is not a regular file", path)
	}
	return dir, log, st, nil
}

// openBackupDir opens the folder the backup of path goes in.
func (r *RotateLog) openBackupDir(logDir *os.File) (*os.File, error) {
	if r.backupDir == "" {
		return openDirAt(logDir, ".")
	}
	if err := os.MkdirAll(r.backupDir, 0o700); err != nil {
		return nil, err
	}
	return openDirBeneath(r.backupDir, "")
}

// Run implements Action.
func (r *RotateLog) Run(ctx context.Context, req Request) (Result, error) {
	params, err := validate(r.Spec(), req)
	if err != nil {
		return Result{}, err
	}
	path := params["path"]
	res := Result{Target: path}
	dir, log, st, err := r.openLog(path, unix.O_RDWR)
	if err != nil {
		return res, err
	}
	defer dir.Close()
	defer log.Close()
	if req.DryRun {
		res.Summary = fmt.Sprintf("would copy %d bytes of %s to a gzip'd backup and truncate it", st.Size, path)
		return res, nil
	}
	backup := r.backupPath(path, req.RunID)
	bdir, err := r.openBackupDir(dir)
	if err != nil {
		return res, retryable(fmt.Errorf("rotate_log: backup folder: %w", err))
	}
	defer bdir.Close()
	bname := filepath.Base(backup)
	bfd, err := unix.Openat(int(bdir.Fd()), bname, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return res, retryable(fmt.Errorf("rotate_log: create %s: %w", backup, err))
	}
	bf := os.NewFile(uintptr(bfd), backup)
	discard := func(cause error) (Result, error) {
		bf.Close()
		_ = unix.Unlinkat(int(bdir.Fd()), bname, 0)
		return res, retryable(fmt.Errorf("rotate_log: %w", cause))
	}

	h := sha256.New()
	var copied int64
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return discard(err)
		}
		n, err := appendGzipMember(bf, log, h)
		if err != nil {
			return discard(fmt.Errorf("back up %s to %s: %w", path, backup, err))
		}
		copied += n
		if err := bf.Sync(); err != nil {
			return discard(fmt.Errorf("sync %s: %w", backup, err))
		}
		var now unix.Stat_t
		if err := unix.Fstat(int(log.Fd()), &now); err != nil {
			return discard(fmt.Errorf("stat %s: %w", path, err))
		}
		if now.Size <= copied || i == 3 {
			break
		}
	}
	if err := bf.Close(); err != nil {
		return discard(fmt.Errorf("close %s: %w", backup, err))
	}
	if err := bdir.Sync(); err != nil {
		return discard(fmt.Errorf("sync %s: %w", bdir.Name(), err))
	}
	if err := log.Truncate(0); err != nil {
		return discard(fmt.Errorf("truncate %s: %w", path, err))
	}
	u := rotateUndo{Path: path, Backup: backup, Size: copied, SHA256: hex.EncodeToString(h.Sum(nil)), Mode: st.Mode & 0o7777, MTime: timespecTime(st.Mtim)}
	res.Undo, _ = json.Marshal(u)
	res.Summary = fmt.Sprintf("copied %d bytes of %s to %s and truncated it", copied, path, backup)
	r.logger.Info("log_rotated", "path", path, "backup", backup, "bytes", copied)
	return res, nil
}

// appendGzipMember writes what can be read from src into a new gzip member
// at the end of dst, and into h. It writes nothing when src has nothing
// more.
func appendGzipMember(dst io.Writer, src io.Reader, h hash.Hash) (int64, error) {
	buf := make([]byte, 64<<10)
	n, err := io.ReadFull(src, buf[:1])
	if n == 0 {
		if errors.Is(err, io.EOF) {
			return 0, nil
		}
		return 0, err
	}
	zw, err := gzip.NewWriterLevel(dst, gzip.BestSpeed)
	if err != nil {
		return 0, err
	}
	w := io.MultiWriter(zw, h)
	if _, err := w.Write(buf[:1]); err != nil {
		return 0, err
	}
	m, err := io.CopyBuffer(w, src, buf)
	if err != nil {
		return 0, err
	}
	return m + 1, zw.Close()
}

// Rollback implements Reverser.
func (r *RotateLog) Rollback(_ context.Context, runID string, undo json.RawMessage) (Result, error) {
	if err := checkRunID(runID); err != nil {
		return Result{}, err
	}
	var u rotateUndo
	if err := json.Unmarshal(undo, &u); err != nil {
		return Result{}, &Error{Err: fmt.Errorf("rotate_log: rollback: decode undo: %w", err)}
	}
	if _, err := CheckPath(u.Path, r.roots); err != nil {
		return Result{}, refusef("rotate_log: rollback: %v", err)
	}
	if want := r.backupPath(u.Path, runID); u.Backup != want {
		return Result{}, refusef("rotate_log: rollback: backup %q is not %q", u.Backup, want)
	}
	res := Result{Target: u.Path}
	dir, log, _, err := r.openLog(u.Path, unix.O_RDWR)
	if err != nil {
		return res, err
	}
	defer dir.Close()
	defer log.Close()
	bdir, err := r.openBackupDir(dir)
	if err != nil {
		return res, &Error{Err: fmt.Errorf("rotate_log: rollback: %w", err)}
	}
	defer bdir.Close()
	bname := filepath.Base(u.Backup)
	bf, _, err := openNoFollow(bdir, bname)
	if err != nil {
		return res, &Error{Err: fmt.Errorf("rotate_log: rollback: %w", err)}
	}
	defer bf.Close()

	// First check the backup whole, so a bad one changes nothing.
	h := sha256.New()
	n, err := gunzipTo(h, bf, u.Size)
	if err != nil {
		return res, &Error{Err: fmt.Errorf("rotate_log: rollback: backup %s does not hold what was copied: %w", u.Backup, err)}
	}
	if n != u.Size || hex.EncodeToString(h.Sum(nil)) != u.SHA256 {
		return res, &Error{Err: fmt.Errorf("rotate_log: rollback: backup %s does not hold what was copied (%d bytes, want %d, or another SHA-256)", u.Backup, n, u.Size)}
	}

	// Keep what was written since the rotation.
	since, err := os.CreateTemp(filepath.Dir(u.Backup), ".deus-rollback-*")
	if err != nil {
		return res, retryable(fmt.Errorf("rotate_log: rollback: %w", err))
	}
	_ = os.Remove(since.Name())
	defer since.Close()
	if _, err := log.Seek(0, io.SeekStart); err != nil {
		return res, retryable(fmt.Errorf("rotate_log: rollback: %w", err))
	}
	written, err := io.Copy(since, log)
	if err != nil {
		return res, retryable(fmt.Errorf("rotate_log: rollback: save what was written since: %w", err))
	}

	// Then write the backup, and after it what was written since.
	if _, err := bf.Seek(0, io.SeekStart); err != nil {
		return res, retryable(fmt.Errorf("rotate_log: rollback: %w", err))
	}
	if _, err := log.Seek(0, io.SeekStart); err != nil {
		return res, retryable(fmt.Errorf("rotate_log: rollback: %w", err))
	}
	if _, err := gunzipTo(log, bf, u.Size); err != nil {
		return res, final(fmt.Errorf("rotate_log: rollback: restore %s: %w", u.Path, err))
	}
	if _, err := since.Seek(0, io.SeekStart); err != nil {
		return res, final(fmt.Errorf("rotate_log: rollback: %w", err))
	}
	if _, err := io.Copy(log, since); err != nil {
		return res, final(fmt.Errorf("rotate_log: rollback: put back what was written since: %w", err))
	}
	if err := log.Truncate(u.Size + written); err != nil {
		return res, final(fmt.Errorf("rotate_log: rollback: %w", err))
	}
	if written == 0 {
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(u.MTime.UnixNano())}
		if err := unix.UtimesNanoAt(int(dir.Fd()), filepath.Base(u.Path), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return res, final(fmt.Errorf("rotate_log: rollback: %w", err))
		}
	}
	if err := log.Sync(); err != nil {
		return res, final(fmt.Errorf("rotate_log: rollback: %w", err))
	}
	if err := unix.Unlinkat(int(bdir.Fd()), bname, 0); err != nil {
		return res, final(fmt.Errorf("rotate_log: rollback: remove %s: %w", u.Backup, err))
	}
	_ = bdir.Sync()
	res.Summary = fmt.Sprintf("restored %d bytes of %s in front of %d written since", u.Size, u.Path, written)
	return res, nil
}

// gunzipTo writes the content of the gzip stream r (all its members) to w,
// refusing more than limit bytes.
func gunzipTo(w io.Writer, r io.Reader, limit int64) (int64, error) {
	zr, err := gzip.NewReader(r)
	if errors.Is(err, io.EOF) {
		return 0, nil // an empty log leaves an empty backup
	}
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(w, io.LimitReader(zr, limit+1))
	if err != nil {
		return n, err
	}
	if n > limit {
		return n, fmt.Errorf("more than the %d bytes copied", limit)
	}
	return n, nil
}
