package action

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The mechanisms that hold a command's processes, as Hold.Mechanism names
// them.
const (
	// HeldCgroup2 is a cgroup of its own in the unified (v2) hierarchy,
	// which the command is cloned straight into (CLONE_INTO_CGROUP), and
	// which is killed whole with cgroup.kill.
	HeldCgroup2 = "cgroup2"
	// HeldCgroup1 is a cgroup of its own in the v1 freezer hierarchy: the
	// command is forked from a thread moved into it, and it is frozen,
	// killed and thawed, so nothing in it can fork while it is killed.
	HeldCgroup1 = "cgroup1"
	// HeldProcessGroup is only the command's process group: what leaves
	// it (setsid) escapes.
	HeldProcessGroup = "process_group"
)

// Hold says what held the processes of one command, so that they can be
// found and killed: by Exec when the command ends, and by Reap after the
// healer was stopped while it ran. It is recorded with the run.
type Hold struct {
	// ID names the command's hold, unique in this healer.
	ID string `json:"id"`
	// Mechanism is HeldCgroup2, HeldCgroup1 or HeldProcessGroup.
	Mechanism string `json:"mechanism"`
	// Cgroup is the cgroup's folder, for the cgroup mechanisms.
	Cgroup string `json:"cgroup,omitempty"`
	// Pgid is the command's process group, 0 before it started.
	Pgid int `json:"pgid,omitempty"`
	// StartTicks is when the group's leader started, in clock ticks since
	// boot, and BootID the boot it started in: a process group id seen
	// later belongs to this command only if both agree.
	StartTicks uint64 `json:"start_ticks,omitempty"`
	BootID     string `json:"boot_id,omitempty"`
	// Fallback says why no cgroup held the command, when the host has
	// cgroups but one could not be made for it.
	Fallback string `json:"fallback,omitempty"`
}

// String says in a few words what held the command.
func (h Hold) String() string {
	s := h.Mechanism
	if h.Cgroup != "" {
		s += " " + h.Cgroup
	}
	if h.Pgid != 0 {
		s += " pgid " + strconv.Itoa(h.Pgid)
	}
	return s
}

// holdKey is the context key of the function WithHoldReporter sets.
type holdKey struct{}

// WithHoldReporter returns a context in which Exec tells report what holds
// each command it runs: once before the command starts (an error then
// stops it from starting: a command that cannot be recorded is not run),
// and again with its process group once it has started. report is called
// on the goroutine that called Run.
func WithHoldReporter(ctx context.Context, report func(Hold) error) context.Context {
	return context.WithValue(ctx, holdKey{}, report)
}

func holdReporter(ctx context.Context) func(Hold) error {
	f, _ := ctx.Value(holdKey{}).(func(Hold) error)
	return f
}

// Confiner makes, for each command, the place that holds all its
// processes. DetectConfiner chooses one for the host; tests choose.
type Confiner interface {
	// Mechanism is the mechanism of the places it makes.
	Mechanism() string
	newCell(id string) (*cell, error)
}

// ProcessGroups is the Confiner of hosts without a usable cgroup
// hierarchy: each command has its process group and nothing more.
func ProcessGroups() Confiner { return pgroupConfiner{} }

type pgroupConfiner struct{}

func (pgroupConfiner) Mechanism() string { return HeldProcessGroup }
func (pgroupConfiner) newCell(id string) (*cell, error) {
	return &cell{h: Hold{ID: id, Mechanism: HeldProcessGroup}}, nil
}

// Cgroup2 is the Confiner that gives each command a cgroup below parent, a
// folder in a cgroup v2 hierarchy (created when missing). No controller
// is needed: cgroup.procs, cgroup.kill and cgroup.freeze are the
// hierarchy's own.
func Cgroup2(parent string) Confiner { return cgroupConfiner{version: 2, parent: parent} }

// Cgroup1 is the Confiner that gives each command a cgroup below parent,
// a folder in a cgroup v1 freezer hierarchy (created when missing).
func Cgroup1(parent string) Confiner { return cgroupConfiner{version: 1, parent: parent} }

