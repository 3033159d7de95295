package e2e_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/deus-ex-machina/deus/internal/testenv"
)

// A panel shows data when each of its queries returns a series with a
// number at the time looked at: NaN is drawn as nothing (and
// VictoriaMetrics leaves it out of its answers), +Inf is drawn.

// exemption returns, for a panel that may be empty on a stack, the
// condition under which it may, checked when the test runs: it returns why
// the panel cannot show data here, or "" when it must. It returns nil for
// every other panel.
func exemption(title string) func(t *testing.T, s *stack) string {
	switch title {
	case "Pressure stalls":
		return noPSI
	}
	return nil
}

// afterLastAction reports whether a panel plots the rate of the actions'
// runs: such a panel shows data while a run is inside the rate window, so
// it is looked at a few scrapes after the stack's last action ended (a
// dashboard whose time range covers that run shows it there), the others
// now.
func afterLastAction(title string) bool {
	return title == "Action duration (p95)"
}

// scrapesAfterAction is how long after an action ended its panels are
// looked at: a few of the test's 1s scrapes, so that the sample counting
// the run is in, and well inside the 1m rate window.
const scrapesAfterAction = 5 * time.Second

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
// dashboard, with the variables at "All", and requires that each shows
// data, except on the panels an exemption holds for.
func checkDashboards(t *testing.T, s *stack) {
	t.Helper()
	exempt := map[string]string{}
	for _, d := range dashboards(t) {
		for _, p := range d.Panels {
			cond := exemption(p.Title)
			if cond == nil {
				continue
			}
			if why := cond(t, s); why != "" {
				exempt[p.Title] = why
				t.Logf("panel %q is exempt on this stack: %s", p.Title, why)
			}
		}
	}
	actionEnd := lastActionEnd(t, s)
	at := actionEnd.Add(scrapesAfterAction)
	// Recorded series built on recorded series (signals on vitals) can take
	// a few evaluations to appear, more with vmalert's remote write. The
	// panels looked at after the last action wait for the scrapes after it.
	var empty []string
	var checked int
	eventually(t, 30*time.Second, "every panel shows data", func() (bool, string) {
		empty, checked = emptyPanels(t, s, exempt, at)
		return len(empty) == 0, strings.Join(empty, "; ")
	})
	t.Logf("%d queries of %d panels show data (%d exempt); the panels of runs at %s, %s after the last action ended",
		checked, countPanels(t), len(exempt), at.Format(time.RFC3339), scrapesAfterAction)
}

// emptyPanels asks every query of every shipped dashboard, with the
// variables at "All", and returns the queries that show nothing on panels
// not exempt, and how many queries it checked.
func emptyPanels(t *testing.T, s *stack, exempt map[string]string, actionAt time.Time) ([]string, int) {
	t.Helper()
	var empty []string
	checked := 0
	for _, d := range dashboards(t) {
		for _, p := range d.Panels {
			var at time.Time // now
			if afterLastAction(p.Title) {
				at = actionAt
			}
			for i, tg := range p.Targets {
				r, err := s.queryAt(grafanaVars.Replace(tg.Expr), at)
				if err != nil {
					t.Fatalf("%s / %s: %v", d.Title, p.Title, err)
				}
				if _, ok := exempt[p.Title]; ok {
					continue
				}
				checked++
				if n := numbers(r); n == 0 {
					empty = append(empty, fmt.Sprintf("%s / %s (query %d: %d series, none with a number)",
						d.Title, p.Title, i+1, len(r)))
				}
			}
		}
	}
	sort.Strings(empty)
	return empty, checked
}

// numbers counts the series that have a value other than NaN.
func numbers(r []series) int {
	n := 0
	for _, sr := range r {
		for _, p := range sr.samples {
			if !math.IsNaN(p.v) {
				n++
				break
			}
		}
	}
	return n
}

func dashboards(t *testing.T) []dashboardPanels {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("dashboards: %v", err)
	}
	var ds []dashboardPanels
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboardPanels
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ds = append(ds, d)
	}
	return ds
}

func countPanels(t *testing.T) int {
	t.Helper()
	n := 0
	for _, d := range dashboards(t) {
		n += len(d.Panels)
	}
	return n
}

// lastActionEnd is when the stack's last action ended: the last audit
// record of a step that finished (it carries the step's duration, observed
// into deus_healer_run_duration_seconds just before).
func lastActionEnd(t *testing.T, s *stack) time.Time {
	t.Helper()
	var end time.Time
	for _, rec := range s.h.auditRecords() {
		if rec.Kind == "finished" && rec.Fields["duration_seconds"] != "" && rec.Time.After(end) {
			end = rec.Time
		}
	}
	if end.IsZero() {
		t.Fatal("the audit log has no finished action: the scenarios ran none")
	}
	return end
}

// noPSI exempts the pressure panel where the kernel has no pressure stall
// information (older kernels, CONFIG_PSI off, psi=0, some containers): the
// exporter reads /proc/pressure/*.
func noPSI(*testing.T, *stack) string {
	var missing []string
	for _, res := range []string{"cpu", "memory", "io"} {
		if _, err := os.ReadFile(filepath.Join("/proc/pressure", res)); err != nil {
			missing = append(missing, err.Error())
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return "this kernel has no PSI: " + strings.Join(missing, "; ")
}
