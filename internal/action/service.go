package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/deus-ex-machina/deus/internal/atomicfile"
)

// Service backends of restart_service.
const (
	// ServiceAuto restarts a unit configured in Services with the process
	// backend and any other with ServiceSystemd.
	ServiceAuto = "auto"
	// ServiceSystemd asks systemd over D-Bus, or runs systemctl when the
	// system bus cannot be reached.
	ServiceSystemd = "systemd"
	// ServiceSystemctl runs systemctl restart.
	ServiceSystemctl = "systemctl"
	// ServiceProcess stops the process in a pidfile and starts a command,
	// as Monit does, for hosts without systemd.
	ServiceProcess = "process"
)

// ProcessService is a service the process backend restarts.
type ProcessService struct {
	// Name is what the unit parameter names it by, a unit name such as
	// myapp.service.
	Name string
	// Pidfile holds the pid of the running service.
	Pidfile string
	// Start is the argv that starts the service; it runs detached (its
	// own session, stdin from /dev/null) and is not waited for.
	Start []string
	// Env holds extra KEY=value variables for Start, added to PATH and
	// LANG (nothing is inherited).
	Env []string
	// Stop is the signal that stops it; 0 means SIGTERM.
	Stop syscall.Signal
	// Comm, when set, is the command name (as in /proc/<pid>/comm) the
	// pidfile's process must have; another is a stale pidfile and is not
	// signalled.
	Comm string
	// LogFile, when set, receives the started process's stdout and
	// stderr (appended); otherwise they go to /dev/null.
	LogFile string
	// WritePidfile makes the healer write the started process's pid to
	// Pidfile, for services that do not write it themselves.
	WritePidfile bool
}

// RestartOptions configure restart_service.
type RestartOptions struct {
	// Backend is ServiceAuto (or ""), ServiceSystemd, ServiceSystemctl or
	// ServiceProcess.
	Backend string
	// Runner runs systemctl.
	Runner Runner
	// Services are restarted by the process backend.
	Services []ProcessService
	// ProcRoot is where /proc is mounted; "" means /proc.
	ProcRoot string
	Logger   *slog.Logger
}

// RestartService is restart_service: restart a service and wait until the
// restart is done (systemd's job finished; with the process backend, the
// old process exited and the new one started). It cannot be undone.
type RestartService struct {
	backend  string
	runner   Runner
	services map[string]ProcessService
	procRoot string
	self     int
	logger   *slog.Logger
	// dbusRestart is restartViaDBus; tests replace it.
	dbusRestart func(ctx context.Context, unit string) error
}

