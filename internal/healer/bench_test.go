package healer

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/assess"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/config"
	"github.com/deus-ex-machina/deus/internal/store"
)

// noopAction does nothing and returns at once, so that a run costs only
// the healer's own work.
type noopAction struct{}

var noopSpec = action.Spec{
	Name: "noop", Tier: action.TierLow,
	Params: []action.Param{{Name: "unit", Type: action.TypeUnit, Required: true}},
}

func (noopAction) Spec() action.Spec { return noopSpec }

func (noopAction) Run(context.Context, action.Request) (action.Result, error) {
	return action.Result{}, nil
}

// trueQuerier answers every query with one series, so prechecks and
// verifications hold at their first query.
type trueQuerier struct{}

var oneSeries = model.Vector{{Metric: model.Metric{"instance": "127.0.0.1:9100"}, Value: 1}}

func (trueQuerier) Query(context.Context, string, time.Time) (model.Vector, error) {
	return oneSeries, nil
}

const benchOneStep = `
global: {identity: ["127.0.0.1"], max_tier: medium}
prometheus: {url: "http://prometheus.invalid"}
runbooks:
  - name: noop
    match: ['alertname="BenchNoop"']
    steps:
      - action: noop
        params: {unit: "{{ $labels.unit }}"}
`

const benchChecked = `
global: {identity: ["127.0.0.1"], max_tier: medium}
prometheus: {url: "http://prometheus.invalid"}
runbooks:
  - name: noop
    match: ['alertname="BenchNoop"']
    precheck: {expr: 'up{job="node"} == 1', labels: [instance]}
    steps:
      - action: noop
        params: {unit: "{{ $labels.unit }}"}
    verify: {expr: 'up{job="node"} == 1', labels: [instance], within: 1m, interval: 1s}
`

// BenchmarkRun measures what one run costs the planner and the executor:
// b.N alerts, each with a fingerprint and a target of its own, are
// accepted before the healer starts (intake is not measured), then the
// healer plans and runs them all, with a no-op action, the real store and
// the real audit log, until every run has ended. An op is one run. Besides
// time and allocations it reports runs/s and, per run, the store's queries
// (reads), the write transactions asked of it (writes) and the audit
// records appended.
func BenchmarkRun(b *testing.B) {
	for _, bc := range []struct {
		name, yml string
	}{
		{"one_step", benchOneStep},
		{"precheck_step_verify", benchChecked},
	} {
		b.Run(bc.name, func(b *testing.B) { benchRun(b, bc.yml) })
	}
}

func benchRun(b *testing.B, yml string) {
	dir := b.TempDir()
	reg, err := action.NewRegistry(noopAction{})
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load([]byte(yml), config.StaticSpecs(reg.Specs()))
	if err != nil {
		b.Fatalf("config: %v", err)
	}
	st, err := store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	alog, err := audit.Open(filepath.Join(dir, "audit"), audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	m := NewMetrics(nil)
	h := New(Options{Store: st, Audit: alog, Actions: reg, Querier: trueQuerier{}, Metrics: m, Brain: assess.Local{}}, cfg)

	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	start := time.Now().UTC()
	const chunk = 256
	batch := make([]alertmanager.Alert, 0, chunk)
	for i := range b.N {
		batch = append(batch, alertmanager.Alert{
			Status: alertmanager.StatusFiring,
			Labels: model.LabelSet{
				"alertname": "BenchNoop", "instance": "127.0.0.1:9100", "job": "node",
				"unit": model.LabelValue(fmt.Sprintf("bench-%d.service", i)),
			},
			StartsAt:    start,
			Fingerprint: fmt.Sprintf("%016x", i),
		})
		if len(batch) == chunk || i == b.N-1 {
			if _, err := h.Accept(ctx, "webhook", batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}

	// The runs that ended, by result; every one should succeed.
	ended := func() (succeeded, other float64) {
		for _, res := range runResults {
			var d dto.Metric
			if err := m.runs.WithLabelValues(noopSpec.Name, string(res)).Write(&d); err != nil {
				b.Fatal(err)
			}
			if res == store.RunSucceeded {
				succeeded = d.GetCounter().GetValue()
			} else {
				other += d.GetCounter().GetValue()
			}
		}
		return succeeded, other
	}
	// Every alert is planned once none waits in memory (the planner starts
	// a batch's runs before it forgets the batch's alerts), and every run
	// has ended once none is executing. Asking this reads nothing from the
	// store and allocates nothing, so the figures are the healer's alone.
	idle := func() bool {
		h.freshMu.Lock()
		fresh := len(h.fresh)
		h.freshMu.Unlock()
		h.mu.Lock()
		active := len(h.active)
		h.mu.Unlock()
		return fresh == 0 && active == 0
	}
	reads0, writes0 := st.Ops()
	records0 := alog.Records()
	done := make(chan error, 1)

	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	go func() { done <- h.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Minute)
	tick := time.NewTicker(time.Millisecond)
	for !idle() {
		if time.Now().After(deadline) {
			ok, other := ended()
			b.Fatalf("after 5m, %v of %d runs succeeded and %v ended otherwise", ok, b.N, other)
		}
		<-tick.C
	}
	elapsed := time.Since(t0)
	b.StopTimer()
	tick.Stop()
	reads, writes := st.Ops()
	records := alog.Records()
	if ok, other := ended(); ok != float64(b.N) || other != 0 {
		b.Fatalf("%v of %d runs succeeded and %v ended otherwise", ok, b.N, other)
	}

	cancel()
	if err := <-done; err != nil {
		b.Errorf("Run: %v", err)
	}
	if err := st.Close(); err != nil {
		b.Error(err)
	}
	if err := alog.Close(); err != nil {
		b.Error(err)
	}

	n := float64(b.N)
	b.ReportMetric(n/elapsed.Seconds(), "runs/s")
	b.ReportMetric(float64(reads-reads0)/n, "reads/run")
	b.ReportMetric(float64(writes-writes0)/n, "writes/run")
	b.ReportMetric(float64(records-records0)/n, "audit/run")
}
