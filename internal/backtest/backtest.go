// Package backtest evaluates Prometheus rule files over a historical series
// with the real rule engine, the way promtool test rules does: samples enter
// a TSDB as the evaluation clock reaches them, every group is evaluated at
// each step, recording rules write their results back, and alerting rules
// keep their pending state between steps, so `for` is honoured.
package backtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// Sample is one point of the input series.
type Sample struct {
	T time.Time
	V float64
}

// Options configure a run.
type Options struct {
	// RuleFiles are loaded as Prometheus would load them.
	RuleFiles []string
	// Alert is the alerting rule whose firing steps are reported.
	Alert string
	// Series labels the input samples, __name__ included.
	Series labels.Labels
	// Step is the evaluation interval; zero means the series' own step
	// (the most common gap between samples).
	Step time.Duration
	// Dir is where the TSDB lives for the run.
	Dir    string
	Logger *slog.Logger
}

// Result is what a run saw.
type Result struct {
	Step time.Duration
	// Firing holds every evaluation time at which Alert was firing.
	Firing []time.Time
	// Dropped counts input samples the TSDB refused, as Prometheus would:
	// duplicate timestamps and samples that go back in time.
	Dropped int
	Evals   int
}

// Run loads samples (sorted by time) into a fresh TSDB step by step and
// evaluates the rule files at every step from the first sample to the last.
func Run(ctx context.Context, o Options, samples []Sample) (res Result, err error) {
	if len(samples) == 0 {
		return res, errors.New("no samples")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	res.Step = o.Step
	if res.Step <= 0 {
		res.Step = OwnStep(samples)
	}
	if res.Step <= 0 {
		return res, errors.New("cannot tell the series' step: fewer than two distinct timestamps")
	}

	opts := tsdb.DefaultOptions()
	db, err := tsdb.Open(o.Dir, o.Logger, nil, opts, nil)
	if err != nil {
		return res, fmt.Errorf("open tsdb: %w", err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close tsdb: %w", cerr)
		}
	}()
	// Keep everything in the head: compaction would only cost time here.
	db.DisableCompactions()

	engine := promql.NewEngine(promql.EngineOpts{
		Logger:     o.Logger,
		MaxSamples: 50_000_000,
		Timeout:    time.Minute,
		// The rule files may use @ and negative offsets no more than
		// Prometheus allows by default; these match its defaults.
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		// A subquery without a step ([1d:]) steps at the evaluation
		// interval, as Prometheus does with its global one.
		NoStepSubqueryIntervalFn: func(int64) int64 { return res.Step.Milliseconds() },
	})
	mgr := rules.NewManager(&rules.ManagerOptions{
		QueryFunc:    rules.EngineQueryFunc(engine, db),
		AppendableV2: db,
		Queryable:    db,
		Context:      ctx,
		NotifyFunc:   func(context.Context, string, ...*rules.Alert) {},
		Logger:       o.Logger,
	})
	groupMap, errs := mgr.LoadGroups(res.Step, labels.EmptyLabels(), "", nil, false, o.RuleFiles...)
	if len(errs) > 0 {
		return res, fmt.Errorf("load rules: %w", errors.Join(errs...))
	}
	groups := make([]*rules.Group, 0, len(groupMap))
	var alert *rules.AlertingRule
	for _, g := range groupMap {
		groups = append(groups, g)
		for _, r := range g.Rules() {
			if ar, ok := r.(*rules.AlertingRule); ok {
				ar.SetRestored(true) // a fresh run has no earlier state to restore
				if ar.Name() == o.Alert {
					alert = ar
				}
			}
		}
	}
	if alert == nil {
		return res, fmt.Errorf("no alerting rule %q in %v", o.Alert, o.RuleFiles)
	}
	// Evaluate groups in the order of the files and of the groups in each
	// file, as promtool does. (Prometheus runs groups independently; rules
	// that read each other's output belong in one group.)
	order, err := groupOrder(o.RuleFiles)
	if err != nil {
		return res, err
	}
	slices.SortFunc(groups, func(a, b *rules.Group) int {
		return order[a.File()+"\x00"+a.Name()] - order[b.File()+"\x00"+b.Name()]
	})

	next := 0
	var ref storage.SeriesRef
	lastT := int64(math.MinInt64)
	start, end := samples[0].T, samples[len(samples)-1].T
	for ts := start; !ts.After(end); ts = ts.Add(res.Step) {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		app := db.AppenderV2(ctx)
		for next < len(samples) && !samples[next].T.After(ts) {
			s := samples[next]
			next++
			t := s.T.UnixMilli()
			if t <= lastT {
				res.Dropped++
				continue
			}
			r, err := app.Append(ref, o.Series, 0, t, s.V, nil, nil, storage.AOptions{})
			if err != nil {
				res.Dropped++
				continue
			}
			ref, lastT = r, t
		}
		if err := app.Commit(); err != nil {
			return res, fmt.Errorf("append samples up to %s: %w", ts.UTC().Format(time.RFC3339), err)
		}
		for _, g := range groups {
			g.Eval(ctx, ts)
			for _, r := range g.Rules() {
				if err := r.LastError(); err != nil {
					return res, fmt.Errorf("rule %s at %s: %w", r.Name(), ts.UTC().Format(time.RFC3339), err)
				}
			}
		}
		res.Evals++
		for _, a := range alert.ActiveAlerts() {
			if a.State == rules.StateFiring {
				res.Firing = append(res.Firing, ts)
				break
			}
		}
	}
	return res, nil
}

// OwnStep returns the most common gap between consecutive samples.
func OwnStep(samples []Sample) time.Duration {
	counts := map[time.Duration]int{}
	for i := 1; i < len(samples); i++ {
		if d := samples[i].T.Sub(samples[i-1].T); d > 0 {
			counts[d]++
		}
	}
	var best time.Duration
	for d, n := range counts {
		if n > counts[best] || n == counts[best] && d < best {
			best = d
		}
	}
	return best
}

// groupOrder numbers the groups of the files in the order they appear.
func groupOrder(files []string) (map[string]int, error) {
	order := map[string]int{}
	for _, f := range files {
		rgs, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, parser.NewParser(parser.Options{}), nil)
		if len(errs) > 0 {
			return nil, fmt.Errorf("load rules: %w", errors.Join(errs...))
		}
		for _, g := range rgs.Groups {
			order[f+"\x00"+g.Name] = len(order)
		}
	}
	return order, nil
}
