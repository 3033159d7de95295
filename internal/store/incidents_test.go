package store

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/incident"
)

func TestIncidentsAreSavedWithTheirDecisionAndFound(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	a := alert("00000000000000c1", alertmanager.StatusFiring, t0)
	if _, err := s.Accept(ctx, "webhook", []alertmanager.Alert{a}); err != nil {
		t.Fatal(err)
	}
	stored, err := s.NewAlerts(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	in := incident.Incident{
		ID: "inc1", Group: `{instance="web1"}`, State: incident.Open, OpenedAt: t0, UpdatedAt: t0, Primary: a.Key(), RunID: "r1",
		Members: []incident.Member{{Key: a.Key(), Alertname: "DiskFull", StartsAt: t0}},
	}
	run := Run{ID: "r1", AlertKey: a.Key(), Fingerprint: a.Fingerprint, Runbook: "rb", Action: "x", Steps: []StepRecord{{Action: "x"}}, Tier: action.TierLow, State: RunPending, CreatedAt: t0, IncidentID: "inc1"}
	if err := s.PlanBatch(ctx, []Decision{{ID: stored[0].ID, State: AlertPlanned, Runs: []Run{run}, Incident: &in}}); err != nil {
		t.Fatal(err)
	}
	open, err := s.OpenIncidents(ctx, []string{`{instance="web1"}`, `{instance="web2"}`}, t0)
	if err != nil || len(open) != 1 || open[0].ID != "inc1" || len(open[0].Members) != 1 {
		t.Fatalf("OpenIncidents: %+v, %v", open, err)
	}
	// Resolved: no longer open, still listed.
	in.State, in.ResolvedAt = incident.Resolved, t0.Add(time.Hour)
	if err := s.PlanBatch(ctx, []Decision{{ID: stored[0].ID, State: AlertPlanned, Incident: &in}}); err != nil {
		t.Fatal(err)
	}
	if old, _ := s.OpenIncidents(ctx, []string{`{instance="web1"}`}, t0.Add(time.Second)); len(old) != 0 {
		t.Errorf("an incident not changed since is open to join: %+v", old)
	}
	if got, err := s.AlertByKey(ctx, a.Key()); err != nil || got.IncidentID != "inc1" {
		t.Errorf("the alert's incident: %q, %v; want inc1", got.IncidentID, err)
	}
	if os, err := s.Outcomes(ctx, a.Fingerprint, "rb", 5); err != nil || len(os) != 1 || os[0].State != RunPending {
		t.Errorf("Outcomes: %+v, %v; want the pending run", os, err)
	}
	if open, _ := s.OpenIncidents(ctx, []string{`{instance="web1"}`}, t0); len(open) != 0 {
		t.Errorf("a resolved incident is still open: %+v", open)
	}
	if got, err := s.Incident(ctx, "inc1"); err != nil || got.State != incident.Resolved || !got.ResolvedAt.Equal(in.ResolvedAt) {
		t.Errorf("Incident: %+v, %v", got, err)
	}
	if rs, err := s.Runs(ctx, RunFilter{IncidentID: "inc1"}); err != nil || len(rs) != 1 || rs[0].IncidentID != "inc1" {
		t.Errorf("runs of the incident: %+v, %v", rs, err)
	}
	if err := s.UpdateRun(ctx, "r1", Update{State: RunSkipped, Assessment: json.RawMessage(`{"decision":"none"}`)}, RunPending); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Run(ctx, "r1"); err != nil || string(r.Assessment) != `{"decision":"none"}` {
		t.Errorf("the run's assessment: %s, %v", r.Assessment, err)
	}
	if err := s.UpdateRun(ctx, "r1", Update{Assessment: json.RawMessage(`{`)}); err == nil {
		t.Error("UpdateRun took an assessment that is not JSON")
	}
}

func TestMigrateGivesAVersion3DatabaseIncidents(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	olderDatabase(t, dir, `DROP TABLE incidents; ALTER TABLE runs DROP COLUMN incident_id; ALTER TABLE runs DROP COLUMN assessment;
		ALTER TABLE alerts DROP COLUMN incident_id; PRAGMA user_version = 3`)
	s := openIn(t, dir)
	if _, err := s.Incidents(t.Context(), IncidentFilter{}); err != nil {
		t.Errorf("incidents after the migration: %v", err)
	}
	if _, err := s.Runs(t.Context(), RunFilter{IncidentID: "x"}); err != nil {
		t.Errorf("runs after the migration: %v", err)
	}
	if _, err := s.Alerts(t.Context(), "", 1); err != nil {
		t.Errorf("alerts after the migration: %v", err)
	}
}

func openIn(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
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

func TestPruneRemovesIncidentsPastTheRetention(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	s := openWithClock(t, func() time.Time { return now })
	ctx := t.Context()
	a := alert("00000000000000c9", alertmanager.StatusFiring, now.Add(-100*24*time.Hour))
	if _, err := s.Accept(ctx, "webhook", []alertmanager.Alert{a}); err != nil {
		t.Fatal(err)
	}
	stored, err := s.NewAlerts(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	old := incident.Incident{ID: "old", Group: "g", State: incident.Open, OpenedAt: now.Add(-100 * 24 * time.Hour), UpdatedAt: now.Add(-100 * 24 * time.Hour)}
	recent := incident.Incident{ID: "recent", Group: "g", State: incident.Resolved, OpenedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour)}
	if err := s.PlanBatch(ctx, []Decision{{ID: stored[0].ID, State: AlertDone, Incident: &recent, Merged: []incident.Incident{old}}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Prune(ctx, Retention{Runs: 90 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	ins, err := s.Incidents(ctx, IncidentFilter{})
	if err != nil || len(ins) != 1 || ins[0].ID != "recent" {
		t.Errorf("incidents after pruning: %+v, %v; want the recent one alone", ins, err)
	}
}
