package healer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/deus-ex-machina/deus/internal/config"
	"github.com/deus-ex-machina/deus/internal/forecast"
	"github.com/deus-ex-machina/deus/internal/query"
)

// ForecastRequest asks for the forecast of every series of Expr.
type ForecastRequest struct {
	// Expr is a PromQL expression or a metric name.
	Expr string
	// Instance, when set, scopes Expr to that instance label.
	Instance string
	Horizon  time.Duration
	// History is how much of the past is read; 14 days when 0.
	History time.Duration
	// Threshold, when set, asks when it is crossed.
	Threshold *forecast.Threshold
}

// SeriesForecast is one series' forecast, with its recent history and the
// forecast path for a chart.
type SeriesForecast struct {
	Labels map[string]string `json:"labels"`
	// Method is the one chosen, Why why, Scores every candidate's backtest.
	Method string  `json:"method,omitempty"`
	Why    string  `json:"why,omitempty"`
	Scores []Score `json:"scores,omitempty"`
	// Point is the forecast at At, the horizon after Origin; [Lower,
	// Upper] its interval at Level.
	Origin         time.Time `json:"origin,omitzero"`
	At             time.Time `json:"at,omitzero"`
	HorizonSeconds float64   `json:"horizon_seconds"`
	Point          float64   `json:"point"`
	Lower          float64   `json:"lower"`
	Upper          float64   `json:"upper"`
	Level          float64   `json:"level"`
	// Crossing is when the threshold is crossed, when one was asked for.
	Crossing *Crossing `json:"crossing,omitempty"`
	// History is the last day, at most 96 points; Path the forecast at
	// quarters of the horizon: what a chart draws.
	History []PathPoint `json:"history,omitempty"`
	Path    []PathPoint `json:"path,omitempty"`
	Error   string      `json:"error,omitempty"`
}

// Score is one method's backtest at the horizon on the series' own past.
type Score struct {
	Method  string  `json:"method"`
	Detail  string  `json:"detail"`
	MAE     float64 `json:"mae"`
	MASE    float64 `json:"mase"`
	Origins int     `json:"origins"`
}

// Crossing is when a threshold is forecast to be crossed: At by the point
// forecast, between Earliest and Latest by the interval (zero: not within
// the horizon).
type Crossing struct {
	Value     float64   `json:"value"`
	Direction string    `json:"direction"`
	Now       bool      `json:"now"`
	At        time.Time `json:"at,omitzero"`
	Earliest  time.Time `json:"earliest,omitzero"`
	Latest    time.Time `json:"latest,omitzero"`
}

// PathPoint is a value at one time, with its interval (a history point's
// interval is itself).
type PathPoint struct {
	T     time.Time `json:"t"`
	Point float64   `json:"point"`
	Lower float64   `json:"lower"`
	Upper float64   `json:"upper"`
}

// ErrNoRangeQueries is returned when what answers PromQL cannot answer a
// range query.
var ErrNoRangeQueries = errors.New("the configured Prometheus answers no range queries")

// Forecast forecasts every series of r.Expr from its history, by the method
// that did best on its own recent past. Forecasts are context for people
// and runbooks, never a reason to act on their own.
func (h *Healer) Forecast(ctx context.Context, r ForecastRequest) ([]SeriesForecast, error) {
	expr := r.Expr
	if r.Instance != "" {
		var err error
		if expr, err = query.Scope(expr, []string{"instance"}, map[string]string{"instance": r.Instance}); err != nil {
			return nil, fmt.Errorf("expr: %w", err)
		}
	}
	m, opts, err := h.history(ctx, expr, r.Horizon, r.History)
	if err != nil {
		return nil, err
	}
	opts.Threshold = r.Threshold
	out := make([]SeriesForecast, 0, len(m))
	for _, ss := range m {
		out = append(out, forecastSeries(ss, opts))
	}
	return out, nil
}

// history reads the past of expr's series that a forecast at horizon is
// made from: the last history (14 days when 0) at a 48th of the horizon,
// between a second and 5 minutes. It returns the options the forecast of
// each series takes, so that every forecast reads its history alike.
func (h *Healer) history(ctx context.Context, expr string, horizon, history time.Duration) (model.Matrix, forecast.Options, error) {
	rq, ok := h.opts.Querier.(query.RangeQuerier)
	if !ok {
		return nil, forecast.Options{}, ErrNoRangeQueries
	}
	if horizon <= 0 {
		return nil, forecast.Options{}, errors.New("horizon: must be > 0")
	}
	if history <= 0 {
		history = 14 * 24 * time.Hour
	}
	now := h.now()
	step := min(max(horizon/48, time.Second), 5*time.Minute)
	m, err := rq.QueryRange(ctx, expr, now.Add(-history), now, step)
	if err != nil {
		return nil, forecast.Options{}, err
	}
	return m, forecast.Options{Horizon: horizon, Step: step, History: history}, nil
}

// samplesOf is a series' history as the forecast takes it.
func samplesOf(ss *model.SampleStream) []forecast.Sample {
	samples := make([]forecast.Sample, len(ss.Values))
	for i, v := range ss.Values {
		samples[i] = forecast.Sample{T: v.Timestamp.Time(), V: float64(v.Value)}
	}
	return samples
}

