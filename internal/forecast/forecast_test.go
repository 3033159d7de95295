package forecast

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

// series samples f every step for d.
func series(d, step time.Duration, f func(i int, t time.Duration) float64) []Sample {
	var s []Sample
	for i := 0; time.Duration(i)*step <= d; i++ {
		t := time.Duration(i) * step
		s = append(s, Sample{T: t0.Add(t), V: f(i, t)})
	}
	return s
}

const day = 24 * time.Hour

func TestForecast(t *testing.T) {
	t.Parallel()
	sine := func(_ int, t time.Duration) float64 {
		return 50 + 2*t.Hours() + 10*math.Sin(2*math.Pi*t.Hours()/24)
	}
	tests := []struct {
		name      string
		samples   []Sample
		opts      Options
		methods   []Method // any of these may win
		want, tol float64
		maxWidth  float64
	}{
		{
			name:     "a line is forecast exactly by the linear method with an interval of no width",
			samples:  series(3*day, 5*time.Minute, func(_ int, t time.Duration) float64 { return 1000 - 3*t.Hours() }),
			opts:     Options{Horizon: 6 * time.Hour},
			methods:  []Method{Linear},
			want:     1000 - 3*(72+6),
			tol:      1e-6,
			maxWidth: 1e-6,
		},
		{
			name:    "a daily sine on a trend is forecast by a seasonal method within a tenth",
			samples: series(6*day, 5*time.Minute, sine),
			opts:    Options{Horizon: 6 * time.Hour},
			methods: []Method{Seasonal, Smoothing},
			want:    sine(0, 6*day+6*time.Hour),
			tol:     0.1,
		},
		{
			name: "a daily sine on a trend with noise is forecast by a seasonal method within the noise",
			samples: series(6*day, 5*time.Minute, func(i int, t time.Duration) float64 {
				return sine(i, t) + 0.5*math.Sin(float64(i)*12.9898) // deterministic noise
			}),
			opts:     Options{Horizon: 12 * time.Hour},
			methods:  []Method{Seasonal, Smoothing},
			want:     sine(0, 6*day+12*time.Hour),
			tol:      1,
			maxWidth: 4,
		},
		{
			name: "after a step the forecast is the new level",
			samples: series(5*day, 5*time.Minute, func(_ int, t time.Duration) float64 {
				if t < 4*day {
					return 10
				}
				return 20
			}),
			opts:    Options{Horizon: time.Hour},
			methods: []Method{Naive, Smoothing},
			want:    20,
			tol:     1e-6,
		},
		{
			name: "after a step smoothing alone adapts to the new level",
			samples: series(5*day, 5*time.Minute, func(_ int, t time.Duration) float64 {
				if t < 4*day {
					return 10
				}
				return 20
			}),
			opts:    Options{Horizon: time.Hour, Methods: []Method{Smoothing}},
			methods: []Method{Smoothing},
			want:    20,
			tol:     0.01,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := Forecast(tt.samples, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			ok := false
			for _, m := range tt.methods {
				ok = ok || r.Method == m
			}
			if !ok {
				t.Errorf("method %s, want one of %v; %s", r.Method, tt.methods, r.Why)
			}
			if math.Abs(r.Point-tt.want) > tt.tol {
				t.Errorf("point %v, want %v ± %v", r.Point, tt.want, tt.tol)
			}
			if r.Lower > r.Point || r.Upper < r.Point {
				t.Errorf("interval [%v, %v] does not hold the point %v", r.Lower, r.Upper, r.Point)
			}
			if tt.maxWidth > 0 && r.Upper-r.Lower > tt.maxWidth {
				t.Errorf("interval width %v, want at most %v", r.Upper-r.Lower, tt.maxWidth)
			}
			if want := tt.samples[len(tt.samples)-1].T.Add(tt.opts.Horizon); !r.At.Equal(want) {
				t.Errorf("at %s, want %s", r.At, want)
			}
			if len(r.Scores) < 2 && len(tt.opts.Methods) == 0 {
				t.Errorf("got %d scores, want every candidate's", len(r.Scores))
			}
		})
	}
}

