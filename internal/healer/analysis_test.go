package healer

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/store"
)

// alertsRange answers range queries from a series firing during fire, and
// records each query's span in steps.
type alertsRange struct {
	fire  func(time.Time) bool
	spans []int
}

func (q *alertsRange) Query(context.Context, string, time.Time) (model.Vector, error) {
	return nil, nil
}

func (q *alertsRange) QueryRange(_ context.Context, expr string, start, end time.Time, step time.Duration) (model.Matrix, error) {
	q.spans = append(q.spans, int(end.Sub(start)/step)+1)
	ss := &model.SampleStream{Metric: model.Metric{"__name__": "ALERTS", "alertname": "Nightly", "instance": "db1", "alertstate": "firing"}}
	for t := start; !t.After(end); t = t.Add(step) {
		if q.fire(t) {
			ss.Values = append(ss.Values, model.SamplePair{Timestamp: model.TimeFromUnixNano(t.UnixNano()), Value: 1})
		}
	}
	return model.Matrix{ss}, nil
}

func TestAlertEpisodesReadInBoundedQueriesWithoutSeams(t *testing.T) {
	t.Parallel()
	until := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	since := until.Add(-20 * 24 * time.Hour)
	// 03:00 to 03:30 every day; and one episode across the seam between
	// the first two queries, which must stay one.
	seam := since.Add((maxPoints - 5) * time.Minute)
	q := &alertsRange{fire: func(t time.Time) bool {
		h := t.Hour()*60 + t.Minute()
		return h >= 180 && h < 210 || !t.Before(seam) && t.Before(seam.Add(10*time.Minute))
	}}
	eps, err := alertEpisodes(t.Context(), q, since, until, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range q.spans {
		if n > maxPoints {
			t.Errorf("query %d spans %d steps; want at most %d", i, n, maxPoints)
		}
	}
	if len(q.spans) != 3 {
		t.Errorf("%d queries for 20 days of minutes; want 3", len(q.spans))
	}
	if len(eps) != 21 {
		t.Fatalf("%d episodes; want 20 nights and the one across the seam", len(eps))
	}
	for _, e := range eps {
		if d := e.End.Sub(e.Start); d != 30*time.Minute && d != 10*time.Minute {
			t.Errorf("episode %s to %s lasts %s; want 30m (or 10m across the seam)", e.Start, e.End, d)
		}
	}
}

func TestReceivedAlertsAndRunsBecomeTheHistory(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	ls := model.LabelSet{"alertname": "DiskFull", "instance": "db1"}
	alerts := []store.StoredAlert{
		{Alert: alertmanager.Alert{Fingerprint: "a", Status: alertmanager.StatusFiring, StartsAt: t0, Labels: ls}},
		// Delivered again while firing, then resolved.
		{Alert: alertmanager.Alert{Fingerprint: "a", Status: alertmanager.StatusFiring, StartsAt: t0, Labels: ls}},
		{Alert: alertmanager.Alert{Fingerprint: "a", Status: alertmanager.StatusResolved, StartsAt: t0, EndsAt: t0.Add(10 * time.Minute), Labels: ls}},
		// Never resolved: still firing.
		{Alert: alertmanager.Alert{Fingerprint: "a", Status: alertmanager.StatusFiring, StartsAt: t0.Add(time.Hour), Labels: ls}},
	}
	eps := receivedEpisodes(alerts)
	if len(eps) != 2 || !eps[0].End.Equal(t0.Add(10*time.Minute)) || !eps[1].End.IsZero() || eps[0].Instance != "db1" || eps[0].Source != "healer" {
		t.Errorf("episodes: %+v; want one of 10m and one still firing, from the healer", eps)
	}
	runs := analysisRuns([]store.Run{
		{Runbook: "clean", Alertname: "DiskFull", Labels: map[string]string{"instance": "db1"}, StartedAt: t0, FinishedAt: t0.Add(time.Minute), State: store.RunSucceeded},
		{Runbook: "clean", DryRun: true, StartedAt: t0, State: store.RunDryRun},
		{Runbook: "clean", State: store.RunSkipped},
		{Action: "restart_service", StartedAt: t0, State: store.RunSucceeded}, // by hand
	})
	if len(runs) != 1 || !runs[0].Succeeded || runs[0].Instance != "db1" {
		t.Errorf("runs: %+v; want the one runbook run that acted", runs)
	}
}
