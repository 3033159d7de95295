package forecast

import (
	"time"
)

// crossingKnots is how many horizons the interval is backtested at for the
// path to a threshold; between them its bounds are interpolated.
const crossingKnots = 8

// crossing walks the forecast path from the last sample to the horizon and
// finds where the point forecast and the interval's bounds first cross the
// threshold, interpolating linearly within a step.
func crossing(g grid, m model, h, t0, tEnd int, opts Options) *Crossing {
	th := *opts.Threshold
	c := &Crossing{Threshold: th}
	n := len(g.y)
	past := func(v float64) bool {
		if th.Direction == Below {
			return v <= th.Value
		}
		return v >= th.Value
	}
	if past(g.y[n-1]) {
		c.Now, c.Within = true, true
		c.At, c.Earliest, c.Latest = g.end, g.end, g.end
		return c
	}
	// The interval's offsets at a few horizons, 0 at the origin.
	knots := []int{0}
	los, his := []float64{0}, []float64{0}
	for j := 1; j <= crossingKnots; j++ {
		k := max((h*j+crossingKnots-1)/crossingKnots, 1)
		if k == knots[len(knots)-1] {
			continue
		}
		lo, hi := quantileOffsets(backtest(g.y, m, k, t0, tEnd), opts.Level)
		knots, los, his = append(knots, k), append(los, lo), append(his, hi)
	}
	offsets := func(k int) (lo, hi float64) {
		j := 1
		for knots[j] < k {
			j++
		}
		f := float64(k-knots[j-1]) / float64(knots[j]-knots[j-1])
		return los[j-1] + f*(los[j]-los[j-1]), his[j-1] + f*(his[j]-his[j-1])
	}
	// near is the bound that crosses first, far the one that crosses last.
	prev := [3]float64{g.y[n-1], g.y[n-1], g.y[n-1]} // point, near, far
	var found [3]bool
	var at [3]time.Time
	for k := 1; k <= h; k++ {
		p := m.at(n-1, k)
		lo, hi := offsets(k)
		cur := [3]float64{p, p + hi, p + lo}
		if th.Direction == Below {
			cur[1], cur[2] = p+lo, p+hi
		}
		for i := range cur {
			if found[i] || !past(cur[i]) {
				continue
			}
			f := 1.0
			if d := prev[i] - cur[i]; d != 0 {
				f = min(max((prev[i]-th.Value)/d, 0), 1)
			}
			found[i] = true
			at[i] = g.end.Add(time.Duration((float64(k-1) + f) * float64(g.step)))
		}
		prev = cur
	}
	c.Within, c.At = found[0], at[0]
	c.Earliest, c.Latest = at[1], at[2]
	return c
}
