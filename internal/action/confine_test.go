package action

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// testCgroupParent returns a fresh folder for the tests' cgroups in the
// hierarchy of version (2: unified, 1: freezer) below this process's own
// cgroup, removed at cleanup.
func testCgroupParent(t *testing.T, version int) string {
	t.Helper()
	needRoot(t)
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	dir, ok := cgroupDir(mounts, own, version)
	if !ok {
		if os.Getenv("CI") != "" {
			t.Fatalf("no cgroup v%d hierarchy is mounted, and CI is set", version)
		}
		t.Skipf("no cgroup v%d hierarchy is mounted here", version)
	}
	parent := filepath.Join(dir, "deus-test-"+newHoldID())
	t.Cleanup(func() {
		if err := os.Remove(parent); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("remove the test's cgroup folder: %v", err)
		}
	})
	return parent
}

// confiners are the mechanisms the tests run commands in.
func confiners(t *testing.T) []struct {
	name string
	c    func(t *testing.T) Confiner
} {
	return []struct {
		name string
		c    func(t *testing.T) Confiner
	}{
		{name: "in a cgroup v2", c: func(t *testing.T) Confiner { return Cgroup2(testCgroupParent(t, 2)) }},
		{name: "in a cgroup v1 freezer", c: func(t *testing.T) Confiner { return Cgroup1(testCgroupParent(t, 1)) }},
	}
}

// pidsFromFIFO reads "pid gpid" from the FIFO the helper writes to, or
// fails the test if run ends first.
func pidsFromFIFO(t *testing.T, fifo string, ran <-chan error) (int, int) {
	t.Helper()
	type pids struct{ pid, gpid int }
	got := make(chan *pids, 1)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- nil
			return
		}
		defer f.Close()
		var p pids
		line, _ := bufio.NewReader(f).ReadString('\n')
		if _, err := fmt.Sscan(line, &p.pid, &p.gpid); err != nil {
			got <- nil
			return
		}
		got <- &p
	}()
	select {
	case p := <-got:
		if p == nil {
			t.Fatal("could not read the pids from the helper")
		}
		return p.pid, p.gpid
	case err := <-ran:
		if w, werr := os.OpenFile(fifo, os.O_WRONLY|unix.O_NONBLOCK, 0); werr == nil {
			w.Close()
		}
		t.Fatalf("the command ended before it reported its pids: %v", err)
	}
	return 0, 0
}

// pidfds opens a pidfd for each pid, closed at cleanup, and kills what
// is left at cleanup too, so that a failing test leaves nothing behind.
func pidfds(t *testing.T, pids ...int) []int {
	t.Helper()
	var fds []int
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			t.Fatalf("pidfd_open %d: %v", pid, err)
		}
		t.Cleanup(func() {
			_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
			_ = unix.Close(fd)
		})
		fds = append(fds, fd)
	}
	return fds
}

// alive reports whether the process behind pidfd still runs.
func alive(pidfd int) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n == 0
}

func TestDetectConfinerUsesTheHostsCgroups(t *testing.T) {
	t.Parallel()
	needRoot(t)
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	want := HeldProcessGroup
	switch {
	case strings.Contains(string(mounts), " - cgroup2 "):
		want = HeldCgroup2
	case strings.Contains(string(mounts), ",freezer"):
		want = HeldCgroup1
	}
	if got := DetectConfiner().Mechanism(); got != want {
		t.Errorf("got %s, want %s on this host (root, with its cgroup mounts)", got, want)
	}
}

