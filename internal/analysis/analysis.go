// Package analysis reads an alert history for what keeps coming back:
// alerts that recur with a period (hourly, daily, weekly), alerts that flap,
// runbooks that do or do not fix what they run for, alerts that fire
// together more often than chance, and, from all of these, what to look at
// first.
//
// It is pure: it takes episodes (an alert firing on an instance from a
// start to an end) and runs (a runbook acting on one), and returns numbers
// and sentences. Where the history comes from (Prometheus' ALERTS series,
// the healer's own store) is the caller's business.
package analysis

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// Episode is one alert firing on one instance, from Start until End (zero:
// still firing at the end of the history).
type Episode struct {
	Alertname string
	Instance  string
	Start     time.Time
	End       time.Time
	// Source says where the episode was read: "prometheus" or "healer".
	Source string
}

// Run is one runbook acting on an alert: started at Start, finished at End
// (zero: not finished), Succeeded when its steps ran (and verified).
type Run struct {
	Runbook   string
	Alertname string
	Instance  string
	Start     time.Time
	End       time.Time
	Succeeded bool
}

// Options bound the analysis; zero fields take the defaults of
// DefaultOptions.
type Options struct {
	// Since and Until are the history's window; onsets outside it are not
	// counted.
	Since, Until time.Time
	// FlapWindow and FlapMin: an alert that fires FlapMin times or more
	// inside FlapWindow flaps.
	FlapWindow time.Duration
	FlapMin    int
	// TogetherWithin: two onsets this close fire together.
	TogetherWithin time.Duration
	// HealWithin: an alert that resolves this soon after a run finished was
	// healed by it.
	HealWithin time.Duration
	// ReturnWithin: a healed alert that fires again this soon returned.
	ReturnWithin time.Duration
	// MinConfidence is the least confidence for a period to be named.
	MinConfidence float64
	// First is how many findings "look at first" lists.
	First int
}

// DefaultOptions are the defaults of every option but the window.
func DefaultOptions() Options {
	return Options{
		FlapWindow: time.Hour, FlapMin: 4, TogetherWithin: 5 * time.Minute,
		HealWithin: time.Hour, ReturnWithin: 24 * time.Hour, MinConfidence: 0.5, First: 10,
	}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	o.FlapWindow = cmp.Or(o.FlapWindow, d.FlapWindow)
	o.FlapMin = cmp.Or(o.FlapMin, d.FlapMin)
	o.TogetherWithin = cmp.Or(o.TogetherWithin, d.TogetherWithin)
	o.HealWithin = cmp.Or(o.HealWithin, d.HealWithin)
	o.ReturnWithin = cmp.Or(o.ReturnWithin, d.ReturnWithin)
	o.MinConfidence = cmp.Or(o.MinConfidence, d.MinConfidence)
	o.First = cmp.Or(o.First, d.First)
	return o
}

// Report is what the history shows.
type Report struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Alerts is every alert of the window, most onsets first.
	Alerts     []AlertStats    `json:"alerts"`
	Recurring  []Recurrence    `json:"recurring"`
	Flapping   []Flap          `json:"flapping"`
	Runbooks   []RunbookStats  `json:"runbooks"`
	Together   []Pair          `json:"together"`
	LookFirst  []Finding       `json:"look_first"`
	Sources    map[string]int  `json:"sources"` // episodes read from each source
	byKey      map[key]*series `json:"-"`
	observedAt time.Time
}

// AlertStats is one alert on one instance over the window.
type AlertStats struct {
	Alertname string `json:"alertname"`
	Instance  string `json:"instance,omitempty"`
	Onsets    int    `json:"onsets"`
	// FiringSeconds is how long it fired inside the window, in total.
	FiringSeconds float64 `json:"firing_seconds"`
	// MedianSeconds is the median length of its episodes that ended.
	MedianSeconds float64 `json:"median_seconds"`
	Source        string  `json:"source"`
}

type key struct{ alertname, instance string }

func (k key) String() string {
	if k.instance == "" {
		return k.alertname
	}
	return k.alertname + "{instance=" + fmt.Sprintf("%q", k.instance) + "}"
}

// series is one key's episodes, merged where they overlap, in order.
type series struct {
	key      key
	episodes []Episode
	onsets   []time.Time // starts inside the window
	source   string
}

