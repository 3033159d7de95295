package healer_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/deus-ex-machina/deus/internal/testenv"
)

// tree hashes every regular file under root with its mode and mtime, so a
// restore can be compared byte for byte.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = fmt.Sprintf("%x %v %d", sha256.Sum256(b), fi.Mode(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOperate drives the healer as an operator does: a run by hand (dry,
// then real), a rollback that restores files exactly, a reload that keeps
// the old configuration when the new one is invalid and takes a valid one
// on SIGHUP, and the metrics that count it all.
func TestOperate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	old := time.Now().Add(-48 * time.Hour)
	for i, name := range []string{"a.log", "sub/b.bin", "sub/deeper/c.txt"} {
		p := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, strings.Repeat(fmt.Sprintf("content %d\n", i), 100*(i+1)))
		if err := os.Chmod(p, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(tmp, "fresh.txt"), "new\n") // younger than older_than: stays
	before := tree(t, tmp)

	cfg := map[string]any{
		"global":  map[string]any{"identity": []string{"testhost"}, "max_tier": "low"},
		"actions": map[string]any{"temp_roots": []string{tmp}, "quarantine_dir": filepath.Join(dir, "quarantine")},
		"runbooks": []any{map[string]any{
			"name": "clean", "match": []string{`alertname="TmpFull"`},
			"steps": []any{map[string]any{"action": "clean_temp_files", "params": map[string]string{"path": tmp, "older_than": "1d"}}},
		}},
	}
	h := newHealer(t, dir, cfg)
	h.start()

	// A dry run by hand changes nothing.
	code, out := h.cli("run", "clean_temp_files", "-p", "path="+tmp, "-p", "older_than=1d", "--dry-run")
	if code != 0 || !strings.Contains(out, `"state": "dry_run"`) {
		t.Fatalf("healer run --dry-run: exit %d\n%s", code, out)
	}
	if got := tree(t, tmp); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("a dry run changed the tree:\n got %v\nwant %v", got, before)
	}
	// A path outside the root is refused before anything runs.
	if code, out := h.cli("run", "clean_temp_files", "-p", "path=/etc"); code == 0 || !strings.Contains(out, "not under") {
		t.Errorf("healer run with path=/etc: exit %d, %s; want refused", code, out)
	}

	// The real run moves the three old files into the quarantine.
	code, out = h.cli("run", "clean_temp_files", "-p", "path="+tmp, "-p", "older_than=1d")
	if code != 0 {
		t.Fatalf("healer run: exit %d\n%s", code, out)
	}
	var r run
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.State != "succeeded" {
		t.Fatalf("healer run: %v, state %q\n%s", err, r.State, out)
	}
	if got := tree(t, tmp); len(got) != 1 || got["fresh.txt"] == "" {
		t.Fatalf("after cleaning, the tree holds %v; want only fresh.txt", got)
	}

	// Rollback restores every file byte for byte, with its mode and mtime.
	if code, out := h.cli("rollback", r.ID); code != 0 || !strings.Contains(out, `"state": "rolled_back"`) {
		t.Fatalf("healer rollback: exit %d\n%s", code, out)
	}
	if got := tree(t, tmp); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("after rollback:\n got %v\nwant %v", got, before)
	}
	if code, _ := h.cli("rollback", r.ID); code == 0 {
		t.Error("a second rollback of the same run succeeded; want it refused")
	}

	// An invalid configuration is refused by /-/reload and the old one
	// stays: the TmpFull runbook still acts (in the webhook below).
	bad := strings.Replace(readFile(t, h.config), "clean_temp_files", "clean_tmp_files", 1)
	writeFile(t, h.config, bad)
	if code := h.postAPI(t, "/-/reload"); code != http.StatusBadRequest {
		t.Errorf("POST /-/reload with an invalid file: %d; want 400", code)
	}
	// A valid one is taken on SIGHUP: the runbook becomes dry.
	var c map[string]any
	if err := yaml.Unmarshal([]byte(readFile(t, h.config)), &c); err != nil {
		t.Fatal(err)
	}
	c["global"].(map[string]any)["dry_run"] = true
	c["runbooks"].([]any)[0].(map[string]any)["steps"].([]any)[0].(map[string]any)["action"] = "clean_temp_files"
	b, _ := yaml.Marshal(c)
	writeFile(t, h.config, string(b))
	if err := h.proc.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the reload is logged", func() (bool, string) {
		return strings.Contains(h.proc.Output(), "configuration_reloaded"), "not yet"
	})
	h.webhook(firingMessage("TmpFull", "testhost", "00000000000000f1"))
	eventually(t, 10*time.Second, "the alert's run ends dry", func() (bool, string) {
		rs := h.runs("&fingerprint=00000000000000f1")
		return len(rs) == 1 && rs[0].State == "dry_run", fmt.Sprintf("%+v", rs)
	})
	if got := tree(t, tmp); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("a dry run after the reload changed the tree")
	}

	m := metrics(t, h)
	for _, want := range []string{
		`deus_healer_alerts_received_total{source="webhook",status="firing"} 1`,
		`deus_healer_runs_total{action="clean_temp_files",result="succeeded"} 1`,
		`deus_healer_runs_total{action="clean_temp_files",result="dry_run"} 2`,
		`deus_healer_rollbacks_total{action="clean_temp_files",result="ok"} 1`,
		`deus_healer_audit_chain_ok 1`,
		`deus_healer_circuit_breakers_open 0`,
		`deus_healer_approvals_pending 0`,
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(m, "deus_healer_approval_oldest_pending_timestamp_seconds ") {
		t.Error("the oldest pending approval is exposed while none waits")
	}
	h.stop()
	h.verifyAudit()
}

