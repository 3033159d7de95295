// Package healer_test runs the healer binary as a child process, the way it
// runs in production, and drives it over HTTP: a storm of webhooks cut by
// SIGKILL, a real Alertmanager posting to it, approvals through the CLI, and
// label values that try to reach a shell.
//
// TestMain builds cmd/healer once (with -race when the tests run with it, so
// that the child's data races fail the test too).
package healer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"go.yaml.in/yaml/v3"

	"github.com/deus-ex-machina/deus/internal/store"
	"github.com/deus-ex-machina/deus/internal/testenv"
)

// healerBin is the healer built by TestMain.
var healerBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "healer-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bins, err := testenv.BuildCommands(dir, "./cmd/healer")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	healerBin = bins["./cmd/healer"]
	return m.Run()
}

// proc is a child process of a test.
type proc = testenv.Proc

// startProc starts bin in dir; see testenv.StartProc.
func startProc(t testing.TB, dir, bin string, args ...string) *proc {
	t.Helper()
	return testenv.StartProc(t, dir, "", bin, args...)
}

// startStandalone starts the healer as `make run` does (no configuration:
// standalone, dry run, no token) on a free loopback address with args,
// waits until it is ready, and returns its URL.
func startStandalone(t testing.TB, args ...string) (string, *proc) {
	t.Helper()
	addr := testenv.FreeAddr(t)
	p := startProc(t, t.TempDir(), healerBin, append([]string{"--web.listen-address=" + addr}, args...)...)
	url := "http://" + addr
	testenv.WaitHTTP(t, url+"/-/ready", 30*time.Second)
	return url, p
}

// healer is a healer server run by a test, with its tokens and files.
type healer struct {
	t          testing.TB
	dir        string // the test's directory: config, tokens, data
	addr, url  string
	config     string
	dataDir    string
	hookToken  string
	apiToken   string
	apiTokFile string
	client     *http.Client
	proc       *proc
}

// newHealer writes cfg (a YAML document as Go values; storage, webhook and
// api are filled in) and the token files into dir. It does not start it.
func newHealer(t testing.TB, dir string, cfg map[string]any) *healer {
	t.Helper()
	h := &healer{
		t: t, dir: dir, addr: testenv.FreeAddr(t),
		config: filepath.Join(dir, "healer.yml"), dataDir: filepath.Join(dir, "data"),
		hookToken: "webhook-" + rand.Text(), apiToken: "api-" + rand.Text(),
		apiTokFile: filepath.Join(dir, "api.token"),
		client:     &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	}
	h.url = "http://" + h.addr
	hookFile := filepath.Join(dir, "webhook.token")
	writeFile(t, hookFile, h.hookToken+"\n")
	writeFile(t, h.apiTokFile, h.apiToken+"\n")
	cfg["storage"] = map[string]any{"path": h.dataDir}
	cfg["webhook"] = map[string]any{"bearer_token_file": hookFile}
	cfg["api"] = map[string]any{"bearer_token_file": h.apiTokFile}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, h.config, string(b))
	if out, err := exec.Command(healerBin, "check-config", h.config).CombinedOutput(); err != nil {
		t.Fatalf("healer check-config: %v\n%s\n%s", err, out, b)
	}
	return h
}

// start starts the server and waits until it is ready.
func (h *healer) start() {
	h.t.Helper()
	h.proc = startProc(h.t, h.dir, healerBin, "serve", "--config.file="+h.config, "--web.listen-address="+h.addr, "--log.level=debug")
	testenv.WaitHTTP(h.t, h.url+"/-/ready", 20*time.Second)
}

// stop sends SIGTERM and requires a clean exit without data races.
func (h *healer) stop() {
	h.t.Helper()
	if err := h.proc.Stop(20 * time.Second); err != nil {
		h.t.Errorf("healer exited with %v after SIGTERM", err)
	}
	h.proc.CheckNoRace()
}

// post sends body to path with token (none when empty) and returns the
// status code.
func (h *healer) post(ctx context.Context, path, token string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Alertmanager/0.25.0")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// webhook posts a notification with the webhook token and requires 200.
func (h *healer) webhook(msg []byte) {
	h.t.Helper()
	code, err := h.post(context.Background(), "/webhook", h.hookToken, msg)
	if err != nil || code != http.StatusOK {
		h.t.Fatalf("POST /webhook: %d, %v; want 200", code, err)
	}
}

// get reads an API path with token into v and returns the status code.
func (h *healer) get(path, token string, v any) int {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.url+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || v == nil {
		return resp.StatusCode
	}
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		h.t.Fatalf("GET %s: data: %v", path, err)
	}
	return resp.StatusCode
}