type cgroupConfiner struct {
	version int
	parent  string
}

func (c cgroupConfiner) Mechanism() string {
	if c.version == 2 {
		return HeldCgroup2
	}
	return HeldCgroup1
}

func (c cgroupConfiner) newCell(id string) (*cell, error) {
	if err := os.MkdirAll(c.parent, 0o750); err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	dir := filepath.Join(c.parent, id)
	if err := os.Mkdir(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	cl := &cell{h: Hold{ID: id, Mechanism: c.Mechanism(), Cgroup: dir}, version: c.version}
	if c.version == 1 {
		// The thread that forks the command is moved into the cgroup
		// for the fork, and back to where it was after.
		cur, err := ownCgroup1Dir()
		if err != nil {
			_ = os.Remove(dir)
			return nil, err
		}
		cl.back = cur
	}
	return cl, nil
}

// cgroupParentName is the folder, below the healer's own cgroup, that
// holds the cgroups of its commands.
const cgroupParentName = "deus-actions"

// DetectConfiner returns the best Confiner the host offers, looked up in
// /proc/self/mountinfo and /proc/self/cgroup: a cgroup v2 hierarchy where
// one is mounted and writable (with or without controllers), else a v1
// freezer hierarchy, else process groups. The commands' cgroups go below
// the healer's own, in deus-actions.
func DetectConfiner() Confiner {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ProcessGroups()
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return ProcessGroups()
	}
	for _, version := range []int{2, 1} {
		dir, ok := cgroupDir(mounts, own, version)
		if !ok {
			continue
		}
		parent := filepath.Join(dir, cgroupParentName)
		if probeCgroup(parent) == nil {
			if version == 2 {
				return Cgroup2(parent)
			}
			return Cgroup1(parent)
		}
	}
	return ProcessGroups()
}

// probeCgroup checks that a cgroup can be made below parent.
func probeCgroup(parent string) error {
	if err := os.MkdirAll(parent, 0o750); err != nil {
		return err
	}
	p := filepath.Join(parent, "probe-"+newHoldID())
	if err := os.Mkdir(p, 0o750); err != nil {
		return err
	}
	return os.Remove(p)
}

// cgroupDir finds, from mountinfo and /proc/self/cgroup, the folder of
// this process's cgroup in the v2 hierarchy (version 2) or the v1 freezer
// hierarchy (version 1).
func cgroupDir(mountinfo, own []byte, version int) (string, bool) {
	var mountPoint, mountRoot string
	for line := range strings.SplitSeq(string(mountinfo), "\n") {
		// id parent major:minor root mountpoint options ... - fstype source superoptions
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		switch {
		case version == 2 && g[0] == "cgroup2",
			version == 1 && g[0] == "cgroup" && slices.Contains(strings.Split(g[2], ","), "freezer"):
			mountRoot, mountPoint = unescapeMount(f[3]), unescapeMount(f[4])
		}
		if mountPoint != "" {
			break
		}
	}
	if mountPoint == "" {
		return "", false
	}
	for line := range strings.SplitSeq(string(own), "\n") {
		// hierarchy-id:controllers:path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if version == 2 && parts[0] == "0" && parts[1] == "" ||
			version == 1 && slices.Contains(strings.Split(parts[1], ","), "freezer") {
			rel, err := filepath.Rel(mountRoot, parts[2])
			if err != nil || !filepath.IsLocal(rel) && rel != "." {
				// The cgroup is outside what is mounted (another
				// namespace's view): use the mount's root.
				rel = "."
			}
			return filepath.Join(mountPoint, rel), true
		}
	}
	return "", false
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownCgroup1Dir is the folder of this process's cgroup in the v1 freezer
// hierarchy, where the thread that forks a command returns.
func ownCgroup1Dir() (string, error) {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("cgroup: %w", err)
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("cgroup: %w", err)
	}
	dir, ok := cgroupDir(mounts, own, 1)
	if !ok {
		return "", errors.New("cgroup: this process is in no v1 freezer cgroup")
	}
	return dir, nil
}

