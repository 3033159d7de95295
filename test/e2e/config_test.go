package e2e_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/deus-ex-machina/deus/internal/config"
)

// The configurations are the deploy/ files read as YAML, with only what a
// test must change rewritten: addresses, intervals, paths, tokens. Each
// rewrite looks its key up and fails when it is gone, so that a change to
// deploy/ that this test does not know about is noticed here.

// maxFor is the longest `for:` an alerting rule keeps, so that the
// shipped expressions fire within seconds.
const maxFor = 2 * time.Second

func loadYAML(t testing.TB, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func writeYAML(t testing.TB, path string, v any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(b))
}

// child returns m[key] as a mapping, failing the test when it is not one.
func child(t testing.TB, m map[string]any, path string, key string) map[string]any {
	t.Helper()
	c, ok := m[key].(map[string]any)
	if !ok {
		t.Fatalf("%s: %s is %T, want a mapping: has deploy/ changed?", path, key, m[key])
	}
	return c
}

// items returns m[key] as a sequence of mappings.
func items(t testing.TB, m map[string]any, path string, key string) []map[string]any {
	t.Helper()
	l, ok := m[key].([]any)
	if !ok {
		t.Fatalf("%s: %s is %T, want a sequence: has deploy/ changed?", path, key, m[key])
	}
	out := make([]map[string]any, 0, len(l))
	for i, e := range l {
		c, ok := e.(map[string]any)
		if !ok {
			t.Fatalf("%s: %s[%d] is %T, want a mapping", path, key, i, e)
		}
		out = append(out, c)
	}
	return out
}

// copyRules writes every rules/*.rules.yml of the repository into dir with
// each alerting rule's `for:` cut to maxFor. Nothing else changes: the
// expressions are the shipped ones.
func copyRules(t testing.TB, root, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "rules", "*.rules.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rules/*.rules.yml under %s: %v", root, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		doc := loadYAML(t, f)
		for _, g := range items(t, doc, f, "groups") {
			for _, r := range items(t, g, f, "rules") {
				if _, ok := r["alert"]; !ok {
					continue
				}
				s, ok := r["for"].(string)
				if !ok {
					continue
				}
				d, err := model.ParseDuration(s)
				if err != nil {
					t.Fatalf("%s: %s: for: %v", f, r["alert"], err)
				}
				if time.Duration(d) > maxFor {
					r["for"] = model.Duration(maxFor).String()
				}
			}
		}
		writeYAML(t, filepath.Join(dir, filepath.Base(f)), doc)
	}
	// A symptom of the watched service's death beside ServiceDown, so that
	// killing it is an incident of several alerts.
	writeYAML(t, filepath.Join(dir, "e2e.rules.yml"), map[string]any{"groups": []any{map[string]any{
		"name": "e2e", "rules": []any{map[string]any{
			"alert": probeAlert, "expr": "deus_service_up == 0", "for": model.Duration(maxFor).String(),
			"labels":      map[string]string{"severity": "warning"},
			"annotations": map[string]string{"summary": "the probe of {{ $labels.service }} fails"},
		}},
	}}})
}

// probeAlert is the e2e rules' symptom of a service down.
const probeAlert = "ServiceProbeFailed"

// promAddrs are the addresses a Prometheus configuration points at.
type promAddrs struct {
	exporter, healer, alertmanager string
}

// prometheusConfig is deploy/prometheus/prometheus.yml with 1s intervals
// and the test's addresses. Its rule_files (rules/*.rules.yml, relative to
// the file) are kept: the rules are copied next to it.
func prometheusConfig(t testing.TB, root string, a promAddrs) map[string]any {
	t.Helper()
	path := filepath.Join(root, "deploy", "prometheus", "prometheus.yml")
	cfg := loadYAML(t, path)
	g := child(t, cfg, path, "global")
	g["scrape_interval"], g["evaluation_interval"] = "1s", "1s"
	for _, am := range items(t, child(t, cfg, path, "alerting"), path, "alertmanagers") {
		for _, sc := range items(t, am, path, "static_configs") {
			sc["targets"] = []string{a.alertmanager}
		}
	}
	for _, job := range items(t, cfg, path, "scrape_configs") {
		var target string
		switch job["job_name"] {
		case nodeJob:
			target = a.exporter
		case "deus-healer":
			target = a.healer
		default:
			t.Fatalf("%s: scrape job %v is new to this test: give it a target", path, job["job_name"])
		}
		for _, sc := range items(t, job, path, "static_configs") {
			sc["targets"] = []string{target}
		}
	}
	return cfg
}

// scrapeOnly is the part of a Prometheus configuration that
// VictoriaMetrics' -promscrape.config takes (it refuses rule_files,
// alerting and evaluation_interval).
func scrapeOnly(t testing.TB, prom map[string]any) map[string]any {
	t.Helper()
	g := child(t, prom, "prometheus.yml", "global")
	return map[string]any{
		"global":         map[string]any{"scrape_interval": g["scrape_interval"]},
		"scrape_configs": prom["scrape_configs"],
	}
}

