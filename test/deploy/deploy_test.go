// Package deploy_test checks the configurations in deploy/ with the tools
// that will read them: promtool, amtool and the healer's own loader.
package deploy_test

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	composeloader "github.com/compose-spec/compose-go/v2/loader"
	composetypes "github.com/compose-spec/compose-go/v2/types"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/deus-ex-machina/deus/internal/app"
	"github.com/deus-ex-machina/deus/internal/listener"
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

var update = flag.Bool("update", false, "regenerate deploy/kubernetes/prometheusrule.yaml from rules/")

// prometheusRule builds the PrometheusRule object that carries every
// shipped rule group, in file order.
func prometheusRule(t *testing.T, root string) []byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "rules", "*.rules.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("rules: %v", err)
	}
	sort.Strings(files)
	var groups []any
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Groups []any `yaml:"groups"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		groups = append(groups, doc.Groups...)
	}
	obj := map[string]any{
		"apiVersion": "monitoring.coreos.com/v1",
		"kind":       "PrometheusRule",
		"metadata": map[string]any{
			"name": "deus-rules", "namespace": "deus",
			"labels": map[string]string{"app.kubernetes.io/part-of": "deus", "prometheus": "k8s", "role": "alert-rules"},
		},
		"spec": map[string]any{"groups": groups},
	}
	var buf bytes.Buffer
	buf.WriteString("# Generated from rules/*.rules.yml by `go test ./test/deploy -update`; do not edit.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(obj); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestPrometheusRuleIsCurrent fails when the PrometheusRule does not carry
// exactly the shipped rules.
func TestPrometheusRuleIsCurrent(t *testing.T) {
	t.Parallel()
	root := testenv.RepoRoot(t)
	path := filepath.Join(root, "deploy", "kubernetes", "prometheusrule.yaml")
	want := prometheusRule(t, root)
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil { //nolint:gosec // a public manifest
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run go test ./test/deploy -update", path)
	}
	// Its groups are valid Prometheus rule groups.
	var obj struct {
		APIVersion string         `yaml:"apiVersion"`
		Kind       string         `yaml:"kind"`
		Metadata   map[string]any `yaml:"metadata"`
		Spec       map[string]any `yaml:"spec"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(got))
	dec.KnownFields(true)
	if err := dec.Decode(&obj); err != nil {
		t.Fatal(err)
	}
	spec, err := yaml.Marshal(obj.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, errs := rulefmt.Parse(spec, false, model.UTF8Validation, parser.NewParser(parser.Options{}), nil); len(errs) > 0 {
		t.Errorf("the PrometheusRule's groups: %v", errs)
	}
}

// TestKubernetesManifests decodes every object strictly into its Kubernetes
// type (an unknown or misspelt field fails), and loads the healer's
// configuration from its ConfigMap.
func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	root := testenv.RepoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "deploy", "kubernetes", "*.yaml"))
	kinds := map[string]int{}
	for _, f := range files {
		if filepath.Base(f) == "prometheusrule.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(b, []byte("\n---\n")) {
			var meta struct {
				Kind string `json:"kind"`
			}
			if err := k8syaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			var obj any
			switch meta.Kind {
			case "DaemonSet":
				obj = &appsv1.DaemonSet{}
			case "Deployment":
				obj = &appsv1.Deployment{}
			case "Service":
				obj = &corev1.Service{}
			case "ConfigMap":
				obj = &corev1.ConfigMap{}
			case "Secret":
				obj = &corev1.Secret{}
			case "Namespace":
				obj = &corev1.Namespace{}
			default:
				t.Errorf("%s document %d: unexpected kind %q", f, i, meta.Kind)
				continue
			}
			if err := k8syaml.UnmarshalStrict(doc, obj); err != nil {
				t.Errorf("%s document %d (%s): %v", filepath.Base(f), i, meta.Kind, err)
				continue
			}
			kinds[meta.Kind]++
			if sec, ok := obj.(*corev1.Secret); ok && sec.StringData["web.yml"] != "" {
				requireAuthenticating(t, "Secret "+sec.Name, sec.StringData["web.yml"])
			}
			if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Data["healer.yml"] != "" {
				p := filepath.Join(t.TempDir(), "healer.yml")
				if err := os.WriteFile(p, []byte(cm.Data["healer.yml"]), 0o600); err != nil {
					t.Fatal(err)
				}
				if _, err := app.LoadConfig(p); err != nil {
					t.Errorf("the healer's ConfigMap: %v", err)
				}
			}
		}
	}
	if kinds["DaemonSet"] != 2 || kinds["ConfigMap"] != 1 {
		t.Errorf("objects: %v; want the exporter and healer DaemonSets and the healer's ConfigMap", kinds)
	}
}

