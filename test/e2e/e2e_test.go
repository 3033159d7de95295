package e2e_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// TestSelfHealing runs both scenarios on each stack. The stacks run one
// after the other, not in parallel: each scrapes and evaluates every
// second, and the timings it prints are only worth reading on a machine
// that is not also running two other stacks.
func TestSelfHealing(t *testing.T) {
	stacks := []struct{ name, kind, short string }{
		{"Prometheus and Alertmanager", withPrometheus, "prom"},
		{"VictoriaMetrics with vmalert and Alertmanager", withVictoriaMetrics, "vm"},
		{"the standalone healer", standalone, "sa"},
	}
	var report []timing
	for _, st := range stacks {
		t.Run(st.name, func(t *testing.T) {
			s := startStack(t, st.kind, st.short)
			t.Run("a killed service is restarted and verified", func(t *testing.T) {
				report = append(report, healService(t, s))
			})
			t.Run("a full temp file system is cleaned into quarantine and rolled back", func(t *testing.T) {
				report = append(report, cleanTemp(t, s))
			})
			t.Run("every signal is judged against its backfilled baseline", func(t *testing.T) {
				s.history.checkHistory(t, s)
				s.history.checkBaselines(t, s)
			})
			t.Run("every dashboard panel shows data", func(t *testing.T) {
				checkDashboards(t, s)
			})
			s.h.stopAndVerify()
		})
	}
	logTimings(t, report)
}

// healService kills the watched service and follows the loop until the
// healer has restarted it, verified it and seen the alert resolve.
func healService(t *testing.T, s *stack) timing {
	up := fmt.Sprintf(`deus_service_up{service=%q,instance=%q}`, s.svc.name, s.instance)
	eventually(t, 60*time.Second, "the service is collected as up", func() (bool, string) {
		r, err := s.query(up + " == 1")
		if err != nil {
			return false, err.Error()
		}
		return len(r) == 1, fmt.Sprintf("%s == 1: %d series", up, len(r))
	})
	oldPID := s.svcProc.Pid()
	fault := time.Now()
	s.svcProc.Kill()

	r := awaitRun(t, s, "restart-service", 90*time.Second)
	if r.Alertname != "ServiceDown" || r.Labels["service"] != s.svc.name || r.Labels["instance"] != s.instance {
		t.Errorf("run for %s{service=%q, instance=%q}; want ServiceDown{service=%q, instance=%q}",
			r.Alertname, r.Labels["service"], r.Labels["instance"], s.svc.name, s.instance)
	}
	if pid := s.svc.pid(); pid == oldPID || !s.svc.running(pid) {
		t.Errorf("after the restart the pidfile holds %d (killed: %d), running: %v; want a new, running %s",
			pid, oldPID, s.svc.running(pid), s.svc.name)
	}
	checkIncident(t, s, r)
	awaitResolved(t, s, r, "ServiceDown", fmt.Sprintf(`service=%q`, s.svc.name))
	res := checkAudit(t, s.h, r, "received", "matched", "prechecked", "assessed", "guarded", "started", "finished", "verified", "finished")
	if res["received"] != "firing" || res["prechecked"] != "holds" || res["verified"] != "ok" || res["finished"] != "succeeded" {
		t.Errorf("audit results: received %q, prechecked %q, verified %q, finished %q; want firing, holds, ok, succeeded (the run's last)",
			res["received"], res["prechecked"], res["verified"], res["finished"])
	}

	return measure(t, s, "service killed", fault, r, up, func(v float64) bool { return v == 0 },
		fmt.Sprintf(`service=%q`, s.svc.name))
}

