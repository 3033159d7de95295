package analysis

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Flap is an alert that fires and resolves again and again.
type Flap struct {
	Alertname string `json:"alertname"`
	Instance  string `json:"instance,omitempty"`
	// Bursts is how many windows held FlapMin onsets or more, FlapOnsets
	// how many onsets they held, MaxInWindow the most in one.
	Bursts      int     `json:"bursts"`
	FlapOnsets  int     `json:"flap_onsets"`
	MaxInWindow int     `json:"max_in_window"`
	WindowSecs  float64 `json:"window_seconds"`
	// MedianSeconds is how long an episode lasts, in the median.
	MedianSeconds float64 `json:"median_seconds"`
}

// flapping finds the bursts of s: from each onset not yet in a burst, the
// onsets inside FlapWindow; FlapMin or more make a burst.
func flapping(s *series, o Options) (Flap, bool) {
	f := Flap{Alertname: s.key.alertname, Instance: s.key.instance, WindowSecs: o.FlapWindow.Seconds()}
	for i := 0; i < len(s.onsets); {
		j := i
		for j < len(s.onsets) && s.onsets[j].Sub(s.onsets[i]) < o.FlapWindow {
			j++
		}
		n := j - i
		f.MaxInWindow = max(f.MaxInWindow, n)
		if n >= o.FlapMin {
			f.Bursts++
			f.FlapOnsets += n
			i = j
			continue
		}
		i++
	}
	if f.Bursts == 0 {
		return Flap{}, false
	}
	f.MedianSeconds = stats(s, o).MedianSeconds
	return f, true
}

// RunbookStats is what a runbook's runs did to the alerts they ran for.
type RunbookStats struct {
	Runbook string `json:"runbook"`
	// Runs is how many started in the window, Succeeded how many of them
	// ran their steps through.
	Runs        int     `json:"runs"`
	Succeeded   int     `json:"succeeded"`
	SuccessRate float64 `json:"success_rate"`
	// Healed is how many were followed by their alert resolving within
	// HealWithin of the run's end; Returned how many of those saw the same
	// alert fire again within ReturnWithin.
	Healed     int     `json:"healed"`
	HealRate   float64 `json:"heal_rate"`
	Returned   int     `json:"returned"`
	ReturnRate float64 `json:"return_rate"`
	// MedianHealSeconds is the time from a run's start to its alert
	// resolving, in the median of the healed runs.
	MedianHealSeconds float64  `json:"median_heal_seconds"`
	Alerts            []string `json:"alerts"`
	// Unmatched is how many runs found no episode of their alert.
	Unmatched int `json:"unmatched"`
}

// runbooks judges each runbook by the episodes its runs ran inside.
func runbooks(runs []Run, byKey map[key]*series, o Options) []RunbookStats {
	by := map[string]*RunbookStats{}
	heal := map[string][]float64{}
	for _, r := range runs {
		if r.Runbook == "" || r.Start.Before(o.Since) || r.Start.After(o.Until) {
			continue
		}
		st := by[r.Runbook]
		if st == nil {
			st = &RunbookStats{Runbook: r.Runbook}
			by[r.Runbook] = st
		}
		st.Runs++
		if r.Succeeded {
			st.Succeeded++
		}
		if !slices.Contains(st.Alerts, r.Alertname) {
			st.Alerts = append(st.Alerts, r.Alertname)
		}
		s := byKey[key{r.Alertname, r.Instance}]
		ep, next, ok := episodeAt(s, r.Start)
		// A run that starts well after its episode ended (a runbook
		// acting on the resolution) did not act inside it.
		if ok && !ep.End.IsZero() && r.Start.After(ep.End.Add(time.Minute)) {
			ok = false
		}
		if !ok {
			st.Unmatched++
			continue
		}
		done := cmp.Or(r.End, r.Start)
		if ep.End.IsZero() || ep.End.Sub(done) > o.HealWithin {
			continue
		}
		st.Healed++
		heal[r.Runbook] = append(heal[r.Runbook], ep.End.Sub(r.Start).Seconds())
		if next != nil && next.Start.Sub(ep.End) <= o.ReturnWithin {
			st.Returned++
		}
	}
	out := make([]RunbookStats, 0, len(by))
	for name, st := range by {
		st.SuccessRate = round(ratio(st.Succeeded, st.Runs), 3)
		st.HealRate = round(ratio(st.Healed, st.Runs), 3)
		st.ReturnRate = round(ratio(st.Returned, st.Healed), 3)
		st.MedianHealSeconds = median(heal[name])
		slices.Sort(st.Alerts)
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b RunbookStats) int {
		return cmp.Or(cmp.Compare(b.Runs, a.Runs), cmp.Compare(a.Runbook, b.Runbook))
	})
	return out
}

