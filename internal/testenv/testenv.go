// Package testenv gives tests what they need from the machine: a logger
// into the test's output, and the real binaries (promtool, Prometheus,
// node_exporter) that integration tests run. Under CI a missing binary fails
// the test; elsewhere it skips with the command that installs it.
package testenv

import (
	"log/slog"
	"os"
	"os/exec"
	"testing"
)

// Logger returns a logger that writes into the test's log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// CI reports whether the tests run under CI, where nothing may be skipped
// for want of a binary.
func CI() bool { return os.Getenv("CI") == "true" }

// Binary returns the path of an executable on PATH. When it is missing the
// test fails under CI and is skipped elsewhere.
func Binary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if CI() {
		t.Fatalf("%s not found on PATH (CI=true, so this fails instead of skipping): run make deps", name)
	}
	t.Skipf("%s not found on PATH: run make deps to install it", name)
	return ""
}
