package action

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fakeProc writes a /proc with one stat file per process.
func fakeProc(t *testing.T, procs ...procStat) string {
	t.Helper()
	root := t.TempDir()
	for _, p := range procs {
		dir := filepath.Join(root, strconv.Itoa(p.PID))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		line := fmt.Sprintf("%d (%s) S %d %d %d 0 -1 %d 0 0 0 0 0 0 0 0 20 0 1 0 %d 0 0\n", p.PID, p.Comm, p.PPID, p.PID, p.PID, p.Flags, p.StartTime)
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Not a process: ignored.
	if err := os.WriteFile(filepath.Join(root, "uptime"), []byte("1 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestKillProcessRefusals(t *testing.T) {
	t.Parallel()
	proc := fakeProc(t,
		procStat{PID: 1, Comm: "systemd"},
		procStat{PID: 2, Comm: "kthreadd"},
		procStat{PID: 50, Comm: "kworker/0:1", PPID: 2, Flags: pfKthread},
		procStat{PID: 90, Comm: "bash", PPID: 80},
		procStat{PID: 80, Comm: "tmux: server", PPID: 1},
		procStat{PID: 100, Comm: "deus-healer", PPID: 90},
		procStat{PID: 200, Comm: "sshd", PPID: 1},
		procStat{PID: 300, Comm: "nginx", PPID: 1},
		procStat{PID: 301, Comm: "nginx", PPID: 300},
		procStat{PID: 400, Comm: "postgres", PPID: 1},
		procStat{PID: 500, Comm: "worker", PPID: 1},
		procStat{PID: 600, Comm: "deus-healer", PPID: 1},
	)
	k, err := NewKillProcess(KillOptions{ProcRoot: proc, Self: 100, NeverKill: []string{"postgres"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		params      map[string]string
		wantRefuse  string
		wantErr     string
		wantSummary string
	}{
		{name: "pid 1 is refused", params: map[string]string{"pid": "1"}, wantRefuse: "below the minimum"},
		{name: "a kernel thread is refused", params: map[string]string{"pid": "50"}, wantRefuse: "kernel thread"},
		{name: "kthreadd is refused", params: map[string]string{"pid": "2"}, wantRefuse: "kernel thread"},
		{name: "the healer itself is refused", params: map[string]string{"pid": "100"}, wantRefuse: "the healer itself"},
		{name: "the healer's parent is refused", params: map[string]string{"pid": "90"}, wantRefuse: "ancestor"},
		{name: "the healer's grandparent is refused", params: map[string]string{"pid": "80"}, wantRefuse: "ancestor"},
		{name: "sshd is on the default never-kill list", params: map[string]string{"pid": "200"}, wantRefuse: "never-kill"},
		{name: "sshd by name is refused", params: map[string]string{"name": "sshd"}, wantRefuse: "never-kill"},
		{name: "a configured never-kill name is refused", params: map[string]string{"pid": "400"}, wantRefuse: "never-kill"},
		{name: "another process with the healer's name is refused", params: map[string]string{"pid": "600"}, wantRefuse: "never-kill"},
		{name: "a name matching two processes is refused", params: map[string]string{"name": "nginx"}, wantRefuse: "2 processes are named \"nginx\" (300, 301)"},
		{name: "pid and name together are refused", params: map[string]string{"pid": "500", "name": "worker"}, wantRefuse: "either pid or name"},
		{name: "neither pid nor name is refused", params: map[string]string{}, wantRefuse: "either pid or name"},
		{name: "a name with shell syntax is refused", params: map[string]string{"name": "x;reboot"}, wantRefuse: "does not match"},
		{name: "an unknown signal is refused", params: map[string]string{"pid": "500", "signal": "STOP"}, wantRefuse: "not one of"},
		{name: "a missing pid is an error", params: map[string]string{"pid": "777"}, wantErr: "no process 777"},
		{name: "a missing name is an error", params: map[string]string{"name": "ghost"}, wantErr: `no process named "ghost"`},
		{name: "an allowed pid passes in a dry run", params: map[string]string{"pid": "500"}, wantSummary: "would send SIGTERM to worker[500]"},
		{name: "an allowed name passes in a dry run", params: map[string]string{"name": "worker", "signal": "KILL"}, wantSummary: "would send SIGKILL to worker[500]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := k.Run(t.Context(), Request{DryRun: true, Params: tt.params})
			switch {
			case tt.wantRefuse != "":
				if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tt.wantRefuse) {
					t.Errorf("got %v, want a refusal containing %q", err, tt.wantRefuse)
				}
				if IsRetryable(err) {
					t.Error("got a retryable refusal, want not retryable")
				}
			case tt.wantErr != "":
				if err == nil || errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if res.Summary != tt.wantSummary {
					t.Errorf("got summary %q, want %q", res.Summary, tt.wantSummary)
				}
			}
		})
	}
}

func TestKillProcessRefusesItsRealSelfAndParent(t *testing.T) {
	t.Parallel()
	k, err := NewKillProcess(KillOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{os.Getpid(), os.Getppid()} {
		_, err := k.Run(t.Context(), Request{RunID: "r1", Params: map[string]string{"pid": strconv.Itoa(pid), "signal": "KILL"}})
		if !errors.Is(err, ErrRefused) {
			t.Errorf("kill pid %d: got %v, want a refusal", pid, err)
		}
	}
}

func TestKillProcessKillsAChild(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		signal string
		want   syscall.Signal
	}{
		{name: "the default signal is TERM", want: syscall.SIGTERM},
		{name: "KILL sends SIGKILL", signal: "KILL", want: syscall.SIGKILL},
		{name: "INT sends SIGINT", signal: "INT", want: syscall.SIGINT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command("sleep", "600")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			k, err := NewKillProcess(KillOptions{})
			if err != nil {
				t.Fatal(err)
			}
			params := map[string]string{"pid": strconv.Itoa(cmd.Process.Pid)}
			if tt.signal != "" {
				params["signal"] = tt.signal
			}

			// A dry run leaves it running.
			if _, err := k.Run(t.Context(), Request{DryRun: true, Params: params}); err != nil {
				t.Fatalf("dry run: %v", err)
			}
			if st, err := readStat("/proc", cmd.Process.Pid); err != nil || st.State == 'Z' {
				t.Fatalf("after the dry run got state %q, %v, want sleep running", st.State, err)
			}

			res, err := k.Run(t.Context(), Request{RunID: "r1", Params: params})
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("sleep[%d]", cmd.Process.Pid); res.Target != want {
				t.Errorf("got target %q, want %q", res.Target, want)
			}
			err = cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("got wait error %v, want the sleep killed by a signal", err)
			}
			if got := ee.Sys().(syscall.WaitStatus).Signal(); got != tt.want {
				t.Errorf("got signal %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		line    string
		want    procStat
		wantErr bool
	}{
		{
			name: "a name with spaces and parentheses parses",
			line: "42 (a (b) c) S 7 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 999 0 0",
			want: procStat{PID: 42, Comm: "a (b) c", State: 'S', PPID: 7, PGrp: 42, Flags: 4194560, StartTime: 999},
		},
		{name: "a line without a name is an error", line: "42 S 7", wantErr: true},
		{name: "a short line is an error", line: "42 (x) S 7 1 2", wantErr: true},
		{name: "a bad ppid is an error", line: "42 (x) S x 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 0", wantErr: true},
		{name: "an empty line is an error", line: "", wantErr: true},
		{name: "a line without the pid is an error", line: "(x) S 7 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 0", wantErr: true},
		{name: "another process's line is an error", line: "43 (x) S 7 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseStat(42, []byte(tt.line))
			if tt.wantErr {
				if err == nil {
					t.Errorf("got %+v, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v, want %+v", got, err, tt.want)
			}
		})
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("42 (a (b) c) S 7 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 999 0 0"))
	f.Add([]byte("1 () Z"))
	f.Add([]byte("1 (a) S 7 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 999 0 0"))
	f.Add([]byte("(a) S 7 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 999 0 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseStat(1, b)
		if err != nil {
			return
		}
		if strings.ContainsAny(string(st.State), " \n") {
			t.Errorf("got state %q, want a non-space byte", st.State)
		}
		if !strings.HasPrefix(string(b), "1 (") {
			t.Errorf("parseStat(1, %q) accepted a stat that is not pid 1's", b)
		}
	})
}
