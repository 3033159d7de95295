// Package deploy_test checks the configurations in deploy/ with the tools
// that will read them: promtool, amtool and the healer's own loader.
package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deus-ex-machina/deus/internal/app"
	"github.com/deus-ex-machina/deus/internal/testenv"
)

func TestPrometheusConfig(t *testing.T) {
	t.Parallel()
	root := testenv.RepoRoot(t)
	promtool := testenv.Binary(t, "promtool")
	// Lay the files out as a deployment does: the rules next to the config.
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "rules"), 0o750); err != nil {
		t.Fatal(err)
	}
	rules, _ := filepath.Glob(filepath.Join(root, "rules", "*.rules.yml"))
	if len(rules) == 0 {
		t.Fatal("no rules/*.rules.yml")
	}
	for _, r := range rules {
		b, err := os.ReadFile(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "rules", filepath.Base(r)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	// promtool checks every rule file the config names: make sure it found them.
	if got := strings.Count(string(out), "rules found"); got != len(rules) {
		t.Errorf("promtool checked %d rule files; want %d\n%s", got, len(rules), out)
	}
}

func TestAlertmanagerConfig(t *testing.T) {
	t.Parallel()
	amtool := testenv.Binary(t, "amtool")
	path := filepath.Join(testenv.RepoRoot(t), "deploy", "alertmanager", "alertmanager.yml")
	out, err := exec.Command(amtool, "check-config", path).CombinedOutput()
	if err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
}

func TestHealerConfig(t *testing.T) {
	t.Parallel()
	path := filepath.Join(testenv.RepoRoot(t), "deploy", "healer", "healer.yml")
	c, err := app.LoadConfig(path)
	if err != nil {
		t.Fatalf("healer check-config: %v", err)
	}
	if !c.Global.DryRun {
		t.Error("the example configuration does not start in dry-run mode")
	}
	if len(c.Runbooks) == 0 {
		t.Error("the example configuration has no runbooks")
	}
}
