// Package forecast predicts a series' value at a horizon from the series'
// own past: a point forecast, a prediction interval and, when asked, the
// time until a threshold is crossed.
//
// It is pure: it takes (time, value) samples and returns numbers. Several
// methods are candidates (the last value, a least-squares line over a recent
// window, seasonal profiles of a day and of a week with a level adjustment,
// and Holt-Winters exponential smoothing). Each is backtested at the horizon
// from every origin of the series' recent past; the one with the lowest mean
// absolute error there is chosen, and its own errors at those origins give
// the interval (empirical quantiles, so no distribution is assumed). The
// caller learns which method won and every candidate's score.
package forecast

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Sample is one point of the input series.
type Sample struct {
	T time.Time
	V float64
}

// Method names a forecasting method.
type Method string

// The methods, simplest first: on a tie the simpler one is chosen.
const (
	// Naive forecasts the last value.
	Naive Method = "naive"
	// Linear extrapolates a least-squares line over a recent window, like
	// PromQL's predict_linear.
	Linear Method = "linear"
	// Seasonal repeats the recent daily or weekly profile on the current
	// level.
	Seasonal Method = "seasonal"
	// Smoothing is Holt-Winters additive exponential smoothing with a damped
	// trend and a daily season (Holt's linear method when the history is
	// shorter than two days).
	Smoothing Method = "smoothing"
)

// AllMethods is every method, in the order of preference on a tie.
var AllMethods = []Method{Naive, Linear, Seasonal, Smoothing}

// ErrNotEnoughData means the series is too short to backtest at the
// horizon; callers may answer it as a client error.
var ErrNotEnoughData = errors.New("not enough data")

// Direction says which way a threshold is crossed.
type Direction string

// The directions.
const (
	// Below is crossed when the value falls to the threshold or under it
	// (e.g. free disk space reaching 0).
	Below Direction = "below"
	// Above is crossed when the value rises to the threshold or over it
	// (e.g. usage reaching a limit).
	Above Direction = "above"
)

// Threshold is a value whose crossing is forecast.
type Threshold struct {
	Value     float64
	Direction Direction
}

// Options configure Forecast. Only Horizon is required.
type Options struct {
	// Horizon is how far after the last sample to forecast.
	Horizon time.Duration
	// Level is the prediction interval's coverage, in (0, 1); 0.8 when 0.
	Level float64
	// Step is the spacing of the regular grid the series is resampled to;
	// the median spacing of the samples when 0.
	Step time.Duration
	// History bounds the past used: samples older than the last one minus
	// History are ignored. 28 days when 0.
	History time.Duration
	// Backtest is the span of the origins (the most recent ones whose
	// horizon has been observed) at which every method is scored and from
	// whose errors the interval is taken. 7 days when 0.
	Backtest time.Duration
	// Methods restricts the candidates; every method when empty.
	Methods []Method
	// Threshold, when set, asks for the time until it is crossed.
	Threshold *Threshold
}

// Defaults.
const (
	DefaultLevel    = 0.8
	DefaultHistory  = 28 * 24 * time.Hour
	DefaultBacktest = 7 * 24 * time.Hour
	// minOrigins is the fewest backtest origins an interval is taken from.
	minOrigins = 20
	// margin is how much lower than a simpler candidate's error a more
	// complex candidate's must be to be chosen over it.
	margin = 0.1
)

// Score is one candidate's backtest at the horizon.
type Score struct {
	Method Method
	// Detail names the candidate's parameters (window, period, smoothing
	// constants).
	Detail string
	// MAE is the mean absolute error at the horizon over the origins.
	MAE float64
	// MASE is MAE scaled by the in-sample mean absolute one-step change of
	// the series (Hyndman & Koehler 2006); it equals MAE when the series
	// never changes.
	MASE float64
	// Origins is how many origins were scored.
	Origins int
}

