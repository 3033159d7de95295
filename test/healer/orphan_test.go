package healer_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"golang.org/x/sys/unix"
)

// TestACommandDiesWithAKilledHealerAndRecoveryKillsWhatItLeft runs a site
// command that would act for half a minute (a script that sleeps, then
// writes a file) and that starts a grandchild in a session of its own
// (setsid: out of the process group) which would do the same. The healer
// is killed with SIGKILL while they run: the command dies at once (its
// parent-death signal), and the restarted healer, before it marks the run
// interrupted, kills the grandchild, which only the command's cgroup still
// holds, and the audit log says what it found and killed. Neither file is
// ever written.
func TestACommandDiesWithAKilledHealerAndRecoveryKillsWhatItLeft(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("this test needs root for cgroups, and CI is set: run it as root")
		}
		t.Skip("needs root: the commands' cgroups are made by the healer as root")
	}
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o750); err != nil {
		t.Fatal(err)
	}
	// The test's own fixture, not input from an alert.
	script := filepath.Join(dir, "slow.sh")
	writeFile(t, script, `#!/bin/sh
setsid /bin/sh -c 'echo $$ > `+work+`/grandchild.pid; /usr/bin/sleep 30; echo late > `+work+`/grandchild-ran' &
echo $$ > `+work+`/child.pid
/usr/bin/sleep 30
echo late > `+work+`/child-ran
`)
	h := newHealer(t, dir, map[string]any{
		"global": map[string]any{"identity": []string{"testhost"}, "max_tier": "low"},
		"actions": map[string]any{"commands": []any{map[string]any{
			"name": "slow", "tier": "low", "doc": "act for half a minute, and start a grandchild that leaves the process group",
			"argv": []string{"/bin/sh", script}, "timeout": "2m",
		}}},
		"runbooks": []any{map[string]any{
			"name": "slow", "match": []string{`alertname="SlowFix"`},
			"steps": []any{map[string]any{"action": "slow"}},
		}},
	})
	h.start()
	fp := "00000000000051ee"
	h.webhook(message(t, "http://am-a.invalid:9093", firing(fp, time.Now().UTC(), template.KV{"alertname": "SlowFix", "instance": "testhost"})))

	var child, grandchild int
	eventually(t, 20*time.Second, "the command and its grandchild started", func() (bool, string) {
		child, grandchild = readPid(filepath.Join(work, "child.pid")), readPid(filepath.Join(work, "grandchild.pid"))
		return child > 0 && grandchild > 0, fmt.Sprintf("pids %d %d", child, grandchild)
	})
	childFD, grandFD := pidfd(t, child), pidfd(t, grandchild)
	if pg, _ := unix.Getpgid(grandchild); pg == child {
		t.Fatalf("the grandchild is in the command's process group %d; the test wants it out", child)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", grandchild)); err != nil || !strings.Contains(string(b), "/deus-actions/") {
		t.Fatalf("the grandchild's cgroups are %q (%v); want it in the command's cgroup below deus-actions", b, err)
	}

	h.proc.Kill()
	if !exited(childFD, 5*time.Second) {
		t.Fatal("the command still runs 5s after the healer was killed; want it killed with the healer")
	}
	if !exited(grandFD, 0) {
		t.Log("as expected, the grandchild that left the process group outlived the healer; recovery is what kills it")
	}

	h.start()
	if !exited(grandFD, 15*time.Second) {
		t.Fatal("the grandchild still runs 15s after the healer restarted; want recovery to have killed it")
	}
	eventually(t, 20*time.Second, "the run is interrupted", func() (bool, string) {
		runs := h.runs("")
		return len(runs) == 1 && runs[0].State == "interrupted", fmt.Sprintf("%+v", runs)
	})
	h.stop()
	h.verifyAudit()

	var reaped []auditRecord
	reapedAt, interruptedAt := -1, -1
	for i, rec := range h.auditRecords() {
		switch rec.Kind {
		case "reaped":
			reaped = append(reaped, rec)
			reapedAt = i
		case "interrupted":
			interruptedAt = i
		}
	}
	if len(reaped) != 1 {
		t.Fatalf("got %d reaped records, want 1: %+v", len(reaped), reaped)
	}
	r := reaped[0]
	found := strings.Split(r.Fields["found"], ",")
	if r.Result != "killed" || !slices.Contains(found, strconv.Itoa(grandchild)) || r.Fields["mechanism"] != "cgroup2" && r.Fields["mechanism"] != "cgroup1" {
		t.Errorf("got reaped record %+v, want the grandchild %d found and killed in the command's cgroup", r, grandchild)
	}
	if reapedAt > interruptedAt {
		t.Errorf("the reaped record (#%d) comes after the interrupted one (#%d); want what was left killed first", reapedAt, interruptedAt)
	}
	for _, f := range []string{"child-ran", "grandchild-ran"} {
		if _, err := os.Stat(filepath.Join(work, f)); err == nil {
			t.Errorf("%s exists: a process of the killed run acted after the healer was killed", f)
		}
	}
}

// readPid reads a pid file, 0 while it is missing or incomplete.
func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil || !strings.HasSuffix(string(b), "\n") {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// pidfd opens a pidfd for pid, closed (and the process killed, should the
// test fail before it is) at cleanup.
func pidfd(t *testing.T, pid int) int {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pidfd_open %d: %v", pid, err)
	}
	t.Cleanup(func() {
		_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		_ = unix.Close(fd)
	})
	return fd
}

// exited waits up to within for the process behind pidfd to exit, and
// reports whether it did. Poll wakes on the exit itself.
func exited(pidfd int, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(max(0, time.Until(deadline).Milliseconds())))
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0
	}
}
