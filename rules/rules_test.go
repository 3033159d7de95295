package rules

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/deus-ex-machina/deus/internal/testenv"
)

// dir lets the same checks run over rule files being written elsewhere:
// go test ./rules -args -dir=/path/to/rules.
var dir = flag.String("dir", ".", "directory holding the *.rules.yml files and their *_test.yml promtool tests")

// runbookPrefix is how an alert links to a runbook shipped in this
// repository; the rest of the URL is a file name under docs/runbooks.
const runbookPrefix = "https://github.com/deus-ex-machina/deus/blob/main/docs/runbooks/"

// recordingName is the level:metric:operations convention for recording rules.
var recordingName = regexp.MustCompile(`^[a-zA-Z_]+:[a-zA-Z0-9_]+:[a-zA-Z0-9_]+$`)

var severities = []string{"critical", "warning", "info"}

// ruleFiles returns the rule files under test, as absolute paths.
func ruleFiles(t *testing.T) []string {
	t.Helper()
	files := glob(t, "*.rules.yml")
	if len(files) == 0 {
		t.Fatalf("no *.rules.yml in %s", *dir)
	}
	return files
}

// testFiles returns the promtool unit test files, as absolute paths.
func testFiles(t *testing.T) []string {
	t.Helper()
	return glob(t, "*_test.yml")
}

func glob(t *testing.T, pattern string) []string {
	t.Helper()
	abs, err := filepath.Abs(*dir)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(abs, pattern))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// parseRules parses a rule file the way Prometheus 3 loads it: strict
// YAML, UTF-8 names, and the default PromQL parser, so experimental
// functions (double_exponential_smoothing and friends) are rejected.
func parseRules(path string) (*rulefmt.RuleGroups, []error) {
	var warnings bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&warnings, nil))
	groups, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, parser.NewParser(parser.Options{}), logger)
	if warnings.Len() > 0 {
		// For example a second YAML document, which Prometheus ignores.
		errs = append(errs, fmt.Errorf("%s: parser warnings: %s", path, strings.TrimSpace(warnings.String())))
	}
	return groups, errs
}

// run executes a tool with a fixed argv and returns its combined output.
func run(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = *dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestRulesParseWithPrometheus3(t *testing.T) {
	t.Parallel()
	root := testenv.RepoRoot(t)
	groupFile := map[string]string{} // group name -> file that defines it first
	for _, path := range ruleFiles(t) {
		name := filepath.Base(path)
		groups, errs := parseRules(path)
		if groups != nil {
			for _, g := range groups.Groups {
				if other, ok := groupFile[g.Name]; ok {
					t.Errorf("group %q is defined in %s and %s, want group names unique across files", g.Name, other, name)
					continue
				}
				groupFile[g.Name] = name
			}
		}
		t.Run(name+" parses and follows the conventions", func(t *testing.T) {
			t.Parallel()
			if len(errs) > 0 {
				t.Fatalf("got parse errors, want none:\n%v", errors.Join(errs...))
			}
			var missing []string
			for _, g := range groups.Groups {
				for _, r := range g.Rules {
					if r.Record != "" {
						if !recordingName.MatchString(r.Record) {
							t.Errorf("group %s: recording rule %q does not match %s (level:metric:operations)", g.Name, r.Record, recordingName)
						}
						continue
					}
					for _, p := range alertProblems(r) {
						t.Errorf("group %s: alert %s: %s", g.Name, r.Alert, p)
					}
					if rb, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookPrefix); ok {
						if !filepath.IsLocal(rb) || filepath.Ext(rb) != ".md" {
							t.Errorf("group %s: alert %s: runbook_url names %q, want a .md file under docs/runbooks", g.Name, r.Alert, rb)
							continue
						}
						if _, err := os.Stat(filepath.Join(root, "docs", "runbooks", filepath.FromSlash(rb))); err != nil {
							missing = append(missing, fmt.Sprintf("docs/runbooks/%s (alert %s)", rb, r.Alert))
						}
					}
				}
			}
			if len(missing) > 0 {
				t.Errorf("got runbooks missing from the repository, want none:\n\t%s", strings.Join(missing, "\n\t"))
			}
		})
	}
}

// alertProblems returns what an alerting rule lacks of the labels and
// annotations that Alertmanager routing, the healer and people rely on.
func alertProblems(r rulefmt.Rule) []string {
	var problems []string
	if s, ok := r.Labels["severity"]; !ok || !slices.Contains(severities, s) {
		problems = append(problems, fmt.Sprintf("got label severity %q, want one of %s", s, strings.Join(severities, ", ")))
	}
	if r.Labels["remediation"] == "" {
		problems = append(problems, `got no label remediation, want the healer's action (or "none")`)
	}
	for _, a := range []string{"summary", "description", "runbook_url"} {
		if strings.TrimSpace(r.Annotations[a]) == "" {
			problems = append(problems, fmt.Sprintf("got no annotation %s, want one", a))
		}
	}
	return problems
}

