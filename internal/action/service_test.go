package action

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"
)

// startService starts the helper as a service and returns its pid and a
// channel that yields once it has exited and been reaped.
func startService(t *testing.T) (int, <-chan error) {
	t.Helper()
	cmd := exec.Command(helperPath(t))
	cmd.Env = helperEnvs("service")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd.Process.Pid, done
}

// stopLater makes sure a process the action started is gone when the test
// ends.
func stopLater(t *testing.T, pid int) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pidfd_open %d: %v", pid, err)
	}
	t.Cleanup(func() {
		_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		waitExit(t, fd, "started service")
		_ = unix.Close(fd)
	})
}

// comm is the command name the kernel gives the test binary.
func comm(t *testing.T) string {
	t.Helper()
	st, err := readStat("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	return st.Comm
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestRestartServiceProcessBackendRestartsARealProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "helper.pid")
	logFile := filepath.Join(dir, "helper.log")
	oldPid, oldDone := startService(t)
	if err := os.WriteFile(pidfile, []byte(strconv.Itoa(oldPid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := NewRestartService(RestartOptions{Backend: ServiceProcess, Services: []ProcessService{{
		Name: "helper.service", Pidfile: pidfile, Start: []string{helperPath(t)}, Env: helperEnvs("service"),
		Comm: comm(t), LogFile: logFile, WritePidfile: true,
	}}})
	if err != nil {
		t.Fatal(err)
	}

	dry, err := r.Run(t.Context(), Request{DryRun: true, Params: map[string]string{"unit": "helper.service"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("would send SIGTERM to %s[%d], wait for it to exit, then start", comm(t), oldPid); !strings.HasPrefix(dry.Summary, want) {
		t.Errorf("got dry-run summary %q, want it to start with %q", dry.Summary, want)
	}
	if got := readPid(t, pidfile); got != oldPid {
		t.Fatalf("after the dry run got pidfile %d, want %d unchanged", got, oldPid)
	}

	res, err := r.Run(t.Context(), Request{RunID: "r1", Params: map[string]string{"unit": "helper.service"}})
	if err != nil {
		t.Fatal(err)
	}
	newPid := readPid(t, pidfile)
	stopLater(t, newPid)
	if newPid == oldPid {
		t.Fatalf("got pidfile %d, want the new process's pid", newPid)
	}
	// The old one exited on SIGTERM (the helper exits 0 on it, or dies of
	// it if it had not yet set up its handler).
	if err := <-oldDone; err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			t.Errorf("got old process exit %v, want a clean exit or SIGTERM", err)
		}
	}
	if want := fmt.Sprintf("stopped %s[%d], started helper.service as pid %d", comm(t), oldPid, newPid); res.Summary != want {
		t.Errorf("got summary %q, want %q", res.Summary, want)
	}
	if sid, err := unix.Getsid(newPid); err != nil || sid != newPid {
		t.Errorf("got session %d, %v, want the new process to lead its own session %d", sid, err, newPid)
	}
	if st, err := readStat("/proc", newPid); err != nil || st.State == 'Z' {
		t.Errorf("got new process state %q, %v, want it running", st.State, err)
	}
	if _, err := os.Stat(logFile); err != nil {
		t.Errorf("got %v, want the log file created", err)
	}
}

func TestRestartServiceProcessBackendStartsWhenNotRunning(t *testing.T) {
	t.Parallel()
	sleeper := exec.Command("sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })

	tests := []struct {
		name        string
		pidfile     string // content; "" means no pidfile
		wantSummary string
	}{
		{name: "a missing pidfile means start", wantSummary: "started helper.service as pid"},
		{name: "a pidfile of another command is stale and its process is left alone", pidfile: strconv.Itoa(sleeper.Process.Pid), wantSummary: "started helper.service as pid"},
		{name: "a pidfile holding 1 is ignored", pidfile: "1", wantSummary: "started helper.service as pid"},
		{name: "a pidfile holding garbage is ignored", pidfile: "$(reboot)", wantSummary: "started helper.service as pid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pidfile := filepath.Join(t.TempDir(), "helper.pid")
			if tt.pidfile != "" {
				if err := os.WriteFile(pidfile, []byte(tt.pidfile), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r, err := NewRestartService(RestartOptions{Backend: ServiceAuto, Runner: &fakeRunner{}, Services: []ProcessService{{
				Name: "helper.service", Pidfile: pidfile, Start: []string{helperPath(t)}, Env: helperEnvs("service"),
				Comm: comm(t), WritePidfile: true,
			}}})
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.Run(t.Context(), Request{RunID: "r1", Params: map[string]string{"unit": "helper.service"}})
			if err != nil {
				t.Fatal(err)
			}
			stopLater(t, readPid(t, pidfile))
			if !strings.HasPrefix(res.Summary, tt.wantSummary) {
				t.Errorf("got summary %q, want it to start with %q", res.Summary, tt.wantSummary)
			}
		})
	}
	if st, err := readStat("/proc", sleeper.Process.Pid); err != nil || st.State == 'Z' {
		t.Errorf("got sleep state %q, %v, want it untouched", st.State, err)
	}
}

func TestRestartServiceSystemd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		backend     string
		dbus        error
		unit        string
		wantCalls   [][]string
		wantErr     bool
		wantRefuse  bool
		wantSummary string
	}{
		{name: "systemctl runs systemctl restart", backend: ServiceSystemctl, unit: "nginx.service", wantCalls: [][]string{{"systemctl", "restart", "--", "nginx.service"}}, wantSummary: "restarted nginx.service with systemctl"},
		{name: "systemd uses D-Bus", backend: ServiceSystemd, unit: "nginx.service", wantSummary: "restarted nginx.service over D-Bus"},
		{name: "systemd falls back to systemctl without a bus", backend: ServiceSystemd, dbus: fmt.Errorf("%w: no socket", errNoBus), unit: "nginx.service", wantCalls: [][]string{{"systemctl", "restart", "--", "nginx.service"}}, wantSummary: "restarted nginx.service with systemctl"},
		{name: "a failed D-Bus job is an error, not a fallback", backend: ServiceSystemd, dbus: final(errors.New(`job finished with result "failed"`)), unit: "nginx.service", wantErr: true},
		{name: "auto uses systemd for units that are not configured", backend: ServiceAuto, unit: "nginx.service", wantSummary: "restarted nginx.service over D-Bus"},
		{name: "the process backend refuses units that are not configured", backend: ServiceProcess, unit: "nginx.service", wantRefuse: true},
		{name: "a unit that looks like a flag is refused", backend: ServiceSystemctl, unit: "--force", wantRefuse: true},
		{name: "a unit with shell syntax is refused", backend: ServiceSystemctl, unit: "x;reboot.service", wantRefuse: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			runner := &fakeRunner{}
			r, err := NewRestartService(RestartOptions{Backend: tt.backend, Runner: runner})
			if err != nil {
				t.Fatal(err)
			}
			var asked []string
			r.dbusRestart = func(_ context.Context, unit string) error {
				asked = append(asked, unit)
				return tt.dbus
			}
			dry, err := r.Run(t.Context(), Request{DryRun: true, Params: map[string]string{"unit": tt.unit}})
			if err == nil && (len(runner.Calls()) != 0 || len(asked) != 0) {
				t.Fatalf("dry run: got calls %q and D-Bus %q, want none", runner.Calls(), asked)
			}
			if err == nil && !strings.HasPrefix(dry.Summary, "would restart "+tt.unit) {
				t.Errorf("got dry-run summary %q, want it to say what it would restart", dry.Summary)
			}
			res, err := r.Run(t.Context(), Request{RunID: "r1", Params: map[string]string{"unit": tt.unit}})
			switch {
			case tt.wantRefuse:
				if !errors.Is(err, ErrRefused) {
					t.Errorf("got %v, want a refusal", err)
				}
			case tt.wantErr:
				if err == nil {
					t.Error("got no error, want one")
				}
			case err != nil:
				t.Fatal(err)
			}
			if calls := runner.Calls(); !slices.EqualFunc(calls, tt.wantCalls, slices.Equal) {
				t.Errorf("got calls %q, want %q", calls, tt.wantCalls)
			}
			if res.Summary != tt.wantSummary {
				t.Errorf("got summary %q, want %q", res.Summary, tt.wantSummary)
			}
		})
	}
}

func TestNewRestartServiceRefusesBadServices(t *testing.T) {
	t.Parallel()
	good := ProcessService{Name: "a.service", Pidfile: "/run/a.pid", Start: []string{"/usr/bin/a"}}
	tests := []struct {
		name string
		o    RestartOptions
	}{
		{name: "an unknown backend is refused", o: RestartOptions{Backend: "upstart", Runner: &fakeRunner{}}},
		{name: "a name that is not a unit is refused", o: RestartOptions{Backend: ServiceProcess, Services: []ProcessService{{Name: "a", Pidfile: "/run/a.pid", Start: []string{"/usr/bin/a"}}}}},
		{name: "a relative pidfile is refused", o: RestartOptions{Backend: ServiceProcess, Services: []ProcessService{{Name: "a.service", Pidfile: "a.pid", Start: []string{"/usr/bin/a"}}}}},
		{name: "an empty start is refused", o: RestartOptions{Backend: ServiceProcess, Services: []ProcessService{{Name: "a.service", Pidfile: "/run/a.pid"}}}},
		{name: "a relative start path is refused", o: RestartOptions{Backend: ServiceProcess, Services: []ProcessService{{Name: "a.service", Pidfile: "/run/a.pid", Start: []string{"bin/a"}}}}},
		{name: "a service defined twice is refused", o: RestartOptions{Backend: ServiceProcess, Services: []ProcessService{good, good}}},
		{name: "systemd without a runner is refused", o: RestartOptions{Backend: ServiceSystemd}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewRestartService(tt.o); err == nil {
				t.Error("got no error, want one")
			}
		})
	}
}

func TestWaitJob(t *testing.T) {
	t.Parallel()
	const job = dbus.ObjectPath("/org/freedesktop/systemd1/job/42")
	removed := func(path dbus.ObjectPath, result string) *dbus.Signal {
		return &dbus.Signal{Name: systemdManager + ".JobRemoved", Body: []any{uint32(1), path, "nginx.service", result}}
	}
	tests := []struct {
		name    string
		signals []*dbus.Signal
		close   bool
		cancel  bool
		wantErr string
	}{
		{name: "done is success", signals: []*dbus.Signal{removed(job, "done")}},
		{name: "other jobs and signals are skipped", signals: []*dbus.Signal{
			{Name: "org.freedesktop.DBus.NameAcquired", Body: []any{"x"}},
			removed("/org/freedesktop/systemd1/job/41", "failed"),
			{Name: systemdManager + ".JobRemoved", Body: []any{"short"}},
			removed(job, "done"),
		}},
		{name: "failed is an error", signals: []*dbus.Signal{removed(job, "failed")}, wantErr: `result "failed"`},
		{name: "a closed connection is an error", close: true, wantErr: "bus connection closed"},
		{name: "a done context is an error", cancel: true, wantErr: "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ch := make(chan *dbus.Signal, len(tt.signals))
			for _, s := range tt.signals {
				ch <- s
			}
			if tt.close {
				close(ch)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.cancel {
				cancel()
			}
			err := waitJob(ctx, ch, job)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("got %v, want success", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			}
			if IsRetryable(err) {
				t.Error("got a retryable error after the job was queued, want not retryable")
			}
		})
	}
}