// Crossing is when a threshold is forecast to be crossed.
type Crossing struct {
	Threshold Threshold
	// Now is true when the last sample already is at or past the threshold.
	Now bool
	// Within is true when the point forecast crosses within the horizon, at
	// At.
	Within bool
	At     time.Time
	// Earliest is when the interval's near bound crosses (the lower bound
	// for Below); zero when it does not within the horizon, i.e. a crossing
	// within the horizon is unlikely at the interval's level.
	Earliest time.Time
	// Latest is when the interval's far bound crosses; zero when it does not
	// within the horizon (the crossing may come later or never).
	Latest time.Time
}

// Result is a forecast and how it was made.
type Result struct {
	// Method and Detail are the chosen candidate.
	Method Method
	Detail string
	// Why says why it was chosen, in a sentence.
	Why string
	// Scores has every candidate's backtest, in the order tried.
	Scores []Score
	// Origin is the last sample's time; At is Origin plus the horizon
	// rounded to whole steps.
	Origin time.Time
	At     time.Time
	// Point is the forecast at At; [Lower, Upper] is the prediction
	// interval at Level.
	Point, Lower, Upper float64
	Level               float64
	Horizon             time.Duration
	Step                time.Duration
	// Crossing is set when Options.Threshold is.
	Crossing *Crossing
}

// Forecast forecasts the series at opts.Horizon after its last sample. The
// samples may be in any order; duplicate timestamps keep the last value
// given, and NaN or infinite values are dropped.
func Forecast(samples []Sample, opts Options) (Result, error) {
	if err := opts.validate(); err != nil {
		return Result{}, err
	}
	opts.defaults()
	g, err := resample(samples, opts.Step, opts.History)
	if err != nil {
		return Result{}, err
	}
	h := int(math.Round(float64(opts.Horizon) / float64(g.step)))
	h = max(h, 1)
	n := len(g.y)
	tEnd := n - 1 - h
	t0 := max(tEnd-int(opts.Backtest/g.step)+1, 0)
	if tEnd-t0+1 < minOrigins {
		return Result{}, fmt.Errorf("%w: %d samples at %s steps leave %d backtest origins at horizon %s, need %d",
			ErrNotEnoughData, n, g.step, max(tEnd-t0+1, 0), opts.Horizon, minOrigins)
	}
	cands, t0 := eligible(candidates(g, opts.Methods, h, t0), h, t0, tEnd)
	scale := naiveScale(g.y)
	res := Result{
		Origin:  g.end,
		At:      g.end.Add(time.Duration(h) * g.step),
		Level:   opts.Level,
		Horizon: opts.Horizon,
		Step:    g.step,
	}
	if len(cands) == 0 {
		return Result{}, fmt.Errorf("%w: no method can forecast %s ahead from %d samples", ErrNotEnoughData, opts.Horizon, n)
	}
	errs := make([][]float64, len(cands))
	lowest := math.Inf(1)
	for i, c := range cands {
		errs[i] = backtest(g.y, c.m, h, t0, tEnd)
		mae := meanAbs(errs[i])
		mase := mae
		if scale > 0 {
			mase = mae / scale
		}
		res.Scores = append(res.Scores, Score{Method: c.method, Detail: c.detail, MAE: mae, MASE: mase, Origins: len(errs[i])})
		lowest = min(lowest, mae)
	}
	// The simplest candidate within the margin of the lowest error wins:
	// the backtest's origins overlap at long horizons, so small differences
	// are noise, and the winner of many close candidates is the one the
	// noise favoured most.
	best := 0
	for res.Scores[best].MAE > lowest*(1+margin)+1e-9*scale {
		best++
	}
	bestErrs := errs[best]
	c := cands[best]
	res.Method, res.Detail = c.method, c.detail
	res.Why = why(res.Scores, best, opts.Horizon)
	lo, hi := quantileOffsets(bestErrs, opts.Level)
	res.Point = c.m.at(n-1, h)
	res.Lower, res.Upper = res.Point+lo, res.Point+hi
	if opts.Threshold != nil {
		res.Crossing = crossing(g, c.m, h, t0, tEnd, opts)
	}
	return res, nil
}

