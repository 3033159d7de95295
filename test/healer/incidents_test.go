package healer_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
)

// A disk fills, two services on it die and their scrapes fail: five
// alerts in one notification, one incident, and the healer acts once, on
// the disk, with every record of it naming the incident.
func TestFiveSymptomsOfOneCauseAreOneIncidentActedOnOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ranDir := filepath.Join(dir, "ran")
	if err := os.Mkdir(ranDir, 0o750); err != nil {
		t.Fatal(err)
	}
	step := func(c string) []any {
		return []any{map[string]any{"action": "record", "params": map[string]string{"case": c}}}
	}
	h := newHealer(t, dir, map[string]any{
		"global": map[string]any{"identity": []string{"testhost"}, "max_tier": "observe"},
		"actions": map[string]any{"commands": []any{map[string]any{
			"name": "record", "tier": "observe", "doc": "append the alert to a file named after its case",
			"argv":   []string{"/usr/bin/tee", "-a", ranDir + "/ran-{{case}}"},
			"params": []any{map[string]any{"name": "case", "type": "string", "required": true, "pattern": "[a-z0-9-]{1,32}"}},
		}}},
		"runbooks": []any{
			map[string]any{"name": "clean-disk", "match": []string{`alertname="DiskAlmostFull"`}, "steps": step("disk")},
			map[string]any{"name": "restart", "match": []string{`alertname="ServiceDown"`}, "steps": step("{{ $labels.service }}")},
		},
	})
	h.start()
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	alert := func(fp, name string, kv ...string) template.Alert {
		ls := map[string]string{"alertname": name, "instance": "testhost", "severity": "warning"}
		for i := 0; i+1 < len(kv); i += 2 {
			ls[kv[i]] = kv[i+1]
		}
		return firing(fp, at, ls)
	}
	h.webhook(message(t, "http://am.invalid",
		alert("00000000000000a1", "ServiceDown", "service", "nginx"),
		alert("00000000000000a2", "TargetDown", "job", "nginx", "service", "nginx"),
		alert("00000000000000a3", "ServiceDown", "service", "app"),
		alert("00000000000000a4", "TargetDown", "job", "app", "service", "app"),
		alert("00000000000000a5", "DiskAlmostFull", "mountpoint", "/var"),
	))
	var rs []run
	eventually(t, 20*time.Second, "the incident's one run ends", func() (bool, string) {
		rs = h.runs("")
		planned := 0
		for _, a := range h.alerts("") {
			if a.State != "new" {
				planned++
			}
		}
		return len(rs) == 1 && rs[0].State == "succeeded" && planned == 5, fmt.Sprintf("%d of 5 alerts planned, runs %+v", planned, rs)
	})
	if got := executions(t, filepath.Join(ranDir, "ran-disk")); len(got) != 1 || got[0] != rs[0].ID {
		t.Errorf("the disk's runbook ran for %v; want once, for %s", got, rs[0].ID)
	}
	for _, svc := range []string{"nginx", "app"} {
		if got := executions(t, filepath.Join(ranDir, "ran-"+svc)); len(got) != 0 {
			t.Errorf("%s was restarted %d times; want never: it is a symptom of the disk", svc, len(got))
		}
	}

	code, out := h.cli("incidents", "--state=open")
	if code != 0 || !strings.Contains(out, "DiskAlmostFull") || strings.Count(out, "\n") != 2 {
		t.Fatalf("healer incidents: exit %d; want one open incident, primary DiskAlmostFull\n%s", code, out)
	}
	t.Logf("healer incidents --state=open:\n%s", out)
	id := strings.Fields(strings.Split(out, "\n")[1])[0]
	code, js := h.cli("incidents", id, "--output=json")
	var in struct {
		Primary string `json:"primary"`
		Members []struct {
			Key       string `json:"key"`
			Alertname string `json:"alertname"`
		} `json:"members"`
		Runs []run `json:"runs"`
	}
	if err := json.Unmarshal([]byte(js), &in); code != 0 || err != nil || len(in.Members) != 5 || len(in.Runs) != 1 || in.Runs[0].Runbook != "clean-disk" {
		t.Fatalf("healer incidents %s: exit %d, %v; want five alerts and the disk's run\n%s", id, code, err, js)
	}
	code, out = h.cli("incidents", id)
	t.Logf("healer incidents %s:\n%s", id, out)
	if code != 0 || !strings.Contains(out, "primary, acting") {
		t.Errorf("healer incidents %s: exit %d; want the disk marked primary and acting\n%s", id, code, out)
	}
	// Alerts that came first may have been an incident of their own
	// until the disk linked it to this one: it merged into this one.
	ours := map[string]bool{id: true}
	code, js = h.cli("incidents", "--output=json")
	var all []struct {
		ID         string `json:"id"`
		MergedInto string `json:"merged_into"`
	}
	if err := json.Unmarshal([]byte(js), &all); code != 0 || err != nil {
		t.Fatalf("healer incidents --output=json: exit %d, %v\n%s", code, err, js)
	}
	for _, o := range all {
		if o.MergedInto == id {
			ours[o.ID] = true
		}
	}
	h.stop()
	h.verifyAudit()
	runRecords := 0
	for _, r := range h.auditRecords() {
		if r.Kind != "received" && !ours[r.Incident] {
			t.Errorf("audit record %d (%s %s) names incident %q; want %s or one merged into it", r.Seq, r.Kind, r.Result, r.Incident, id)
		}
		if r.RunID == rs[0].ID {
			runRecords++
		}
	}
	if runRecords < 3 {
		t.Errorf("%d records of the run; want its guard, start and finish at least", runRecords)
	}
}
