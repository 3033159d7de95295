package healer

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/store"
)

// Metrics are the healer's own metrics, deus_healer_*.
type Metrics struct {
	received     *prometheus.CounterVec
	duplicates   *prometheus.CounterVec
	intakeErrors prometheus.Counter
	runs         *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	guarded      *prometheus.CounterVec
	escalations  prometheus.Counter
	rollbacks    *prometheus.CounterVec
	auditErrors  prometheus.Counter
}

// Run results pre-created at zero, so that rate() and absent() see them
// from the start.
var runResults = []store.RunState{
	store.RunSucceeded, store.RunFailed, store.RunRolledBack, store.RunSkipped, store.RunDenied,
	store.RunExpired, store.RunCancelled, store.RunInterrupted, store.RunDryRun,
}

// NewMetrics registers the healer's metrics with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		received: f.NewCounterVec(prometheus.CounterOpts{
			Name: "deus_healer_alerts_received_total",
			Help: "Alerts accepted and stored, once per firing or resolution, by status and source.",
		}, []string{"status", "source"}),
		duplicates: f.NewCounterVec(prometheus.CounterOpts{
			Name: "deus_healer_alerts_duplicate_total",
			Help: "Deliveries of alerts already stored (retries, HA pairs, repeats), by source.",
		}, []string{"source"}),
		intakeErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "deus_healer_intake_errors_total",
			Help: "Requests whose alerts could not be stored (answered 503 so the sender retries).",
		}),
		runs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "deus_healer_runs_total",
			Help: "Runs that ended, by their first action and result.",
		}, []string{"action", "result"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "deus_healer_run_duration_seconds",
			Help:    "How long actions ran, by action.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300},
		}, []string{"action"}),
		guarded: f.NewCounterVec(prometheus.CounterOpts{
			Name: "deus_healer_guard_skips_total",
			Help: "Runs a guard skipped, by guard.",
		}, []string{"guard"}),
		rollbacks: f.NewCounterVec(prometheus.CounterOpts{
			Name: "deus_healer_rollbacks_total",
			Help: "Steps undone, after a failed verification or by hand, by action and result.",
		}, []string{"action", "result"}),
		escalations: f.NewCounter(prometheus.CounterOpts{
			Name: "deus_healer_escalations_total",
			Help: "HealerEscalation alerts posted to Alertmanager.",
		}),
		auditErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "deus_healer_audit_errors_total",
			Help: "Audit records that could not be written (the step they preceded was not taken).",
		}),
	}
	for _, s := range []alertmanager.Status{alertmanager.StatusFiring, alertmanager.StatusResolved} {
		m.received.WithLabelValues(string(s), "webhook")
	}
	m.duplicates.WithLabelValues("webhook")
	for _, g := range []string{"silenced", "circuit_breaker", "cooldown", "rate_limit", "blast_radius", "gate", "maintenance"} {
		m.guarded.WithLabelValues(g)
	}
	return m
}

// InitActions pre-creates the run counters and duration histogram of every
// action.
func (m *Metrics) InitActions(names []string) {
	for _, n := range names {
		for _, r := range runResults {
			m.runs.WithLabelValues(n, string(r))
		}
		// A histogram that first appears at its first observation holds 1
		// already, and rate() over it shows nothing until the second.
		m.duration.WithLabelValues(n)
	}
}

// StateCollector exposes what is read from the store and the audit log at
// scrape time: queue depth, pending approvals, open breakers, audit records.
type StateCollector struct {
	Store *store.Store
	Audit *audit.Log
	// ChainOK reports the audit chain's state as last checked.
	ChainOK func() bool
}

var (
	queueDesc     = prometheus.NewDesc("deus_healer_queue_depth", "Alerts waiting to be planned and runs waiting to act.", []string{"kind"}, nil)
	approvalsDesc = prometheus.NewDesc("deus_healer_approvals_pending", "Runs waiting for approval.", nil, nil)
	oldestDesc    = prometheus.NewDesc("deus_healer_approval_oldest_pending_timestamp_seconds", "When the oldest run waiting for approval was planned; absent when none waits.", nil, nil)
	breakersDesc  = prometheus.NewDesc("deus_healer_circuit_breakers_open", "Circuit breakers open now.", nil, nil)
	auditDesc     = prometheus.NewDesc("deus_healer_audit_records_total", "Audit records written by this process.", nil, nil)
	auditSeqDesc  = prometheus.NewDesc("deus_healer_audit_last_sequence", "Sequence number of the newest audit record.", nil, nil)
	chainDesc     = prometheus.NewDesc("deus_healer_audit_chain_ok", "1 when the audit log's hash chain verified at start and every append since succeeded.", nil, nil)
	scrapeErrDesc = prometheus.NewDesc("deus_healer_state_scrape_error", "1 when the state could not be read from the store for this scrape.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c StateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queueDesc, approvalsDesc, oldestDesc, breakersDesc, auditDesc, auditSeqDesc, chainDesc, scrapeErrDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c StateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	failed := 0.0
	st, err := c.Store.Stats(ctx)
	if err != nil {
		failed = 1
	} else {
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(st.NewAlerts), "alerts")
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(st.PendingRuns), "runs")
		ch <- prometheus.MustNewConstMetric(approvalsDesc, prometheus.GaugeValue, float64(st.WaitingApproval))
		if !st.OldestWaiting.IsZero() {
			ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, float64(st.OldestWaiting.UnixNano())/1e9)
		}
	}
	if open, err := c.Store.OpenBreakers(ctx); err != nil {
		failed = 1
	} else {
		ch <- prometheus.MustNewConstMetric(breakersDesc, prometheus.GaugeValue, float64(len(open)))
	}
	ch <- prometheus.MustNewConstMetric(auditDesc, prometheus.CounterValue, float64(c.Audit.Records()))
	ch <- prometheus.MustNewConstMetric(auditSeqDesc, prometheus.GaugeValue, float64(c.Audit.LastSeq()))
	ok := 0.0
	if c.ChainOK == nil || c.ChainOK() {
		ok = 1
	}
	ch <- prometheus.MustNewConstMetric(chainDesc, prometheus.GaugeValue, ok)
	ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.GaugeValue, failed)
}
