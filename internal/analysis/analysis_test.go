package analysis

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// until is the end of every constructed history: a Friday.
var until = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func window(days int) Options {
	o := DefaultOptions()
	o.Since, o.Until = until.Add(-time.Duration(days)*24*time.Hour), until
	return o
}

func ep(name, instance string, start time.Time, d time.Duration) Episode {
	return Episode{Alertname: name, Instance: instance, Start: start, End: start.Add(d), Source: "prometheus"}
}

// scheduled returns an episode every period from first, jittered by up to
// ±jitter, lasting d, until the end of the history.
func scheduled(rng *rand.Rand, name, instance string, first time.Time, period, jitter, d time.Duration) []Episode {
	var out []Episode
	for t := first; t.Before(until); t = t.Add(period) {
		j := time.Duration(0)
		if jitter > 0 {
			j = time.Duration(rng.Int64N(int64(2*jitter))) - jitter
		}
		out = append(out, ep(name, instance, t.Add(j), d))
	}
	return out
}

// random returns n episodes at uniform random times over the last days.
func random(rng *rand.Rand, name, instance string, n, days int, d time.Duration) []Episode {
	span := int64(time.Duration(days) * 24 * time.Hour)
	out := make([]Episode, n)
	for i := range out {
		out[i] = ep(name, instance, until.Add(-time.Duration(rng.Int64N(span))), d)
	}
	return out
}