// episodeAt returns the episode of s that t falls in (or the last one to
// start before t, which a run may have outlived by moments), and the one
// after it.
func episodeAt(s *series, t time.Time) (ep Episode, next *Episode, ok bool) {
	if s == nil {
		return Episode{}, nil, false
	}
	i, _ := slices.BinarySearchFunc(s.episodes, t, func(e Episode, t time.Time) int { return e.Start.Compare(t) })
	// s.episodes[i-1] is the last to start at or before t; an episode
	// starting exactly at t is found at i.
	if i < len(s.episodes) && s.episodes[i].Start.Equal(t) {
		i++
	}
	if i == 0 {
		return Episode{}, nil, false
	}
	ep = s.episodes[i-1]
	if i < len(s.episodes) {
		next = &s.episodes[i]
	}
	return ep, next, true
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Pair is two alerts that start together more often than chance.
type Pair struct {
	A string `json:"a"`
	B string `json:"b"`
	// Together is how many onsets of the rarer of the two had an onset of
	// the other within TogetherWithin; Expected how many chance would give
	// (onsets spread uniformly over the history); Lift their ratio; Chance
	// the probability of so many or more by chance (Poisson).
	Together int     `json:"together"`
	OnsetsA  int     `json:"onsets_a"`
	OnsetsB  int     `json:"onsets_b"`
	Expected float64 `json:"expected"`
	Lift     float64 `json:"lift"`
	Chance   float64 `json:"chance"`
}

// minTogether, minLift and maxChance bound the pairs reported: with many
// alerts there are many pairs, so chance must be small for each.
const (
	minTogether = 3
	minLift     = 2.0
	maxChance   = 0.001
)

// together finds the pairs of alerts whose onsets fall within
// TogetherWithin of each other at least minTogether times and minLift
// times more often than chance.
func together(keys []key, byKey map[key]*series, from time.Time, o Options) []Pair {
	span := o.Until.Sub(from)
	var out []Pair
	for i, ka := range keys {
		a := byKey[ka]
		if len(a.onsets) < minTogether {
			continue
		}
		for _, kb := range keys[i+1:] {
			b := byKey[kb]
			if len(b.onsets) < minTogether {
				continue
			}
			rare, other := a, b
			if len(b.onsets) < len(a.onsets) {
				rare, other = b, a
			}
			n := matched(rare.onsets, other.onsets, o.TogetherWithin)
			if n < minTogether {
				continue
			}
			// The chance that an onset of the other falls within w of a
			// given time is about 2w/span per onset of the other.
			p := min(1, float64(len(other.onsets))*2*o.TogetherWithin.Seconds()/span.Seconds())
			exp := float64(len(rare.onsets)) * p
			lift, chance := float64(n)/exp, poissonTail(n, exp)
			if lift < minLift || chance > maxChance {
				continue
			}
			out = append(out, Pair{
				A: ka.String(), B: kb.String(), Together: n, OnsetsA: len(a.onsets), OnsetsB: len(b.onsets),
				Expected: round(exp, 3), Lift: round(lift, 2), Chance: chance,
			})
		}
	}
	slices.SortFunc(out, func(x, y Pair) int { return cmp.Or(cmp.Compare(y.Together, x.Together), cmp.Compare(y.Lift, x.Lift)) })
	return out
}

// poissonTail is P(X >= n) for X Poisson with mean lambda.
func poissonTail(n int, lambda float64) float64 {
	if lambda <= 0 {
		return 0
	}
	below := 0.0
	for k := range n {
		lg, _ := math.Lgamma(float64(k + 1))
		below += math.Exp(-lambda + float64(k)*math.Log(lambda) - lg)
	}
	return max(0, 1-below)
}

// matched counts the times of a with a time of b within w; both sorted.
func matched(a, b []time.Time, w time.Duration) int {
	n, j := 0, 0
	for _, t := range a {
		for j < len(b) && b[j].Before(t.Add(-w)) {
			j++
		}
		if j < len(b) && !b[j].After(t.Add(w)) {
			n++
		}
	}
	return n
}
