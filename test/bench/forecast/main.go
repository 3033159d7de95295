// Command forecast-bench measures internal/forecast on real series: every
// CSV (timestamp,value) under -data, forecast from origins every -every over
// the second half of each series, at 1 h and 24 h ahead. For each series and
// horizon it prints the MASE of the shipped forecast (the method the series'
// own backtest chooses at each origin) and of three baselines, and the
// coverage of the shipped 80% interval; then the medians over the series and
// the ratios shipped/baseline.
//
// The baselines are computed here from the raw samples, not by the package:
// naive is the last value, seasonal naive the value 24 h before the target
// (for a 24 h horizon that is the last value again), and predict_linear the
// least-squares line over the samples in (origin-6h, origin] evaluated at the
// target, as PromQL's predict_linear(v[6h], h) does.
//
// MASE is the mean absolute error over a series' origins divided by the
// mean absolute one-step change of that series' first half (the in-sample
// naive MAE of the part before the first origin), the scaling of Hyndman &
// Koehler (2006). The scale is the same for every method of a series, so
// ratios between methods are ratios of their MAE.
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/deus-ex-machina/deus/internal/forecast"
)

// The goal: the shipped forecast's median MASE below every
// baseline's at both horizons, and its coverage within these bounds.
const (
	coverageLow  = 0.75
	coverageHigh = 0.85
)

var methods = []string{"shipped", "naive", "seasonal_naive", "predict_linear_6h"}

type series struct {
	name    string
	samples []forecast.Sample
	step    time.Duration
}

type result struct {
	name     string
	horizon  time.Duration
	origins  int
	mase     map[string]float64
	coverage float64
	chosen   map[forecast.Method]int
	err      error
}

func main() {
	data := flag.String("data", "testdata/nab/data", "folder of NAB-format CSV series")
	every := flag.Duration("every", 3*time.Hour, "spacing of the forecast origins")
	each := flag.Bool("each", false, "also score each method alone (a diagnostic, four times slower)")
	workers := flag.Int("workers", min(2, runtime.NumCPU()), "series forecast at once")
	flag.Parse()
	if *each {
		for _, m := range forecast.AllMethods {
			methods = append(methods, "only_"+string(m))
		}
	}
	if err := run(*data, *every, *workers, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "forecast-bench:", err)
		os.Exit(1)
	}
}