func TestCgroupDirFollowsTheMountsRoot(t *testing.T) {
	t.Parallel()
	mounts := `24 31 0:22 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
30 24 0:26 /docker/abc /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer
31 24 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
`
	own := "7:memory:/m\n6:freezer:/docker/abc/job\n0::/system.slice/healer.service\n"
	tests := []struct {
		name    string
		version int
		want    string
	}{
		{name: "v2 is the mount point and the cgroup's path", version: 2, want: "/sys/fs/cgroup/unified/system.slice/healer.service"},
		{name: "v1 takes the freezer hierarchy, relative to the mount's root", version: 1, want: "/sys/fs/cgroup/freezer/job"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := cgroupDir([]byte(mounts), []byte(own), tt.version)
			if !ok || got != tt.want {
				t.Errorf("cgroupDir(v%d) = %q, %v; want %q", tt.version, got, ok, tt.want)
			}
		})
	}
	if _, ok := cgroupDir([]byte("31 24 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"), []byte(own), 1); ok {
		t.Error("got a v1 folder without a freezer hierarchy, want none")
	}
}

func TestExecKillsAGrandchildThatLeftTheProcessGroup(t *testing.T) {
	t.Parallel()
	for _, cf := range confiners(t) {
		for _, exits := range []bool{false, true} {
			name := cf.name + ", when the run is cancelled"
			if exits {
				name = cf.name + ", when the command exits and leaves it behind"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				conf := cf.c(t)
				fifo := mkfifo(t)
				env := helperEnvs("escape", "HELPER_FIFO="+fifo)
				goAhead := mkfifo(t)
				if exits {
					env = append(env, "HELPER_EXIT="+goAhead)
				}
				e := &Exec{Env: env, Confine: conf}
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				var holds []Hold
				ctx = WithHoldReporter(ctx, func(h Hold) error { holds = append(holds, h); return nil })
				ran := make(chan error, 1)
				var out Output
				go func() {
					var err error
					out, err = e.Run(ctx, []string{helperPath(t)}, nil)
					ran <- err
				}()
				pid, gpid := pidsFromFIFO(t, fifo, ran)
				fds := pidfds(t, pid, gpid)
				if pg, _ := unix.Getpgid(gpid); pg == pid {
					t.Fatalf("the grandchild is in the command's process group %d; the test wants it out", pid)
				}
				if exits {
					// The command exits now, leaving the grandchild.
					w, err := os.OpenFile(goAhead, os.O_WRONLY, 0)
					if err != nil {
						t.Fatal(err)
					}
					_, _ = w.WriteString("exit\n")
					w.Close()
				} else {
					cancel()
				}
				err := <-ran
				if exits && err != nil {
					t.Fatalf("Run: %v", err)
				}
				if !exits && !errors.Is(err, context.Canceled) {
					t.Fatalf("got %v, want context.Canceled", err)
				}
				waitExit(t, fds[0], "the command")
				waitExit(t, fds[1], "the grandchild that left the process group")
				if exits && !strings.Contains(out.Text, "[1 processes left behind were killed]") {
					t.Errorf("got output %q, want it to say a process left behind was killed", out.Text)
				}
				if out.Held.Mechanism != conf.Mechanism() || out.Held.Pgid != pid {
					t.Errorf("got held %+v, want %s with pgid %d", out.Held, conf.Mechanism(), pid)
				}
				if _, err := os.Stat(out.Held.Cgroup); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("got %v, want the command's cgroup removed", err)
				}
				if len(holds) != 2 || holds[0].Pgid != 0 || holds[0].Cgroup != out.Held.Cgroup || holds[1].Pgid != pid {
					t.Errorf("got reports %+v, want the cgroup before the start, then with pgid %d", holds, pid)
				}
			})
		}
	}
}

func TestExecDoesNotStartACommandWhoseHoldCannotBeRecorded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := &Exec{Confine: ProcessGroups()}
	ctx := WithHoldReporter(t.Context(), func(Hold) error { return errors.New("the store is down") })
	_, err := e.Run(ctx, []string{"touch", filepath.Join(dir, "ran")}, nil)
	if err == nil || !IsRetryable(err) || !strings.Contains(err.Error(), "the store is down") {
		t.Errorf("got %v, want a retryable error saying why", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got stat error %v, want the command not to have run", err)
	}
}