// checkIncident requires the restart's incident to hold the service's
// failing probe too, acted on once, with every record of the run naming it.
func checkIncident(t *testing.T, s *stack, r run) {
	t.Helper()
	if r.IncidentID == "" {
		t.Fatalf("run %s is in no incident", r.ID)
	}
	var in struct {
		Members []struct {
			Alertname string `json:"alertname"`
		} `json:"members"`
		Runs []run `json:"runs"`
	}
	eventually(t, 60*time.Second, "the failing probe joins the service's incident", func() (bool, string) {
		if err := apiData(s.h.url+"/api/v1/incidents/"+r.IncidentID, s.h.apiToken, &in); err != nil {
			return false, err.Error()
		}
		names := map[string]bool{}
		for _, m := range in.Members {
			names[m.Alertname] = true
		}
		return names["ServiceDown"] && names[probeAlert], fmt.Sprintf("members %+v", in.Members)
	})
	if len(in.Runs) != 1 || in.Runs[0].ID != r.ID {
		t.Errorf("incident %s made runs %+v; want the one restart %s", r.IncidentID, in.Runs, r.ID)
	}
	for _, rec := range s.h.auditRecords() {
		if rec.RunID == r.ID && rec.Incident != r.IncidentID {
			t.Errorf("audit record %d (%s) of run %s names incident %q; want %s", rec.Seq, rec.Kind, r.ID, rec.Incident, r.IncidentID)
		}
	}
}

// oldFile is a file the scenario wrote, as it was.
type oldFile struct {
	sha256 string
	mode   fs.FileMode
	mtime  time.Time
}

