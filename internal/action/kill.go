package action

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultNeverKill returns the command names (as in /proc/<pid>/comm, at
// most 15 bytes) kill_process always refuses, whatever the configuration
// adds: init, the service manager and its journal, logins, the system bus.
func DefaultNeverKill() []string {
	return []string{
		"init", "systemd", "systemd-journal", "systemd-logind", "systemd-udevd",
		"sshd", "dbus-daemon", "dbus-broker", "dbus-broker-lau",
	}
}

// KillOptions configure kill_process.
type KillOptions struct {
	// ProcRoot is where /proc is mounted; "" means /proc.
	ProcRoot string
	// NeverKill adds command names to DefaultNeverKill.
	NeverKill []string
	// Self is the healer's pid; 0 means os.Getpid(). Its ancestors and its
	// command name are protected too.
	Self   int
	Logger *slog.Logger
}

// KillProcess is kill_process: send a signal to one process, named by pid
// or by command name. It refuses pid 1, kernel threads, the healer, its
// ancestors, and processes whose command is on the never-kill list, and a
// name that matches more than one process. It cannot be undone.
type KillProcess struct {
	procRoot  string
	self      int
	neverKill map[string]bool
	logger    *slog.Logger
}

// NewKillProcess returns kill_process.
func NewKillProcess(o KillOptions) (*KillProcess, error) {
	k := &KillProcess{procRoot: o.ProcRoot, self: o.Self, logger: o.Logger, neverKill: map[string]bool{}}
	if k.procRoot == "" {
		k.procRoot = "/proc"
	}
	if k.self == 0 {
		k.self = os.Getpid()
	}
	if k.logger == nil {
		k.logger = slog.New(slog.DiscardHandler)
	}
	for _, n := range append(DefaultNeverKill(), o.NeverKill...) {
		if n == "" || len(n) > 64 {
			return nil, fmt.Errorf("kill_process: never-kill name %q is empty or too long", n)
		}
		k.neverKill[n] = true
		if len(n) > 15 {
			k.neverKill[n[:15]] = true // the kernel cuts comm to 15 bytes
		}
	}
	if st, err := readStat(k.procRoot, k.self); err == nil {
		k.neverKill[st.Comm] = true
	}
	return k, nil
}

// signalNamed returns the signal of a name in kill_process's enum.
func signalNamed(name string) unix.Signal {
	switch name {
	case "KILL":
		return unix.SIGKILL
	case "HUP":
		return unix.SIGHUP
	case "INT":
		return unix.SIGINT
	default:
		return unix.SIGTERM
	}
}

// Spec implements Action.
func (k *KillProcess) Spec() Spec {
	return Spec{
		Name:    "kill_process",
		Doc:     "Send a signal to one process, by pid or by command name. Refuses pid 1, kernel threads, the healer and its ancestors, and protected commands.",
		Tier:    TierHigh,
		Timeout: 10 * time.Second,
		Params: []Param{
			{Name: "pid", Type: TypeInt, Min: Bound(2), Max: Bound(1 << 22), Doc: "Process id."},
			{Name: "name", Type: TypeString, Pattern: `[A-Za-z0-9_.:-]{1,64}`, Doc: "Command name, as in /proc/<pid>/comm; must match exactly one process."},
			{Name: "signal", Type: TypeEnum, Enum: []string{"TERM", "KILL", "HUP", "INT"}, Default: "TERM"},
		},
	}
}

// Run implements Action.
func (k *KillProcess) Run(_ context.Context, req Request) (Result, error) {
	params, err := validate(k.Spec(), req)
	if err != nil {
		return Result{}, err
	}
	pidStr, hasPID := params["pid"]
	name, hasName := params["name"]
	if hasPID == hasName {
		return Result{}, refusef("kill_process: give either pid or name")
	}
	var target procStat
	if hasPID {
		pid, _ := strconv.Atoi(pidStr)
		if target, err = k.stat(pid); err != nil {
			return Result{}, err
		}
	} else if target, err = k.byName(name); err != nil {
		return Result{}, err
	}
	if err := k.protected(target); err != nil {
		return Result{}, err
	}
	sigName := params["signal"]
	res := Result{Target: fmt.Sprintf("%s[%d]", target.Comm, target.PID)}
	if req.DryRun {
		res.Summary = fmt.Sprintf("would send SIG%s to %s", sigName, res.Target)
		return res, nil
	}
	err = signalProcess(target.PID, signalNamed(sigName), func() error {
		now, err := k.stat(target.PID)
		if err != nil {
			return err
		}
		if now.StartTime != target.StartTime || now.Comm != target.Comm {
			return retryable(fmt.Errorf("kill_process: pid %d is now another process (%s)", target.PID, now.Comm))
		}
		return nil
	})
	if errors.Is(err, os.ErrProcessDone) {
		return res, fmt.Errorf("kill_process: %s exited before the signal: %w", res.Target, err)
	}
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return res, err
		}
		return res, retryable(fmt.Errorf("kill_process: %w", err))
	}
	k.logger.Info("process_signalled", "pid", target.PID, "comm", target.Comm, "signal", sigName)
	res.Summary = fmt.Sprintf("sent SIG%s to %s", sigName, res.Target)
	return res, nil
}

