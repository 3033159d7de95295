package healer_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/deus-ex-machina/deus/internal/testenv"
)

// fakeAlertmanager answers the healer's Alertmanager API calls: nothing is
// silenced, and every alert posted (an escalation) is kept.
type fakeAlertmanager struct {
	srv    *httptest.Server
	mu     sync.Mutex
	posted []map[string]any
}

func newFakeAlertmanager(t *testing.T) *fakeAlertmanager {
	t.Helper()
	am := &fakeAlertmanager{}
	am.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/api/v2/alerts" && r.Method == http.MethodGet:
			_, _ = io.WriteString(w, "[]")
		case r.URL.Path == "/api/v2/alerts" && r.Method == http.MethodPost:
			var alerts []map[string]any
			if err := json.NewDecoder(r.Body).Decode(&alerts); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			am.mu.Lock()
			am.posted = append(am.posted, alerts...)
			am.mu.Unlock()
			_, _ = io.WriteString(w, "{}")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(am.srv.Close)
	return am
}

func (am *fakeAlertmanager) alerts() []map[string]any {
	am.mu.Lock()
	defer am.mu.Unlock()
	return slices.Clone(am.posted)
}

// unblockFIFO opens and closes the FIFO the held action writes to, so that
// an action blocked opening it goes on, and ends.
func unblockFIFO(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Error(err)
		return
	}
	_ = f.Close() // the writer, if any, gets EPIPE and exits
}

// TestCutAuditTailAfterACrashStopsTheHealer reproduces an outside review's
// finding: kill the healer with SIGKILL while an action runs, cut the last
// two records of the audit log (guarded, started) at a line boundary, and
// restart it. The log alone verifies; the head the healer committed to its
// database with the run's start says records are missing. The restarted
// healer reports deus_healer_audit_chain_ok 0, runs no action (not the
// re-planned interrupted run, not a new alert's), and pages once through
// Alertmanager.
func TestCutAuditTailAfterACrashStopsTheHealer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ranDir := filepath.Join(dir, "ran")
	if err := os.Mkdir(ranDir, 0o750); err != nil {
		t.Fatal(err)
	}
	// The held action writes to a FIFO nobody reads: it blocks opening it,
	// so the healer is killed mid-action.
	fifo := filepath.Join(dir, "hold.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unblockFIFO(t, fifo) })
	am := newFakeAlertmanager(t)
	h := newHealer(t, dir, map[string]any{
		"global":       map[string]any{"identity": []string{"testhost"}, "max_tier": "low"},
		"alertmanager": map[string]any{"url": am.srv.URL},
		"actions": map[string]any{"commands": []any{
			map[string]any{
				"name": "hold", "tier": "low", "doc": "write the alert to a FIFO; blocks until it is read",
				"argv": []string{"/usr/bin/tee", "-a", fifo},
			},
			map[string]any{
				"name": "record", "tier": "low", "doc": "append the alert to a file named after it",
				"argv":   []string{"/usr/bin/tee", "-a", ranDir + "/ran-{{fp}}"},
				"params": []any{map[string]any{"name": "fp", "type": "string", "required": true, "pattern": "[0-9a-f]{16}"}},
			},
		}},
		"runbooks": []any{
			map[string]any{
				// A precheck, so that recovery re-plans the interrupted run.
				"name": "hold", "match": []string{`alertname="ChainHold"`},
				"precheck": map[string]any{"expr": "vector(1)"},
				"steps":    []any{map[string]any{"action": "hold"}},
			},
			map[string]any{
				"name": "record", "match": []string{`alertname="ChainAfter"`},
				"steps": []any{map[string]any{"action": "record", "params": map[string]string{"fp": "{{ $labels.fp }}"}}},
			},
		},
	})
	h.start()
	h.webhook(message(t, "http://am-a.invalid:9093", firing("00000000000000c1", time.Now().UTC(), template.KV{"alertname": "ChainHold", "instance": "testhost"})))
	logFile := filepath.Join(h.dataDir, "audit", "audit.log")
	var held string
	eventually(t, 20*time.Second, "the held run's started record is the last in the log", func() (bool, string) {
		recs := readAuditLines(t, logFile)
		if len(recs) == 0 {
			return false, "no records"
		}
		last := recs[len(recs)-1]
		held = last.RunID
		return last.Kind == "started" && last.Action == "hold", fmt.Sprintf("last record: %+v", last)
	})
	h.proc.Kill()
	h.proc.CheckNoRace()

	// Cut the last two records, at a line boundary, as head -n does.
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	lines = lines[:len(lines)-1] // the empty string after the last newline
	if n := len(lines); n < 3 || !strings.Contains(lines[n-2], `"kind":"guarded"`) || !strings.Contains(lines[n-1], `"kind":"started"`) {
		t.Fatalf("the log does not end with guarded, started:\n%s", b)
	}
	cutAt := len(lines) - 2
	writeFile(t, logFile, strings.Join(lines[:cutAt], ""))
	if code, out := testenv.RunCommand(t, healerBin, "audit", "verify", filepath.Join(h.dataDir, "audit")); code != 0 {
		t.Fatalf("the cut log alone was expected to verify (that is the hole): exit %d\n%s", code, out)
	}
	code, out := testenv.RunCommand(t, healerBin, "audit", "verify", filepath.Join(h.dataDir, "audit"), "--storage.path="+h.dataDir)
	if code != 1 || !strings.Contains(out, "anchored record missing") {
		t.Errorf("audit verify with the stored head: exit %d, want 1 naming the cut\n%s", code, out)
	}

	h.start()
	if got := metricValue(t, h, "deus_healer_audit_chain_ok"); got != "0" {
		t.Errorf("deus_healer_audit_chain_ok = %s after the cut; want 0", got)
	}
	fp := "00000000000000c2"
	h.webhook(message(t, "http://am-a.invalid:9093", firing(fp, time.Now().UTC(), template.KV{"alertname": "ChainAfter", "instance": "testhost", "fp": fp})))
	var runs []run
	eventually(t, 20*time.Second, "every run ended", func() (bool, string) {
		runs = h.runs("")
		if len(runs) < 3 {
			return false, fmt.Sprintf("%d runs, want the held one, its re-plan and the new alert's", len(runs))
		}
		for _, r := range runs {
			switch r.State {
			case "pending", "waiting", "approved", "running":
				return false, "run " + r.ID + " is " + string(r.State)
			}
		}
		return true, ""
	})
	for _, r := range runs {
		switch {
		case r.ID == held:
			if r.State != "interrupted" {
				t.Errorf("the held run %s is %s; want interrupted", r.ID, r.State)
			}
		case r.State != "skipped" || !strings.Contains(r.Reason, "not acting while the audit log fails its check"):
			t.Errorf("run %s (%s) is %s: %s; want skipped, for the broken chain", r.ID, r.Runbook, r.State, r.Reason)
		}
	}
	if ran := executions(t, filepath.Join(ranDir, "ran-"+fp)); len(ran) != 0 {
		t.Errorf("the new alert's action ran (runs %v) with the chain broken; want never", ran)
	}
	eventually(t, 10*time.Second, "one escalation posted", func() (bool, string) {
		return len(am.alerts()) > 0, "none yet"
	})
	h.stop()

	posted := am.alerts()
	if len(posted) != 1 {
		t.Fatalf("%d alerts posted to Alertmanager; want one escalation: %v", len(posted), posted)
	}
	labels, _ := posted[0]["labels"].(map[string]any)
	ann, _ := posted[0]["annotations"].(map[string]any)
	if labels["problem"] != "audit_chain_broken" || labels["alertname"] != "HealerEscalation" ||
		!strings.Contains(fmt.Sprint(ann["description"]), "anchored record missing") {
		t.Errorf("escalation: labels %v, annotations %v; want problem audit_chain_broken with the reason", labels, ann)
	}
	// After the restart nothing started: no started record past the cut.
	for _, rec := range readAuditLines(t, logFile)[cutAt:] {
		if rec.Kind == "started" {
			t.Errorf("a started record after the restart: %+v", rec)
		}
	}
	// The head stayed where the cut records were: the mismatch stands
	// after another restart, until a person accepts the log.
	if code, out := testenv.RunCommand(t, healerBin, "audit", "verify", filepath.Join(h.dataDir, "audit"), "--storage.path="+h.dataDir); code != 1 {
		t.Errorf("audit verify with the stored head after the restart: exit %d, want 1\n%s", code, out)
	}
}

