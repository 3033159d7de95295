package forecast

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// model forecasts a grid series from any origin of its past.
type model interface {
	// minOrigin is the first grid index from which the model can forecast
	// k steps ahead.
	minOrigin(k int) int
	// at forecasts y[t+k] from y[:t+1] alone.
	at(t, k int) float64
}

type candidate struct {
	method Method
	detail string
	m      model
}

// Linear windows and seasonal periods tried, and how many past periods a
// seasonal profile averages.
var (
	linearWindows   = []time.Duration{time.Hour, 6 * time.Hour, 24 * time.Hour}
	seasonalPeriods = []time.Duration{24 * time.Hour, 7 * 24 * time.Hour}
)

const seasonalCycles = 3

// candidates builds every variant of the wanted methods; t0 is the first
// backtest origin, before which smoothing is fitted.
func candidates(g grid, methods []Method, h, t0 int) []candidate {
	var cs []candidate
	add := func(method Method, detail string, m model) {
		cs = append(cs, candidate{method, detail, m})
	}
	for _, method := range AllMethods {
		if !slices.Contains(methods, method) {
			continue
		}
		switch method {
		case Naive:
			add(Naive, "last value", naive{g.y})
		case Linear:
			for _, w := range linearWindows {
				if k := int(w / g.step); k >= 3 {
					add(Linear, fmt.Sprintf("window %s", w), newLinear(g.y, k))
				}
			}
		case Seasonal:
			for _, p := range seasonalPeriods {
				if k := int(p / g.step); k >= 2 && p%g.step == 0 {
					add(Seasonal, fmt.Sprintf("period %s, median of %d cycles", p, seasonalCycles), sameTime{g.y, k, seasonalCycles})
					add(Seasonal, fmt.Sprintf("period %s, %d cycles on the level", p, seasonalCycles), newSeasonal(g.y, k, seasonalCycles))
				}
			}
		case Smoothing:
			if m, detail, ok := fitSmoothing(g, h, t0); ok {
				add(Smoothing, detail, m)
			}
		}
	}
	return cs
}

// naive forecasts the last value.
type naive struct{ y []float64 }

func (naive) minOrigin(int) int     { return 0 }
func (m naive) at(t, _ int) float64 { return m.y[t] }

// linear is the least-squares line over the last w points, extrapolated.
type linear struct {
	y []float64
	w int
}

func newLinear(y []float64, w int) linear { return linear{y, w} }

func (m linear) minOrigin(int) int { return m.w - 1 }

func (m linear) at(t, k int) float64 {
	w := m.w
	xbar := float64(w-1) / 2
	var ybar float64
	for _, v := range m.y[t-w+1 : t+1] {
		ybar += v
	}
	ybar /= float64(w)
	var sxy float64
	for i, v := range m.y[t-w+1 : t+1] {
		sxy += (float64(i) - xbar) * (v - ybar)
	}
	sxx := float64(w) * float64(w*w-1) / 12
	return ybar + sxy/sxx*(float64(w-1)-xbar+float64(k))
}

// sameTime is a robust seasonal naive forecast: the median of the values
// at the target's phase over up to cycles past periods (the plain seasonal
// naive when only one is there). The median keeps an anomaly of one past
// day from being repeated.
type sameTime struct {
	y      []float64
	p      int
	cycles int
}

func (m sameTime) first(k int) int { return (k + m.p - 1) / m.p }

func (m sameTime) minOrigin(k int) int { return m.first(k)*m.p - k }

func (m sameTime) at(t, k int) float64 {
	var v [seasonalCycles]float64
	n := 0
	for c := m.first(k); n < m.cycles && t+k-c*m.p >= 0; c++ {
		v[n] = m.y[t+k-c*m.p]
		n++
	}
	return median(v[:n])
}

// median of a few values; xs is reordered.
func median(xs []float64) float64 {
	slices.Sort(xs)
	if n := len(xs); n%2 == 0 {
		return (xs[n/2-1] + xs[n/2]) / 2
	}
	return xs[len(xs)/2]
}

// seasonal is additive: the current level (the mean of the last period)
// plus the median, over up to cycles past periods, of the value one or more
// periods before the target minus its own period's mean. The deviations
// carry the trend within a period, so a line plus a periodic profile is
// forecast exactly.
type seasonal struct {
	y      []float64
	cum    []float64 // cum[i] is the sum of y[:i]
	p      int
	cycles int
}

func newSeasonal(y []float64, p, cycles int) seasonal {
	cum := make([]float64, len(y)+1)
	for i, v := range y {
		cum[i+1] = cum[i] + v
	}
	return seasonal{y, cum, p, cycles}
}

// mean of the period ending at t.
func (m seasonal) mean(t int) float64 {
	return (m.cum[t+1] - m.cum[t+1-m.p]) / float64(m.p)
}

