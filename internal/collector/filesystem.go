package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Default exclusions of node_exporter 1.x, so both exporters report the same
// file systems out of the box.
const (
	DefaultMountPointsExclude = `^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`
	DefaultFSTypesExclude     = `^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$`
)

type mount struct {
	device, mountPoint, fsType string
	readOnly                   bool
}

// parseMountinfo parses /proc/PID/mountinfo. A line without every field
// the kernel writes (show_mountinfo in fs/proc_namespace.c) is an error:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//	(1)(2) (3)  (4)   (5)     (6)      (7)    (8) (9)    (10)       (11)
//
// mount and parent IDs, major:minor, the root, an absolute mount point,
// the mount options, optional fields ending at "-", the type, the source
// and the super options. The source alone may be empty, since mount(2)
// takes "" for it and the kernel writes it as is (util-linux#619).
func parseMountinfo(r io.Reader) ([]mount, error) {
	var out []mount
	sc, done := newScanner(r)
	defer done()
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		// The kernel escapes space, tab, newline and backslash in paths and
		// writes every other byte raw, so fields are split on spaces only.
		fields := strings.Split(line, " ")
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 6 || sep < 0 || sep+3 >= len(fields) {
			return nil, fmt.Errorf("mountinfo line %q: malformed", line)
		}
		if err := checkMountFields(fields, sep); err != nil {
			return nil, fmt.Errorf("mountinfo line %q: %w", line, err)
		}
		ro := false
		for o := range strings.SplitSeq(fields[5], ",") {
			if o == "ro" {
				ro = true
			}
		}
		out = append(out, mount{
			mountPoint: unescapeMount(fields[4]),
			fsType:     fields[sep+1],
			device:     unescapeMount(fields[sep+2]),
			readOnly:   ro,
		})
	}
	return out, sc.Err()
}

// checkMountFields checks the fields of one mountinfo line, split on
// spaces, with the separator "-" at sep.
func checkMountFields(fields []string, sep int) error {
	if !isDecimal(fields[0]) || !isDecimal(fields[1]) {
		return errors.New("mount and parent IDs must be decimal numbers")
	}
	if major, minor, ok := strings.Cut(fields[2], ":"); !ok || !isDecimal(major) || !isDecimal(minor) {
		return errors.New("device number must be major:minor")
	}
	if fields[3] == "" {
		return errors.New("empty root")
	}
	if !strings.HasPrefix(fields[4], "/") {
		return errors.New("mount point must be an absolute path")
	}
	if fields[5] == "" {
		return errors.New("empty mount options")
	}
	if slices.Contains(fields[6:sep], "") {
		return errors.New("empty optional field")
	}
	if fields[sep+1] == "" {
		return errors.New("empty file system type")
	}
	if fields[sep+3] == "" {
		return errors.New("empty super options")
	}
	return nil
}

// isDecimal reports whether s is a non-empty run of ASCII digits, as the
// kernel writes unsigned numbers: no sign, no space, no other base.
func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// unescapeMount undoes the kernel's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// FSStat is the part of statfs(2) the collector reports.
type FSStat struct {
	Blocks, BlocksFree, BlocksAvail, BlockSize, Files, FilesFree uint64
}

// StatFS is statfs(2) on a path.
func StatFS(path string) (FSStat, error) {
	var s unix.Statfs_t
	if err := unix.Statfs(path, &s); err != nil {
		return FSStat{}, err
	}
	if s.Bsize < 0 {
		return FSStat{}, fmt.Errorf("statfs %s: negative block size %d", path, s.Bsize)
	}
	return FSStat{
		Blocks: s.Blocks, BlocksFree: s.Bfree, BlocksAvail: s.Bavail,
		BlockSize: uint64(s.Bsize), Files: s.Files, FilesFree: s.Ffree,
	}, nil
}

// Filesystem writes node_filesystem_* for mounted file systems.
//
// Each statfs runs under MountTimeout. A mount that does not answer in time
// (a dead NFS server) is reported with device_error 1 and is not asked again
// until its pending statfs returns, so one hung mount costs one goroutine, not
// one per scrape.
type Filesystem struct {
	Paths              Paths
	MountPointsExclude *regexp.Regexp
	FSTypesExclude     *regexp.Regexp
	MountTimeout       time.Duration
	// StatFS defaults to the real statfs(2); tests replace it.
	StatFS func(path string) (FSStat, error)

	mu    sync.Mutex
	stuck map[string]bool
}

