package healer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"

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
	rq, ok := h.opts.Querier.(query.RangeQuerier)
	if !ok {
		return nil, ErrNoRangeQueries
	}
	if r.Horizon <= 0 {
		return nil, errors.New("horizon: must be > 0")
	}
	if r.History <= 0 {
		r.History = 14 * 24 * time.Hour
	}
	expr := r.Expr
	if r.Instance != "" {
		var err error
		if expr, err = query.Scope(expr, []string{"instance"}, map[string]string{"instance": r.Instance}); err != nil {
			return nil, fmt.Errorf("expr: %w", err)
		}
	}
	now := h.now()
	step := max(r.Horizon/48, time.Second)
	step = min(step, 5*time.Minute)
	m, err := rq.QueryRange(ctx, expr, now.Add(-r.History), now, step)
	if err != nil {
		return nil, err
	}
	out := make([]SeriesForecast, 0, len(m))
	for _, ss := range m {
		out = append(out, forecastSeries(ss, r, step))
	}
	return out, nil
}

// forecastSeries forecasts one series; a series that cannot be forecast
// says why in Error.
func forecastSeries(ss *model.SampleStream, r ForecastRequest, step time.Duration) SeriesForecast {
	sf := SeriesForecast{Labels: map[string]string{}}
	for k, v := range ss.Metric {
		sf.Labels[string(k)] = string(v)
	}
	samples := make([]forecast.Sample, len(ss.Values))
	for i, v := range ss.Values {
		samples[i] = forecast.Sample{T: v.Timestamp.Time(), V: float64(v.Value)}
	}
	opts := forecast.Options{Horizon: r.Horizon, Step: step, History: r.History, Threshold: r.Threshold}
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
	opts.Methods, opts.Threshold = []forecast.Method{res.Method}, nil
	for q := 1; q <= 4; q++ {
		opts.Horizon = r.Horizon * time.Duration(q) / 4
		if p, err := forecast.Forecast(samples, opts); err == nil {
			sf.Path = append(sf.Path, PathPoint{T: p.At, Point: p.Point, Lower: p.Lower, Upper: p.Upper})
		}
	}
	return sf
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
