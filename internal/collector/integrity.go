package collector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// DefaultIntegrityPaths are the files watched when none are configured.
var DefaultIntegrityPaths = []string{"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/sudoers", "/etc/ssh/sshd_config"}

// fileState is what is compared with the baseline. The stat fields decide
// whether the file must be hashed again; the hash, mode and ownership decide
// whether it changed (size, inode and mtime stand in for the hash of a file
// that is not hashed).
type fileState struct {
	Exists bool   `json:"exists"`
	SHA256 string `json:"sha256,omitempty"`
	Mode   uint32 `json:"mode,omitempty"`
	UID    uint32 `json:"uid,omitempty"`
	GID    uint32 `json:"gid,omitempty"`

	Size  int64  `json:"size,omitempty"`
	Inode uint64 `json:"inode,omitempty"`
	MTime int64  `json:"mtime_ns,omitempty"`
	CTime int64  `json:"ctime_ns,omitempty"`
}

func (a fileState) sameContent(b fileState) bool {
	same := a.Exists == b.Exists && a.SHA256 == b.SHA256 && a.Mode == b.Mode && a.UID == b.UID && a.GID == b.GID
	if same && a.Exists && a.SHA256 == "" {
		// Not hashed (larger than MaxSize, or not a regular file): the
		// stat that stands for the content is all there is to compare.
		same = a.Size == b.Size && a.Inode == b.Inode && a.MTime == b.MTime
	}
	return same
}

func (a fileState) sameStat(b fileState) bool {
	return a.Exists == b.Exists && a.Size == b.Size && a.Inode == b.Inode && a.MTime == b.MTime &&
		a.CTime == b.CTime && a.Mode == b.Mode && a.UID == b.UID && a.GID == b.GID
}

// watchedFile is a path's baseline and change history, kept in the state file.
type watchedFile struct {
	Baseline     fileState `json:"baseline"`
	BaselineTime float64   `json:"baseline_time"`
	Changes      float64   `json:"changes"`
	LastChange   float64   `json:"last_change,omitempty"`
}

// Integrity watches files for changes of content, mode or ownership against a
// baseline that is kept in StateFile, so a change made while the exporter was
// down is still counted when it starts. Each change is counted once and then
// becomes the new baseline. A file is hashed again only when its stat
// (size, inode, mtime, ctime, mode, owner) moves; ctime cannot be set back
// from user space, so an edit cannot hide behind a restored mtime.
//
// Cardinality: one series per configured path and family.
type Integrity struct {
	Paths     Paths
	Files     []string
	StateFile string
	MaxSize   int64 // larger files are compared by stat only
	// Now defaults to time.Now; tests replace it.
	Now func() time.Time

	files  map[string]*watchedFile
	loaded bool
}

// Update implements Collector.
func (c *Integrity) Update(_ context.Context, w *Writer) error {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	if !c.loaded {
		c.files = map[string]*watchedFile{}
		if c.StateFile != "" {
			if err := loadState(c.StateFile, &c.files); err != nil {
				return err
			}
		}
		c.loaded = true
	}
	var errs []error
	dirty := false
	for _, path := range c.Files {
		wf := c.files[path]
		cur, err := c.current(path, wf)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case wf == nil:
			c.files[path] = &watchedFile{Baseline: cur, BaselineTime: float64(now().Unix())}
			dirty = true
		case !cur.sameContent(wf.Baseline):
			wf.Changes++
			wf.LastChange = float64(now().UnixNano()) / 1e9
			if cur.Exists && cur.CTime != 0 {
				wf.LastChange = float64(cur.CTime) / 1e9 // when it happened, even if we were down
			}
			wf.Baseline = cur
			dirty = true
		case !cur.sameStat(wf.Baseline):
			wf.Baseline = cur // touched but not changed
			dirty = true
		}
	}
	if dirty && c.StateFile != "" {
		if err := saveState(c.StateFile, c.files); err != nil {
			errs = append(errs, err)
		}
	}

	w.Family("deus_file_exists", Gauge, "Whether a watched file exists.")
	c.each(func(path string, wf *watchedFile) {
		w.Sample("deus_file_exists", b2f(wf.Baseline.Exists), "path", path)
	})
	w.Family("deus_file_changes_total", Counter, "Changes of content, mode or ownership of a watched file since its baseline was taken.")
	c.each(func(path string, wf *watchedFile) { w.Sample("deus_file_changes_total", wf.Changes, "path", path) })
	w.Family("deus_file_baseline_timestamp_seconds", Gauge, "When the baseline of a watched file was first taken.")
	c.each(func(path string, wf *watchedFile) {
		w.Sample("deus_file_baseline_timestamp_seconds", wf.BaselineTime, "path", path)
	})
	w.Family("deus_file_last_change_timestamp_seconds", Gauge, "When a watched file last changed; absent until it has changed once.")
	c.each(func(path string, wf *watchedFile) {
		if wf.Changes > 0 {
			w.Sample("deus_file_last_change_timestamp_seconds", wf.LastChange, "path", path)
		}
	})
	return errors.Join(errs...)
}

func (c *Integrity) each(f func(string, *watchedFile)) {
	for _, path := range c.Files {
		if wf := c.files[path]; wf != nil {
			f(path, wf)
		}
	}
}

// current reads a file's state, hashing it only when its stat moved from
// the baseline.
func (c *Integrity) current(path string, wf *watchedFile) (fileState, error) {
	full := c.Paths.rootPath(path)
	fi, err := os.Lstat(full)
	if errors.Is(err, os.ErrNotExist) {
		return fileState{}, nil
	}
	if err != nil {
		return fileState{}, err
	}
	cur := fileState{Exists: true, Size: fi.Size(), Mode: uint32(fi.Mode()), MTime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		cur.Inode, cur.UID, cur.GID = st.Ino, st.Uid, st.Gid
		cur.CTime = st.Ctim.Sec*1e9 + st.Ctim.Nsec
	}
	if wf != nil && cur.sameStat(wf.Baseline) {
		cur.SHA256 = wf.Baseline.SHA256
		return cur, nil
	}
	if !fi.Mode().IsRegular() || (c.MaxSize > 0 && fi.Size() > c.MaxSize) {
		return cur, nil
	}
	f, err := os.Open(full)
	if err != nil {
		return fileState{}, fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fileState{}, fmt.Errorf("hash %s: %w", path, err)
	}
	cur.SHA256 = hex.EncodeToString(h.Sum(nil))
	return cur, nil
}