type fsResult struct {
	m     mount
	st    FSStat
	error bool
}

// Update implements Collector.
func (c *Filesystem) Update(ctx context.Context, w *Writer) error {
	mounts, err := c.mounts()
	if err != nil {
		return err
	}
	statfs := c.StatFS
	if statfs == nil {
		statfs = StatFS
	}
	type key struct{ device, mountPoint, fsType string }
	seen := make(map[key]bool, len(mounts))
	var results []fsResult
	for _, m := range mounts {
		m.mountPoint = c.Paths.hostPath(m.mountPoint)
		if c.MountPointsExclude != nil && c.MountPointsExclude.MatchString(m.mountPoint) {
			continue
		}
		if c.FSTypesExclude != nil && c.FSTypesExclude.MatchString(m.fsType) {
			continue
		}
		k := key{m.device, m.mountPoint, m.fsType}
		if seen[k] {
			continue
		}
		seen[k] = true
		st, ok := c.stat(ctx, statfs, m.mountPoint)
		results = append(results, fsResult{m: m, st: st, error: !ok})
	}

	write := func(name, help string, f func(r fsResult) float64, all bool) {
		w.Family(name, Gauge, help)
		for _, r := range results {
			if r.error && !all {
				continue
			}
			w.Sample(name, f(r), "device", r.m.device, "fstype", r.m.fsType, "mountpoint", r.m.mountPoint)
		}
	}
	write("node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes.",
		func(r fsResult) float64 { return float64(r.st.BlocksAvail) * float64(r.st.BlockSize) }, false)
	write("node_filesystem_device_error", "Whether an error occurred while getting statistics for the given device.",
		func(r fsResult) float64 { return b2f(r.error) }, true)
	write("node_filesystem_files", "Filesystem total file nodes.",
		func(r fsResult) float64 { return float64(r.st.Files) }, false)
	write("node_filesystem_files_free", "Filesystem total free file nodes.",
		func(r fsResult) float64 { return float64(r.st.FilesFree) }, false)
	write("node_filesystem_free_bytes", "Filesystem free space in bytes.",
		func(r fsResult) float64 { return float64(r.st.BlocksFree) * float64(r.st.BlockSize) }, false)
	write("node_filesystem_readonly", "Filesystem read-only status.",
		func(r fsResult) float64 { return b2f(r.m.readOnly) }, true)
	write("node_filesystem_size_bytes", "Filesystem size in bytes.",
		func(r fsResult) float64 { return float64(r.st.Blocks) * float64(r.st.BlockSize) }, false)
	return nil
}

func (c *Filesystem) mounts() ([]mount, error) {
	f, err := os.Open(c.Paths.proc("1", "mountinfo"))
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
		f, err = os.Open(c.Paths.proc("self", "mountinfo"))
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	mounts, err := parseMountinfo(f)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", f.Name(), err)
	}
	return mounts, nil
}

// stat runs statfs on a mount point under the mount timeout. It reports false
// for an error, a timeout, or a mount still stuck from an earlier scrape.
func (c *Filesystem) stat(ctx context.Context, statfs func(string) (FSStat, error), mountPoint string) (FSStat, bool) {
	c.mu.Lock()
	if c.stuck[mountPoint] {
		c.mu.Unlock()
		return FSStat{}, false
	}
	c.mu.Unlock()

	type answer struct {
		st  FSStat
		err error
	}
	done := make(chan answer, 1)
	go func() {
		st, err := statfs(c.Paths.rootPath(mountPoint))
		done <- answer{st, err}
		c.mu.Lock()
		delete(c.stuck, mountPoint)
		c.mu.Unlock()
	}()
	timer := time.NewTimer(c.MountTimeout)
	defer timer.Stop()
	select {
	case a := <-done:
		return a.st, a.err == nil
	case <-timer.C:
	case <-ctx.Done():
	}
	c.mu.Lock()
	if c.stuck == nil {
		c.stuck = make(map[string]bool)
	}
	select {
	case <-done: // it answered while we took the lock
	default:
		c.stuck[mountPoint] = true
	}
	c.mu.Unlock()
	return FSStat{}, false
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
