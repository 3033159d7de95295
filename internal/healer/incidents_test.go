package healer

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/assess"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/incident"
	"github.com/deus-ex-machina/deus/internal/store"
)

// diskAndService cleans a full disk and restarts a service that is down,
// with the shipped causes: a full disk takes services down, a service
// down fails its scrape.
const diskAndService = `
global: {identity: ["127.0.0.1"], max_tier: medium}
prometheus: {url: "http://prometheus.invalid"}
runbooks:
  - name: disk
    match: ['alertname="DiskAlmostFull"']
    steps:
      - action: restart_service
        params: {unit: "disk-cleanup.service"}
  - name: service
    match: ['alertname="ServiceDown"']
    steps:
      - action: restart_service
        params: {unit: "{{ $labels.service }}.service"}
`

var incidentT0 = time.Date(2026, 11, 23, 18, 19, 0, 0, time.UTC)

// symptom is a firing alert about this host.
func symptom(fp, name string, at time.Duration, kv ...string) alertmanager.Alert {
	ls := model.LabelSet{"alertname": model.LabelValue(name), "instance": "127.0.0.1:19100", "job": "node"}
	for i := 0; i+1 < len(kv); i += 2 {
		ls[model.LabelName(kv[i])] = model.LabelValue(kv[i+1])
	}
	return alertmanager.Alert{Status: alertmanager.StatusFiring, Labels: ls, StartsAt: incidentT0.Add(at), Fingerprint: fp}
}

func resolvedOf(a alertmanager.Alert, at time.Duration) alertmanager.Alert {
	a.Status, a.EndsAt = alertmanager.StatusResolved, incidentT0.Add(at)
	return a
}

func (e *env) accept(alerts ...alertmanager.Alert) {
	e.t.Helper()
	if _, err := e.h.Accept(e.t.Context(), "webhook", alerts); err != nil {
		e.t.Fatal(err)
	}
}

// incidents are the incidents that were not merged into others.
func (e *env) incidents() []incident.Incident {
	e.t.Helper()
	ins, err := e.st.Incidents(e.t.Context(), store.IncidentFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	return slices.DeleteFunc(ins, func(in incident.Incident) bool { return in.State == incident.Merged })
}

func (e *env) units() []string {
	e.act.mu.Lock()
	defer e.act.mu.Unlock()
	var out []string
	for _, r := range e.act.runs {
		out = append(out, r.Params["unit"])
	}
	return out
}

func TestABurstOfSymptomsOfOneCauseActsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, diskAndService)
	// The symptoms first, as they may come: two services down, their
	// scrapes failing, and the full disk that caused it all.
	e.accept(
		symptom("0000000000000001", "ServiceDown", 0, "service", "nginx"),
		symptom("0000000000000002", "TargetDown", 0, "job", "nginx", "service", "nginx"),
		symptom("0000000000000003", "ServiceDown", 0, "service", "app"),
		symptom("0000000000000004", "TargetDown", 0, "job", "app", "service", "app"),
		symptom("0000000000000005", "DiskAlmostFull", -time.Minute, "mountpoint", "/var"),
	)
	runs := e.settle()
	if got := e.units(); !slices.Equal(got, []string{"disk-cleanup.service"}) {
		t.Errorf("actions ran for %v; want the disk's runbook alone", got)
	}
	ins := e.incidents()
	if len(ins) != 1 || len(ins[0].Members) != 5 {
		t.Fatalf("incidents: %+v; want one of five alerts", ins)
	}
	in := ins[0]
	primary, _ := in.Member(in.Primary)
	if primary.Alertname != "DiskAlmostFull" || in.State != incident.Open {
		t.Errorf("incident: primary %s, %s; want the disk, open", primary.Alertname, in.State)
	}
	if len(runs) != 1 || runs[0].IncidentID != in.ID || runs[0].Runbook != "disk" {
		t.Errorf("runs: %+v; want the disk's, of incident %s", runs, in.ID)
	}
	// Every record about these alerts names the incident, or one it
	// merged (the two services were two incidents until their disk came).
	ours := map[string]bool{in.ID: true}
	all, err := e.st.Incidents(t.Context(), store.IncidentFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range all {
		if o.MergedInto == in.ID {
			ours[o.ID] = true
		}
	}
	recs := auditRecords(t, e.dir)
	named := 0
	for _, r := range recs {
		if r.Kind == audit.KindReceived {
			continue
		}
		if !ours[r.Incident] {
			t.Errorf("record %s %s of %s does not name the incident", r.Kind, r.Result, r.Alertname)
		}
		named++
	}
	if named < 10 {
		t.Errorf("%d records name the incident; want every alert's and the run's", named)
	}

	// The disk is cleaned and resolves; the services are still down: their
	// runbooks act now, each once. When everything resolved, so has the
	// incident.
	e.accept(resolvedOf(symptom("0000000000000005", "DiskAlmostFull", -time.Minute, "mountpoint", "/var"), 2*time.Minute))
	e.settle()
	if got := e.units(); len(got) != 3 || got[0] != "disk-cleanup.service" || !slices.Contains(got, "nginx.service") || !slices.Contains(got, "app.service") {
		t.Errorf("after the disk resolved, actions ran for %v; want both services restarted next", got)
	}
	e.accept(
		resolvedOf(symptom("0000000000000001", "ServiceDown", 0, "service", "nginx"), 3*time.Minute),
		resolvedOf(symptom("0000000000000002", "TargetDown", 0, "job", "nginx", "service", "nginx"), 3*time.Minute),
		resolvedOf(symptom("0000000000000003", "ServiceDown", 0, "service", "app"), 3*time.Minute),
		resolvedOf(symptom("0000000000000004", "TargetDown", 0, "job", "app", "service", "app"), 3*time.Minute),
	)
	e.settle()
	if ins := e.incidents(); ins[0].State != incident.Resolved {
		t.Errorf("incident after every alert resolved: %s; want resolved", ins[0].State)
	}
	if got := e.units(); len(got) != 3 {
		t.Errorf("actions ran for %v after the incident resolved; want nothing more", got)
	}
}