// cleanTemp fills the watched tmpfs past DiskAlmostFull's threshold with
// month-old files; the healer moves them into quarantine, verifies, and
// `healer rollback` puts them back byte for byte.
func cleanTemp(t *testing.T, s *stack) timing {
	if !s.mounted {
		t.Skip("no tmpfs could be mounted (it needs root); under CI=true that fails instead")
	}
	avail := fmt.Sprintf(`node_filesystem_avail_bytes{mountpoint=%q,instance=%q}`, s.tmp, s.instance)
	eventually(t, 60*time.Second, "the tmpfs is collected", func() (bool, string) {
		r, err := s.query(avail)
		if err != nil {
			return false, err.Error()
		}
		return len(r) == 1, fmt.Sprintf("%s: %d series", avail, len(r))
	})

	// 15 MiB of 16: 6% available, under DiskAlmostFull's 10%. Month-old,
	// so past clean-temp's older_than (7d); one fresh file that must stay.
	const size = 16 << 20
	month := time.Now().Add(-30 * 24 * time.Hour).Truncate(time.Second)
	files := map[string]oldFile{}
	if err := os.Mkdir(filepath.Join(s.tmp, "cache"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 15 {
		p := filepath.Join(s.tmp, fmt.Sprintf("old-%02d.bin", i))
		if i%3 == 0 {
			p = filepath.Join(s.tmp, "cache", fmt.Sprintf("old-%02d.bin", i))
		}
		b := make([]byte, 1<<20)
		_, _ = rand.Read(b)
		if err := os.WriteFile(p, b, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, month, month); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		files[p] = oldFile{sha256: hex.EncodeToString(sum[:]), mode: 0o640, mtime: month}
	}
	fresh := filepath.Join(s.tmp, "fresh.txt")
	writeFile(t, fresh, "written just now: clean-temp leaves it\n")
	fault := time.Now()

	r := awaitRun(t, s, "clean-temp", 90*time.Second)
	if r.Labels["mountpoint"] != s.tmp || r.Labels["instance"] != s.instance {
		t.Errorf("run for %s{mountpoint=%q, instance=%q}; want mountpoint %q, instance %q",
			r.Alertname, r.Labels["mountpoint"], r.Labels["instance"], s.tmp, s.instance)
	}
	// Both DiskAlmostFull and DiskWillFillIn4Hours (the fill is a steep
	// trend) may fire for the tmpfs at once; one run cleans, the runbook's
	// cooldown holds any other.
	var acted []run
	eventually(t, 30*time.Second, "every clean-temp run ends", func() (bool, string) {
		acted = acted[:0]
		for _, x := range s.h.runs() {
			if x.Runbook != "clean-temp" {
				continue
			}
			if !final(string(x.State)) {
				return false, fmt.Sprintf("run %s is %s", x.ID, x.State)
			}
			if x.State == "succeeded" {
				acted = append(acted, x)
			}
		}
		return true, ""
	})
	for p := range files {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there after the clean; want it in quarantine", p)
		}
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("the fresh file: %v; want it left alone", err)
	}
	t.Run("a second alert on the same file system is held by the cooldown", func(t *testing.T) {
		if len(acted) > 1 {
			var ids []string
			for _, x := range acted {
				ids = append(ids, x.ID+" ("+x.Alertname+")")
			}
			t.Errorf("%d clean-temp runs acted on %s at once: %s; want one, the others skipped by the cooldown",
				len(acted), s.tmp, strings.Join(ids, ", "))
		}
	})
	awaitResolved(t, s, r, r.Alertname, fmt.Sprintf(`mountpoint=%q`, s.tmp))
	res := checkAudit(t, s.h, r, "received", "matched", "guarded", "started", "finished", "verified", "finished")
	if res["received"] != "firing" || res["verified"] != "ok" || res["finished"] != "succeeded" {
		t.Errorf("audit results: received %q, verified %q, finished %q; want firing, ok, succeeded (the run's last)",
			res["received"], res["verified"], res["finished"])
	}
	tm := measure(t, s, "temp filled", fault, r, avail, func(v float64) bool { return v < 0.10*size },
		fmt.Sprintf(`mountpoint=%q`, s.tmp))

	// Roll back every run that moved files (one, unless the cooldown
	// failed to hold the second).
	var rolled []run
	for _, x := range acted {
		if _, err := os.Stat(filepath.Join(s.dir, "quarantine", x.ID, "manifest.json")); err != nil {
			if x.ID == r.ID && len(acted) == 1 {
				t.Errorf("quarantine manifest of run %s: %v", x.ID, err)
			}
			continue
		}
		if code, out := s.h.cli("rollback", x.ID); code != 0 {
			t.Fatalf("healer rollback %s: exit %d; want 0\n%s", x.ID, code, out)
		}
		rolled = append(rolled, x)
	}
	for p, want := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("after the rollback: %v", err)
			continue
		}
		sum := sha256.Sum256(b)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		got := oldFile{sha256: hex.EncodeToString(sum[:]), mode: st.Mode().Perm(), mtime: st.ModTime()}
		if got.sha256 != want.sha256 || got.mode != want.mode || !got.mtime.Equal(want.mtime) {
			t.Errorf("%s after the rollback: sha256 %s mode %v mtime %v; want %s %v %v",
				p, got.sha256, got.mode, got.mtime, want.sha256, want.mode, want.mtime)
		}
	}
	for _, x := range rolled {
		var after run
		if err := apiData(s.h.url+"/api/v1/runs/"+x.ID, s.h.apiToken, &after); err != nil {
			t.Fatal(err)
		}
		if after.State != "rolled_back" {
			t.Errorf("run %s after the rollback is %s; want rolled_back", x.ID, after.State)
		}
		checkAudit(t, s.h, x, "started", "finished", "verified", "finished", "rolled_back")
	}
	return tm
}

// awaitRun waits for the first run of runbook to end and requires that it
// succeeded.
func awaitRun(t *testing.T, s *stack, runbook string, within time.Duration) run {
	t.Helper()
	var r run
	eventually(t, within, runbook+" runs and succeeds", func() (bool, string) {
		var mine []run
		for _, x := range s.h.runs() {
			if x.Runbook == runbook {
				mine = append(mine, x)
			}
		}
		if len(mine) == 0 {
			return false, "no " + runbook + " run yet; the healer's alerts: " + alertSummary(s.h.alerts())
		}
		// Two alerts about one file system (DiskAlmostFull and
		// DiskWillFillIn4Hours) plan two runs; whichever passes the guards
		// first acts and the other is held by the cooldown.
		pending := false
		for _, x := range mine {
			switch {
			case x.State == "succeeded":
				r = x
				return true, ""
			case !final(string(x.State)):
				pending = true
			}
		}
		if pending {
			return false, fmt.Sprintf("%d runs, none succeeded yet", len(mine))
		}
		r = mine[0]
		t.Fatalf("run %s of %s ended %s: %s; steps %+v", r.ID, runbook, r.State, r.Reason, r.Steps)
		return false, ""
	})
	return r
}