func TestExecFallsBackToTheProcessGroupAndSaysWhy(t *testing.T) {
	t.Parallel()
	// A cgroup parent that cannot be made: below a regular file.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e := &Exec{Confine: Cgroup2(filepath.Join(file, "deus-actions"))}
	out, err := e.Run(t.Context(), []string{"true"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.Held.Mechanism != HeldProcessGroup || !strings.Contains(out.Held.Fallback, "not a directory") {
		t.Errorf("got held %+v, want the process group, and why no cgroup", out.Held)
	}
}

// startInCell starts the helper in mode escape the way Exec would, but
// leaves it running, as a healer killed mid-command would, and returns
// its hold and pids.
func startInCell(t *testing.T, conf Confiner) (Hold, int, int) {
	t.Helper()
	cl, err := conf.newCell(newHoldID())
	if err != nil {
		t.Fatal(err)
	}
	fifo := mkfifo(t)
	cmd := exec.Command(helperPath(t))
	cmd.Env = helperEnvs("escape", "HELPER_FIFO="+fifo)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if cl.version == 2 {
		fd, err := unix.Open(cl.h.Cgroup, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = unix.Close(fd) }()
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
	}
	// As Exec does: forked from a locked thread inside the cgroup (v1).
	startErr := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cl.enter(); err != nil {
			startErr <- err
			return // the thread ends with the goroutine
		}
		err := cmd.Start()
		if lerr := cl.leave(); lerr != nil {
			startErr <- errors.Join(err, lerr)
			return
		}
		runtime.UnlockOSThread()
		startErr <- err
	}()
	if err := <-startErr; err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- cmd.Wait() }()
	pid, gpid := pidsFromFIFO(t, fifo, ran)
	cl.started(pid)
	return cl.h, pid, gpid
}

func TestReapKillsWhatARunLeftBehind(t *testing.T) {
	t.Parallel()
	tests := append(confiners(t), struct {
		name string
		c    func(t *testing.T) Confiner
	}{name: "in a process group only", c: func(*testing.T) Confiner { return ProcessGroups() }})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conf := tt.c(t)
			h, pid, gpid := startInCell(t, conf)
			fds := pidfds(t, pid, gpid)
			got, err := Reap(t.Context(), h)
			if err != nil {
				t.Fatalf("Reap: %v", err)
			}
			want := []int{pid, gpid}
			if conf.Mechanism() == HeldProcessGroup {
				want = []int{pid} // the grandchild left the group: only a cgroup holds it
			}
			slices.Sort(got.Found)
			slices.Sort(want)
			if !slices.Equal(got.Found, want) {
				t.Errorf("got found %v, want %v", got.Found, want)
			}
			waitExit(t, fds[0], "the command")
			if conf.Mechanism() != HeldProcessGroup {
				waitExit(t, fds[1], "the grandchild")
				if _, err := os.Stat(h.Cgroup); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("got %v, want the cgroup removed", err)
				}
			} else if !alive(fds[1]) {
				t.Error("the grandchild that left the process group died; want it out of reach of a process group (the cgroup is what holds it)")
			}
			// Once gone, a second reap finds nothing.
			again, err := Reap(t.Context(), h)
			if err != nil || len(again.Found) != 0 {
				t.Errorf("second Reap: got %v, %v, want nothing found", again.Found, err)
			}
		})
	}
}

func TestReapLeavesAProcessGroupWhoseIDWasReused(t *testing.T) {
	t.Parallel()
	h, pid, gpid := startInCell(t, ProcessGroups())
	fds := pidfds(t, pid, gpid)
	h.StartTicks++ // as if the group's id were another's now
	got, err := Reap(t.Context(), h)
	if err != nil || len(got.Found) != 0 {
		t.Errorf("got %v, %v, want nothing found", got.Found, err)
	}
	if !alive(fds[0]) {
		t.Error("got the process killed, want a group whose leader started at another time left alone")
	}
}