// readAuditLines reads audit.log's records; a log being written may end
// with a partial line, which is left out.
func readAuditLines(t *testing.T, path string) []auditLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var recs []auditLine
	for line := range bytes.Lines(b) {
		if !bytes.HasSuffix(line, []byte("\n")) {
			break
		}
		var r auditLine
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		recs = append(recs, r)
	}
	return recs
}

type auditLine struct {
	Seq    uint64 `json:"seq"`
	Kind   string `json:"kind"`
	RunID  string `json:"run_id"`
	Action string `json:"action"`
}

// TestKeyedAuditLog runs the healer with audit.key_file: its records are
// sealed with HMAC-SHA256, audit verify passes with the key and fails
// without it, and the key appears in none of the healer's output.
func TestKeyedAuditLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := "k-" + strings.Repeat("0123456789abcdef", 3)
	keyFile := filepath.Join(dir, "audit.key")
	writeFile(t, keyFile, key+"\n")
	h := newHealer(t, dir, map[string]any{
		"global": map[string]any{"identity": []string{"testhost"}},
		"audit":  map[string]any{"key_file": keyFile},
	})
	h.start()
	h.webhook(message(t, "http://am-a.invalid:9093", firing("00000000000000b1", time.Now().UTC(), template.KV{"alertname": "Unmatched", "instance": "testhost"})))
	eventually(t, 10*time.Second, "the alert is planned", func() (bool, string) {
		a := h.alerts("")
		return len(a) == 1 && a[0].State == "done", fmt.Sprintf("%+v", a)
	})
	if got := metricValue(t, h, "deus_healer_audit_chain_ok"); got != "1" {
		t.Errorf("deus_healer_audit_chain_ok = %s; want 1", got)
	}
	h.stop()
	if strings.Contains(h.proc.Output(), key) {
		t.Error("the healer's output holds the audit key")
	}
	auditDir := filepath.Join(h.dataDir, "audit")
	b, err := os.ReadFile(filepath.Join(auditDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n, keyed := bytes.Count(b, []byte("\n")), bytes.Count(b, []byte(`"alg":"hmac-sha256"`)); n == 0 || keyed != n {
		t.Errorf("%d of %d records keyed; want all", keyed, n)
	}
	if code, out := testenv.RunCommand(t, healerBin, "audit", "verify", auditDir, "--storage.path="+h.dataDir, "--key.file="+keyFile); code != 0 {
		t.Errorf("audit verify with the key: exit %d\n%s", code, out)
	}
	if code, out := testenv.RunCommand(t, healerBin, "audit", "verify", auditDir); code != 1 || !strings.Contains(out, "give --key.file") {
		t.Errorf("audit verify without the key: exit %d, want 1 saying the MACs were not checked\n%s", code, out)
	}
}