func (m seasonal) first(k int) int { return (k + m.p - 1) / m.p }

func (m seasonal) minOrigin(k int) int { return (m.first(k)+1)*m.p - 1 }

func (m seasonal) at(t, k int) float64 {
	var dev [seasonalCycles]float64
	n := 0
	for c := m.first(k); n < m.cycles && t-(c+1)*m.p+1 >= 0; c++ {
		dev[n] = m.y[t+k-c*m.p] - m.mean(t-c*m.p)
		n++
	}
	return m.mean(t) + median(dev[:n])
}

// holtWinters is additive Holt-Winters with a damped trend, its states
// computed once for every origin (a filter only looks back).
type holtWinters struct {
	level, trend, season []float64
	p                    int // season length in steps; 0 for none
	phi                  float64
	warm                 int
}

func (m *holtWinters) minOrigin(int) int { return m.warm }

func (m *holtWinters) at(t, k int) float64 { return m.atDamped(t, k, m.damped(k)) }

// damped is the damped trend's sum phi + phi^2 + ... + phi^k.
func (m *holtWinters) damped(k int) float64 {
	if m.phi < 1 {
		return m.phi * (1 - math.Pow(m.phi, float64(k))) / (1 - m.phi)
	}
	return float64(k)
}

func (m *holtWinters) atDamped(t, k int, d float64) float64 {
	f := m.level[t] + d*m.trend[t]
	if m.p > 0 {
		f += m.season[t+k-m.p*((k+m.p-1)/m.p)]
	}
	return f
}

type hwParams struct{ alpha, beta, gamma, phi float64 }

// The grid of smoothing constants tried.
var (
	hwAlphas = []float64{0.02, 0.1, 0.3, 0.6, 1}
	hwTrends = [][2]float64{{0, 1}, {0.01, 0.9}, {0.01, 0.98}, {0.1, 0.9}, {0.1, 0.98}} // beta, phi
	hwGammas = []float64{0.05, 0.2, 0.5}
)

// run computes the states over y for params.
func (m *holtWinters) run(y []float64, ps hwParams) {
	p := m.p
	init := max(p, 1)
	var l0 float64
	for _, v := range y[:init] {
		l0 += v
	}
	l0 /= float64(init)
	for i := range init {
		m.level[i], m.trend[i] = l0, 0
		if p > 0 {
			m.season[i] = y[i] - l0
		}
	}
	for t := init; t < len(y); t++ {
		var s float64
		if p > 0 {
			s = m.season[t-p]
		}
		lp, bp := m.level[t-1], m.trend[t-1]
		l := ps.alpha*(y[t]-s) + (1-ps.alpha)*(lp+ps.phi*bp)
		m.level[t] = l
		m.trend[t] = ps.beta*(l-lp) + (1-ps.beta)*ps.phi*bp
		if p > 0 {
			m.season[t] = ps.gamma*(y[t]-l) + (1-ps.gamma)*s
		}
	}
}

// fitSmoothing picks Holt-Winters' constants from a small grid by the mean
// absolute error at horizon h over the origins before t0 (the backtest's
// first), or over every origin when there are too few before it. The season
// is daily when the history has at least three days, none otherwise.
func fitSmoothing(g grid, h, t0 int) (model, string, bool) {
	n := len(g.y)
	p := int(24 * time.Hour / g.step)
	if (24*time.Hour)%g.step != 0 || p < 2 || n < 3*p {
		p = 0
	}
	warm := max(2*p, 12)
	fitEnd := t0 - 1 - h
	if fitEnd-warm+1 < minOrigins {
		fitEnd = n - 1 - h
	}
	if fitEnd-warm+1 < minOrigins {
		return nil, "", false
	}
	gammas := hwGammas
	if p == 0 {
		gammas = []float64{0}
	}
	m := &holtWinters{level: make([]float64, n), trend: make([]float64, n), p: p, warm: warm}
	if p > 0 {
		m.season = make([]float64, n)
	}
	best, bestErr := hwParams{}, math.Inf(1)
	for _, a := range hwAlphas {
		for _, bp := range hwTrends {
			for _, gm := range gammas {
				ps := hwParams{a, bp[0], gm, bp[1]}
				m.phi = ps.phi
				m.run(g.y, ps)
				d := m.damped(h)
				var e float64
				for t := warm; t <= fitEnd; t++ {
					e += math.Abs(g.y[t+h] - m.atDamped(t, h, d))
				}
				if e < bestErr {
					best, bestErr = ps, e
				}
			}
		}
	}
	m.phi = best.phi
	m.run(g.y, best)
	detail := fmt.Sprintf("alpha %g beta %g phi %g", best.alpha, best.beta, best.phi)
	if p > 0 {
		detail = fmt.Sprintf("%s gamma %g, daily season", detail, best.gamma)
	}
	return m, detail, true
}