func (o Options) validate() error {
	var errs []error
	if o.Horizon <= 0 {
		errs = append(errs, fmt.Errorf("horizon %s: must be > 0", o.Horizon))
	}
	if o.Level != 0 && (o.Level <= 0 || o.Level >= 1 || math.IsNaN(o.Level)) {
		errs = append(errs, fmt.Errorf("level %v: must be in (0, 1)", o.Level))
	}
	if o.Step < 0 || o.History < 0 || o.Backtest < 0 {
		errs = append(errs, errors.New("step, history and backtest must not be negative"))
	}
	for _, m := range o.Methods {
		if !slices.Contains(AllMethods, m) {
			errs = append(errs, fmt.Errorf("method %q: unknown", m))
		}
	}
	if t := o.Threshold; t != nil {
		if t.Direction != Below && t.Direction != Above {
			errs = append(errs, fmt.Errorf("threshold direction %q: must be %q or %q", t.Direction, Below, Above))
		}
		if math.IsNaN(t.Value) || math.IsInf(t.Value, 0) {
			errs = append(errs, fmt.Errorf("threshold value %v: must be finite", t.Value))
		}
	}
	return errors.Join(errs...)
}

func (o *Options) defaults() {
	if o.Level == 0 {
		o.Level = DefaultLevel
	}
	if o.History == 0 {
		o.History = DefaultHistory
	}
	if o.Backtest == 0 {
		o.Backtest = DefaultBacktest
	}
	if len(o.Methods) == 0 {
		o.Methods = AllMethods
	}
}

// eligible keeps the candidates that can be scored over at least half the
// backtest window (and minOrigins), and moves the window's start to the
// latest first origin among them, so that all are scored on the same
// origins.
func eligible(cands []candidate, h, t0, tEnd int) ([]candidate, int) {
	need := max(minOrigins, (tEnd-t0+1)/2)
	var out []candidate
	start := t0
	for _, c := range cands {
		if o := c.m.minOrigin(h); tEnd-o+1 >= need {
			out = append(out, c)
			start = max(start, o)
		}
	}
	return out, start
}

// backtest returns the errors (actual minus forecast) of m at horizon h from
// every origin in [t0, tEnd].
func backtest(y []float64, m model, h, t0, tEnd int) []float64 {
	errs := make([]float64, 0, tEnd-t0+1)
	for t := t0; t <= tEnd; t++ {
		errs = append(errs, y[t+h]-m.at(t, h))
	}
	return errs
}

// naiveScale is the in-sample mean absolute one-step change, MASE's
// denominator.
func naiveScale(y []float64) float64 {
	if len(y) < 2 {
		return 0
	}
	var s float64
	for i := 1; i < len(y); i++ {
		s += math.Abs(y[i] - y[i-1])
	}
	return s / float64(len(y)-1)
}

func meanAbs(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += math.Abs(x)
	}
	return s / float64(len(xs))
}

// quantileOffsets returns the errors' quantiles at (1-level)/2 and
// (1+level)/2: added to a point forecast they give a central interval.
func quantileOffsets(errs []float64, level float64) (lo, hi float64) {
	s := slices.Clone(errs)
	slices.Sort(s)
	return quantile(s, (1-level)/2), quantile(s, (1+level)/2)
}

// quantile of sorted xs at p, interpolated between order statistics (the
// default of R and NumPy, Hyndman & Fan type 7).
func quantile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	pos := p * float64(len(xs)-1)
	i := int(math.Floor(pos))
	if i >= len(xs)-1 {
		return xs[len(xs)-1]
	}
	f := pos - float64(i)
	return xs[i] + f*(xs[i+1]-xs[i])
}

func why(scores []Score, best int, horizon time.Duration) string {
	var b strings.Builder
	s := scores[best]
	fmt.Fprintf(&b, "%s (%s) is the simplest within %.0f%% of the lowest error at %s over the last %d origins: MASE %.3g",
		s.Method, s.Detail, 100*margin, horizon, s.Origins, s.MASE)
	var others []string
	for i, o := range scores {
		if i != best {
			others = append(others, fmt.Sprintf("%s (%s) %.3g", o.Method, o.Detail, o.MASE))
		}
	}
	if len(others) > 0 {
		fmt.Fprintf(&b, "; %s", strings.Join(others, ", "))
	}
	return b.String()
}
