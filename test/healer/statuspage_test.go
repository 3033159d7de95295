package healer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deus-ex-machina/deus/internal/testenv"
)

// TestStatusPageInChromium opens the standalone healer's status page in a
// real headless Chromium: it shows this host's vitals, the alert its rules
// fired, and what the healer would do about it in dry-run mode. The
// screenshot is kept in out/artifacts/status-page.png.
func TestStatusPageInChromium(t *testing.T) {
	t.Parallel()
	browser := testenv.Binary(t, "chromium")
	dir := t.TempDir()
	rulesDir := filepath.Join(dir, "rules")
	if err := os.Mkdir(rulesDir, 0o750); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(rulesDir, "test.rules.yml"), `groups:
  - name: node
    rules:
      - record: instance:node_cpu_utilisation:rate5m
        expr: 1 - avg without (cpu) (sum without (mode) (rate(node_cpu_seconds_total{mode=~"idle|iowait|steal"}[1m])))
      - record: instance:node_memory_utilisation:ratio
        expr: 1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes
      - record: instance_mountpoint:node_filesystem_avail_bytes:ratio
        expr: node_filesystem_avail_bytes{fstype!=""} / node_filesystem_size_bytes{fstype!=""}
  - name: test
    rules:
      - alert: TmpNeedsCleaning
        expr: up{job="node"} == 1
        labels: {severity: warning, remediation: clean_temp_files, mountpoint: /tmp}
        annotations: {summary: "<b>not bold</b> /tmp on {{ $labels.instance }} needs cleaning"}
`)
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o750); err != nil {
		t.Fatal(err)
	}
	h := newHealer(t, dir, map[string]any{
		"global":  map[string]any{"dry_run": true},
		"actions": map[string]any{"temp_roots": []string{tmp}},
		"runbooks": []any{map[string]any{
			"name": "clean-temp", "match": []string{`alertname="TmpNeedsCleaning"`},
			"steps": []any{map[string]any{"action": "clean_temp_files", "params": map[string]string{"path": tmp}}},
		}},
	})
	// The status page is for people: without an API token, on loopback.
	cfg := readFile(t, h.config)
	cfg = strings.Replace(cfg, "api:\n    bearer_token_file: "+h.apiTokFile+"\n", "", 1)
	writeFile(t, h.config, cfg)
	h.proc = startProc(t, dir, healerBin, "serve", "--config.file="+h.config, "--web.listen-address="+h.addr,
		"--standalone.scrape-interval=300ms", "--rules.dir="+rulesDir)
	testenv.WaitHTTP(t, h.url+"/-/ready", 20*time.Second)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 1000))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()

	// Wait, through the APIs, until there is something to show: the
	// dry run of the alert's runbook, and a CPU figure.
	eventually(t, 40*time.Second, "the dry run is recorded", func() (bool, string) {
		rs := h.runs("")
		return len(rs) > 0 && rs[0].State == "dry_run", fmt.Sprintf("%+v", rs)
	})
	eventually(t, 40*time.Second, "the CPU utilisation is recorded", func() (bool, string) {
		var q struct {
			Result []any `json:"result"`
		}
		h.get("/prometheus/api/v1/query?query=instance:node_cpu_utilisation:rate5m", "", &q)
		return len(q.Result) > 0, "no sample yet"
	})

	if _, err := chromedp.Run(ctx, chromedp.Navigate(h.url+"/")); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	runs, vitals, alerts, dry := text("#runs"), text("#vitals"), text("#alerts"), text("#dry-run")
	if !strings.Contains(runs, "would run") || !strings.Contains(vitals, "CPU") {
		t.Errorf("the status page does not show the dry run and the vitals:\nruns: %s\nvitals: %s", runs, vitals)
	}
	bold, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#alerts b").length`))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(alerts, "TmpNeedsCleaning") || !strings.Contains(alerts, "<b>not bold</b>") {
		t.Errorf("alerts table: %q; want the firing alert with its summary as text", alerts)
	}
	if bold != 0 {
		t.Error("an annotation's HTML was rendered as markup; it must be text")
	}
	if !strings.Contains(runs, "clean_temp_files(") || !strings.Contains(runs, tmp) {
		t.Errorf("runs table: %q; want the action and its path", runs)
	}
	if !strings.Contains(dry, "dry run") {
		t.Errorf("dry-run badge: %q", dry)
	}
	out := filepath.Join(testenv.RepoRoot(t), "out", "artifacts")
	if err := os.MkdirAll(out, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "status-page.png"), shot, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", filepath.Join(out, "status-page.png"), len(shot))
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("a dry run changed %s", tmp)
	}
}