func newHoldID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// cell is the place that holds one command.
type cell struct {
	h       Hold
	version int    // 2, 1, or 0 for a process group only
	back    string // v1: the cgroup the forking thread returns to
	fd      int    // v2: the cgroup's folder, open for CLONE_INTO_CGROUP
}

// prepare sets what starts the command inside the cell: its own process
// group, SIGKILL when the thread that forked it dies (the healer is
// killed), and for v2 the cgroup to clone it into.
func (c *cell) prepare(attr *syscall.SysProcAttr) error {
	attr.Setpgid = true
	attr.Pdeathsig = syscall.SIGKILL
	if c.version == 2 {
		fd, err := unix.Open(c.h.Cgroup, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
		c.fd = fd
		attr.UseCgroupFD, attr.CgroupFD = true, fd
	}
	return nil
}

// enter and leave run on the locked thread that forks the command: for
// v1 they move that thread into the cell and back.
func (c *cell) enter() error {
	if c.version != 1 {
		return nil
	}
	return writeCgroupFile(filepath.Join(c.h.Cgroup, "tasks"), strconv.Itoa(unix.Gettid()))
}

func (c *cell) leave() error {
	if c.version == 2 && c.fd > 0 {
		_ = unix.Close(c.fd)
		c.fd = 0
	}
	if c.version != 1 {
		return nil
	}
	return writeCgroupFile(filepath.Join(c.back, "tasks"), strconv.Itoa(unix.Gettid()))
}

// started records the command's process group.
func (c *cell) started(pid int) {
	c.h.Pgid = pid
	c.h.StartTicks, _ = procStartTicks(pid)
	c.h.BootID = bootID()
}

// kill kills every process in the cell and waits until none is left, and
// returns the pids it found.
func (c *cell) kill(ctx context.Context) ([]int, error) {
	if c.version == 0 {
		return killProcessGroup(ctx, c.h)
	}
	return killCgroup(ctx, c.version, c.h.Cgroup)
}

// remove deletes the cell's cgroup, which must be empty.
func (c *cell) remove() error {
	if c.version == 0 {
		return nil
	}
	return removeCgroup(c.h.Cgroup)
}

// killDeadline bounds how long killing a cell waits for it to empty.
const killDeadline = 10 * time.Second

// killCgroup kills every process in the cgroup dir and waits until it is
// empty. On v2 it writes cgroup.kill (Linux 5.14) or freezes, kills and
// thaws; on v1 it freezes, kills and thaws, so that nothing forks while
// it is killed.
func killCgroup(ctx context.Context, version int, dir string) ([]int, error) {
	found, err := cgroupProcs(dir)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, killDeadline)
	defer cancel()
	for {
		procs, err := cgroupProcs(dir)
		if err != nil {
			return found, err
		}
		if len(procs) == 0 {
			return found, nil
		}
		for _, p := range procs {
			if !slices.Contains(found, p) {
				found = append(found, p)
			}
		}
		if err := signalCgroup(version, dir, procs); err != nil {
			return found, err
		}
		if err := pause(ctx, 5*time.Millisecond); err != nil {
			return found, fmt.Errorf("cgroup %s still holds %v: %w", dir, procs, err)
		}
	}
}

// signalCgroup sends SIGKILL to everything in the cgroup.
func signalCgroup(version int, dir string, procs []int) error {
	if version == 2 {
		if err := writeCgroupFile(filepath.Join(dir, "cgroup.kill"), "1"); err == nil {
			return nil
		}
	}
	freeze, frozen, thawed := filepath.Join(dir, "freezer.state"), "FROZEN", "THAWED"
	if version == 2 {
		freeze, frozen, thawed = filepath.Join(dir, "cgroup.freeze"), "1", "0"
	}
	if err := writeCgroupFile(freeze, frozen); err != nil {
		// No freezer: kill what is there, and the caller goes round
		// again for what it forked meanwhile.
		for _, p := range procs {
			_ = unix.Kill(p, unix.SIGKILL)
		}
		return nil
	}
	if version == 1 {
		// The freezer says FREEZING until every task is frozen.
		for range 1000 {
			b, err := os.ReadFile(freeze)
			if err != nil || strings.TrimSpace(string(b)) == frozen {
				break
			}
			time.Sleep(time.Millisecond) // the freezer has nothing to wait on
		}
	}
	now, _ := cgroupProcs(dir)
	for _, p := range now {
		_ = unix.Kill(p, unix.SIGKILL)
	}
	return writeCgroupFile(freeze, thawed)
}