func run(dir string, every time.Duration, workers int, w io.Writer) error {
	all, err := load(dir)
	if err != nil {
		return err
	}
	horizons := []time.Duration{time.Hour, 24 * time.Hour}
	type job struct {
		s *series
		h time.Duration
	}
	jobs := make(chan job)
	results := make([]result, 0, len(all)*len(horizons))
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range max(workers, 1) {
		wg.Go(func() {
			for j := range jobs {
				r := evaluate(j.s, j.h, every)
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		})
	}
	for i := range all {
		for _, h := range horizons {
			jobs <- job{&all[i], h}
		}
	}
	close(jobs)
	wg.Wait()
	slices.SortFunc(results, func(a, b result) int {
		if a.horizon != b.horizon {
			return int(a.horizon - b.horizon)
		}
		return strings.Compare(a.name, b.name)
	})
	var errs []error
	met := true
	for _, h := range horizons {
		var rs []result
		for _, r := range results {
			if r.horizon == h {
				if r.err != nil {
					errs = append(errs, fmt.Errorf("%s at %s: %w", r.name, h, r.err))
					continue
				}
				rs = append(rs, r)
			}
		}
		met = report(w, h, rs) && met
	}
	fmt.Fprintf(w, "\n%d series, origins every %s, %s\n", len(all), every, time.Since(start).Round(time.Second))
	if met {
		fmt.Fprintln(w, "goal met: the shipped median MASE is below every baseline's at both horizons, coverage within [75%, 85%]")
	} else {
		fmt.Fprintln(w, "goal NOT met (see the ratios and the coverage above)")
	}
	return errors.Join(errs...)
}

// report prints one horizon's table and says whether the goal holds there.
func report(w io.Writer, h time.Duration, rs []result) bool {
	fmt.Fprintf(w, "\n## horizon %s\n\n", h)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "series\torigins\t%s\tcoverage80\tchosen\t\n", strings.Join(methods, "\t"))
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%d\t", r.name, r.origins)
		for _, m := range methods {
			fmt.Fprintf(tw, "%.3f\t", r.mase[m])
		}
		fmt.Fprintf(tw, "%.0f%%\t%s\t\n", 100*r.coverage, chosen(r.chosen))
	}
	med := map[string]float64{}
	fmt.Fprintf(tw, "median\t\t")
	for _, m := range methods {
		var xs []float64
		for _, r := range rs {
			xs = append(xs, r.mase[m])
		}
		med[m] = median(xs)
		fmt.Fprintf(tw, "%.3f\t", med[m])
	}
	var cov []float64
	var pooledIn, pooledN float64
	for _, r := range rs {
		cov = append(cov, r.coverage)
		pooledIn += r.coverage * float64(r.origins)
		pooledN += float64(r.origins)
	}
	fmt.Fprintf(tw, "%.0f%%\t\t\n", 100*median(cov))
	tw.Flush()
	ok := true
	fmt.Fprintf(w, "\nshipped/baseline (medians):")
	for _, m := range methods[1:4] {
		ratio := med["shipped"] / med[m]
		ok = ok && ratio < 1
		fmt.Fprintf(w, " %s %.3f", m, ratio)
	}
	fmt.Fprintf(w, "\nshipped/baseline (median of the per-series ratios):")
	for _, m := range methods[1:4] {
		var xs []float64
		for _, r := range rs {
			xs = append(xs, r.mase["shipped"]/r.mase[m])
		}
		fmt.Fprintf(w, " %s %.3f", m, median(xs))
	}
	c := median(cov)
	ok = ok && c >= coverageLow && c <= coverageHigh
	fmt.Fprintf(w, "\ncoverage of the 80%% interval: median over series %.1f%%, pooled over origins %.1f%%\n", 100*c, 100*pooledIn/pooledN)
	return ok
}

func chosen(m map[forecast.Method]int) string {
	var parts []string
	for _, k := range forecast.AllMethods {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
		}
	}
	return strings.Join(parts, " ")
}

// evaluate forecasts s at horizon h from origins every `every` over its
// second half.
func evaluate(s *series, h, every time.Duration) result {
	r := result{name: s.name, horizon: h, mase: map[string]float64{}, chosen: map[forecast.Method]int{}}
	x := s.samples
	half := len(x) / 2
	var scale float64
	for i := 1; i < half; i++ {
		scale += math.Abs(x[i].V - x[i-1].V)
	}
	scale /= float64(half - 1)
	sums := map[string]float64{}
	var covered int
	var last time.Time
	for i := half; i < len(x); i++ {
		o := x[i].T
		if !last.IsZero() && o.Sub(last) < every {
			continue
		}
		actual, ok := valueAt(x, o.Add(h), s.step)
		if !ok {
			continue
		}
		last = o
		past := x[:i+1]
		f, err := forecast.Forecast(past, forecast.Options{Horizon: h})
		if err != nil {
			r.err = fmt.Errorf("origin %s: %w", o, err)
			return r
		}
		r.origins++
		r.chosen[f.Method]++
		if actual >= f.Lower && actual <= f.Upper {
			covered++
		}
		sums["shipped"] += math.Abs(actual - f.Point)
		sums["naive"] += math.Abs(actual - x[i].V)
		sn, ok := valueAt(past, o.Add(h-24*time.Hour), s.step)
		if !ok {
			sn = x[i].V
		}
		sums["seasonal_naive"] += math.Abs(actual - sn)
		sums["predict_linear_6h"] += math.Abs(actual - predictLinear(past, 6*time.Hour, h))
		for _, m := range methods[4:] {
			f, err := forecast.Forecast(past, forecast.Options{Horizon: h, Methods: []forecast.Method{forecast.Method(strings.TrimPrefix(m, "only_"))}})
			if err != nil {
				r.err = fmt.Errorf("origin %s: %s: %w", o, m, err)
				return r
			}
			sums[m] += math.Abs(actual - f.Point)
		}
	}
	for m, v := range sums {
		r.mase[m] = v / float64(r.origins) / scale
	}
	r.coverage = float64(covered) / float64(r.origins)
	return r
}

