package analysis

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/common/model"
)

// Finding is one thing to look at, with why and what to try.
type Finding struct {
	// Kind is runbook_does_not_heal, alert_returns, flapping, recurring or
	// fires_together.
	Kind    string `json:"kind"`
	Subject string `json:"subject"`
	What    string `json:"what"`
	Try     string `json:"try"`
	// Score orders the findings: about how many pages a fix would save
	// over the window, weighted by how sure the finding is.
	Score float64 `json:"score"`
}

// lookFirst ranks what the report found by how much noise or harm a fix
// would remove: a runbook that acts but does not heal is worth most per
// run (something is done to a host for nothing), then alerts that return
// after healing, then flapping, recurring and co-occurring alerts, by the
// onsets each would remove.
func lookFirst(r Report, o Options) []Finding {
	var out []Finding
	for _, rb := range r.Runbooks {
		if rb.Runs >= 2 && rb.HealRate < 0.5 {
			out = append(out, Finding{
				Kind: "runbook_does_not_heal", Subject: rb.Runbook,
				What: fmt.Sprintf("ran %d times (%d succeeded); its alert resolved within %s after %d", rb.Runs, rb.Succeeded, short(o.HealWithin), rb.Healed),
				Try:  "check that the runbook acts on the alert's cause, or let a person handle it (approval, or remove the runbook)",
				// Each run that did not heal is an action on a host for nothing.
				Score: 3 * float64(rb.Runs-rb.Healed),
			})
		}
		if rb.Healed >= 2 && rb.ReturnRate >= 0.5 {
			out = append(out, Finding{
				Kind: "alert_returns", Subject: rb.Runbook,
				What: fmt.Sprintf("healed %d times, and the alert came back within %s after %d", rb.Healed, short(o.ReturnWithin), rb.Returned),
				Try:  "the runbook treats a symptom: find what brings the alert back",
				// Each return is a page and a run the fix of the cause saves.
				Score: 2 * float64(rb.Returned),
			})
		}
	}
	for _, f := range r.Flapping {
		out = append(out, Finding{
			Kind: "flapping", Subject: key{f.Alertname, f.Instance}.String(),
			What: fmt.Sprintf("fired %d times in %d bursts (up to %d within %s); an episode lasts %s in the median", f.FlapOnsets, f.Bursts, f.MaxInWindow, short(o.FlapWindow), short(time.Duration(f.MedianSeconds)*time.Second)),
			Try:  "give the rule keep_firing_for (or a longer for:), or smooth its expression with a *_over_time",
			// A burst is worth one page: the rest are noise.
			Score: float64(f.FlapOnsets - f.Bursts),
		})
	}
	for _, rec := range r.Recurring {
		out = append(out, Finding{
			Kind: "recurring", Subject: key{rec.Alertname, rec.Instance}.String(),
			What: fmt.Sprintf("fires %s %s (%d onsets, confidence %.2f)", rec.Period, rec.When, rec.Onsets, rec.Confidence),
			Try:  "look for what runs on that schedule (cron, backups, log rotation, batch jobs) on the instance",
			// A schedule found is most of its onsets explained.
			Score: float64(rec.Onsets) * rec.Confidence,
		})
	}
	for _, p := range r.Together {
		out = append(out, Finding{
			Kind: "fires_together", Subject: p.A + " + " + p.B,
			What: fmt.Sprintf("started together %d times, %.1f times more often than chance", p.Together, p.Lift),
			Try:  "one may cause the other: group them in Alertmanager, or inhibit the consequence while the cause fires",
			// Grouping or inhibiting saves one page per time they fire
			// together.
			Score: float64(p.Together) * min(1, p.Lift/10),
		})
	}
	slices.SortStableFunc(out, func(a, b Finding) int { return cmp.Compare(b.Score, a.Score) })
	for i := range out {
		out[i].Score = round(out[i].Score, 2)
	}
	if len(out) > o.First {
		out = out[:o.First]
	}
	return out
}

// short writes a duration as Prometheus does: 1d, 1h30m, 5m.
func short(d time.Duration) string { return model.Duration(d.Round(time.Second)).String() }