// forecastSeries forecasts one series; a series that cannot be forecast
// says why in Error.
func forecastSeries(ss *model.SampleStream, opts forecast.Options) SeriesForecast {
	sf := SeriesForecast{Labels: map[string]string{}}
	for k, v := range ss.Metric {
		sf.Labels[string(k)] = string(v)
	}
	samples := samplesOf(ss)
	res, err := forecast.Forecast(samples, opts)
	if err != nil {
		sf.Error = err.Error()
		return sf
	}
	sf.Method, sf.Why, sf.Origin, sf.At = string(res.Method), res.Why, res.Origin, res.At
	sf.HorizonSeconds, sf.Point, sf.Lower, sf.Upper, sf.Level = res.Horizon.Seconds(), res.Point, res.Lower, res.Upper, res.Level
	for _, sc := range res.Scores {
		sf.Scores = append(sf.Scores, Score{Method: string(sc.Method), Detail: sc.Detail, MAE: sc.MAE, MASE: sc.MASE, Origins: sc.Origins})
	}
	if c := res.Crossing; c != nil {
		sf.Crossing = &Crossing{Value: c.Threshold.Value, Direction: string(c.Threshold.Direction), Now: c.Now, Earliest: c.Earliest, Latest: c.Latest}
		if c.Within {
			sf.Crossing.At = c.At
		}
	}
	for _, p := range tail(samples, res.Origin.Add(-24*time.Hour), 96) {
		sf.History = append(sf.History, PathPoint{T: p.T, Point: p.V, Lower: p.V, Upper: p.V})
	}
	// The path: the chosen method at quarters of the horizon.
	horizon := opts.Horizon
	opts.Methods, opts.Threshold = []forecast.Method{res.Method}, nil
	for q := 1; q <= 4; q++ {
		opts.Horizon = horizon * time.Duration(q) / 4
		if p, err := forecast.Forecast(samples, opts); err == nil {
			sf.Path = append(sf.Path, PathPoint{T: p.At, Point: p.Point, Lower: p.Lower, Upper: p.Upper})
		}
	}
	return sf
}

// forecastHolds is a precheck's forecast: whether a series of expr crosses
// f's threshold now or within its horizon, by the point forecast or, by
// interval, the interval's near edge. It is asked only of a run an alert
// started, so it can stop a run, never start one. The detail says what was
// forecast: the series that crosses first, by which method and when, or
// "not below 0 within 1h". A series that cannot be forecast (too short a
// history) does not cross; when none crosses, its error is the answer, since
// "not within the horizon" would not be known.
func (h *Healer) forecastHolds(ctx context.Context, expr string, f *config.QueryForecast) (bool, string, error) {
	m, opts, err := h.history(ctx, expr, time.Duration(f.Horizon), time.Duration(f.History))
	if err != nil {
		return false, expr, fmt.Errorf("forecast: %w", err)
	}
	th := forecast.Threshold{Value: *f.Threshold, Direction: forecast.Direction(f.Direction)}
	opts.Threshold = &th
	var (
		first   *forecast.Result // the series that crosses first
		firstOf model.Metric
		firstAt time.Time
		methods []string
		failed  error
	)
	for _, ss := range m {
		res, err := forecast.Forecast(samplesOf(ss), opts)
		if err != nil {
			if failed == nil {
				failed = fmt.Errorf("forecast %s: %w", ss.Metric, err)
			}
			continue
		}
		if !slices.Contains(methods, string(res.Method)) {
			methods = append(methods, string(res.Method))
		}
		if at, ok := crossedAt(res.Crossing, f.By); ok && (first == nil || at.Before(firstAt)) {
			first, firstOf, firstAt = &res, ss.Metric, at
		}
	}
	detail := fmt.Sprintf("%s -> %d series; ", expr, len(m))
	value := strconv.FormatFloat(th.Value, 'g', -1, 64)
	by := ""
	if f.By == "interval" {
		by = ", its interval's near edge"
	}
	switch {
	case first != nil && first.Crossing.Now:
		return true, detail + fmt.Sprintf("%s is at or %s %s now", firstOf, th.Direction, value), nil
	case first != nil:
		in := model.Duration(max(firstAt.Sub(h.now()), 0).Round(time.Second))
		return true, detail + fmt.Sprintf("%s forecast by %s%s: %s %s at %s (in %s), within %s",
			firstOf, first.Method, by, th.Direction, value, firstAt.UTC().Round(time.Second).Format(time.RFC3339), in, f.Horizon), nil
	case failed != nil:
		return false, detail + "none crosses, and a series could not be forecast", failed
	case len(m) == 0:
		return false, detail + "nothing to forecast", nil
	}
	return false, detail + fmt.Sprintf("forecast by %s%s: not %s %s within %s", strings.Join(methods, ", "), by, th.Direction, value, f.Horizon), nil
}

// crossedAt is when a forecast crosses its threshold within the horizon,
// by the point forecast or by the interval's near edge.
func crossedAt(c *forecast.Crossing, by string) (time.Time, bool) {
	switch {
	case c == nil:
		return time.Time{}, false
	case by == "interval":
		return c.Earliest, !c.Earliest.IsZero()
	}
	return c.At, c.Within
}

// tail returns the samples after since, thinned to at most n.
func tail(s []forecast.Sample, since time.Time, n int) []forecast.Sample {
	i := 0
	for i < len(s) && s[i].T.Before(since) {
		i++
	}
	s = s[i:]
	if len(s) <= n {
		return s
	}
	out := make([]forecast.Sample, 0, n)
	for j := range n {
		out = append(out, s[j*len(s)/n])
	}
	return out
}