// storedAlert is an alert as GET /api/v1/alerts shows it.
type storedAlert = store.StoredAlert

// run is a run as GET /api/v1/runs shows it.
type run = store.Run

func (h *healer) alerts(query string) []storedAlert {
	h.t.Helper()
	var a []storedAlert
	if code := h.get("/api/v1/alerts?limit=10000"+query, h.apiToken, &a); code != http.StatusOK {
		h.t.Fatalf("GET /api/v1/alerts: %d", code)
	}
	return a
}

func (h *healer) runs(query string) []run {
	h.t.Helper()
	var r []run
	if code := h.get("/api/v1/runs?limit=10000"+query, h.apiToken, &r); code != http.StatusOK {
		h.t.Fatalf("GET /api/v1/runs: %d", code)
	}
	return r
}

// cli runs the healer CLI against this server's API and returns its exit
// code and output.
func (h *healer) cli(args ...string) (int, string) {
	h.t.Helper()
	return testenv.RunCommand(h.t, healerBin, append(args, "--healer.url="+h.url, "--api.token-file="+h.apiTokFile, "--by=e2e-test")...)
}

// verifyAudit runs `healer audit verify` on the server's audit log and
// requires exit 0.
func (h *healer) verifyAudit() {
	h.t.Helper()
	testenv.VerifyAudit(h.t, healerBin, filepath.Join(h.dataDir, "audit"))
}

// auditRecord is the part of an audit line the tests look at.
type auditRecord struct {
	Seq         uint64            `json:"seq"`
	Kind        string            `json:"kind"`
	RunID       string            `json:"run_id"`
	Incident    string            `json:"incident"`
	Fingerprint string            `json:"fingerprint"`
	Argv        []string          `json:"argv"`
	Result      string            `json:"result"`
	Fields      map[string]string `json:"fields"`
}

// auditRecords reads every record of the audit log (rotated files and
// audit.log). Call it with the server stopped.
func (h *healer) auditRecords() []auditRecord {
	h.t.Helper()
	dir := filepath.Join(h.dataDir, "audit")
	files, err := filepath.Glob(filepath.Join(dir, "audit*.log"))
	if err != nil {
		h.t.Fatal(err)
	}
	var recs []auditRecord
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			h.t.Fatal(err)
		}
		for i, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var r auditRecord
			if err := json.Unmarshal(line, &r); err != nil {
				h.t.Fatalf("%s:%d: %v", f, i+1, err)
			}
			recs = append(recs, r)
		}
	}
	return recs
}

// notification is a webhook body as Alertmanager 0.25 posts it.
type notification struct {
	template.Data
	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// message builds a version 4 notification of alerts, as the Alertmanager
// at externalURL would send it.
func message(t testing.TB, externalURL string, alerts ...template.Alert) []byte {
	t.Helper()
	status := "resolved"
	for _, a := range alerts {
		if a.Status == "firing" {
			status = "firing"
		}
	}
	n := notification{
		Data: template.Data{
			Receiver: "healer", Status: status, Alerts: alerts,
			GroupLabels: template.KV{}, CommonLabels: template.KV{}, CommonAnnotations: template.KV{},
			ExternalURL: externalURL,
		},
		Version: "4", GroupKey: "{}:{}",
	}
	b, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// firing returns a firing alert with labels, as Alertmanager renders it.
func firing(fp string, startsAt time.Time, labels map[string]string) template.Alert {
	return template.Alert{
		Status: "firing", Labels: labels, Annotations: template.KV{"summary": "e2e"},
		StartsAt: startsAt, Fingerprint: fp, GeneratorURL: "http://prometheus.invalid/graph",
	}
}

// eventually polls cond until it holds or within passes. cond returns
// whether it holds and, when not, what is missing (for the failure).
func eventually(t testing.TB, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	testenv.Eventually(t, within, 50*time.Millisecond, what, cond)
}

// executions counts the JSON documents in a file that tee appended the
// alert to, once per execution, and returns their run IDs. A missing file
// is no execution.
func executions(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		var doc struct {
			RunID string `json:"run_id"`
		}
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return ids
		}
		if err != nil {
			t.Fatalf("%s: after %d executions: %v\n%s", path, len(ids), err, b)
		}
		ids = append(ids, doc.RunID)
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
