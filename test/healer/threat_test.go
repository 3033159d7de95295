package healer_test

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The shipped configuration's threat runbooks, on a running healer: an
// AuthBruteForce alert makes a block_ip run that waits for approval with
// its ttl and the place the address will be read from, and blocking
// 127.0.0.1 by hand is refused at once with the reason. No firewall command
// runs: the one run waits, and the refusal comes before any.
func TestShippedBruteForceRunbookWaitsForApprovalAndLoopbackIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := shippedConfig(t)
	global := cfg["global"].(map[string]any)
	global["identity"] = []string{"web1"}
	// As it runs once its dry run is turned off (a dry run needs no
	// approval, since it changes nothing).
	global["dry_run"] = false
	if global["max_tier"] != "low" {
		t.Fatalf("the shipped max_tier is %v; this test expects low, below block_ip's high", global["max_tier"])
	}
	// Nothing here to ask: no Prometheus (the block runbooks have no
	// query), no Alertmanager (silences), and the state in the test's
	// folder.
	cfg["prometheus"] = map[string]any{"url": "http://127.0.0.1:1"}
	delete(cfg, "alertmanager")
	cfg["audit"] = map[string]any{"path": filepath.Join(dir, "data", "audit")}
	acts := cfg["actions"].(map[string]any)
	acts["quarantine_dir"] = filepath.Join(dir, "quarantine")
	acts["firewall"] = "nftables"
	h := newHealer(t, dir, cfg)
	h.start()
	defer h.stop()

	h.webhook(message(t, "http://am.invalid", firing("b0f0c0d0e0f0a0b0", time.Now().Add(-6*time.Minute), map[string]string{
		"alertname": "AuthBruteForce", "instance": "web1:9110", "job": "deus", "service": "sshd",
		"severity": "warning", "remediation": "block_ip",
	})))
	var waiting run
	eventually(t, 20*time.Second, "a waiting block_ip run", func() (bool, string) {
		rs := h.runs("")
		if len(rs) == 1 && rs[0].State == "waiting" {
			waiting = rs[0]
			return true, ""
		}
		return false, "runs: " + states(rs)
	})
	if waiting.Runbook != "block-brute-force" || waiting.Action != "block_ip" || waiting.Tier.String() != "high" {
		t.Errorf("got runbook %q action %q tier %s, want block-brute-force, block_ip, high", waiting.Runbook, waiting.Action, waiting.Tier)
	}
	want := map[string]string{"from": "auth_log", "service": "sshd", "min_count": "20", "ttl": "1d"}
	if got := waiting.Steps[0].Params; len(got) != len(want) || got["from"] != want["from"] || got["service"] != want["service"] || got["min_count"] != want["min_count"] || got["ttl"] != want["ttl"] {
		t.Errorf("got step params %v, want %v", got, want)
	}
	if st := waiting.Steps[0]; st.State != "" || st.Argv != nil || !waiting.StartedAt.IsZero() {
		t.Errorf("the waiting run's step is %q with argv %q (run started %v), want it not started", st.State, st.Argv, waiting.StartedAt)
	}

	code, out := h.cli("run", "block_ip", "--param", "address=127.0.0.1", "--param", "ttl=1h")
	if code == 0 || !strings.Contains(out, "127.0.0.1/32 overlaps 127.0.0.0/8, which is never blocked") {
		t.Errorf("healer run block_ip 127.0.0.1: exit %d, %s; want a refusal saying loopback is never blocked", code, out)
	}
	if rs := h.runs(""); len(rs) != 1 {
		t.Errorf("got %d runs after the refused request, want the one waiting", len(rs))
	}
}

// states lists the runs' states, for a failure message.
func states(rs []run) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.Runbook + ":" + string(r.State)
	}
	return strings.Join(s, " ")
}

// shippedConfig reads deploy/healer/healer.yml as YAML.
func shippedConfig(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "healer", "healer.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The shipped evidence runbooks, on a running healer with its dry run
// off: a new listening port is answered with who listens on it, a changed
// watched file with its metadata, read when the alert came,
// and nothing else runs.
func TestShippedEvidenceRunbooksRecordWhoListensAndWhatTheFileIs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := shippedConfig(t)
	global := cfg["global"].(map[string]any)
	global["identity"], global["dry_run"] = []string{"web1"}, false
	cfg["prometheus"] = map[string]any{"url": "http://127.0.0.1:1"}
	delete(cfg, "alertmanager")
	cfg["audit"] = map[string]any{"path": filepath.Join(dir, "data", "audit")}
	cfg["actions"].(map[string]any)["quarantine_dir"] = filepath.Join(dir, "quarantine")
	h := newHealer(t, dir, cfg)
	h.start()
	defer h.stop()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	watched := filepath.Join(dir, "passwd")
	writeFile(t, watched, "root:x:0:0::/root:/bin/sh\n")
	at := time.Now().Add(-time.Minute)
	h.webhook(message(t, "http://am.invalid",
		firing("c0f0c0d0e0f0a0b1", at, map[string]string{"alertname": "NewListeningPort", "instance": "web1:9110", "proto": "tcp", "port": port, "process": "healer.test", "remediation": "none"}),
		firing("c0f0c0d0e0f0a0b2", at, map[string]string{"alertname": "FileIntegrityChanged", "instance": "web1:9110", "path": watched, "remediation": "none"}),
	))
	var rs []run
	eventually(t, 20*time.Second, "both evidence runs end", func() (bool, string) {
		rs = h.runs("")
		done := 0
		for _, r := range rs {
			if r.State == "succeeded" {
				done++
			}
		}
		return len(rs) == 2 && done == 2, "runs: " + states(rs)
	})
	out := map[string]string{}
	for _, r := range rs {
		for _, st := range r.Steps {
			out[r.Runbook] += st.Output
		}
	}
	if !strings.Contains(out["evidence-new-listener"], "127.0.0.1:"+port) {
		t.Errorf("evidence of the new listener: %q; want the socket on port %s", out["evidence-new-listener"], port)
	}
	if got := out["evidence-file-changed"]; !strings.Contains(got, watched) || !strings.Contains(got, "Size: 26") || !strings.Contains(got, "Access: (0") {
		t.Errorf("evidence of the changed file: %q; want its stat (26 bytes)", got)
	}
}