// NewRestartService returns restart_service.
func NewRestartService(o RestartOptions) (*RestartService, error) {
	r := &RestartService{
		backend: o.Backend, runner: o.Runner, procRoot: o.ProcRoot, logger: o.Logger,
		services: map[string]ProcessService{}, self: os.Getpid(), dbusRestart: restartViaDBus,
	}
	if r.backend == "" {
		r.backend = ServiceAuto
	}
	if r.procRoot == "" {
		r.procRoot = "/proc"
	}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	switch r.backend {
	case ServiceAuto, ServiceSystemd, ServiceSystemctl, ServiceProcess:
	default:
		errs = append(errs, fmt.Errorf("restart_service: unknown backend %q (want auto, systemd, systemctl or process)", r.backend))
	}
	if r.runner == nil && r.backend != ServiceProcess {
		errs = append(errs, errors.New("restart_service: no runner"))
	}
	unit := Param{Type: TypeUnit}
	for i, s := range o.Services {
		if _, err := unit.Check(s.Name); err != nil {
			errs = append(errs, fmt.Errorf("restart_service: services[%d].name: %w", i, err))
		}
		if _, dup := r.services[s.Name]; dup {
			errs = append(errs, fmt.Errorf("restart_service: services[%d]: %s defined twice", i, s.Name))
		}
		if !filepath.IsAbs(s.Pidfile) {
			errs = append(errs, fmt.Errorf("restart_service: services[%d].pidfile: %q is not an absolute path", i, s.Pidfile))
		}
		if len(s.Start) == 0 || s.Start[0] == "" || strings.Contains(s.Start[0], "/") && !filepath.IsAbs(s.Start[0]) {
			errs = append(errs, fmt.Errorf("restart_service: services[%d].start: argv[0] must be an absolute path or a name on %s", i, Path))
		}
		if s.LogFile != "" && !filepath.IsAbs(s.LogFile) {
			errs = append(errs, fmt.Errorf("restart_service: services[%d].log_file: %q is not an absolute path", i, s.LogFile))
		}
		if _, err := (&Exec{Env: s.Env}).environ(); err != nil {
			errs = append(errs, fmt.Errorf("restart_service: services[%d].env: %w", i, err))
		}
		r.services[s.Name] = s
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// Spec implements Action.
func (r *RestartService) Spec() Spec {
	return Spec{
		Name:    "restart_service",
		Doc:     "Restart a service and wait for the restart to finish (" + r.backend + ").",
		Tier:    TierMedium,
		Timeout: 90 * time.Second,
		Params:  []Param{{Name: "unit", Type: TypeUnit, Required: true, Doc: "Unit to restart (nginx.service)."}},
	}
}

// Run implements Action.
func (r *RestartService) Run(ctx context.Context, req Request) (Result, error) {
	params, err := validate(r.Spec(), req)
	if err != nil {
		return Result{}, err
	}
	unit := params["unit"]
	res := Result{Target: unit}
	svc, isProcess := r.services[unit]
	switch {
	case r.backend == ServiceProcess && !isProcess:
		return res, refusef("restart_service: %s is not a configured service", unit)
	case r.backend == ServiceProcess, r.backend == ServiceAuto && isProcess:
		return r.restartProcess(ctx, req.DryRun, svc)
	}
	argv := []string{"systemctl", "restart", "--", unit}
	if req.DryRun {
		res.Summary = fmt.Sprintf("would restart %s with %s", unit, r.backend)
		if r.backend == ServiceSystemctl {
			res.Argv = argv
		}
		return res, nil
	}
	if r.backend != ServiceSystemctl {
		err := r.dbusRestart(ctx, unit)
		if err == nil {
			res.Summary = "restarted " + unit + " over D-Bus"
			return res, nil
		}
		if !errors.Is(err, errNoBus) {
			return res, fmt.Errorf("restart_service: %w", err)
		}
		r.logger.Info("restart_fallback_to_systemctl", "unit", unit, "err", err)
	}
	res.Argv = argv
	out, err := r.runner.Run(ctx, argv, nil)
	res.Output = out.Text
	if err != nil {
		return res, fmt.Errorf("restart_service: %w", err)
	}
	res.Summary = "restarted " + unit + " with systemctl"
	return res, nil
}

// restartProcess stops the process in svc's pidfile, waits for it to exit,
// and starts svc again.
func (r *RestartService) restartProcess(ctx context.Context, dryRun bool, svc ProcessService) (Result, error) {
	res := Result{Target: svc.Name, Argv: svc.Start}
	old, why := r.running(svc)
	sig := svc.Stop
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	if dryRun {
		if old != nil {
			res.Summary = fmt.Sprintf("would send %s to %s[%d], wait for it to exit, then start %s", unix.SignalName(sig), old.Comm, old.PID, quoteArgv(svc.Start))
		} else {
			res.Summary = fmt.Sprintf("would start %s (%s)", quoteArgv(svc.Start), why)
		}
		return res, nil
	}
	var stopped string
	if old != nil {
		err := stopProcess(ctx, old.PID, sig, func() error {
			now, err := readStat(r.procRoot, old.PID)
			if err != nil || now.StartTime != old.StartTime {
				return fmt.Errorf("pid %d: %w", old.PID, os.ErrProcessDone)
			}
			return nil
		})
		switch {
		case errors.Is(err, os.ErrProcessDone):
			// Gone by itself in between: start it.
		case errors.Is(err, errNotSignalled):
			return res, retryable(fmt.Errorf("restart_service: %s: %w", svc.Name, err))
		case err != nil:
			return res, final(fmt.Errorf("restart_service: %s: %w", svc.Name, err))
		}
		stopped = fmt.Sprintf("stopped %s[%d], ", old.Comm, old.PID)
	}
	pid, err := r.startDetached(svc)
	if err != nil {
		return res, final(fmt.Errorf("restart_service: %s: %sstart: %w", svc.Name, stopped, err))
	}
	r.logger.Info("service_started", "unit", svc.Name, "pid", pid)
	res.Summary = fmt.Sprintf("%sstarted %s as pid %d", stopped, svc.Name, pid)
	return res, nil
}

// running returns the process in svc's pidfile, or nil and why not.
func (r *RestartService) running(svc ProcessService) (*procStat, string) {
	pid, err := readPidfile(svc.Pidfile)
	if err != nil {
		return nil, err.Error()
	}
	st, err := readStat(r.procRoot, pid)
	switch {
	case err != nil:
		return nil, fmt.Sprintf("pid %d in %s is not running", pid, svc.Pidfile)
	case st.State == 'Z':
		return nil, fmt.Sprintf("pid %d in %s has exited", pid, svc.Pidfile)
	case pid == r.self || st.PPID == 2 || st.Flags&pfKthread != 0:
		return nil, fmt.Sprintf("pid %d in %s is not the service (the healer or a kernel thread)", pid, svc.Pidfile)
	case svc.Comm != "" && st.Comm != svc.Comm:
		return nil, fmt.Sprintf("pid %d in %s is %s, not %s: stale pidfile", pid, svc.Pidfile, st.Comm, svc.Comm)
	}
	return &st, ""
}

// readPidfile reads a pid, refusing 0, 1 and anything that is not a
// number.
func readPidfile(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("no pidfile %s", path)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 32))
	if err != nil {
		return 0, fmt.Errorf("read pidfile %s: %w", path, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("pidfile %s holds no valid pid", path)
	}
	return pid, nil
}

// startDetached starts svc in a session of its own and returns its pid. A
// goroutine reaps it when it exits.
func (r *RestartService) startDetached(svc ProcessService) (int, error) {
	env, err := (&Exec{Env: svc.Env}).environ()
	if err != nil {
		return 0, err
	}
	path, err := lookPath(svc.Start[0])
	if err != nil {
		return 0, err
	}
	cmd := &exec.Cmd{
		Path:        path,
		Args:        append([]string(nil), svc.Start...),
		Env:         env,
		Dir:         "/",
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if svc.LogFile != "" {
		f, err := os.OpenFile(svc.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return 0, fmt.Errorf("open log file: %w", err)
		}
		defer f.Close() // the child has its own copy
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	go func() { _ = cmd.Wait() }()
	if svc.WritePidfile {
		if err := atomicfile.WriteFile(svc.Pidfile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
			return pid, fmt.Errorf("started pid %d but could not write %s: %w", pid, svc.Pidfile, err)
		}
	}
	return pid, nil
}

// errNotSignalled is wrapped when stopProcess failed before it sent the
// signal.
var errNotSignalled = errors.New("not signalled")

// stopProcess sends sig to pid (after same confirms it is still the process
// the caller vetted) and waits until it has exited or ctx is done.
func stopProcess(ctx context.Context, pid int, sig unix.Signal, same func() error) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("pid %d: %w", pid, os.ErrProcessDone)
	}
	if errors.Is(err, unix.ENOSYS) {
		return stopProcessNoPidfd(ctx, pid, sig, same)
	}
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w: %w", pid, errNotSignalled, err)
	}
	defer func() { _ = unix.Close(fd) }()
	if err := same(); err != nil {
		return err
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("pid %d: %w", pid, os.ErrProcessDone)
		}
		return fmt.Errorf("signal pid %d: %w: %w", pid, errNotSignalled, err)
	}
	// A pidfd becomes readable when its process exits.
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}} //nolint:gosec // G115: a descriptor fits in int32
	for {
		n, err := unix.Poll(fds, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("wait for pid %d: %w", pid, err)
		}
		if n > 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("pid %d did not exit after %s: %w", pid, unix.SignalName(sig), err)
		}
	}
}

// stopProcessNoPidfd is stopProcess for kernels before 5.3: it polls
// /proc.
func stopProcessNoPidfd(ctx context.Context, pid int, sig unix.Signal, same func() error) error {
	if err := same(); err != nil {
		return err
	}
	if err := unix.Kill(pid, sig); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("pid %d: %w", pid, os.ErrProcessDone)
		}
		return fmt.Errorf("signal pid %d: %w: %w", pid, errNotSignalled, err)
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if st, err := readStat("/proc", pid); err != nil || st.State == 'Z' {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pid %d did not exit after %s: %w", pid, unix.SignalName(sig), ctx.Err())
		case <-t.C:
		}
	}
}