// final reports whether a run's state will not change again.
func final(state string) bool {
	switch state {
	case "pending", "waiting", "approved", "running":
		return false
	}
	return true
}

func alertSummary(as []storedAlert) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "[%s %s %s: %s] ", a.Labels["alertname"], a.Status, a.State, a.Note)
	}
	return b.String()
}

// awaitResolved waits until the alert of r has resolved everywhere: the
// rule evaluator no longer holds it, Alertmanager has no active alert for
// it, and the healer has received its resolution.
func awaitResolved(t *testing.T, s *stack, r run, alertname, matcher string) {
	t.Helper()
	name, val, _ := strings.Cut(matcher, "=")
	val = strings.Trim(val, `"`)
	eventually(t, 60*time.Second, alertname+" resolves", func() (bool, string) {
		ras, err := s.ruleAlerts()
		if err != nil {
			return false, err.Error()
		}
		for _, a := range ras {
			if (a.Labels["alertname"] == alertname || a.Name == alertname) && a.Labels[name] == val {
				return false, fmt.Sprintf("the rule evaluator holds it %s", a.State)
			}
		}
		if s.amURL != "" {
			am, err := s.amAlerts(fmt.Sprintf(`alertname=%q`, alertname), matcher)
			if err != nil {
				return false, err.Error()
			}
			if len(am) > 0 {
				return false, fmt.Sprintf("Alertmanager has %d active", len(am))
			}
		}
		for _, a := range s.h.alerts() {
			if a.Fingerprint == r.Fingerprint && a.Status == "resolved" {
				return true, ""
			}
		}
		return false, "the healer has not received the resolution"
	})
}

// checkAudit waits until the audit log holds, in this order (others may
// come between), the records of kinds about r: those about its alert
// (received, matched) and those of the run.
// It returns the result of each kind of record of the run (the last, for
// a kind that occurs more than once).
func checkAudit(t *testing.T, h *healer, r run, kinds ...string) map[string]string {
	t.Helper()
	var got []string
	results := map[string]string{}
	eventually(t, 10*time.Second, "the audit log records run "+r.ID, func() (bool, string) {
		got = got[:0]
		for _, rec := range h.auditRecords() {
			if rec.RunID == r.ID || rec.RunID == "" && rec.Fingerprint == r.Fingerprint && aboutAlert(rec, r) {
				got = append(got, rec.Kind)
				results[rec.Kind] = rec.Result
			}
		}
		return isSubsequence(kinds, got), fmt.Sprintf("got %v; want %v in this order", got, kinds)
	})
	t.Logf("audit of run %s: %s", r.ID, strings.Join(got, " "))
	return results
}

// aboutAlert reports whether rec, a record without a run, is about the
// alert r acts on: received names it by its dedup_id; matched carries no
// dedup_id nor run ID, so it is told by its fingerprint and runbook.
func aboutAlert(rec auditRecord, r run) bool {
	switch rec.Kind {
	case "matched":
		return rec.Runbook == r.Runbook
	default:
		return rec.Fields["dedup_id"] == r.AlertKey
	}
}

func isSubsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// timing is when each step of one healing happened.
type timing struct {
	stack, scenario string
	fault           time.Time // the test broke it
	seen            time.Time // the first sample showing the fault
	firing          time.Time // the first evaluation with the alert firing
	received        time.Time // the healer stored the firing alert
	actStart        time.Time // the action started (audit)
	actEnd          time.Time // the action finished (audit)
	verified        time.Time // the verification held (audit)
	resolved        time.Time // the healer stored the resolution
}

