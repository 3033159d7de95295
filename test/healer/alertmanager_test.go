package healer_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/testenv"
)

// alertmanager is a real Alertmanager (Debian's prometheus-alertmanager)
// run by a test.
type alertmanager struct {
	t    testing.TB
	url  string
	proc *proc
}

// startAlertmanager runs Alertmanager with every alert routed to the
// healer's webhook, authenticated with its token file, with resolved
// notifications, and re-sent every two seconds while firing.
func startAlertmanager(t testing.TB, dir, addr string, h *healer) *alertmanager {
	t.Helper()
	bin := testenv.Binary(t, "prometheus-alertmanager")
	cfg := map[string]any{
		"route": map[string]any{
			"receiver":        "healer",
			"group_by":        []string{"..."}, // one group per alert: no alert waits for another's timers
			"group_wait":      "0s",
			"group_interval":  "1s",
			"repeat_interval": "2s",
		},
		"receivers": []any{map[string]any{
			"name": "healer",
			"webhook_configs": []any{map[string]any{
				"url":           h.url + "/webhook",
				"send_resolved": true,
				"http_config": map[string]any{
					"authorization": map[string]any{"credentials_file": filepath.Join(h.dir, "webhook.token")},
				},
			}},
		}},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "alertmanager.yml")
	writeFile(t, file, string(b))
	storage := filepath.Join(dir, "am-data")
	am := &alertmanager{t: t, url: "http://" + addr}
	// --cluster.listen-address="" turns gossip off (else it binds
	// 0.0.0.0:9094).
	am.proc = startProc(t, dir, bin, "--config.file="+file, "--storage.path="+storage,
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=debug")
	testenv.WaitHTTP(t, am.url+"/-/ready", 20*time.Second)
	return am
}

// amAlert is an alert as Alertmanager's API v2 takes it.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt,omitzero"`
}

