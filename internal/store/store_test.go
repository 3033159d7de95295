package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/alertmanager"
)

func alert(fp string, status alertmanager.Status, start time.Time) alertmanager.Alert {
	return alertmanager.Alert{
		Status:      status,
		Labels:      model.LabelSet{"alertname": "DiskFull", "instance": "web1", "odd": "$(touch pwned)\n\x00"},
		Annotations: model.LabelSet{"summary": "full"},
		StartsAt:    start,
		Fingerprint: fp,
	}
}

func open(t *testing.T) *Store {
	t.Helper()
	return openWithClock(t, nil)
}

// openWithClock opens a store in a temporary folder with now as its clock
// (nil: time.Now), closed when the test ends.
func openWithClock(t *testing.T, now func() time.Time) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), Options{Synchronous: "normal", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestAcceptDeduplicates(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	start := time.Date(2026, 11, 23, 18, 19, 19, 694e6, time.UTC)
	a := alert("03dcb9292ee7cedb", alertmanager.StatusFiring, start)
	res, err := s.Accept(ctx, "webhook", []alertmanager.Alert{a, a})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(res), "[true false]"; got != want {
		t.Errorf("the same alert twice in one request: got %s, want %s", got, want)
	}
	res, err = s.Accept(ctx, "webhook", []alertmanager.Alert{a, alert("03dcb9292ee7cedb", alertmanager.StatusResolved, start)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(res), "[false true]"; got != want {
		t.Errorf("a retry and the resolution: got %s, want %s", got, want)
	}
	got, err := s.Alerts(ctx, "03dcb9292ee7cedb", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("stored: got %d alerts, want 2", len(got))
	}
	var firing StoredAlert
	for _, g := range got {
		if g.Status == alertmanager.StatusFiring {
			firing = g
		}
	}
	if firing.Deliveries != 3 || firing.State != AlertNew || !firing.StartsAt.Equal(start) {
		t.Errorf("firing alert: got deliveries %d state %q starts %v, want 3 new %v", firing.Deliveries, firing.State, firing.StartsAt, start)
	}
	if firing.Labels["odd"] != "$(touch pwned)\n\x00" {
		t.Errorf("labels do not round-trip: got %q", firing.Labels["odd"])
	}
	resolved, err := s.Resolved(ctx, "03dcb9292ee7cedb", start)
	if err != nil || !resolved {
		t.Errorf("Resolved: got %v, %v, want true", resolved, err)
	}
}

func TestAcceptConcurrent(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	news := make([]int, 16)
	start := time.Unix(1700000000, 0).UTC()
	for w := range 16 {
		wg.Go(func() {
			for i := range 50 {
				// Every alert is sent by two workers, as by an HA pair.
				fp := fmt.Sprintf("%016x", (w/2)*1000+i)
				res, err := s.Accept(ctx, "webhook", []alertmanager.Alert{alert(fp, alertmanager.StatusFiring, start)})
				if err != nil {
					t.Error(err)
					return
				}
				if res[0] {
					news[w]++
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for _, n := range news {
		total += n
	}
	if total != 8*50 {
		t.Errorf("new alerts: got %d, want %d (each once)", total, 8*50)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.NewAlerts != 400 {
		t.Errorf("Stats.NewAlerts: got %d, want 400", st.NewAlerts)
	}
}

func TestAcceptAfterClose(t *testing.T) {
	t.Parallel()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = s.Accept(context.Background(), "webhook", []alertmanager.Alert{alert("0000000000000001", "firing", time.Now())})
	if !errors.Is(err, ErrClosed) {
		t.Errorf("Accept after Close: got %v, want ErrClosed", err)
	}
}

func TestRunsAndGuards(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	a := alert("00000000000000aa", alertmanager.StatusFiring, time.Unix(1700000000, 0))
	if _, err := s.Accept(ctx, "webhook", []alertmanager.Alert{a}); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000100, 0).UTC()
	run := Run{
		ID: "r1", AlertKey: a.Key(), Fingerprint: a.Fingerprint, Runbook: "rb", Action: "restart_service",
		Target: "nginx.service", Steps: []StepRecord{{Action: "restart_service", Params: map[string]string{"unit": "nginx.service"}}}, Tier: action.TierMedium, State: RunPending, CreatedAt: now,
	}
	stored, err := s.NewAlerts(ctx, 10)
	if err != nil || len(stored) != 1 {
		t.Fatalf("NewAlerts: %v, %d alerts; want 1", err, len(stored))
	}
	if err := s.Plan(ctx, stored[0].ID, AlertPlanned, "", []Run{run}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateRun(ctx, "r1", Update{State: RunRunning, StartedAt: now}, RunPending); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateRun(ctx, "r1", Update{State: RunRunning}, RunPending); !errors.Is(err, ErrConflict) {
		t.Errorf("UpdateRun from a state it is not in: got %v, want ErrConflict", err)
	}
	if err := s.UpdateRun(ctx, "nope", Update{State: RunRunning}); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateRun of a missing run: got %v, want ErrNotFound", err)
	}
	c, err := s.Counts(ctx, "rb", "nginx.service", now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !c.LastStart.Equal(now) || c.InWindow != 1 || c.Targets != 1 || !c.TargetSeen {
		t.Errorf("Counts: got %+v", c)
	}
	b := Breaker{Runbook: "rb", Target: "nginx.service", Failures: 2, OpenedAt: now, LastFailure: now}
	if err := s.SaveBreaker(ctx, b); err != nil {
		t.Fatal(err)
	}
	open, err := s.OpenBreakers(ctx)
	if err != nil || len(open) != 1 || open[0].Failures != 2 {
		t.Errorf("OpenBreakers: got %+v, %v", open, err)
	}
}

func TestPruneKeepsUnresolvedFirings(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := openWithClock(t, func() time.Time { return now })
	ctx := t.Context()
	start := now.Add(-time.Hour)
	open := alert("00000000000000a1", alertmanager.StatusFiring, start)
	closed := alert("00000000000000a2", alertmanager.StatusFiring, start)
	resolution := alert("00000000000000a2", alertmanager.StatusResolved, start)
	if _, err := s.Accept(ctx, "webhook", []alertmanager.Alert{open, closed, resolution}); err != nil {
		t.Fatal(err)
	}
	queued, err := s.NewAlerts(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ds []Decision
	for _, a := range queued {
		ds = append(ds, Decision{ID: a.ID, State: AlertDone, Note: "no runbook"})
	}
	if err := s.PlanBatch(ctx, ds); err != nil {
		t.Fatal(err)
	}
	now = now.Add(40 * 24 * time.Hour)
	pruned, _, err := s.Prune(ctx, Retention{Alerts: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if pruned != 2 {
		t.Errorf("pruned %d alerts; want 2 (the resolved firing and its resolution)", pruned)
	}
	left, _ := s.Alerts(ctx, "", 10)
	if len(left) != 1 || left[0].Fingerprint != "00000000000000a1" {
		t.Errorf("left: %+v; want the firing that never resolved", left)
	}
	// Its repeat notification is still a duplicate.
	res, err := s.Accept(ctx, "webhook", []alertmanager.Alert{open})
	if err != nil || res[0] {
		t.Errorf("a repeat of the unresolved firing after pruning: new=%v, %v; want a duplicate", res, err)
	}
}

func TestHistorySinceKeepsTheWindow(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	old := alert("00000000000000b1", alertmanager.StatusFiring, t0)
	recent := alert("00000000000000b2", alertmanager.StatusFiring, t0.Add(48*time.Hour))
	resolved := recent
	resolved.Status, resolved.EndsAt = alertmanager.StatusResolved, t0.Add(49*time.Hour)
	if _, err := s.Accept(ctx, "webhook", []alertmanager.Alert{resolved, old, recent}); err != nil {
		t.Fatal(err)
	}
	got, err := s.AlertsSince(ctx, t0.Add(24*time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	statuses := map[alertmanager.Status]bool{}
	for _, a := range got {
		statuses[a.Status] = a.Fingerprint == recent.Fingerprint
	}
	if len(got) != 2 || !statuses[alertmanager.StatusFiring] || !statuses[alertmanager.StatusResolved] {
		t.Errorf("AlertsSince: %+v; want the recent firing and its resolution, not the old one", got)
	}
	stored, err := s.NewAlerts(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var runs []Run
	for i, at := range []time.Time{t0, t0.Add(48 * time.Hour)} {
		runs = append(runs, Run{
			ID: fmt.Sprintf("r%d", i), AlertKey: stored[0].Key, Fingerprint: stored[0].Fingerprint, Runbook: "rb", Action: "restart_service",
			Target: "x", Steps: []StepRecord{{Action: "restart_service"}}, Tier: action.TierLow, State: RunPending, CreatedAt: at,
		})
	}
	if err := s.Plan(ctx, stored[0].ID, AlertPlanned, "", runs); err != nil {
		t.Fatal(err)
	}
	rs, err := s.Runs(ctx, RunFilter{Since: t0.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].ID != "r1" {
		t.Errorf("Runs since: %+v; want r1 alone", rs)
	}
}