func TestForecastCrossing(t *testing.T) {
	t.Parallel()
	falling := series(10*day, 5*time.Minute, func(_ int, t time.Duration) float64 { return 500 - 2*t.Hours() })
	last := falling[len(falling)-1].T // value 20
	tests := []struct {
		name      string
		samples   []Sample
		threshold Threshold
		horizon   time.Duration
		want      Crossing
	}{
		{
			name:      "a falling line reaches zero at the exact time",
			samples:   falling,
			threshold: Threshold{Value: 0, Direction: Below},
			horizon:   2 * day,
			want: Crossing{
				Within: true, At: last.Add(10 * time.Hour),
				Earliest: last.Add(10 * time.Hour), Latest: last.Add(10 * time.Hour),
			},
		},
		{
			name:      "a falling line does not reach zero within six hours",
			samples:   falling,
			threshold: Threshold{Value: 0, Direction: Below},
			horizon:   6 * time.Hour,
		},
		{
			name:      "a falling line is already below a threshold above it",
			samples:   falling,
			threshold: Threshold{Value: 30, Direction: Below},
			horizon:   time.Hour,
			want:      Crossing{Now: true, Within: true, At: last, Earliest: last, Latest: last},
		},
		{
			name:      "a flat series never rises to a limit",
			samples:   series(10*day, 5*time.Minute, func(int, time.Duration) float64 { return 42 }),
			threshold: Threshold{Value: 90, Direction: Above},
			horizon:   2 * day,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			th := tt.threshold
			r, err := Forecast(tt.samples, Options{Horizon: tt.horizon, Threshold: &th})
			if err != nil {
				t.Fatal(err)
			}
			got := *r.Crossing
			tt.want.Threshold = th
			if got.Now != tt.want.Now || got.Within != tt.want.Within ||
				!near(got.At, tt.want.At) || !near(got.Earliest, tt.want.Earliest) || !near(got.Latest, tt.want.Latest) {
				t.Errorf("crossing %+v, want %+v (method %s)", got, tt.want, r.Method)
			}
		})
	}
}

// near is true when a and b are within a second, or both zero.
func near(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() == b.IsZero()
	}
	return a.Sub(b).Abs() <= time.Second
}

func TestForecastInput(t *testing.T) {
	t.Parallel()
	line := series(2*day, 5*time.Minute, func(_ int, t time.Duration) float64 { return t.Hours() })
	t.Run("samples out of order, duplicated and with NaN are sorted, deduped and dropped", func(t *testing.T) {
		t.Parallel()
		var s []Sample
		for i := len(line) - 1; i >= 0; i-- {
			s = append(s, Sample{T: line[i].T, V: -1}, line[i]) // the later duplicate wins
		}
		s = append(s, Sample{T: t0.Add(day + time.Minute), V: math.NaN()})
		r, err := Forecast(s, Options{Horizon: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(r.Point-49) > 1e-6 || r.Step != 5*time.Minute {
			t.Errorf("point %v step %s, want 49 at 5m steps", r.Point, r.Step)
		}
	})
	t.Run("too short a series for the horizon is not enough data", func(t *testing.T) {
		t.Parallel()
		_, err := Forecast(line[:30], Options{Horizon: 2 * time.Hour})
		if !errors.Is(err, ErrNotEnoughData) {
			t.Errorf("err %v, want ErrNotEnoughData", err)
		}
	})
	t.Run("bad options are reported together", func(t *testing.T) {
		t.Parallel()
		_, err := Forecast(line, Options{Level: 1.5, Methods: []Method{"arima"}, Threshold: &Threshold{Direction: "sideways"}})
		if err == nil {
			t.Fatal("no error")
		}
		for _, want := range []string{"horizon", "level", "arima", "sideways"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		}
	})
}
