package action

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the commands the tests run: with
// DEUS_ACTION_HELPER set it is a small helper program instead. Exec gives
// children no inherited environment, so tests pass the variable in
// Exec.Env.
const helperEnv = "DEUS_ACTION_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(m.Run())
}

// helperMain is the helper program. Modes:
//
//	args     print os.Args[1:] as a JSON array
//	env      print the environment, one variable a line
//	stdin    copy stdin to stdout
//	exit     exit with status $HELPER_CODE
//	output   write $HELPER_BYTES bytes of 'x'
//	spawn    start a grandchild (mode block), write "pid gpid" to the
//	         FIFO $HELPER_FIFO, then block
//	escape   start a grandchild (mode block) in a session of its own
//	         (setsid: out of the process group), write "pid gpid" to the
//	         FIFO $HELPER_FIFO, then block, or exit 0 once a line comes on the FIFO $HELPER_EXIT
//	block    block until killed
//	service  write its pid to $HELPER_PIDFILE if set, then block until
//	         SIGTERM and exit 0
func helperMain(mode string) int {
	switch mode {
	case "args":
		b, _ := json.Marshal(os.Args[1:])
		fmt.Println(string(b))
	case "env":
		for _, kv := range os.Environ() {
			fmt.Println(kv)
		}
	case "stdin":
		_, _ = io.Copy(os.Stdout, os.Stdin)
	case "exit":
		n, _ := strconv.Atoi(os.Getenv("HELPER_CODE"))
		fmt.Println("exiting with", n)
		return n
	case "output":
		n, _ := strconv.Atoi(os.Getenv("HELPER_BYTES"))
		_, _ = os.Stdout.WriteString(strings.Repeat("x", n))
	case "spawn":
		self, err := os.Executable()
		if err != nil {
			return 2
		}
		g := exec.Command(self)
		g.Env = append(os.Environ(), helperEnv+"=block")
		g.Stdout = os.Stdout // holds the output pipe open, as a daemon would
		if err := g.Start(); err != nil {
			return 2
		}
		f, err := os.OpenFile(os.Getenv("HELPER_FIFO"), os.O_WRONLY, 0)
		if err != nil {
			return 2
		}
		_, _ = fmt.Fprintf(f, "%d %d\n", os.Getpid(), g.Process.Pid)
		f.Close()
		block()
	case "escape":
		self, err := os.Executable()
		if err != nil {
			return 2
		}
		g := exec.Command(self)
		g.Env = append(os.Environ(), helperEnv+"=block")
		g.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := g.Start(); err != nil {
			return 2
		}
		f, err := os.OpenFile(os.Getenv("HELPER_FIFO"), os.O_WRONLY, 0)
		if err != nil {
			return 2
		}
		_, _ = fmt.Fprintf(f, "%d %d\n", os.Getpid(), g.Process.Pid)
		f.Close()
		if os.Getenv("HELPER_EXIT") != "" {
			// Exit once the test has its pids (else it may find both
			// gone before it looks), leaving the grandchild behind.
			g, err := os.Open(os.Getenv("HELPER_EXIT"))
			if err != nil {
				return 2
			}
			_, _ = bufio.NewReader(g).ReadString('\n')
			return 0
		}
		block()
	case "block":
		block()
	case "service":
		if p := os.Getenv("HELPER_PIDFILE"); p != "" {
			if err := os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
				return 2
			}
		}
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		<-ch
		return 0
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
		return 2
	}
	return 0
}

// block waits to be killed. The helper is a separate program, not a test:
// it has nothing to wait for but a signal.
func block() {
	for {
		time.Sleep(time.Hour)
	}
}

// helperPath returns the test binary, which is the helper program.
func helperPath(t *testing.T) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitExit waits until the process behind pidfd has exited, or fails the
// test after a generous bound. Poll wakes on the exit itself.
func waitExit(t *testing.T, pidfd int, what string) {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 30_000)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("poll %s: %v", what, err)
		}
		if n == 0 {
			t.Fatalf("%s still running after 30s", what)
		}
		return
	}
}

// mkfifo makes a FIFO in a temporary folder.
func mkfifo(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// goRace stops a race-enabled helper from sleeping a second at exit.
const goRace = "atexit_sleep_ms=0"

// helperEnvs returns the environment that makes the test binary the helper
// in mode, with extra variables.
func helperEnvs(mode string, extra ...string) []string {
	return append([]string{helperEnv + "=" + mode, "GORACE=" + goRace}, extra...)
}

// needRoot skips a test that needs root (mounts, cgroups, other owners)
// when not run as root, unless under CI, where it fails instead.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("this test needs root, and CI is set: run the tests as root")
	}
	t.Skip("needs root (mounts and cgroups); CI runs it as root")
}

// mountFS mounts a fresh file system of type fstype (tmpfs, ramfs) on a
// new temporary folder, unmounted at cleanup.
func mountFS(t *testing.T, fstype string) string {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	if err := unix.Mount(fstype, dir, fstype, 0, ""); err != nil {
		t.Fatalf("mount %s on %s: %v", fstype, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}
