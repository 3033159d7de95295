package analysis

import (
	"fmt"
	"math"
	"time"
)

// Recurrence is an alert that comes back with a period.
type Recurrence struct {
	Alertname string `json:"alertname"`
	Instance  string `json:"instance,omitempty"`
	Onsets    int    `json:"onsets"`
	// Period is hourly, daily or weekly; Confidence in [0, 1] how sure.
	Period        string  `json:"period"`
	PeriodSeconds float64 `json:"period_seconds"`
	Confidence    float64 `json:"confidence"`
	// PhaseSeconds is when in the period it starts (from the start of the
	// hour, the UTC day, or the week from Thursday 00:00 UTC, the Unix
	// epoch's weekday); When says it in words.
	PhaseSeconds float64 `json:"phase_seconds"`
	When         string  `json:"when"`
	// Candidates is every period's score, the chosen one among them.
	Candidates []PeriodScore `json:"candidates"`
}

// PeriodScore is how well a period explains an alert's onsets.
//
// Concentration is the mean resultant length of the onsets' phases in the
// period (1: always at the same moment of it, near 0: anywhere). Coverage
// is the share of the period's cycles, from the first onset to the end of
// the history, that hold an onset; Precision the share of onsets that are
// the one of their cycle. Chance is the probability of so concentrated
// phases from onsets at random times (Rayleigh's test). Confidence is the
// product of Concentration, Coverage, Precision and 1 − Chance: an alert
// that fires at 03:00 every day is concentrated in the hour too, but
// covers one hour in 24; an alert that fires a few times a week, at
// random, covers every week but not once in each; three onsets at one
// time of week may be luck.
type PeriodScore struct {
	Period        string  `json:"period"`
	Cycles        int     `json:"cycles"`
	Concentration float64 `json:"concentration"`
	Coverage      float64 `json:"coverage"`
	Precision     float64 `json:"precision"`
	Chance        float64 `json:"chance"`
	Confidence    float64 `json:"confidence"`
}

// periods are the candidates, shortest first.
var periods = []struct {
	name string
	d    time.Duration
}{
	{"hourly", time.Hour},
	{"daily", 24 * time.Hour},
	{"weekly", 7 * 24 * time.Hour},
}

// minCycles is the least number of cycles, and of onsets, for a period to
// be judged.
const minCycles = 3

// recurrence scores each period on s's onsets, a burst of them counted
// once, and names the best when its confidence reaches o.MinConfidence.
func recurrence(s *series, o Options) (Recurrence, bool) {
	onsets := bursts(s.onsets, burstGap)
	if len(onsets) < minCycles {
		return Recurrence{}, false
	}
	rec := Recurrence{Alertname: s.key.alertname, Instance: s.key.instance, Onsets: len(onsets), Period: "none"}
	var best PeriodScore
	var bestPhase float64
	var bestPeriod time.Duration
	for _, p := range periods {
		sc, phase := scorePeriod(onsets, o.Until, p.d)
		sc.Period = p.name
		rec.Candidates = append(rec.Candidates, sc)
		if sc.Confidence > best.Confidence {
			best, bestPhase, bestPeriod = sc, phase, p.d
		}
	}
	rec.Confidence = best.Confidence
	if best.Confidence < o.MinConfidence {
		return rec, false
	}
	rec.Period, rec.PeriodSeconds = best.Period, bestPeriod.Seconds()
	rec.PhaseSeconds = math.Round(bestPhase * bestPeriod.Seconds())
	rec.When = when(best.Period, time.Duration(rec.PhaseSeconds)*time.Second)
	return rec, true
}

// burstGap is the gap under which onsets are one burst for recurrence: a
// quarter of the shortest period.
const burstGap = 15 * time.Minute

// bursts keeps the first onset of each run of onsets less than w apart.
func bursts(onsets []time.Time, w time.Duration) []time.Time {
	var out []time.Time
	for i, t := range onsets {
		if i > 0 && t.Sub(onsets[i-1]) < w {
			continue
		}
		out = append(out, t)
	}
	return out
}

// scorePeriod scores period p on onsets up to until and returns their mean
// phase in [0, 1). Cycles are cut half a period away from the mean phase,
// so that jitter around it does not split one cycle in two.
func scorePeriod(onsets []time.Time, until time.Time, p time.Duration) (PeriodScore, float64) {
	// The phase is taken against the Unix epoch, so that it names a time of
	// day (or of week) whatever the window.
	phases := make([]float64, len(onsets))
	for i, t := range onsets {
		phases[i] = float64(t.UnixNano()%int64(p)) / float64(p)
	}
	r, mean := resultant(phases)
	cut := int64((mean - 0.5) * float64(p))
	cycle := func(t time.Time) int64 { return (t.UnixNano() - cut) / int64(p) }
	// The cycle under way at until counts once its mean phase has passed.
	last := cycle(until)
	if (until.UnixNano()-cut)%int64(p) < int64(p)/2 {
		last--
	}
	sc := PeriodScore{Cycles: int(last - cycle(onsets[0]) + 1)}
	if sc.Cycles < minCycles {
		return sc, 0
	}
	seen := map[int64]bool{}
	for _, t := range onsets {
		seen[cycle(t)] = true
	}
	n := float64(len(onsets))
	sc.Concentration = round(r, 3)
	sc.Coverage = round(math.Min(1, float64(len(seen))/float64(sc.Cycles)), 3)
	sc.Precision = round(float64(len(seen))/n, 3)
	chance := math.Exp(-n * r * r)
	sc.Chance = round(chance, 3)
	sc.Confidence = round(r*sc.Coverage*sc.Precision*(1-chance), 2)
	return sc, mean
}

// resultant returns the mean resultant length of phases in [0, 1) and
// their circular mean.
func resultant(phases []float64) (length, mean float64) {
	var sx, sy float64
	for _, ph := range phases {
		sx += math.Cos(2 * math.Pi * ph)
		sy += math.Sin(2 * math.Pi * ph)
	}
	mean = math.Atan2(sy, sx) / (2 * math.Pi)
	if mean < 0 {
		mean++
	}
	return math.Hypot(sx, sy) / float64(len(phases)), mean
}

// when names a phase of a period: "at :05 past the hour", "at 03:00 UTC",
// "Mondays at 03:00 UTC".
func when(period string, phase time.Duration) string {
	at := time.Unix(0, int64(phase)).UTC()
	switch period {
	case "hourly":
		return fmt.Sprintf("at :%02d past the hour", at.Minute())
	case "daily":
		return "at " + at.Format("15:04") + " UTC"
	default:
		return at.Weekday().String() + "s at " + at.Format("15:04") + " UTC"
	}
}
