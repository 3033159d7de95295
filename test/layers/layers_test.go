// Package layers holds the import floors: the packages the pipeline is
// built on never depend, even indirectly, on the packages that wire it.
package layers

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/deus-ex-machina/deus/internal/testenv"
)

const module = "github.com/deus-ex-machina/deus/"

// floors are the packages below the pipeline's wiring; above are the ones
// they must never reach.
var (
	floors = []string{"collector", "alertmanager", "audit", "store", "guard", "query", "action", "atomicfile", "listener", "config"}
	above  = []string{"healer", "web", "app", "standalone"}
)

func TestFloorsNeverImportTheWiring(t *testing.T) {
	t.Parallel()
	root := testenv.RepoRoot(t)
	for _, f := range floors {
		pkg := module + "internal/" + f
		cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 2 {
			t.Fatalf("go list -deps %s listed %d packages; want it and its imports", pkg, len(deps))
		}
		for _, dep := range deps {
			for _, a := range above {
				if dep == module+"internal/"+a {
					t.Errorf("internal/%s depends on internal/%s (through go list -deps); the floors must not import the wiring", f, a)
				}
			}
		}
	}
}

// TestOnlyTheCommandsHandleSignals keeps os/signal out of internal/: the
// commands turn signals into a cancelled context and reload requests, so
// that nothing below them stops or reloads behind their back.
func TestOnlyTheCommandsHandleSignals(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./internal/...")
	cmd.Dir = testenv.RepoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./internal/...: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < len(floors) {
		t.Fatalf("go list ./internal/... listed %d packages; want at least the %d floors", len(lines), len(floors))
	}
	for _, line := range lines {
		fields := strings.Fields(line)
		for _, imp := range fields[1:] {
			if imp == "os/signal" {
				t.Errorf("%s imports os/signal; only cmd/ handles signals", fields[0])
			}
		}
	}
}