// TestPrecheckWithRealPrometheus asks a real Prometheus whether the alert
// still holds: up{job="prometheus"} == 1 holds, == 0 does not.
func TestPrecheckWithRealPrometheus(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := testenv.Binary(t, "prometheus")
	promAddr := testenv.FreeAddr(t)
	writeFile(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ["%s"], labels: {host: testhost}}]
`, promAddr))
	startProc(t, dir, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr)
	testenv.WaitHTTP(t, "http://"+promAddr+"/-/ready", 30*time.Second)
	eventually(t, 30*time.Second, "Prometheus has scraped itself", func() (bool, string) {
		resp, err := http.Get("http://" + promAddr + "/api/v1/query?query=up")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `"job":"prometheus"`), string(b)
	})

	ran := filepath.Join(dir, "ran")
	step := []any{map[string]any{"action": "record", "params": map[string]string{"case": "{{ $labels.case }}"}}}
	h := newHealer(t, dir, map[string]any{
		"global":     map[string]any{"identity": []string{"testhost"}, "max_tier": "low"},
		"prometheus": map[string]any{"url": "http://" + promAddr},
		"actions": map[string]any{"commands": []any{map[string]any{
			"name": "record", "tier": "low", "argv": []string{"/usr/bin/tee", "-a", ran + "-{{case}}"},
			"params": []any{map[string]any{"name": "case", "type": "string", "required": true, "pattern": "[a-z]+"}},
		}}},
		"runbooks": []any{
			map[string]any{
				"name": "holds", "match": []string{`alertname="Holds"`}, "steps": step,
				"precheck": map[string]any{"expr": `up == 1`, "labels": []string{"job", "host"}},
			},
			map[string]any{
				"name": "gone", "match": []string{`alertname="Gone"`}, "steps": step,
				"precheck": map[string]any{"expr": `up == 0`, "labels": []string{"job", "host"}},
			},
		},
	})
	h.start()
	post := func(alertname, fp, c string) {
		msg := notificationWith(alertname, fp, map[string]string{"instance": "testhost", "job": "prometheus", "host": "testhost", "case": c})
		h.webhook(msg)
	}
	post("Holds", "00000000000000a1", "holds")
	post("Gone", "00000000000000a2", "gone")
	for fp, want := range map[string]string{"00000000000000a1": "succeeded", "00000000000000a2": "skipped"} {
		eventually(t, 15*time.Second, "run of "+fp+" is "+want, func() (bool, string) {
			rs := h.runs("&fingerprint=" + fp)
			return len(rs) == 1 && string(rs[0].State) == want, fmt.Sprintf("%+v", rs)
		})
	}
	if got := executions(t, ran+"-holds"); len(got) != 1 {
		t.Errorf("the prechecked action ran %d times; want once", len(got))
	}
	if got := executions(t, ran+"-gone"); len(got) != 0 {
		t.Errorf("the action whose precheck failed ran %d times; want never", len(got))
	}
	h.stop()
	h.verifyAudit()
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (h *healer) postAPI(t *testing.T, path string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+h.apiToken)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func metrics(t *testing.T, h *healer) string {
	t.Helper()
	resp, err := h.client.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// firingMessage is a version 4 webhook payload with one firing alert.
func firingMessage(alertname, instance, fp string) []byte {
	return notificationWith(alertname, fp, map[string]string{"instance": instance})
}

func notificationWith(alertname, fp string, labels map[string]string) []byte {
	l := map[string]string{"alertname": alertname}
	for k, v := range labels {
		l[k] = v
	}
	msg := map[string]any{
		"version": "4", "status": "firing", "receiver": "healer", "groupKey": "{}:{}",
		"groupLabels": map[string]string{}, "commonLabels": l, "commonAnnotations": map[string]string{},
		"externalURL": "http://am:9093",
		"alerts": []any{map[string]any{
			"status": "firing", "labels": l, "annotations": map[string]string{},
			"startsAt": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano), "endsAt": "0001-01-01T00:00:00Z",
			"generatorURL": "", "fingerprint": fp,
		}},
	}
	b, _ := json.Marshal(msg)
	return b
}