// valueAt is the sample within half a step of t, or the last one before t
// when that is within a step.
func valueAt(x []forecast.Sample, t time.Time, step time.Duration) (float64, bool) {
	i, _ := slices.BinarySearchFunc(x, t, func(s forecast.Sample, t time.Time) int { return s.T.Compare(t) })
	best, bestD := 0.0, time.Duration(math.MaxInt64)
	for _, j := range []int{i - 1, i} {
		if j >= 0 && j < len(x) {
			if d := x[j].T.Sub(t).Abs(); d < bestD {
				best, bestD = x[j].V, d
			}
		}
	}
	return best, bestD <= step/2
}

// predictLinear is PromQL's predict_linear(v[window], h) at the last
// sample's time: a least-squares line over the samples in (t-window, t],
// against their time relative to t, evaluated h later.
func predictLinear(x []forecast.Sample, window, h time.Duration) float64 {
	t := x[len(x)-1].T
	var n, sx, sy, sxx, sxy float64
	for i := len(x) - 1; i >= 0 && x[i].T.After(t.Add(-window)); i-- {
		dx := x[i].T.Sub(t).Seconds()
		n++
		sx += dx
		sy += x[i].V
		sxx += dx * dx
		sxy += dx * x[i].V
	}
	if n < 2 {
		return x[len(x)-1].V
	}
	cov := sxy - sx*sy/n
	vr := sxx - sx*sx/n
	slope := cov / vr
	intercept := sy/n - slope*sx/n
	return intercept + slope*h.Seconds()
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// load reads every CSV under dir, sorted by time with duplicate timestamps
// removed (the last kept), as the NAB README asks.
func load(dir string) ([]series, error) {
	var all []series
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".csv" {
			return err
		}
		s, err := readCSV(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		s.name = strings.TrimSuffix(filepath.Base(rel), ".csv")
		all = append(all, s)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no CSV series under %s", dir)
	}
	return all, nil
}

func readCSV(path string) (series, error) {
	f, err := os.Open(path)
	if err != nil {
		return series{}, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return series{}, fmt.Errorf("read %s: %w", path, err)
	}
	var x []forecast.Sample
	for i, row := range rows {
		if i == 0 || len(row) != 2 {
			continue
		}
		t, err := time.Parse(time.DateTime, row[0])
		if err != nil {
			return series{}, fmt.Errorf("%s row %d: %w", path, i+1, err)
		}
		v, err := strconv.ParseFloat(row[1], 64)
		if err != nil {
			return series{}, fmt.Errorf("%s row %d: %w", path, i+1, err)
		}
		x = append(x, forecast.Sample{T: t, V: v})
	}
	slices.SortStableFunc(x, func(a, b forecast.Sample) int { return a.T.Compare(b.T) })
	out := x[:0]
	for i, s := range x {
		if i+1 < len(x) && x[i+1].T.Equal(s.T) {
			continue
		}
		out = append(out, s)
	}
	x = out
	if len(x) < 10 {
		return series{}, fmt.Errorf("%s: %d samples", path, len(x))
	}
	d := make([]time.Duration, len(x)-1)
	for i := range d {
		d[i] = x[i+1].T.Sub(x[i].T)
	}
	slices.Sort(d)
	return series{samples: x, step: d[len(d)/2]}, nil
}