// measure reads the timestamps of one healing from the TSDB (raw samples
// of the faulty series and of ALERTS), the healer's alerts and the audit
// log.
func measure(t *testing.T, s *stack, scenario string, fault time.Time, r run, faultSel string, bad func(float64) bool, alertMatcher string) timing {
	t.Helper()
	tm := timing{stack: s.kind, scenario: scenario, fault: fault}
	eventually(t, 20*time.Second, "the TSDB holds the fault and the firing alert", func() (bool, string) {
		ss, err := s.query(faultSel + "[10m]")
		if err != nil {
			return false, err.Error()
		}
		tm.seen = time.Time{}
		for _, sr := range ss {
			for _, p := range sr.samples {
				if bad(p.v) && (tm.seen.IsZero() || p.t.Before(tm.seen)) {
					tm.seen = p.t
				}
			}
		}
		as, err := s.query(fmt.Sprintf(`ALERTS{alertname=%q,alertstate="firing",%s}[10m]`, r.Alertname, alertMatcher))
		if err != nil {
			return false, err.Error()
		}
		tm.firing = time.Time{}
		for _, sr := range as {
			for _, p := range sr.samples {
				if tm.firing.IsZero() || p.t.Before(tm.firing) {
					tm.firing = p.t
				}
			}
		}
		return !tm.seen.IsZero() && !tm.firing.IsZero(), fmt.Sprintf("first faulty sample %v, first firing %v", tm.seen, tm.firing)
	})
	for _, a := range s.h.alerts() {
		switch {
		case a.Key == r.AlertKey:
			tm.received = a.ReceivedAt
		case a.Fingerprint == r.Fingerprint && a.Status == "resolved":
			tm.resolved = a.ReceivedAt
		}
	}
	for _, rec := range s.h.auditRecords() {
		if rec.RunID != r.ID {
			continue
		}
		switch {
		case rec.Kind == "started" && tm.actStart.IsZero():
			tm.actStart = rec.Time
		case rec.Kind == "finished" && tm.actEnd.IsZero():
			tm.actEnd = rec.Time
		case rec.Kind == "verified":
			tm.verified = rec.Time
		}
	}
	logTimings(t, []timing{tm})
	return tm
}

// phases are the rows of the timing table.
var phases = []struct {
	name     string
	from, to func(timing) time.Time
}{
	{"scrape: fault -> first sample showing it", func(x timing) time.Time { return x.fault }, func(x timing) time.Time { return x.seen }},
	{"rule evaluation (for: 2s): -> firing", func(x timing) time.Time { return x.seen }, func(x timing) time.Time { return x.firing }},
	{"Alertmanager wait: -> healer received", func(x timing) time.Time { return x.firing }, func(x timing) time.Time { return x.received }},
	{"healer decision: -> action started", func(x timing) time.Time { return x.received }, func(x timing) time.Time { return x.actStart }},
	{"action", func(x timing) time.Time { return x.actStart }, func(x timing) time.Time { return x.actEnd }},
	{"verification (PromQL)", func(x timing) time.Time { return x.actEnd }, func(x timing) time.Time { return x.verified }},
	{"fault -> healed (verified)", func(x timing) time.Time { return x.fault }, func(x timing) time.Time { return x.verified }},
	{"fault -> resolution at the healer", func(x timing) time.Time { return x.fault }, func(x timing) time.Time { return x.resolved }},
}

// logTimings logs one column per healing. VictoriaMetrics' timestamps are
// whole seconds, so its first two rows are as coarse.
func logTimings(t *testing.T, ts []timing) {
	t.Helper()
	if len(ts) == 0 {
		return
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(w, "phase\t")
	for _, x := range ts {
		fmt.Fprintf(w, "%s\t", x.stack)
	}
	fmt.Fprint(w, "\n\t")
	for _, x := range ts {
		fmt.Fprintf(w, "%s\t", x.scenario)
	}
	fmt.Fprintln(w)
	for _, p := range phases {
		fmt.Fprintf(w, "%s\t", p.name)
		for _, x := range ts {
			from, to := p.from(x), p.to(x)
			if from.IsZero() || to.IsZero() {
				fmt.Fprint(w, "-\t")
				continue
			}
			fmt.Fprintf(w, "%.2fs\t", to.Sub(from).Seconds())
		}
		fmt.Fprintln(w)
	}
	_ = w.Flush()
	t.Logf("time from fault to healed:\n%s", b.String())
}
