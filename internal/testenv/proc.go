package testenv

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Proc is a child process run by a test: its output is kept (and logged
// when the test fails), and it is killed at cleanup if it still runs.
type Proc struct {
	t    testing.TB
	Name string
	Cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	err  error // Wait's, once done is closed
}

// StartProc starts bin with args in dir, named name in logs ("" for the
// binary's base name).
func StartProc(t testing.TB, dir, name, bin string, args ...string) *Proc {
	t.Helper()
	if name == "" {
		name = filepath.Base(bin)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &Proc{t: t, Name: name, Cmd: cmd, out: out, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s (pid %d) output:\n%s", p.Name, cmd.Process.Pid, out.String())
		}
	})
	return p
}

// Pid is the process's ID.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Output is what the process wrote so far, stdout and stderr together.
func (p *Proc) Output() string { return p.out.String() }

// Kill sends SIGKILL and waits until the process is reaped.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits for the exit, failing the test if it takes
// longer than within, and returns how it ended.
func (p *Proc) Stop(within time.Duration) error {
	p.t.Helper()
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		p.Kill()
		p.t.Fatalf("%s did not exit within %s of SIGTERM", p.Name, within)
		return nil
	}
}

// CheckNoRace fails the test if the (race-built) child reported a data
// race.
func (p *Proc) CheckNoRace() {
	p.t.Helper()
	if strings.Contains(p.out.String(), "WARNING: DATA RACE") {
		p.t.Errorf("%s reported a data race:\n%s", p.Name, p.out.String())
	}
}

// Eventually polls cond every interval until it holds or within passes,
// for conditions of servers the test does not control. cond says whether
// it holds and, when not, what is missing (for the failure message).
func Eventually(t testing.TB, within, interval time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, within, why)
		}
		time.Sleep(interval) // a poll interval, bounded by the deadline
	}
}
