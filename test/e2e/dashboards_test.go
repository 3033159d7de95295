package e2e_test

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/deus-ex-machina/deus/internal/testenv"
)

// needHistory are the panels that cannot show data in a run of a minute:
// what they plot needs an event this run does not cause. Every other panel
// must show data on every stack.
var needHistory = map[string]string{
	"Pressure stalls":       "needs PSI, which not every kernel or container has",
	"Action duration (p95)": "needs runs whose duration is in the rate window",
}

type dashboardPanels struct {
	Title  string `json:"title"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

var grafanaVars = strings.NewReplacer(`$job`, `.+`, `$instance`, `.+`, `$__rate_interval`, `1m`)

// checkDashboards asks the stack's query API every query of every shipped
// dashboard, with the variables at "All", and requires that each panel
// shows data.
func checkDashboards(t *testing.T, s *stack) {
	t.Helper()
	// Recorded series built on recorded series (signals on vitals) can take
	// a few evaluations to appear, more with vmalert's remote write.
	var empty []string
	eventually(t, 30*time.Second, "every panel shows data", func() (bool, string) {
		empty = emptyPanels(t, s)
		return len(empty) == 0, strings.Join(empty, "; ")
	})
}

// emptyPanels asks every query of every shipped dashboard, with the
// variables at "All", and returns the panels that show nothing (except
// those that need history).
func emptyPanels(t *testing.T, s *stack) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("dashboards: %v", err)
	}
	var empty []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboardPanels
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		for _, p := range d.Panels {
			series := 0
			for _, tg := range p.Targets {
				var res struct {
					Result []json.RawMessage `json:"result"`
				}
				u := s.queryURL + "/api/v1/query?query=" + url.QueryEscape(grafanaVars.Replace(tg.Expr))
				if err := apiData(u, s.queryToken, &res); err != nil {
					t.Fatalf("%s / %s: %v", d.Title, p.Title, err)
				}
				series += len(res.Result)
			}
			if series > 0 {
				continue
			}
			if _, ok := needHistory[p.Title]; ok {
				continue
			}
			empty = append(empty, d.Title+" / "+p.Title)
		}
	}
	sort.Strings(empty)
	return empty
}