// stat reads a process, saying plainly when it does not exist.
func (k *KillProcess) stat(pid int) (procStat, error) {
	st, err := readStat(k.procRoot, pid)
	if errors.Is(err, os.ErrNotExist) {
		return st, &Error{Err: fmt.Errorf("kill_process: no process %d: %w", pid, err)}
	}
	if err != nil {
		return st, retryable(fmt.Errorf("kill_process: %w", err))
	}
	return st, nil
}

// byName finds the one process whose command is name.
func (k *KillProcess) byName(name string) (procStat, error) {
	entries, err := os.ReadDir(k.procRoot)
	if err != nil {
		return procStat{}, retryable(fmt.Errorf("kill_process: %w", err))
	}
	var found []procStat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		st, err := readStat(k.procRoot, pid)
		if err != nil || st.Comm != name {
			continue // gone since the listing, or another
		}
		found = append(found, st)
	}
	switch len(found) {
	case 0:
		return procStat{}, &Error{Err: fmt.Errorf("kill_process: no process named %q", name)}
	case 1:
		return found[0], nil
	}
	pids := make([]string, 0, 10)
	for _, st := range found[:min(len(found), 10)] {
		pids = append(pids, strconv.Itoa(st.PID))
	}
	return procStat{}, refusef("kill_process: %d processes are named %q (%s); give a pid", len(found), name, strings.Join(pids, ", "))
}

// protected says why st may not be killed, or nil.
func (k *KillProcess) protected(st procStat) error {
	switch {
	case st.PID <= 1:
		return refusef("kill_process: pid %d is init", st.PID)
	case st.PID == 2 || st.PPID == 2 || st.Flags&pfKthread != 0:
		return refusef("kill_process: pid %d (%s) is a kernel thread", st.PID, st.Comm)
	case st.PID == k.self:
		return refusef("kill_process: pid %d is the healer itself", st.PID)
	case k.neverKill[st.Comm]:
		return refusef("kill_process: %s[%d] is on the never-kill list", st.Comm, st.PID)
	}
	if slices.Contains(k.ancestors(), st.PID) {
		return refusef("kill_process: pid %d (%s) is an ancestor of the healer", st.PID, st.Comm)
	}
	return nil
}

// ancestors returns the healer's parent, its parent, and so on.
func (k *KillProcess) ancestors() []int {
	var out []int
	pid := k.self
	for range 64 {
		st, err := readStat(k.procRoot, pid)
		if err != nil || st.PPID <= 0 {
			break
		}
		out = append(out, st.PPID)
		if st.PPID == 1 {
			break
		}
		pid = st.PPID
	}
	return out
}
