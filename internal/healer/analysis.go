package healer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"

	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/analysis"
	"github.com/deus-ex-machina/deus/internal/query"
	"github.com/deus-ex-machina/deus/internal/store"
)

// AnalysisRequest asks what the alert history of the last Since shows.
type AnalysisRequest struct {
	// Since is how far back; 30 days when 0.
	Since time.Duration
	// Step is the resolution at which Prometheus' ALERTS are read; one
	// minute when 0.
	Step time.Duration
}

// Analysis is an analysis.Report with what its history lacked.
type Analysis struct {
	analysis.Report
	// Notes say what could not be read (Prometheus down, too much
	// history), so that a quiet report is not taken for a quiet system.
	Notes []string `json:"notes,omitempty"`
}

// alertsQuery selects the firing alerts of Prometheus' rule evaluation.
const alertsQuery = `ALERTS{alertstate="firing"}`

// maxPoints is how many steps one range query asks for: Prometheus refuses
// more than 11,000 points per series.
const maxPoints = 10000

// maxQueries bounds the range queries one analysis makes.
const maxQueries = 50

// historyLimit bounds the alerts and runs read from the store.
const historyLimit = 200000

// Analyze reads the alert history (Prometheus' ALERTS series where a
// Prometheus answers range queries, the alerts the healer received, and
// its runs) and returns what keeps coming back.
func (h *Healer) Analyze(ctx context.Context, r AnalysisRequest) (Analysis, error) {
	if r.Since < 0 || r.Step < 0 {
		return Analysis{}, errors.New("since and step: must not be negative")
	}
	if r.Since == 0 {
		r.Since = 30 * 24 * time.Hour
	}
	if r.Step == 0 {
		r.Step = time.Minute
	}
	if r.Step < time.Second {
		return Analysis{}, errors.New("step: must be at least 1s")
	}
	if n := int(r.Since / r.Step / maxPoints); n > maxQueries {
		return Analysis{}, fmt.Errorf("step: %s over %s takes %d range queries, more than %d; take a longer step", r.Step, r.Since, n, maxQueries)
	}
	until := h.now()
	since := until.Add(-r.Since)
	var out Analysis
	var episodes []analysis.Episode
	if rq, ok := h.opts.Querier.(query.RangeQuerier); ok {
		eps, err := alertEpisodes(ctx, rq, since, until, r.Step)
		if err != nil {
			if ctx.Err() != nil {
				return Analysis{}, ctx.Err()
			}
			out.Notes = append(out.Notes, "Prometheus' ALERTS were not read, only the alerts the healer received: "+err.Error())
		}
		episodes = append(episodes, eps...)
	} else {
		out.Notes = append(out.Notes, ErrNoRangeQueries.Error()+": only the alerts the healer received are read")
	}
	received, err := h.opts.Store.AlertsSince(ctx, since, historyLimit)
	if err != nil {
		return Analysis{}, fmt.Errorf("read alerts: %w", err)
	}
	if len(received) == historyLimit {
		out.Notes = append(out.Notes, fmt.Sprintf("the healer's history was cut at %d alerts", historyLimit))
	}
	episodes = append(episodes, receivedEpisodes(received)...)
	runs, err := h.opts.Store.Runs(ctx, store.RunFilter{Since: since, Limit: historyLimit})
	if err != nil {
		return Analysis{}, fmt.Errorf("read runs: %w", err)
	}
	o := analysis.DefaultOptions()
	o.Since, o.Until = since, until
	out.Report, err = analysis.Analyze(episodes, analysisRuns(runs), o)
	return out, err
}

// alertEpisodes reads ALERTS over [since, until] at step, in range queries
// of at most maxPoints steps, and turns each series' samples into
// episodes: samples a step apart are one episode, which ends a step after
// its last sample (the resolution of what was read).
func alertEpisodes(ctx context.Context, rq query.RangeQuerier, since, until time.Time, step time.Duration) ([]analysis.Episode, error) {
	type acc struct {
		name, instance string
		times          []time.Time
	}
	series := map[model.Fingerprint]*acc{}
	var order []model.Fingerprint
	for start := since; !start.After(until); start = start.Add(maxPoints * step) {
		end := start.Add((maxPoints - 1) * step)
		if end.After(until) {
			end = until
		}
		m, err := rq.QueryRange(ctx, alertsQuery, start, end, step)
		if err != nil {
			return nil, err
		}
		for _, ss := range m {
			fp := ss.Metric.Fingerprint()
			a := series[fp]
			if a == nil {
				a = &acc{name: string(ss.Metric[model.AlertNameLabel]), instance: string(ss.Metric[model.InstanceLabel])}
				series[fp] = a
				order = append(order, fp)
			}
			for _, v := range ss.Values {
				a.times = append(a.times, v.Timestamp.Time())
			}
		}
	}
	var out []analysis.Episode
	for _, fp := range order {
		a := series[fp]
		for i := 0; i < len(a.times); {
			j := i + 1
			for j < len(a.times) && a.times[j].Sub(a.times[j-1]) <= step {
				j++
			}
			e := analysis.Episode{Alertname: a.name, Instance: a.instance, Start: a.times[i], End: a.times[j-1].Add(step), Source: "prometheus"}
			if !a.times[j-1].Add(step).Before(until) {
				e.End = time.Time{} // still firing at the end of the history
			}
			out = append(out, e)
			i = j
		}
	}
	return out, nil
}

// receivedEpisodes pairs each firing the healer received with its
// resolution, if one came: an episode from its startsAt to the
// resolution's endsAt. A firing never resolved is still firing.
func receivedEpisodes(alerts []store.StoredAlert) []analysis.Episode {
	type firing struct {
		fp    string
		start time.Time
	}
	idx := map[firing]int{}
	var out []analysis.Episode
	for _, a := range alerts {
		f := firing{a.Fingerprint, a.StartsAt}
		i, ok := idx[f]
		if !ok {
			i = len(out)
			idx[f] = i
			out = append(out, analysis.Episode{
				Alertname: string(a.Labels[model.AlertNameLabel]), Instance: string(a.Labels[model.InstanceLabel]),
				Start: a.StartsAt, Source: "healer",
			})
		}
		if a.Status == alertmanager.StatusResolved {
			out[i].End = a.EndsAt
		}
	}
	return out
}

// analysisRuns are the runs of runbooks that acted (not dry, not skipped).
func analysisRuns(runs []store.Run) []analysis.Run {
	var out []analysis.Run
	for _, r := range runs {
		if r.Runbook == "" || r.DryRun || r.StartedAt.IsZero() {
			continue
		}
		out = append(out, analysis.Run{
			Runbook: r.Runbook, Alertname: r.Alertname, Instance: r.Labels["instance"],
			Start: r.StartedAt, End: r.FinishedAt, Succeeded: r.State == store.RunSucceeded,
		})
	}
	return out
}
