package action

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// Path is the PATH of every command the actions run, and where a command
// named without a slash is looked up. The healer's own PATH is not used.
const Path = "/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultMaxOutput bounds the output Exec keeps of one command.
const DefaultMaxOutput = 64 << 10

// defaultWaitDelay is how long Exec waits for a command's output to close
// after the command exited or was killed.
const defaultWaitDelay = 2 * time.Second

// Runner runs one command. Every action that runs a command does so
// through a Runner, so tests can see the exact argv.
type Runner interface {
	// Run runs argv with stdin (nil for none) until it exits or ctx is
	// done, and returns what it printed. A command that exits non-zero is
	// an error, and so is a command that cannot be found or started; the
	// error says whether a retry is safe.
	Run(ctx context.Context, argv []string, stdin []byte) (Output, error)
}

// Output is what a command printed and how it ended.
type Output struct {
	// Text is stdout and stderr together, in the order written, cut at
	// the bound with a note saying how much was dropped.
	Text string
	// Truncated says Text was cut.
	Truncated bool
	// ExitCode is the command's exit status, or -1 when it did not exit
	// by itself (killed by a signal, or never started).
	ExitCode int
	// Held says what held the command's processes.
	Held Hold
}

// Exec runs commands as argv, never through a shell. A command runs in a
// process group of its own and, where the host has one, a cgroup of its
// own (see Confiner), so that when ctx is done, and when the command
// exits, everything it started is killed with it, even what left the
// process group (setsid). It gets SIGKILL if the healer dies (the thread
// that forked it, which stays locked until the command ends), and after a
// crash Reap kills what is left from the Hold recorded for it (see
// WithHoldReporter). Its environment is PATH (see Path), LANG=C.UTF-8 and
// Env, nothing inherited; its working directory is /.
//
// The zero Exec is ready to use.
type Exec struct {
	// Env holds extra KEY=value variables.
	Env []string
	// MaxOutput bounds Output.Text in bytes; 0 means DefaultMaxOutput.
	MaxOutput int
	// WaitDelay is how long Run waits for the output to close once the
	// command has exited or been killed (a process that left the group
	// may hold it open); 0 means 2s.
	WaitDelay time.Duration
	// Confine holds each command's processes; nil means the one
	// DetectConfiner finds at the first command.
	Confine Confiner

	once     sync.Once
	confiner Confiner
}

// Confiner returns the confiner the commands run in.
func (e *Exec) Confiner() Confiner {
	e.once.Do(func() {
		e.confiner = e.Confine
		if e.confiner == nil {
			e.confiner = DetectConfiner()
		}
	})
	return e.confiner
}

