package dashboards

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

var update = flag.Bool("update", false, "rewrite the dashboard JSON files")

func fileName(d Dashboard) string { return strings.TrimPrefix(d.UID, "deus-") + ".json" }

// TestFilesAreCurrent fails when a JSON file differs from what All builds.
func TestFilesAreCurrent(t *testing.T) {
	for _, d := range All() {
		want, err := d.JSON()
		if err != nil {
			t.Fatal(err)
		}
		path := fileName(d)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil { //nolint:gosec // dashboards are public
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./dashboards -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go test ./dashboards -update", path)
		}
	}
	files, _ := filepath.Glob("*.json")
	if len(files) != len(All()) {
		t.Errorf("%d JSON files for %d dashboards: remove the files no dashboard builds", len(files), len(All()))
	}
}

// The rules of grafana/dashboard-linter (which the module proxy does not
// serve), checked on the files as Grafana reads them.
type dashboardJSON struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string         `json:"name"`
			Type       string         `json:"type"`
			Query      any            `json:"query"`
			Datasource map[string]any `json:"datasource"`
			Multi      bool           `json:"multi"`
			IncludeAll bool           `json:"includeAll"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID          int            `json:"id"`
		Type        string         `json:"type"`
		Title       string         `json:"title"`
		Description string         `json:"description"`
		Datasource  map[string]any `json:"datasource"`
		FieldConfig struct {
			Defaults struct {
				Unit string `json:"unit"`
			} `json:"defaults"`
		} `json:"fieldConfig"`
		Targets []struct {
			Expr       string         `json:"expr"`
			Datasource map[string]any `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

// Grafana's variables, replaced by values of their type before parsing.
var variables = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "$job", "job", "$instance", "instance")

func TestLint(t *testing.T) {
	files, err := filepath.Glob("*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	uids := map[string]string{}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var d dashboardJSON
			dec := json.NewDecoder(bytes.NewReader(b))
			if err := dec.Decode(&d); err != nil {
				t.Fatalf("not a dashboard: %v", err)
			}
			if other, dup := uids[d.UID]; dup || d.UID == "" {
				t.Errorf("uid %q is empty or also used by %s", d.UID, other)
			}
			uids[d.UID] = f

			// template-datasource-rule, template-job-rule, template-instance-rule.
			vars := map[string]bool{}
			for _, v := range d.Templating.List {
				switch v.Name {
				case "datasource":
					vars[v.Name] = v.Type == "datasource" && v.Query == "prometheus"
				case "job", "instance":
					vars[v.Name] = v.Type == "query" && v.Datasource["uid"] == "${datasource}" && v.Multi && v.IncludeAll
				}
			}
			for _, want := range []string{"datasource", "job", "instance"} {
				if !vars[want] {
					t.Errorf("template variable %q is missing or wrongly set up", want)
				}
			}

			ids := map[int]bool{}
			for _, p := range d.Panels {
				name := fmt.Sprintf("panel %d %q", p.ID, p.Title)
				if ids[p.ID] {
					t.Errorf("%s: duplicate id", name)
				}
				ids[p.ID] = true
				// panel-datasource-rule, panel-title-description-rule, panel-units-rule.
				if p.Datasource["uid"] != "${datasource}" {
					t.Errorf("%s: datasource %v; want ${datasource}", name, p.Datasource)
				}
				if p.Title == "" || p.Description == "" {
					t.Errorf("%s: needs a title and a description", name)
				}
				if p.FieldConfig.Defaults.Unit == "" {
					t.Errorf("%s: no unit", name)
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: no queries", name)
				}
				for _, tg := range p.Targets {
					lintExpr(t, name, tg.Expr)
					if tg.Datasource["uid"] != "${datasource}" {
						t.Errorf("%s: target datasource %v; want ${datasource}", name, tg.Datasource)
					}
				}
			}
		})
	}
}

// lintExpr applies target-promql-rule, target-rate-interval-rule,
// target-job-rule and target-instance-rule to one query.
func lintExpr(t *testing.T, panel, expr string) {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(variables.Replace(expr))
	if err != nil {
		t.Errorf("%s: query does not parse: %v\n%s", panel, err, expr)
		return
	}
	if strings.Contains(expr, "rate(") || strings.Contains(expr, "increase(") {
		if !strings.Contains(expr, "[$__rate_interval]") {
			t.Errorf("%s: a rate without [$__rate_interval]: %s", panel, expr)
		}
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		has := map[string]string{}
		for _, m := range vs.LabelMatchers {
			has[m.Name] = m.Type.String() + m.Value
		}
		if has["job"] != "=~job" || has["instance"] != "=~instance" {
			t.Errorf("%s: selector %s lacks job=~\"$job\" and instance=~\"$instance\"", panel, vs)
		}
		return nil
	})
}
