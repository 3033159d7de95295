package llm

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/deus-ex-machina/deus/internal/assess"
)

// The bounded label values of the client's metrics.
const (
	outcomeOK      = "ok"
	outcomeFailed  = "failed"
	outcomeRefused = "refused"

	reasonBudget      = "budget"
	reasonTimeout     = "timeout"
	reasonRateLimited = "rate_limited"
	reasonStatus      = "http_status"
	reasonTransport   = "transport"
	reasonMalformed   = "malformed"
)

type metrics struct {
	requests  *prometheus.CounterVec
	tokens    *prometheus.CounterVec
	duration  prometheus.Histogram
	failures  *prometheus.CounterVec
	fallbacks *prometheus.CounterVec
}

// newMetrics creates the deus_brain_* metrics on r (none registered when
// r is nil), every label value at zero.
func newMetrics(r prometheus.Registerer) *metrics {
	f := promauto.With(r)
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "deus", Subsystem: "brain", Name: "requests_total",
			Help: "Requests to the model, by outcome (ok, failed, refused by the budget).",
		}, []string{"outcome"}),
		tokens: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "deus", Subsystem: "brain", Name: "tokens_total",
			Help: "Tokens the model reported using, by kind (prompt, completion).",
		}, []string{"kind"}),
		duration: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: "deus", Subsystem: "brain", Name: "request_duration_seconds",
			Help:    "How long a request to the model took, retries included.",
			Buckets: []float64{0.25, 0.5, 1, 2, 5, 10, 20, 30, 60},
		}),
		failures: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "deus", Subsystem: "brain", Name: "failures_total",
			Help: "Failed requests to the model, by reason.",
		}, []string{"reason"}),
		fallbacks: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "deus", Subsystem: "brain", Name: "fallbacks_total",
			Help: "Assessments answered by the local analyzer instead of the model, by reason (error, invalid).",
		}, []string{"reason"}),
	}
	for _, o := range []string{outcomeOK, outcomeFailed, outcomeRefused} {
		m.requests.WithLabelValues(o)
	}
	for _, k := range []string{"prompt", "completion"} {
		m.tokens.WithLabelValues(k)
	}
	for _, r := range []string{reasonBudget, reasonTimeout, reasonRateLimited, reasonStatus, reasonTransport, reasonMalformed} {
		m.failures.WithLabelValues(r)
	}
	for _, r := range []assess.FallbackReason{assess.FallbackError, assess.FallbackInvalid} {
		m.fallbacks.WithLabelValues(string(r))
	}
	return m
}
