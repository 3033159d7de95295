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
