package healer

import (
	"strings"
	"testing"
	"time"

	"github.com/deus-ex-machina/deus/internal/store"
	"github.com/deus-ex-machina/deus/internal/testenv"
)

const maintenanceRunbook = `
global: {identity: ["127.0.0.1"], max_tier: medium}
prometheus: {url: "http://prometheus.invalid"}
maintenance:
  windows: 1
  silence_matchers: ['maintenance="true"']
runbooks:
  - name: restart
    match: ['alertname="HealerTestTrigger"']
    maintenance: true
    steps:
      - action: restart_service
        params: {unit: "{{ $labels.job }}.service"}
`

// quietTuesday is a load that is busy but for Tuesdays at 03:00 UTC.
func quietTuesday(t time.Time) float64 {
	if t.UTC().Weekday() == time.Tuesday && t.UTC().Hour() == 3 {
		return 1
	}
	return 10
}

func TestAMaintenanceRunWaitsForTheQuietestHour(t *testing.T) {
	t.Parallel()
	e := newEnv(t, maintenanceRunbook)
	e.q.mu.Lock()
	e.q.load = quietTuesday
	e.q.mu.Unlock()
	e.post("webhook-firing.json", nil) // Monday 18:20 UTC
	runs := e.settle()
	want := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	if len(runs) != 1 || runs[0].State != store.RunScheduled || !runs[0].ExpiresAt.Equal(want) || !strings.Contains(runs[0].Reason, "Tue 03:00") {
		t.Fatalf("a maintenance run on Monday evening: got %+v; want scheduled until Tuesday 03:00 UTC, saying so", runs)
	}
	if n, _ := e.act.count(); n != 0 {
		t.Fatalf("it ran %d times outside its window", n)
	}
	// A maintenance silence holds it even inside the window.
	e.am.mu.Lock()
	e.am.freeze = "42 by ops: change freeze"
	e.am.mu.Unlock()
	e.clock.Add(want.Sub(e.clock.Now()) + 5*time.Minute)
	testenv.Eventually(t, 10*time.Second, 2*time.Millisecond, "the run is re-scheduled under the freeze", func() (bool, string) {
		r, _ := e.st.Run(t.Context(), runs[0].ID)
		return r.State == store.RunScheduled && strings.Contains(r.Reason, "change freeze"), string(r.State) + ": " + r.Reason
	})
	e.am.mu.Lock()
	e.am.freeze = ""
	e.am.mu.Unlock()
	e.clock.Add(15 * time.Minute)
	testenv.Eventually(t, 10*time.Second, 2*time.Millisecond, "the run succeeds inside its window", func() (bool, string) {
		r, _ := e.st.Run(t.Context(), runs[0].ID)
		return r.State == store.RunSucceeded, string(r.State) + ": " + r.Reason
	})
	if n, _ := e.act.count(); n != 1 {
		t.Errorf("it ran %d times; want once", n)
	}
	kinds := auditKinds(t, e.dir)
	if !strings.Contains(kinds, "guarded:deferred scheduled:due guarded:deferred scheduled:due guarded:allowed started:") {
		t.Errorf("audit: %s; want deferred, due, deferred (freeze), due, allowed", kinds)
	}
}

func TestScheduleSaysWhyEachWindowWasChosen(t *testing.T) {
	t.Parallel()
	e := newEnv(t, strings.Replace(maintenanceRunbook, "windows: 1", "windows: 2", 1))
	e.q.mu.Lock()
	e.q.load = quietTuesday
	e.q.mu.Unlock()
	s := e.h.Schedule(t.Context())
	if len(s.Windows) != 2 || s.Windows[0].Load != 1 || !strings.Contains(s.Windows[0].Why, "1st quietest hour") || len(s.Runbooks) != 1 {
		t.Errorf("schedule: got %+v; want two windows, the Tuesday 03:00 one first with why, and the restart runbook", s)
	}
}

func TestAResolvedAlertCancelsItsScheduledRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, maintenanceRunbook)
	e.q.mu.Lock()
	e.q.load = quietTuesday
	e.q.mu.Unlock()
	e.post("webhook-firing.json", nil)
	if runs := e.settle(); len(runs) != 1 || runs[0].State != store.RunScheduled {
		t.Fatalf("got %+v, want one scheduled run", runs)
	}
	e.post("webhook-resolved.json", nil)
	if runs := e.settle(); len(runs) != 1 || runs[0].State != store.RunCancelled {
		t.Errorf("after the alert resolved: got %+v, want the scheduled run cancelled", runs)
	}
}