// post sends alerts to POST /api/v2/alerts, as Prometheus does.
func (am *alertmanager) post(alerts ...amAlert) {
	am.t.Helper()
	b, err := json.Marshal(alerts)
	if err != nil {
		am.t.Fatal(err)
	}
	resp, err := http.Post(am.url+"/api/v2/alerts", "application/json", bytes.NewReader(b))
	if err != nil {
		am.t.Fatalf("POST /api/v2/alerts: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		am.t.Fatalf("POST /api/v2/alerts: %s", resp.Status)
	}
}

// alertWith returns the stored alert whose label case is c and whose status
// is status.
func alertWith(alerts []storedAlert, c, status string) (storedAlert, bool) {
	for _, a := range alerts {
		if string(a.Labels["case"]) == c && string(a.Status) == status {
			return a, true
		}
	}
	return storedAlert{}, false
}

// TestWithRealAlertmanager runs Debian's Alertmanager 0.25 in front of the
// healer. A firing alert is acted on once although Alertmanager sends it
// again and again, and its resolved notification does not act; a runbook
// above the tier ceiling waits for approval, which `healer approve` and
// `healer deny` give.
func TestWithRealAlertmanager(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ranDir := filepath.Join(dir, "ran")
	if err := os.Mkdir(ranDir, 0o750); err != nil {
		t.Fatal(err)
	}
	amAddr := testenv.FreeAddr(t)
	record := func(name, tier string) map[string]any {
		return map[string]any{
			"name": name, "tier": tier, "doc": "append the alert to a file named after its case label",
			"argv":   []string{"/usr/bin/tee", "-a", ranDir + "/ran-{{case}}"},
			"params": []any{map[string]any{"name": "case", "type": "string", "required": true, "pattern": "[a-z0-9-]{1,32}"}},
		}
	}
	step := func(action string) []any {
		return []any{map[string]any{"action": action, "params": map[string]string{"case": "{{ $labels.case }}"}}}
	}
	h := newHealer(t, dir, map[string]any{
		"global":       map[string]any{"identity": []string{"testhost"}, "max_tier": "observe"},
		"alertmanager": map[string]any{"url": "http://" + amAddr}, // asked whether an alert is silenced
		"actions": map[string]any{"commands": []any{
			record("record", "observe"), record("record_gated", "low"),
			map[string]any{"name": "fail", "tier": "observe", "argv": []string{"/bin/false"}},
		}},
		"runbooks": []any{
			map[string]any{"name": "once", "match": []string{`alertname="HealerE2EOnce"`}, "steps": step("record")},
			map[string]any{"name": "gated", "match": []string{`alertname="HealerE2EGated"`}, "steps": step("record_gated")},
			map[string]any{"name": "escalates", "match": []string{`alertname="HealerE2EFails"`}, "steps": []any{map[string]any{"action": "fail"}}},
		},
	})
	h.start()
	am := startAlertmanager(t, dir, amAddr, h)
	startsAt := time.Now().Add(-10 * time.Second).UTC().Truncate(time.Millisecond)
	labels := func(alertname, c string) map[string]string {
		return map[string]string{"alertname": alertname, "instance": "testhost", "case": c, "severity": "warning"}
	}
	runsOf := func(fp string) []run { return h.runs("&fingerprint=" + fp) }

	t.Run("a firing alert is acted on once however often Alertmanager sends it", func(t *testing.T) {
		am.post(amAlert{Labels: labels("HealerE2EOnce", "once"), Annotations: map[string]string{"summary": "e2e"}, StartsAt: startsAt})
		var a storedAlert
		eventually(t, 20*time.Second, "Alertmanager delivers the alert at least twice", func() (bool, string) {
			var ok bool
			a, ok = alertWith(h.alerts(""), "once", "firing")
			if !ok {
				return false, "not received"
			}
			return a.Deliveries >= 2, fmt.Sprintf("%d deliveries", a.Deliveries)
		})
		t.Logf("alert %s delivered %d times", a.Key, a.Deliveries)
		var rs []run
		eventually(t, 10*time.Second, "the run ends", func() (bool, string) {
			rs = runsOf(a.Fingerprint)
			return len(rs) == 1 && rs[0].State == "succeeded", fmt.Sprintf("runs %+v", rs)
		})
		if got := executions(t, filepath.Join(ranDir, "ran-once")); len(got) != 1 || got[0] != rs[0].ID {
			t.Errorf("the action ran for runs %v; want exactly [%s]", got, rs[0].ID)
		}

		// Resolve it, as Prometheus does: the same alert with an end in the
		// past.
		am.post(amAlert{Labels: labels("HealerE2EOnce", "once"), StartsAt: startsAt, EndsAt: time.Now().Add(-time.Second).UTC()})
		var resolved storedAlert
		eventually(t, 20*time.Second, "the healer stores the resolved alert", func() (bool, string) {
			var ok bool
			resolved, ok = alertWith(h.alerts(""), "once", "resolved")
			return ok && resolved.State != "new", "not received or not planned"
		})
		if resolved.Fingerprint != a.Fingerprint || !resolved.StartsAt.Equal(a.StartsAt) {
			t.Errorf("resolved alert %s; want the firing one's fingerprint and start, %s", resolved.Key, a.Key)
		}
		t.Logf("resolved alert %s: %s (%s)", resolved.Key, resolved.State, resolved.Note)
		eventually(t, 10*time.Second, "every run of the alert ends", func() (bool, string) {
			for _, r := range runsOf(a.Fingerprint) {
				if r.State == "pending" || r.State == "running" {
					return false, "run " + r.ID + " is " + string(r.State)
				}
			}
			return true, ""
		})
		if rs := runsOf(a.Fingerprint); len(rs) != 1 {
			t.Errorf("after the resolution the alert has %d runs; want 1", len(rs))
		}
		if got := executions(t, filepath.Join(ranDir, "ran-once")); len(got) != 1 {
			t.Errorf("after the resolution the action ran %d times; want 1", len(got))
		}
	})

	t.Run("a failed run escalates to Alertmanager as HealerEscalation", func(t *testing.T) {
		am.post(amAlert{Labels: labels("HealerE2EFails", "fails"), StartsAt: startsAt})
		var failed run
		eventually(t, 20*time.Second, "the run fails", func() (bool, string) {
			a, ok := alertWith(h.alerts(""), "fails", "firing")
			if !ok {
				return false, "not received"
			}
			rs := runsOf(a.Fingerprint)
			if len(rs) != 1 || rs[0].State != "failed" {
				return false, fmt.Sprintf("runs %+v", rs)
			}
			failed = rs[0]
			return true, ""
		})
		eventually(t, 20*time.Second, "Alertmanager holds HealerEscalation for the run", func() (bool, string) {
			resp, err := http.Get(am.url + `/api/v2/alerts?filter=alertname%3D%22HealerEscalation%22`)
			if err != nil {
				return false, err.Error()
			}
			defer resp.Body.Close()
			var got []struct {
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				return false, err.Error()
			}
			for _, g := range got {
				if g.Annotations["run_id"] == failed.ID {
					if g.Labels["runbook"] != "escalates" || g.Labels["instance"] != "testhost" || g.Labels["healer_alertname"] != "HealerE2EFails" {
						t.Errorf("escalation labels: got %v", g.Labels)
					}
					return true, ""
				}
			}
			return false, fmt.Sprintf("%d escalations, none for run %s", len(got), failed.ID)
		})
	})

	t.Run("a run above the tier ceiling waits for approval, and healer approve and deny decide it", func(t *testing.T) {
		am.post(
			amAlert{Labels: labels("HealerE2EGated", "approve-me"), StartsAt: startsAt},
			amAlert{Labels: labels("HealerE2EGated", "deny-me"), StartsAt: startsAt},
		)
		waiting := map[string]run{}
		eventually(t, 20*time.Second, "both runs wait for approval", func() (bool, string) {
			var rs []run
			if code := h.get("/api/v1/approvals", h.apiToken, &rs); code != http.StatusOK {
				return false, fmt.Sprintf("GET /api/v1/approvals: %d", code)
			}
			for _, r := range rs {
				waiting[r.Labels["case"]] = r
			}
			return len(waiting) == 2, fmt.Sprintf("%d waiting", len(waiting))
		})
		approveRun, denyRun := waiting["approve-me"], waiting["deny-me"]
		for _, r := range waiting {
			if r.State != "waiting" || r.Tier != action.TierLow {
				t.Errorf("run %s is %s at tier %s; want waiting at tier low", r.ID, r.State, r.Tier)
			}
		}
		for _, c := range []string{"approve-me", "deny-me"} {
			if got := executions(t, filepath.Join(ranDir, "ran-"+c)); len(got) != 0 {
				t.Errorf("%s ran %d times before anyone approved it", c, len(got))
			}
		}

		if code, out := h.cli("approve", approveRun.ID); code != 0 {
			t.Fatalf("healer approve %s: exit %d; want 0\n%s", approveRun.ID, code, out)
		}
		if code, out := h.cli("deny", denyRun.ID); code != 0 {
			t.Fatalf("healer deny %s: exit %d; want 0\n%s", denyRun.ID, code, out)
		}
		// A decision is taken once.
		for _, c := range [][]string{{"approve", denyRun.ID}, {"deny", approveRun.ID}, {"approve", approveRun.ID}} {
			if code, out := h.cli(c...); code != 1 || !strings.Contains(out, "409") {
				t.Errorf("healer %s: exit %d (%s); want 1, with 409 Conflict", strings.Join(c, " "), code, strings.TrimSpace(out))
			}
		}
		eventually(t, 10*time.Second, "the approved run succeeds", func() (bool, string) {
			rs := runsOf(approveRun.Fingerprint)
			return len(rs) == 1 && rs[0].State == "succeeded", fmt.Sprintf("runs %+v", rs)
		})
		if got := executions(t, filepath.Join(ranDir, "ran-approve-me")); len(got) != 1 || got[0] != approveRun.ID {
			t.Errorf("the approved action ran for runs %v; want exactly [%s]", got, approveRun.ID)
		}

		// Alertmanager keeps sending both alerts; neither gets another run.
		denied, _ := alertWith(h.alerts(""), "deny-me", "firing")
		eventually(t, 20*time.Second, "Alertmanager sends the denied alert again", func() (bool, string) {
			a, _ := alertWith(h.alerts(""), "deny-me", "firing")
			return a.Deliveries > denied.Deliveries, fmt.Sprintf("%d deliveries, %d at the denial", a.Deliveries, denied.Deliveries)
		})
		if rs := runsOf(denyRun.Fingerprint); len(rs) != 1 || rs[0].State != "denied" {
			t.Errorf("the denied alert has runs %+v; want one, denied", rs)
		}
		if rs := runsOf(approveRun.Fingerprint); len(rs) != 1 {
			t.Errorf("the approved alert has %d runs; want 1", len(rs))
		}
		if got := executions(t, filepath.Join(ranDir, "ran-deny-me")); len(got) != 0 {
			t.Errorf("the denied action ran %d times", len(got))
		}
		if got := executions(t, filepath.Join(ranDir, "ran-approve-me")); len(got) != 1 {
			t.Errorf("the approved action ran %d times; want 1", len(got))
		}
	})

	if err := am.proc.Stop(20 * time.Second); err != nil {
		t.Errorf("alertmanager exited with %v after SIGTERM", err)
	}
	h.stop()
	h.verifyAudit()
	decisions := map[string]string{}
	for _, rec := range h.auditRecords() {
		if rec.Kind == "approved" || rec.Kind == "denied" {
			decisions[rec.RunID] = rec.Kind + " by " + rec.Fields["by"]
		}
	}
	t.Logf("decisions in the audit log: %v", decisions)
	for _, want := range []string{"approved by e2e-test", "denied by e2e-test"} {
		found := false
		for _, d := range decisions {
			found = found || d == want
		}
		if !found {
			t.Errorf("the audit log has no record %q; has %v", want, decisions)
		}
	}
}