// Run implements Runner.
func (e *Exec) Run(ctx context.Context, argv []string, stdin []byte) (Output, error) {
	out := Output{ExitCode: -1}
	if len(argv) == 0 {
		return out, refusef("empty argv")
	}
	env, err := e.environ()
	if err != nil {
		return out, err
	}
	path, err := lookPath(argv[0])
	if err != nil {
		return out, err
	}
	if err := ctx.Err(); err != nil {
		return out, retryable(fmt.Errorf("run %s: %w", argv[0], err))
	}

	buf := &boundedBuffer{max: e.MaxOutput}
	if buf.max <= 0 {
		buf.max = DefaultMaxOutput
	}
	// Running a command named by configuration is the point; argv is
	// passed as is and never to a shell.
	cmd := exec.CommandContext(ctx, path) //nolint:gosec // G204: see above
	cmd.Args = append([]string(nil), argv...)
	cmd.Env = env
	cmd.Dir = "/"
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Stdout = buf
	cmd.Stderr = buf
	cl := e.cell()
	report := holdReporter(ctx)
	if report != nil {
		if err := report(cl.h); err != nil {
			_ = cl.remove()
			return out, retryable(fmt.Errorf("run %s: record what holds it: %w", argv[0], err))
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if err := cl.prepare(cmd.SysProcAttr); err != nil {
		_ = cl.remove()
		return out, retryable(fmt.Errorf("run %s: %w", argv[0], err))
	}
	cmd.Cancel = func() error {
		// The group's id is the leader's pid (Setpgid with Pgid 0); the
		// cgroup holds what left the group.
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if cl.version != 0 {
			_ = signalCgroup(cl.version, cl.h.Cgroup, nil)
		}
		return err
	}
	cmd.WaitDelay = e.WaitDelay
	if cmd.WaitDelay <= 0 {
		cmd.WaitDelay = defaultWaitDelay
	}

	// The command is forked, and waited for, on a locked thread: its
	// parent-death signal fires when the thread that forked it exits, and
	// a v1 cgroup is entered by that thread.
	started := make(chan error, 1)
	waited := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		clean := true
		defer func() {
			if clean {
				runtime.UnlockOSThread()
			}
			// Otherwise the thread is left in the command's cgroup:
			// ending the goroutine locked ends the thread.
		}()
		if err := cl.enter(); err != nil {
			started <- err
			return
		}
		err := cmd.Start()
		if lerr := cl.leave(); lerr != nil {
			clean = false
		}
		started <- err
		if err != nil {
			return
		}
		waited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		_ = cl.remove()
		return out, retryable(fmt.Errorf("start %s: %w", argv[0], err))
	}
	cl.started(cmd.Process.Pid)
	if report != nil {
		// Best effort: the first report named the cgroup already.
		_ = report(cl.h)
	}
	err = <-waited
	out.ExitCode = cmd.ProcessState.ExitCode()
	out.Held = cl.h
	if errors.Is(err, exec.ErrWaitDelay) && ctx.Err() == nil {
		// The command succeeded; something it started kept the output
		// open and was cut off.
		buf.note = fmt.Sprintf("[output closed %s after exit: a process left behind still held it]", cmd.WaitDelay)
		err = nil
	}
	// Nothing the command started outlives it.
	left, kerr := cl.kill(context.WithoutCancel(ctx))
	if len(left) > 0 {
		buf.note = strings.TrimSpace(buf.note + fmt.Sprintf("\n[%d processes left behind were killed]", len(left)))
	}
	if kerr == nil {
		kerr = cl.remove()
	}
	if kerr != nil && err == nil {
		err = fmt.Errorf("processes left behind: %w", kerr)
	}
	out.Text, out.Truncated = buf.text()
	switch {
	case err == nil:
		return out, nil
	case ctx.Err() != nil:
		return out, final(fmt.Errorf("run %s: process group killed: %w", argv[0], ctx.Err()))
	default:
		return out, final(fmt.Errorf("run %s: %w", argv[0], err))
	}
}

// cell makes the place that holds one command: from the confiner, or only
// a process group when it cannot make one (Hold.Fallback says why).
func (e *Exec) cell() *cell {
	id := newHoldID()
	cl, err := e.Confiner().newCell(id)
	if err != nil {
		cl = &cell{h: Hold{ID: id, Mechanism: HeldProcessGroup, Fallback: err.Error()}}
	}
	return cl
}

// environ returns the environment of a command.
func (e *Exec) environ() ([]string, error) {
	env := []string{"PATH=" + Path, "LANG=C.UTF-8"}
	for _, kv := range e.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsRune(kv, 0) {
			return nil, refusef("environment entry %q is not KEY=value", kv)
		}
		if k == "PATH" {
			return nil, refusef("environment may not set PATH")
		}
		env = append(env, kv)
	}
	return env, nil
}

// lookPath finds the executable for argv[0]: an absolute path as it is, a
// bare name in Path. A relative path with a slash is refused: it would
// depend on the working directory.
func lookPath(name string) (string, error) {
	if name == "" {
		return "", refusef("empty command name")
	}
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) {
			return "", refusef("command %q is a relative path", name)
		}
		if err := isExecutable(name); err != nil {
			return "", retryable(fmt.Errorf("command not found: %w", err))
		}
		return name, nil
	}
	for _, dir := range filepath.SplitList(Path) {
		p := filepath.Join(dir, name)
		if isExecutable(p) == nil {
			return p, nil
		}
	}
	return "", retryable(fmt.Errorf("command not found: %q in %s", name, Path))
}

func isExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// boundedBuffer keeps the first max bytes written to it and counts the
// rest. It never fails a write, so a chatty command is not killed by a
// broken pipe. exec.Cmd serialises writes when Stdout and Stderr are the
// same writer.
type boundedBuffer struct {
	max     int
	buf     []byte
	dropped int64
	note    string
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	keep := min(len(p), b.max-len(b.buf))
	b.buf = append(b.buf, p[:keep]...)
	b.dropped += int64(len(p) - keep)
	return len(p), nil
}

// text returns what was kept, as valid UTF-8, with notes.
func (b *boundedBuffer) text() (string, bool) {
	s := string(b.buf)
	if b.dropped > 0 {
		// The cut may have split a character: drop its first bytes.
		for i := 0; i < utf8.UTFMax-1 && len(s) > 0; i++ {
			if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size > 1 {
				break
			}
			s = s[:len(s)-1]
		}
		s += fmt.Sprintf("\n[%d more bytes not kept]", b.dropped)
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if b.note != "" {
		s += "\n" + b.note
	}
	return s, b.dropped > 0
}