func TestACauseArrivingAfterItsEffectTakesOverTheHeldRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, diskAndService+"incidents: {group_wait: 1m}\n")
	e.accept(symptom("0000000000000001", "ServiceDown", 0, "service", "nginx"))
	runs := e.settle()
	if len(runs) != 1 || runs[0].State != store.RunScheduled || !strings.Contains(runs[0].Reason, "group_wait") {
		t.Fatalf("runs: %+v; want the service's held by group_wait", runs)
	}
	e.accept(symptom("0000000000000002", "DiskAlmostFull", 10*time.Second, "mountpoint", "/var"))
	runs = e.settle()
	by := map[string]store.Run{}
	for _, r := range runs {
		by[r.Runbook] = r
	}
	// The disk is no rule's effect: nothing could supersede its run, which
	// is not held.
	if by["service"].State != store.RunCancelled || !strings.Contains(by["service"].Reason, "superseded") || by["disk"].State != store.RunSucceeded {
		t.Fatalf("runs: %+v; want the service's cancelled as superseded and the disk's run at once", runs)
	}
	if got := e.units(); !slices.Equal(got, []string{"disk-cleanup.service"}) {
		t.Errorf("actions ran for %v; want the disk's runbook alone", got)
	}
}

func TestTwoUnrelatedProblemsOnOneHostAreTwoIncidents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, diskAndService)
	e.accept(
		symptom("0000000000000001", "ServiceDown", 0, "service", "nginx"),
		symptom("0000000000000002", "ServiceDown", 0, "service", "app"),
	)
	e.settle()
	got := e.units()
	slices.Sort(got)
	if !slices.Equal(got, []string{"app.service", "nginx.service"}) {
		t.Errorf("actions ran for %v; want both services restarted", got)
	}
	if ins := e.incidents(); len(ins) != 2 {
		t.Errorf("incidents: %+v; want two", ins)
	}
}

func TestAnIncidentGrowsWhileItsActionRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t, diskAndService)
	e.act.gate = make(chan struct{})
	e.accept(symptom("0000000000000001", "ServiceDown", 0, "service", "nginx"))
	testWait(t, "the restart to start", func() bool {
		runs, _ := e.st.Runs(t.Context(), store.RunFilter{States: []store.RunState{store.RunRunning}})
		return len(runs) == 1
	})
	// Its scrape fails while the service restarts.
	e.accept(symptom("0000000000000002", "TargetDown", 30*time.Second, "job", "nginx", "service", "nginx"))
	testWait(t, "the scrape alert to be planned", func() bool {
		st, _ := e.st.Stats(t.Context())
		return st.NewAlerts == 0
	})
	close(e.act.gate)
	runs := e.settle()
	if len(runs) != 1 || runs[0].State != store.RunSucceeded {
		t.Errorf("runs: %+v; want the one restart", runs)
	}
	ins := e.incidents()
	if len(ins) != 1 || len(ins[0].Members) != 2 || ins[0].RunID != runs[0].ID {
		t.Errorf("incidents: %+v; want one of both alerts, acting by the restart", ins)
	}
}

// testWait polls cond until it holds, failing after ten seconds.
func testWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
		<-tick.C
	}
}

// When the cause of an incident has no runbook, its symptom's acts; the
// local analyzer, told the cause still fires, asks a person rather than
// restart a service on a full disk.
func TestASymptomWhoseCauseStillFiresWaitsForAPerson(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
global: {identity: ["127.0.0.1"], max_tier: medium}
prometheus: {url: "http://prometheus.invalid"}
runbooks:
  - name: service
    match: ['alertname="ServiceDown"']
    steps:
      - action: restart_service
        params: {unit: "{{ $labels.service }}.service"}
`, func(o *Options) { o.Brain = assess.Local{} })
	e.accept(
		symptom("0000000000000001", "DiskAlmostFull", -time.Minute, "mountpoint", "/var"),
		symptom("0000000000000002", "ServiceDown", 0, "service", "postgresql"),
	)
	runs := e.settle()
	if len(runs) != 1 || runs[0].State != store.RunWaiting || !strings.Contains(runs[0].Reason, "DiskAlmostFull") {
		t.Fatalf("runs: %+v; want the restart waiting for a person, naming the disk", runs)
	}
	if got := e.units(); len(got) != 0 {
		t.Errorf("actions ran for %v; want none before a person decides", got)
	}
}