// Analyze reads episodes and runs for what they show over o's window.
func Analyze(episodes []Episode, runs []Run, o Options) (Report, error) {
	o = o.withDefaults()
	if o.Until.IsZero() || !o.Since.Before(o.Until) {
		return Report{}, fmt.Errorf("window: since (%s) must be before until (%s)", o.Since.Format(time.RFC3339), o.Until.Format(time.RFC3339))
	}
	if o.FlapMin < 2 {
		return Report{}, fmt.Errorf("flap_min: %d; must be at least 2", o.FlapMin)
	}
	r := Report{
		Since: o.Since, Until: o.Until, Sources: map[string]int{},
		Alerts: []AlertStats{}, Recurring: []Recurrence{}, Flapping: []Flap{},
	}
	r.byKey = group(episodes, o, r.Sources)
	r.observedAt = o.Since
	if first, ok := earliest(episodes); ok && first.After(o.Since) {
		// Nothing is known before the history's first episode: a period
		// is measured over the cycles the history covers.
		r.observedAt = first
	}
	keys := sortedKeys(r.byKey)
	for _, k := range keys {
		s := r.byKey[k]
		r.Alerts = append(r.Alerts, stats(s, o))
		if rec, ok := recurrence(s, o); ok {
			r.Recurring = append(r.Recurring, rec)
		}
		if f, ok := flapping(s, o); ok {
			r.Flapping = append(r.Flapping, f)
		}
	}
	slices.SortStableFunc(r.Alerts, func(a, b AlertStats) int { return cmp.Compare(b.Onsets, a.Onsets) })
	slices.SortStableFunc(r.Recurring, func(a, b Recurrence) int { return cmp.Compare(b.Confidence, a.Confidence) })
	slices.SortStableFunc(r.Flapping, func(a, b Flap) int { return cmp.Compare(b.FlapOnsets, a.FlapOnsets) })
	r.Runbooks = runbooks(runs, r.byKey, o)
	r.Together = together(keys, r.byKey, r.observedAt, o)
	r.LookFirst = lookFirst(r, o)
	// Empty lists, not null, for scripts.
	r.Runbooks, r.Together, r.LookFirst = nonNil(r.Runbooks), nonNil(r.Together), nonNil(r.LookFirst)
	return r, nil
}

// group merges each key's overlapping episodes and keeps one source per
// key: Prometheus' when it has the key, since it sees every alert, the
// healer's otherwise.
func group(episodes []Episode, o Options, sources map[string]int) map[key]*series {
	bySource := map[key]map[string][]Episode{}
	for _, e := range episodes {
		if e.Alertname == "" || e.Start.After(o.Until) || (!e.End.IsZero() && e.End.Before(o.Since)) {
			continue
		}
		k := key{e.Alertname, e.Instance}
		if bySource[k] == nil {
			bySource[k] = map[string][]Episode{}
		}
		bySource[k][e.Source] = append(bySource[k][e.Source], e)
	}
	out := make(map[key]*series, len(bySource))
	for k, src := range bySource {
		name := "prometheus"
		eps, ok := src[name]
		if !ok {
			for n, e := range src {
				if name == "prometheus" || n < name {
					name, eps = n, e
				}
			}
		}
		sources[name] += len(eps)
		s := &series{key: k, episodes: merge(eps), source: name}
		for _, e := range s.episodes {
			// An episode that starts at the window's start was firing
			// before it: that is no onset.
			if e.Start.After(o.Since) && !e.Start.After(o.Until) {
				s.onsets = append(s.onsets, e.Start)
			}
		}
		out[k] = s
	}
	return out
}

// merge sorts episodes by start and joins those that overlap or touch.
func merge(eps []Episode) []Episode {
	eps = slices.Clone(eps)
	slices.SortFunc(eps, func(a, b Episode) int { return a.Start.Compare(b.Start) })
	var out []Episode
	for _, e := range eps {
		if n := len(out); n > 0 {
			last := &out[n-1]
			if last.End.IsZero() {
				continue // still firing: everything after is inside it
			}
			if !e.Start.After(last.End) {
				if e.End.IsZero() || e.End.After(last.End) {
					last.End = e.End
				}
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

func earliest(eps []Episode) (time.Time, bool) {
	var first time.Time
	for _, e := range eps {
		if first.IsZero() || e.Start.Before(first) {
			first = e.Start
		}
	}
	return first, !first.IsZero()
}

func sortedKeys(m map[key]*series) []key {
	keys := make([]key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.alertname, b.alertname), cmp.Compare(a.instance, b.instance))
	})
	return keys
}

func stats(s *series, o Options) AlertStats {
	a := AlertStats{Alertname: s.key.alertname, Instance: s.key.instance, Onsets: len(s.onsets), Source: s.source}
	var lengths []float64
	for _, e := range s.episodes {
		end := e.End
		if end.IsZero() || end.After(o.Until) {
			end = o.Until
		} else {
			lengths = append(lengths, e.End.Sub(e.Start).Seconds())
		}
		start := e.Start
		if start.Before(o.Since) {
			start = o.Since
		}
		a.FiringSeconds += end.Sub(start).Seconds()
	}
	a.MedianSeconds = median(lengths)
	return a
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