func analyze(t *testing.T, eps []Episode, runs []Run, o Options) Report {
	t.Helper()
	r, err := Analyze(eps, runs, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func recurrenceOf(r Report, name string) (Recurrence, bool) {
	i := slices.IndexFunc(r.Recurring, func(x Recurrence) bool { return x.Alertname == name })
	if i < 0 {
		return Recurrence{}, false
	}
	return r.Recurring[i], true
}

func TestRecurrenceFindsThePeriodAndWhen(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	start := until.Add(-30 * 24 * time.Hour)
	var eps []Episode
	// 03:00 every day, within ±15 minutes, for 20 minutes.
	eps = append(eps, scheduled(rng, "BackupSlow", "db1", time.Date(2026, 10, 28, 3, 0, 0, 0, time.UTC), 24*time.Hour, 15*time.Minute, 20*time.Minute)...)
	// :05 past every hour of the last four days.
	eps = append(eps, scheduled(rng, "CronSpike", "web1", until.Add(-4*24*time.Hour).Truncate(time.Hour).Add(5*time.Minute), time.Hour, 2*time.Minute, 3*time.Minute)...)
	// Mondays at 02:00.
	eps = append(eps, scheduled(rng, "WeeklyReport", "batch1", time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC), 7*24*time.Hour, 10*time.Minute, 30*time.Minute)...)
	// As many onsets as the daily alert, at random.
	eps = append(eps, random(rng, "Random", "web2", 30, 30, 10*time.Minute)...)
	// A daily alert that misses one day in three still recurs.
	for i, e := range scheduled(rng, "Sometimes", "db2", time.Date(2026, 10, 28, 14, 30, 0, 0, time.UTC), 24*time.Hour, 5*time.Minute, 10*time.Minute) {
		if i%3 != 2 {
			eps = append(eps, e)
		}
	}
	o := window(30)
	o.Since = start
	r := analyze(t, eps, nil, o)

	for _, tc := range []struct {
		name, period string
		// phase is when in the period it starts; the week's phase counts
		// from Thursday 00:00 UTC, the Unix epoch's weekday.
		phase, tolerance time.Duration
		minConf          float64
	}{
		{"BackupSlow", "daily", 3 * time.Hour, 10 * time.Minute, 0.9},
		{"CronSpike", "hourly", 5 * time.Minute, 2 * time.Minute, 0.9},
		{"WeeklyReport", "weekly", 4*24*time.Hour + 2*time.Hour, 10 * time.Minute, 0.8},
		{"Sometimes", "daily", 14*time.Hour + 30*time.Minute, 5 * time.Minute, 0.6},
	} {
		rec, ok := recurrenceOf(r, tc.name)
		if !ok {
			t.Errorf("%s: not found recurring; alerts: %+v", tc.name, r.Alerts)
			continue
		}
		phase := time.Duration(rec.PhaseSeconds) * time.Second
		if rec.Period != tc.period || (phase-tc.phase).Abs() > tc.tolerance || rec.Confidence < tc.minConf {
			t.Errorf("%s: %s %s (phase %s, confidence %.2f); want %s at %s ± %s with confidence >= %.2f; candidates %+v",
				tc.name, rec.Period, rec.When, phase, rec.Confidence, tc.period, tc.phase, tc.tolerance, tc.minConf, rec.Candidates)
		}
	}
	if rec, _ := recurrenceOf(r, "WeeklyReport"); !strings.HasPrefix(rec.When, "Mondays at 0") {
		t.Errorf("WeeklyReport: when %q; want Mondays at about 02:00 UTC", rec.When)
	}
	if rec, ok := recurrenceOf(r, "Random"); ok {
		t.Errorf("Random: found %s %s (confidence %.2f); want no period", rec.Period, rec.When, rec.Confidence)
	}
}

func TestRecurrenceNeedsThreeCyclesOfHistory(t *testing.T) {
	t.Parallel()
	// Three days of a daily alert: the week is not judged, the day is.
	eps := scheduled(nil, "Nightly", "a", until.Add(-3*24*time.Hour-time.Hour), 24*time.Hour, 0, 10*time.Minute)
	r := analyze(t, eps, nil, window(30))
	rec, ok := recurrenceOf(r, "Nightly")
	if !ok || rec.Period != "daily" {
		t.Fatalf("Nightly: %+v, %v; want daily", rec, ok)
	}
	for _, c := range rec.Candidates {
		if c.Period == "weekly" && c.Confidence != 0 {
			t.Errorf("weekly judged on %d cycles: %+v", c.Cycles, c)
		}
	}
}

func TestFlappingFindsBurstsNotSteadyAlerts(t *testing.T) {
	t.Parallel()
	var eps []Episode
	// Three bursts of six two-minute episodes, five minutes apart, at
	// different times of day.
	for day := 1; day <= 3; day++ {
		base := until.Add(-time.Duration(day) * 29 * time.Hour)
		for i := range 6 {
			eps = append(eps, ep("LinkFlap", "sw1", base.Add(time.Duration(i)*5*time.Minute), 2*time.Minute))
		}
	}
	// Once an hour for a day is often, not flapping.
	eps = append(eps, scheduled(nil, "Hourly", "a", until.Add(-24*time.Hour), time.Hour, 0, 10*time.Minute)...)
	r := analyze(t, eps, nil, window(7))
	if len(r.Flapping) != 1 {
		t.Fatalf("flapping: %+v; want LinkFlap alone", r.Flapping)
	}
	f := r.Flapping[0]
	if f.Alertname != "LinkFlap" || f.Bursts != 3 || f.FlapOnsets != 18 || f.MaxInWindow != 6 || f.MedianSeconds != 120 {
		t.Errorf("LinkFlap: %+v; want 3 bursts of 6 two-minute episodes", f)
	}
	if !slices.ContainsFunc(r.LookFirst, func(f Finding) bool { return f.Kind == "flapping" && strings.HasPrefix(f.Subject, "LinkFlap") }) {
		t.Errorf("look first: %+v; want the flapping alert among them", r.LookFirst)
	}
}

func TestRunbooksAreJudgedByWhatTheirAlertDidAfter(t *testing.T) {
	t.Parallel()
	var eps []Episode
	var runs []Run
	// Every other day, so that one day's alert is not the last one's return.
	for day := 1; day <= 5; day++ {
		base := until.Add(-time.Duration(day) * 48 * time.Hour)
		// restart_app heals: the alert resolves two minutes after the run.
		eps = append(eps, ep("AppDown", "web1", base, 5*time.Minute))
		runs = append(runs, Run{Runbook: "restart_app", Alertname: "AppDown", Instance: "web1", Start: base.Add(2 * time.Minute), End: base.Add(3 * time.Minute), Succeeded: true})
		// clean_tmp succeeds every time, but its alert fires on for hours.
		eps = append(eps, ep("DiskFull", "db1", base.Add(time.Hour), 6*time.Hour))
		runs = append(runs, Run{Runbook: "clean_tmp", Alertname: "DiskFull", Instance: "db1", Start: base.Add(time.Hour + time.Minute), End: base.Add(time.Hour + 2*time.Minute), Succeeded: true})
		// drop_caches heals, and its alert is back three hours later.
		eps = append(eps, ep("MemHigh", "app1", base.Add(2*time.Hour), 3*time.Minute))
		runs = append(runs, Run{Runbook: "drop_caches", Alertname: "MemHigh", Instance: "app1", Start: base.Add(2*time.Hour + time.Minute), End: base.Add(2*time.Hour + time.Minute), Succeeded: true})
		eps = append(eps, ep("MemHigh", "app1", base.Add(5*time.Hour), 3*time.Minute))
	}
	// A run whose alert the history never saw.
	runs = append(runs, Run{Runbook: "restart_app", Alertname: "AppDown", Instance: "web9", Start: until.Add(-time.Hour), End: until.Add(-time.Hour)})
	r := analyze(t, eps, runs, window(14))
	by := map[string]RunbookStats{}
	for _, rb := range r.Runbooks {
		by[rb.Runbook] = rb
	}
	if got := by["restart_app"]; got.Runs != 6 || got.Succeeded != 5 || got.Healed != 5 || got.Returned != 0 || got.Unmatched != 1 || got.MedianHealSeconds != 180 {
		t.Errorf("restart_app: %+v; want 6 runs, 5 healed in 3m, none returned, one unmatched", got)
	}
	if got := by["clean_tmp"]; got.Runs != 5 || got.SuccessRate != 1 || got.Healed != 0 || got.HealRate != 0 {
		t.Errorf("clean_tmp: %+v; want 5 successful runs that healed nothing", got)
	}
	if got := by["drop_caches"]; got.Healed != 5 || got.Returned != 5 || got.ReturnRate != 1 {
		t.Errorf("drop_caches: %+v; want 5 healed, all returned", got)
	}
	if len(r.LookFirst) < 2 || r.LookFirst[0].Kind != "runbook_does_not_heal" || r.LookFirst[0].Subject != "clean_tmp" ||
		r.LookFirst[1].Kind != "alert_returns" || r.LookFirst[1].Subject != "drop_caches" {
		t.Errorf("look first: %+v; want clean_tmp not healing, then drop_caches' alert returning", r.LookFirst)
	}
}

func TestTogetherFindsPairsAboveChance(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	var eps []Episode
	// Twelve times, the database goes and the app follows within a minute.
	for _, e := range random(rng, "DBDown", "db1", 12, 30, 10*time.Minute) {
		eps = append(eps, e, ep("AppErrors", "web1", e.Start.Add(time.Duration(rng.Int64N(int64(time.Minute)))), 10*time.Minute))
	}
	// Twelve times, something unrelated.
	eps = append(eps, random(rng, "Unrelated", "web2", 12, 30, 10*time.Minute)...)
	r := analyze(t, eps, nil, window(30))
	if len(r.Together) != 1 {
		t.Fatalf("together: %+v; want DBDown with AppErrors alone", r.Together)
	}
	p := r.Together[0]
	if p.A != `AppErrors{instance="web1"}` || p.B != `DBDown{instance="db1"}` || p.Together != 12 || p.Lift < 10 {
		t.Errorf("pair: %+v; want AppErrors and DBDown 12 times, far above chance", p)
	}
}

func TestEpisodesOfOneAlertAreMergedAndOneSourceKept(t *testing.T) {
	t.Parallel()
	t0 := until.Add(-2 * time.Hour)
	eps := []Episode{
		// Two series of one alert on one instance (two mount points).
		ep("DiskFull", "a", t0, 30*time.Minute),
		ep("DiskFull", "a", t0.Add(10*time.Minute), 30*time.Minute),
		// The healer saw it too, a little earlier (its startsAt is the
		// pending state's start): Prometheus is kept.
		{Alertname: "DiskFull", Instance: "a", Start: t0.Add(-time.Minute), Source: "healer"},
		// An alert only the healer saw.
		{Alertname: "Other", Instance: "b", Start: t0, End: t0.Add(time.Minute), Source: "healer"},
	}
	r := analyze(t, eps, nil, window(1))
	by := map[string]AlertStats{}
	for _, a := range r.Alerts {
		by[a.Alertname] = a
	}
	if got := by["DiskFull"]; got.Onsets != 1 || got.FiringSeconds != 40*60 || got.Source != "prometheus" {
		t.Errorf("DiskFull: %+v; want one 40-minute episode from prometheus", got)
	}
	if got := by["Other"]; got.Onsets != 1 || got.Source != "healer" {
		t.Errorf("Other: %+v; want one episode from the healer", got)
	}
	if r.Sources["prometheus"] != 2 || r.Sources["healer"] != 1 {
		t.Errorf("sources: %v; want 2 from prometheus, 1 from the healer", r.Sources)
	}
}

func TestAnalyzeRefusesABadWindow(t *testing.T) {
	t.Parallel()
	o := window(1)
	o.Since = o.Until
	if _, err := Analyze(nil, nil, o); err == nil || !strings.Contains(err.Error(), "since") {
		t.Errorf("err = %v; want one naming since", err)
	}
}

// TestRandomAlertsHaveNoPeriodAndNoPartner runs alerts at random times, few,
// some and many, over a hundred histories: none may be called recurring
// and no two may be called together.
func TestRandomAlertsHaveNoPeriodAndNoPartner(t *testing.T) {
	t.Parallel()
	for seed := range uint64(100) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var eps []Episode
		for i, n := range []int{8, 30, 100} {
			eps = append(eps, random(rng, "Random", strconv.Itoa(i), n, 30, 10*time.Minute)...)
		}
		r := analyze(t, eps, nil, window(30))
		for _, rec := range r.Recurring {
			t.Errorf("seed %d: %s{%s} called %s (confidence %.2f): %+v", seed, rec.Alertname, rec.Instance, rec.Period, rec.Confidence, rec.Candidates)
		}
		for _, p := range r.Together {
			t.Errorf("seed %d: %s and %s called together: %+v", seed, p.A, p.B, p)
		}
	}
}