// TestCompose loads the compose stack as docker compose does, with the
// Compose Specification's own loader and JSON schema (no engine runs
// here, so this is what "docker compose config" would check), and requires
// every file it mounts from the repository to exist and the configurations
// it mounts to pass the tools that read them.
func TestCompose(t *testing.T) {
	t.Parallel()
	root := testenv.RepoRoot(t)
	dir := filepath.Join(root, "deploy", "compose")
	path := filepath.Join(dir, "compose.yaml")
	project, err := composeloader.LoadWithContext(t.Context(), composetypes.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []composetypes.ConfigFile{{Filename: path}},
		Environment: composetypes.Mapping{},
	})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	want := []string{"alertmanager", "exporter", "grafana", "healer", "prometheus"}
	if got := project.ServiceNames(); !slices.Equal(sorted(got), want) {
		t.Errorf("services: %v, want %v", got, want)
	}
	for name, svc := range project.Services {
		if svc.Image == "" && svc.Build == nil {
			t.Errorf("service %s has neither an image nor a build", name)
		}
		for _, v := range svc.Volumes {
			if v.Type != composetypes.VolumeTypeBind || !strings.HasPrefix(v.Source, root) {
				continue // a named volume or a host path
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("service %s mounts %s: %v", name, v.Source, err)
			}
		}
	}
	for _, f := range []string{"grafana/provisioning/datasources/prometheus.yaml", "grafana/provisioning/dashboards/deus.yaml"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := yaml.Unmarshal(b, &v); err != nil || v["apiVersion"] != 1 {
			t.Errorf("%s: %v, apiVersion %v", f, err, v["apiVersion"])
		}
	}
	if _, err := app.LoadConfig(filepath.Join(dir, "healer.yml")); err != nil {
		t.Errorf("compose healer.yml: %v", err)
	}
	amtool := testenv.Binary(t, "amtool")
	if out, err := exec.Command(amtool, "check-config", filepath.Join(dir, "alertmanager.yml")).CombinedOutput(); err != nil {
		t.Errorf("amtool check-config compose alertmanager.yml: %v\n%s", err, out)
	}
	exporterWeb, err := os.ReadFile(filepath.Join(dir, "exporter-web.yml"))
	if err != nil {
		t.Fatal(err)
	}
	requireAuthenticating(t, "compose exporter-web.yml", string(exporterWeb))
	promtool := testenv.Binary(t, "promtool")
	if out, err := exec.Command(promtool, "check", "config", "--syntax-only", filepath.Join(dir, "prometheus.yml")).CombinedOutput(); err != nil {
		t.Errorf("promtool check config compose prometheus.yml: %v\n%s", err, out)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// requireAuthenticating fails unless web is a web configuration that makes
// every request authenticate, as a listener beyond loopback must.
func requireAuthenticating(t *testing.T, what, web string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(p, []byte(web), 0o600); err != nil {
		t.Fatal(err)
	}
	auth, err := listener.ReadWebConfig(p)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if !auth.Authenticates() {
		t.Errorf("%s: its web configuration authenticates %s; want basic auth or client certificates", what, auth)
	}
}