// cgroupProcs returns the live processes in the cgroup (zombies, which
// no signal can kill again, are left out), or none when it is gone.
func cgroupProcs(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENODEV) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	var out []int
	for f := range strings.FieldsSeq(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil || zombie(pid) {
			continue
		}
		out = append(out, pid)
	}
	return out, nil
}

// removeCgroup deletes the empty cgroup dir; one already gone is fine.
// The kernel may take a moment to let go of processes that just died.
func removeCgroup(dir string) error {
	var err error
	for i := range 200 {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(time.Duration(i+1) * 100 * time.Microsecond) // nothing to wait on: the kernel frees the cgroup by itself
	}
	return fmt.Errorf("cgroup: remove %s: %w", dir, err)
}

// killProcessGroup kills the process group of h, if it is still h's, and
// waits until it is empty.
func killProcessGroup(ctx context.Context, h Hold) ([]int, error) {
	if h.Pgid <= 1 || errors.Is(unix.Kill(-h.Pgid, 0), unix.ESRCH) {
		return nil, nil // no such group: nothing to look for
	}
	members := groupMembers(h)
	if len(members) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, killDeadline)
	defer cancel()
	found := members
	for len(members) > 0 {
		if err := unix.Kill(-h.Pgid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			return found, fmt.Errorf("kill process group %d: %w", h.Pgid, err)
		}
		if err := pause(ctx, 5*time.Millisecond); err != nil {
			return found, fmt.Errorf("process group %d still holds %v: %w", h.Pgid, members, err)
		}
		members = groupMembers(h)
	}
	return found, nil
}

// groupMembers returns the live processes in h's process group: none when
// the boot is another, or when the group's id now belongs to a new group
// (its leader lives with another start time).
func groupMembers(h Hold) []int {
	if h.BootID != "" && h.BootID != bootID() {
		return nil
	}
	if st, ok := procStartTicks(h.Pgid); ok && h.StartTicks != 0 && st != h.StartTicks {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		s, err := readStat("/proc", pid)
		if err != nil || s.PGrp != h.Pgid || s.State == 'Z' || s.StartTime < h.StartTicks {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// Reaped is what Reap found of a command's processes.
type Reaped struct {
	// Found are the processes that were still alive, all killed.
	Found []int
}

// Reap makes sure nothing is left of a command that h held: for a cgroup,
// every process in it is killed, it is waited for until empty, and it is
// removed; for a process group, the group is killed if it is still h's.
// Recovery calls it for the commands of a run the healer was stopped in.
func Reap(ctx context.Context, h Hold) (Reaped, error) {
	switch h.Mechanism {
	case HeldCgroup2, HeldCgroup1:
		if h.Cgroup == "" || !filepath.IsAbs(h.Cgroup) {
			return Reaped{}, fmt.Errorf("hold %s: no cgroup path", h.ID)
		}
		v := 2
		if h.Mechanism == HeldCgroup1 {
			v = 1
		}
		found, err := killCgroup(ctx, v, h.Cgroup)
		if err != nil {
			return Reaped{Found: found}, err
		}
		return Reaped{Found: found}, removeCgroup(h.Cgroup)
	case HeldProcessGroup:
		found, err := killProcessGroup(ctx, h)
		return Reaped{Found: found}, err
	default:
		return Reaped{}, fmt.Errorf("hold %s: unknown mechanism %q", h.ID, h.Mechanism)
	}
}

func procStartTicks(pid int) (uint64, bool) {
	s, err := readStat("/proc", pid)
	return s.StartTime, err == nil
}

func zombie(pid int) bool {
	s, err := readStat("/proc", pid)
	return err == nil && s.State == 'Z'
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func writeCgroupFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// pause waits d, or until ctx is done.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
