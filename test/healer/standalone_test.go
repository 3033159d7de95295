package healer_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deus-ex-machina/deus/internal/testenv"
)

// TestStandalone runs the healer with no Prometheus: it collects this
// host's vitals, evaluates rules in-process, and acts on what they fire
// through the same pipeline as a webhook, once per firing; the query API
// answers under /prometheus/.
func TestStandalone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rulesDir := filepath.Join(dir, "rules")
	if err := os.Mkdir(rulesDir, 0o750); err != nil {
		t.Fatal(err)
	}
	// Fires as soon as this host's collectors have been scraped once.
	writeFile(t, filepath.Join(rulesDir, "test.rules.yml"), `groups:
  - name: test
    rules:
      - alert: HostSeen
        expr: up{job="node"} == 1 and on(instance) count by (instance) (node_cpu_seconds_total) > 0
        labels: {severity: info, remediation: record}
        annotations: {summary: "{{ $labels.instance }} is collected"}
`)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	ran := filepath.Join(dir, "ran")
	h := newHealer(t, dir, map[string]any{
		"global": map[string]any{"max_tier": "low"}, // identity: the host name, the default
		"actions": map[string]any{"commands": []any{map[string]any{
			"name": "record", "tier": "low", "argv": []string{"/usr/bin/tee", "-a", ran},
		}}},
		"runbooks": []any{map[string]any{
			"name": "seen", "match": []string{`alertname="HostSeen"`}, "steps": []any{map[string]any{"action": "record"}},
			"precheck": map[string]any{"expr": `up{job="node"} == 1`, "labels": []string{"instance"}},
		}},
	})
	h.proc = startProc(t, dir, healerBin, "serve", "--config.file="+h.config, "--web.listen-address="+h.addr,
		"--standalone.scrape-interval=200ms", "--rules.dir="+rulesDir)
	testenv.WaitHTTP(t, h.url+"/-/ready", 20*time.Second)

	var r []run
	eventually(t, 30*time.Second, "the rule's alert is acted on", func() (bool, string) {
		r = h.runs("")
		return len(r) == 1 && r[0].State == "succeeded", fmt.Sprintf("runs %+v", r)
	})
	if r[0].Labels["instance"] != host || r[0].Runbook != "seen" {
		t.Errorf("run: instance %q runbook %q; want %q, seen", r[0].Labels["instance"], r[0].Runbook, host)
	}
	a := h.alerts("")
	if len(a) != 1 || a[0].Status != "firing" {
		t.Fatalf("alerts: got %+v; want the one firing", a)
	}

	// The rule manager re-sends a firing alert; it stays one alert, one run.
	var q struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
		} `json:"result"`
	}
	if code := h.get("/prometheus/api/v1/query?query=instance:node_cpu_utilisation:rate5m", h.apiToken, &q); code != 200 {
		t.Fatalf("query API: %d", code)
	}
	if q.ResultType != "vector" {
		t.Errorf("query API: got %+v", q)
	}
	if code := h.get("/prometheus/api/v1/query?query=up", "", nil); code != 401 {
		t.Errorf("query API without the token: %d; want 401", code)
	}
	if got := executions(t, ran); len(got) != 1 {
		t.Errorf("the action ran %d times; want once", len(got))
	}
	h.stop()
	h.verifyAudit()
	recs := h.auditRecords()
	var kinds []string
	for _, rec := range recs {
		kinds = append(kinds, rec.Kind)
	}
	if got := strings.Join(kinds, " "); !strings.HasPrefix(got, "received matched incident prechecked assessed guarded started finished finished") {
		t.Errorf("audit: %s", got)
	}
}
