package action

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestExecPassesArgvLiterally(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	args := []string{
		"$(touch " + filepath.Join(dir, "pwned") + ")",
		";rm -rf /",
		"`touch " + filepath.Join(dir, "pwned") + "`",
		"a b\tc",
		"-x",
		"--",
		"",
		"| cat /etc/shadow",
	}
	e := &Exec{Env: helperEnvs("args")}
	out, err := e.Run(t.Context(), append([]string{helperPath(t)}, args...), nil)
	if err != nil {
		t.Fatalf("Run: %v (output %q)", err, out.Text)
	}
	var got []string
	if err := json.Unmarshal([]byte(out.Text), &got); err != nil {
		t.Fatalf("decode %q: %v", out.Text, err)
	}
	if !slices.Equal(got, args) {
		t.Errorf("got args %q, want %q", got, args)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got pwned file stat error %v, want it not to exist", err)
	}
}

func TestExecEnvironmentIsMinimal(t *testing.T) {
	// t.Setenv forbids t.Parallel.
	t.Setenv("DEUS_TEST_SECRET", "hunter2")
	e := &Exec{Env: helperEnvs("env", "EXTRA=1")}
	out, err := e.Run(t.Context(), []string{helperPath(t)}, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := strings.Split(strings.TrimSpace(out.Text), "\n")
	slices.Sort(got)
	want := []string{helperEnv + "=env", "EXTRA=1", "GORACE=" + goRace, "LANG=C.UTF-8", "PATH=" + Path}
	if !slices.Equal(got, want) {
		t.Errorf("got environment %q, want %q", got, want)
	}
	if strings.Contains(out.Text, "hunter2") {
		t.Error("got the parent's secret in the child's environment, want it absent")
	}
}

func TestExecStdin(t *testing.T) {
	t.Parallel()
	e := &Exec{Env: helperEnvs("stdin")}
	in := []byte(`{"labels":{"alertname":"X"}}` + "\n$(id)")
	out, err := e.Run(t.Context(), []string{helperPath(t)}, in)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if out.Text != string(in) {
		t.Errorf("got %q, want %q", out.Text, in)
	}
}

func TestExecErrors(t *testing.T) {
	t.Parallel()
	helper := helperPath(t)
	tests := []struct {
		name       string
		env        []string
		argv       []string
		wantRetry  bool
		wantRefuse bool
		wantExit   int
	}{
		{name: "an empty argv is refused", argv: nil, wantRefuse: true, wantExit: -1},
		{name: "a relative path is refused", argv: []string{"./true"}, wantRefuse: true, wantExit: -1},
		{name: "a name not on the fixed PATH is retryable", argv: []string{"deus-no-such-command"}, wantRetry: true, wantExit: -1},
		{name: "a missing absolute path is retryable", argv: []string{"/nonexistent/bin/x"}, wantRetry: true, wantExit: -1},
		{name: "a directory is not a command", argv: []string{"/usr"}, wantRetry: true, wantExit: -1},
		{name: "an environment entry without = is refused", env: []string{"NOEQUALS"}, argv: []string{"true"}, wantRefuse: true, wantExit: -1},
		{name: "the environment may not set PATH", env: []string{"PATH=/tmp"}, argv: []string{"true"}, wantRefuse: true, wantExit: -1},
		{name: "a non-zero exit is not retryable", env: helperEnvs("exit", "HELPER_CODE=3"), argv: []string{"HELPER"}, wantExit: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			argv := slices.Clone(tt.argv)
			if len(argv) > 0 && argv[0] == "HELPER" {
				argv[0] = helper
			}
			e := &Exec{Env: tt.env}
			out, err := e.Run(t.Context(), argv, nil)
			if err == nil {
				t.Fatal("got no error, want one")
			}
			if got := IsRetryable(err); got != tt.wantRetry {
				t.Errorf("got retryable %v, want %v (%v)", got, tt.wantRetry, err)
			}
			if got := errors.Is(err, ErrRefused); got != tt.wantRefuse {
				t.Errorf("got refused %v, want %v (%v)", got, tt.wantRefuse, err)
			}
			if out.ExitCode != tt.wantExit {
				t.Errorf("got exit code %d, want %d", out.ExitCode, tt.wantExit)
			}
		})
	}
}

func TestExecFindsCommandsOnFixedPath(t *testing.T) {
	t.Parallel()
	e := &Exec{}
	out, err := e.Run(t.Context(), []string{"true"}, nil)
	if err != nil {
		t.Fatalf("Run true: %v", err)
	}
	if out.ExitCode != 0 {
		t.Errorf("got exit code %d, want 0", out.ExitCode)
	}
}

func TestExecBoundsOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		bytes         string
		max           int
		wantTruncated bool
		wantPrefix    string
		wantNote      string
	}{
		{name: "output under the bound is kept whole", bytes: "100", max: 1024, wantPrefix: strings.Repeat("x", 100)},
		{name: "output over the bound keeps its start and says how much was dropped", bytes: "100000", max: 1024, wantTruncated: true, wantPrefix: strings.Repeat("x", 1024), wantNote: "[98976 more bytes not kept]"},
		{name: "the default bound is 64 KiB", bytes: "70000", wantTruncated: true, wantPrefix: strings.Repeat("x", DefaultMaxOutput), wantNote: "[4464 more bytes not kept]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := &Exec{Env: helperEnvs("output", "HELPER_BYTES="+tt.bytes), MaxOutput: tt.max}
			out, err := e.Run(t.Context(), []string{helperPath(t)}, nil)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if out.Truncated != tt.wantTruncated {
				t.Errorf("got truncated %v, want %v", out.Truncated, tt.wantTruncated)
			}
			if !strings.HasPrefix(out.Text, tt.wantPrefix) {
				t.Errorf("got output of %d bytes, want it to start with %d x", len(out.Text), len(tt.wantPrefix))
			}
			rest := strings.TrimPrefix(out.Text, tt.wantPrefix)
			if got := strings.TrimSpace(rest); got != tt.wantNote {
				t.Errorf("got note %q, want %q", got, tt.wantNote)
			}
		})
	}
}

func TestBoundedBufferKeepsUTF8Valid(t *testing.T) {
	t.Parallel()
	b := &boundedBuffer{max: 5}
	_, _ = b.Write([]byte("abcdé")) // é is 2 bytes: the bound cuts it
	got, truncated := b.text()
	if want := "abcd\n[1 more bytes not kept]"; got != want || !truncated {
		t.Errorf("got %q, %v, want %q, true", got, truncated, want)
	}
}

func TestExecKillsTheWholeProcessGroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		timeout time.Duration // 0: the test cancels once the child has reported
		want    error
	}{
		{name: "a cancelled context kills the child and its child", want: context.Canceled},
		{name: "a deadline kills the child and its child", timeout: 1500 * time.Millisecond, want: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fifo := mkfifo(t)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.timeout > 0 {
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}

			type result struct {
				out Output
				err error
			}
			done := make(chan result, 1)
			e := &Exec{Env: helperEnvs("spawn", "HELPER_FIFO="+fifo)}
			go func() {
				out, err := e.Run(ctx, []string{helperPath(t)}, nil)
				done <- result{out, err}
			}()

			// Opening the FIFO waits for the child to open it; if the
			// child dies first, Run returns and the test opens the FIFO
			// itself to unblock the reader.
			pids := make(chan []int, 1)
			go func() {
				f, err := os.Open(fifo)
				if err != nil {
					pids <- nil
					return
				}
				defer f.Close()
				var pid, gpid int
				line, _ := bufio.NewReader(f).ReadString('\n')
				if _, err := fmt.Sscan(line, &pid, &gpid); err != nil {
					pids <- nil
					return
				}
				pids <- []int{pid, gpid}
			}()
			// Run may return (the deadline passed) while the child's
			// report is on its way, both ready at once, or just after it
			// came: the report is then still read, and a process found
			// reaped is one that exited, so that neither select's choice
			// nor the deadline's moment decides the test.
			var got []int
			var r result
			returned := false
			select {
			case got = <-pids:
			case r = <-done:
				returned = true
				if w, err := os.OpenFile(fifo, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
					w.Close()
				}
				if got = <-pids; got == nil {
					t.Fatalf("Run returned before the child reported: %v, %q", r.err, r.out.Text)
				}
			}
			if got == nil {
				t.Fatal("could not read the pids from the child")
			}
			pidfds := map[string]int{}
			for i, what := range []string{"child", "grandchild"} {
				fd, err := unix.PidfdOpen(got[i], 0)
				if errors.Is(err, unix.ESRCH) {
					// Already exited and reaped: Run has returned, or is
					// returning, and what it says is checked below.
					if !returned {
						r, returned = <-done, true
					}
					continue
				}
				if err != nil {
					t.Fatalf("pidfd_open %s %d: %v", what, got[i], err)
				}
				t.Cleanup(func() { _ = unix.Close(fd) })
				pidfds[what] = fd
			}

			if tt.timeout == 0 {
				cancel()
			}
			if !returned {
				r = <-done
			}
			if !errors.Is(r.err, tt.want) {
				t.Errorf("got error %v, want %v", r.err, tt.want)
			}
			if IsRetryable(r.err) {
				t.Error("got a retryable error for a killed command, want not retryable")
			}
			if r.out.ExitCode != -1 {
				t.Errorf("got exit code %d, want -1 (killed)", r.out.ExitCode)
			}
			for what, fd := range pidfds {
				waitExit(t, fd, what)
			}
		})
	}
}

func TestExecDoesNotStartAfterContextDone(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	dir := t.TempDir()
	_, err := (&Exec{}).Run(ctx, []string{"touch", filepath.Join(dir, "ran")}, nil)
	if !errors.Is(err, context.Canceled) || !IsRetryable(err) {
		t.Errorf("got %v (retryable %v), want a retryable context.Canceled", err, IsRetryable(err))
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got stat error %v, want the command not to have run", err)
	}
}
