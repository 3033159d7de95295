package backtest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

const stepRules = `groups:
  - name: test
    rules:
      - record: instance:test:avg_30m
        expr: avg_over_time(test_value[30m])
      - alert: High
        expr: test_value > 2 * instance:test:avg_30m offset 5m
        for: 10m
`

func TestRunHonoursForAndRecordingRules(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(rules, []byte(stepRules), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var samples []Sample
	for i := range 24 {
		v := 1.0
		if i >= 12 && i < 16 { // four samples, 15 minutes, far above the average
			v = 10
		}
		samples = append(samples, Sample{T: start.Add(time.Duration(i) * 5 * time.Minute), V: v})
	}
	// A duplicate and a step back in time, as real exports have.
	samples = append(samples[:3], append([]Sample{samples[2]}, samples[3:]...)...)

	res, err := Run(t.Context(), Options{
		RuleFiles: []string{rules},
		Alert:     "High",
		Series:    labels.FromStrings("__name__", "test_value", "instance", "x"),
		Dir:       filepath.Join(dir, "tsdb"),
	}, samples)
	if err != nil {
		t.Fatal(err)
	}
	if res.Step != 5*time.Minute {
		t.Errorf("Step = %s; want the series' own 5m", res.Step)
	}
	if res.Dropped != 1 {
		t.Errorf("Dropped = %d; want 1 duplicate", res.Dropped)
	}
	// The recorded 30m average 5m earlier is 1 at 60m, 2.5 at 65m, 4 at
	// 70m and 5.5 at 75m, so the condition holds at 60, 65 and 70m only:
	// pending from 60m, firing at 70m once for: 10m has passed.
	want := []time.Time{start.Add(70 * time.Minute)}
	if !slices.EqualFunc(res.Firing, want, time.Time.Equal) {
		t.Errorf("Firing = %v; want %v", res.Firing, want)
	}
}

func TestRunRejectsAnUnknownAlert(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(rules, []byte(stepRules), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Run(t.Context(), Options{
		RuleFiles: []string{rules}, Alert: "Missing",
		Series: labels.FromStrings("__name__", "test_value"), Dir: filepath.Join(dir, "tsdb"),
	}, []Sample{{T: time.Unix(0, 0), V: 1}, {T: time.Unix(60, 0), V: 1}})
	if err == nil {
		t.Error("Run with an alert the files do not define returned no error")
	}
}
