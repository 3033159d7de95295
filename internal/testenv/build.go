package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ModuleRoot is the directory of the module's go.mod as the go command
// sees it from the directory a test runs in. RepoRoot is the same for a
// test; this is for TestMain, which has no testing.TB.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not in a module")
	}
	return filepath.Dir(gomod), nil
}

// BuildCommands builds the module's main packages (./cmd/healer, ...) into
// dir, with -race when the tests run with it, and returns the binaries'
// paths by package.
func BuildCommands(dir string, pkgs ...string) (map[string]string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if race {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, pkgs...)...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", strings.Join(pkgs, " "), err, out)
	}
	bins := make(map[string]string, len(pkgs))
	for _, p := range pkgs {
		bins[p] = filepath.Join(dir, filepath.Base(p))
	}
	return bins, nil
}

// VerifyAudit runs `healer audit verify dir` and fails the test unless it
// exits 0.
func VerifyAudit(t testing.TB, healer, dir string) {
	t.Helper()
	out, err := exec.Command(healer, "audit", "verify", dir).CombinedOutput()
	if err != nil {
		t.Errorf("healer audit verify %s: %v; want exit 0\n%s", dir, err, out)
		return
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}

// RunCommand runs bin with args to completion and returns its exit code
// and combined output. A command that could not be run at all fails t.
func RunCommand(t testing.TB, bin string, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	default:
		t.Fatalf("%s %s: %v", filepath.Base(bin), strings.Join(args, " "), err)
		return -1, ""
	}
}