// alertmanagerConfig is deploy/alertmanager/alertmanager.yml with the
// healer's route sped up (group_wait 0s, group_interval 1s) and its
// webhook pointed at the test's healer and token file.
func alertmanagerConfig(t testing.TB, root, healerURL, tokenFile string) map[string]any {
	t.Helper()
	path := filepath.Join(root, "deploy", "alertmanager", "alertmanager.yml")
	cfg := loadYAML(t, path)
	found := false
	for _, r := range items(t, child(t, cfg, path, "route"), path, "routes") {
		if r["receiver"] == "healer" {
			r["group_wait"], r["group_interval"] = "0s", "1s"
			found = true
		}
	}
	if !found {
		t.Fatalf("%s: no route to the healer receiver", path)
	}
	found = false
	for _, rc := range items(t, cfg, path, "receivers") {
		if rc["name"] != "healer" {
			continue
		}
		for _, wh := range items(t, rc, path, "webhook_configs") {
			wh["url"] = healerURL + "/webhook"
			auth := child(t, child(t, wh, path, "http_config"), path, "authorization")
			auth["credentials_file"] = tokenFile
			found = true
		}
	}
	if !found {
		t.Fatalf("%s: no webhook for the healer receiver", path)
	}
	return cfg
}

// healerSettings are what a test sets in the healer's configuration.
type healerSettings struct {
	identity         string // the instance label of this host's vitals
	prometheus, am   string // URLs; both empty for the standalone healer
	webhookTokenFile string
	apiTokenFile     string
	dataDir          string
	quarantineDir    string
	tempRoot         string // the test's tmpfs
	service          dummyService
}

// healerConfig is deploy/healer/healer.yml with dry_run off, the test's
// paths, URLs and identity, the dummy service for the process backend, and
// its runbooks kept, with two changes a test needs (see below).
func healerConfig(t testing.TB, root string, s healerSettings) map[string]any {
	t.Helper()
	path := filepath.Join(root, "deploy", "healer", "healer.yml")
	cfg := loadYAML(t, path)
	g := child(t, cfg, path, "global")
	g["dry_run"] = false
	g["identity"] = []string{s.identity}
	// restart_service is of tier medium and deploy/ acts alone up to low,
	// so a restart would wait for `healer approve`; the scenario is the
	// healer acting alone.
	g["max_tier"] = "medium"
	if s.prometheus == "" {
		delete(cfg, "prometheus")
		delete(cfg, "alertmanager")
	} else {
		child(t, cfg, path, "prometheus")["url"] = s.prometheus
		child(t, cfg, path, "alertmanager")["url"] = s.am
	}
	child(t, cfg, path, "webhook")["bearer_token_file"] = s.webhookTokenFile
	child(t, cfg, path, "api")["bearer_token_file"] = s.apiTokenFile
	child(t, cfg, path, "storage")["path"] = s.dataDir
	child(t, cfg, path, "audit")["path"] = filepath.Join(s.dataDir, "audit")
	a := child(t, cfg, path, "actions")
	a["temp_roots"] = []string{s.tempRoot}
	a["quarantine_dir"] = s.quarantineDir
	a["service_backend"] = "process"
	a["services"] = []map[string]any{{
		"name":    s.service.unit(),
		"pidfile": s.service.pidfile,
		"start":   []string{s.service.exe, s.service.pidfile},
	}}
	// The service's probe fails when the service is down: a symptom of
	// ServiceDown, in its incident (the shipped causes, and this one).
	causes := []any{}
	for _, c := range config.DefaultCauses {
		causes = append(causes, map[string]any{"name": c.Name, "cause": c.Cause, "effect": c.Effect})
	}
	cfg["incidents"] = map[string]any{"causes": append(causes, map[string]any{
		"name": "a service down fails its probe", "cause": []string{`alertname="ServiceDown"`}, "effect": []string{`alertname="` + probeAlert + `"`},
	})}
	for _, rb := range items(t, cfg, path, "runbooks") {
		// Verify every second instead of every 10-15s: the scenario
		// measures how soon the healer knows it has healed.
		if v, ok := rb["verify"].(map[string]any); ok {
			v["interval"] = "1s"
		}
		if rb["name"] != "clean-temp" {
			continue
		}
		// clean-temp matches /tmp and /var/tmp; the test's temp file
		// system is a tmpfs of its own, so its matcher on the mountpoint
		// is rewritten to that path (the rest of the runbook is kept).
		match, ok := rb["match"].([]any)
		if !ok {
			t.Fatalf("%s: clean-temp's match is %T", path, rb["match"])
		}
		rewritten := false
		for i, m := range match {
			if ms, ok := m.(string); ok && strings.HasPrefix(ms, "mountpoint=~") {
				match[i] = "mountpoint=~" + strconv.Quote(regexp.QuoteMeta(s.tempRoot))
				rewritten = true
			}
		}
		if !rewritten {
			t.Fatalf("%s: clean-temp has no mountpoint matcher to rewrite: %v", path, match)
		}
	}
	return cfg
}
