package forecast

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// grid is the series resampled to a regular step ending at its last sample.
type grid struct {
	y    []float64
	step time.Duration
	end  time.Time
}

// time of grid index i.
func (g grid) time(i int) time.Time {
	return g.end.Add(-time.Duration(len(g.y)-1-i) * g.step)
}

// resample sorts and dedupes the samples (the last one given wins a
// timestamp), keeps those within history of the last, and interpolates them
// linearly onto a grid of step (the median spacing when 0) that ends at the
// last sample. Gaps are bridged by the same straight line.
func resample(samples []Sample, step, history time.Duration) (grid, error) {
	s := make([]Sample, 0, len(samples))
	for _, x := range samples {
		if !math.IsNaN(x.V) && !math.IsInf(x.V, 0) {
			s = append(s, x)
		}
	}
	slices.SortStableFunc(s, func(a, b Sample) int { return a.T.Compare(b.T) })
	// Keep the last of equal timestamps.
	out := s[:0]
	for i, x := range s {
		if i+1 < len(s) && s[i+1].T.Equal(x.T) {
			continue
		}
		out = append(out, x)
	}
	s = out
	if len(s) < 3 {
		return grid{}, fmt.Errorf("%w: %d distinct finite samples, need at least 3", ErrNotEnoughData, len(s))
	}
	end := s[len(s)-1].T
	if first := end.Add(-history); s[0].T.Before(first) {
		i, _ := slices.BinarySearchFunc(s, first, func(x Sample, t time.Time) int { return x.T.Compare(t) })
		s = s[i:]
	}
	if len(s) < 3 {
		return grid{}, fmt.Errorf("%w: %d samples within the history, need at least 3", ErrNotEnoughData, len(s))
	}
	if step <= 0 {
		d := make([]time.Duration, len(s)-1)
		for i := range d {
			d[i] = s[i+1].T.Sub(s[i].T)
		}
		slices.SortFunc(d, cmp.Compare)
		step = d[len(d)/2]
	}
	n := int(end.Sub(s[0].T)/step) + 1
	g := grid{y: make([]float64, n), step: step, end: end}
	j := 0
	for i := range n {
		t := g.time(i)
		for j+1 < len(s)-1 && !s[j+1].T.After(t) {
			j++
		}
		a, b := s[j], s[j+1]
		f := float64(t.Sub(a.T)) / float64(b.T.Sub(a.T))
		f = min(max(f, 0), 1)
		g.y[i] = a.V + f*(b.V-a.V)
	}
	return g, nil
}