func TestPromtoolCheckRules(t *testing.T) {
	t.Parallel()
	promtool := testenv.Binary(t, "promtool")
	for _, path := range ruleFiles(t) {
		t.Run(filepath.Base(path)+" passes promtool check rules", func(t *testing.T) {
			t.Parallel()
			// --lint-fatal: duplicate rules fail too, instead of only printing.
			out, err := run(t, promtool, "check", "rules", "--lint=all", "--lint-fatal", path)
			if err != nil {
				t.Errorf("promtool check rules: got %v, want success; output:\n%s", err, out)
			}
		})
	}
}

func TestPromtoolTestRules(t *testing.T) {
	t.Parallel()
	promtool := testenv.Binary(t, "promtool")
	files := testFiles(t)
	if len(files) == 0 {
		t.Skipf("no *_test.yml in %s (TestEveryAlertHasATest fails if any alert lacks one)", *dir)
	}
	for _, path := range files {
		t.Run(filepath.Base(path)+" passes promtool test rules", func(t *testing.T) {
			t.Parallel()
			out, err := run(t, promtool, "test", "rules", path)
			if err != nil {
				t.Errorf("promtool test rules: got %v, want success; output:\n%s", err, out)
			}
		})
	}
}

// unitTestFile is the part of a promtool unit test file that says which
// rule files it loads and which alerts it tests.
type unitTestFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTests []struct {
			Alertname string `yaml:"alertname"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func TestEveryAlertHasATest(t *testing.T) {
	t.Parallel()
	// tested[rule file][alertname] is set when a test file that loads the
	// rule file has an alert_rule_test for the alert.
	tested := map[string]map[string]bool{}
	for _, path := range testFiles(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var tf unitTestFile
		if err := yaml.Unmarshal(b, &tf); err != nil {
			t.Errorf("%s: %v", filepath.Base(path), err)
			continue
		}
		var alerts []string
		for _, tc := range tf.Tests {
			for _, at := range tc.AlertRuleTests {
				alerts = append(alerts, at.Alertname)
			}
		}
		var loaded, missing []string
		for _, rf := range tf.RuleFiles {
			// promtool resolves rule_files against the test file's
			// directory and expands globs.
			pattern := rf
			if !filepath.IsAbs(pattern) {
				pattern = filepath.Join(filepath.Dir(path), rf)
			}
			matches, err := filepath.Glob(pattern)
			if err != nil || len(matches) == 0 {
				missing = append(missing, rf)
			}
			loaded = append(loaded, matches...)
		}
		t.Run(filepath.Base(path)+" loads rule files that exist", func(t *testing.T) {
			t.Parallel()
			if len(missing) > 0 {
				t.Errorf("got rule_files %q that match no file, want every rule file to exist", missing)
			}
			if len(tf.RuleFiles) == 0 {
				t.Error("got no rule_files, want the rule files under test")
			}
		})
		for _, rf := range loaded {
			if tested[rf] == nil {
				tested[rf] = map[string]bool{}
			}
			for _, a := range alerts {
				tested[rf][a] = true
			}
		}
	}
	for _, path := range ruleFiles(t) {
		name := filepath.Base(path)
		groups, errs := parseRules(path)
		t.Run("every alert of "+name+" has a promtool test", func(t *testing.T) {
			t.Parallel()
			if len(errs) > 0 {
				t.Fatalf("got parse errors, want none:\n%v", errors.Join(errs...))
			}
			var untested []string
			for _, g := range groups.Groups {
				for _, r := range g.Rules {
					if r.Alert != "" && !tested[path][r.Alert] {
						untested = append(untested, r.Alert)
					}
				}
			}
			if len(untested) > 0 {
				want := strings.TrimSuffix(name, ".rules.yml") + "_test.yml"
				t.Errorf("got alerts with no alert_rule_test in a test file that loads %s: %s; want each tested (in %s)",
					name, strings.Join(untested, ", "), want)
			}
		})
	}
}

func TestVmalertDryRun(t *testing.T) {
	t.Parallel()
	vmalert := testenv.Binary(t, "vmalert")
	for _, path := range ruleFiles(t) {
		t.Run(filepath.Base(path)+" loads in vmalert", func(t *testing.T) {
			t.Parallel()
			// vmalert -dryRun exits 0 for a file it finds no groups in (a
			// typo'd path, an empty file) and only logs a warning, so every
			// line logged at WARN or above counts as a failure. Lower levels
			// are only its flag dump.
			out, err := run(t, vmalert, "-dryRun", "-loggerLevel=WARN", "-rule="+path)
			if err != nil {
				t.Errorf("vmalert -dryRun: got %v, want exit status 0; output:\n%s", err, out)
			} else if out = strings.TrimSpace(out); out != "" {
				t.Errorf("vmalert -dryRun: got warnings or errors, want none:\n%s", out)
			}
		})
	}
}
