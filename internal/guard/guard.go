// Package guard decides whether a planned run may act now. It is pure: the
// healer gathers the facts (past runs, the breaker, silences, the gate
// query) and Check returns the decision and its reason, in a fixed order of
// guards so that the reason given is always the first that says no.
//
// The guards and their semantics:
//
//   - silenced: an alert that an Alertmanager silence covers is not acted on.
//   - circuit breaker (per runbook and target): opens when Failures runs in a
//     row failed (the action or its verification), and stays open until
//     Quiet has passed since the last failure; then it is closed again (the
//     failure count starts over). An open breaker skips the run.
//   - cooldown (per runbook and target): a run is skipped while less than
//     Cooldown has passed since the last run on the target started.
//   - rate limit (per runbook): at most Max runs started in any Window.
//   - blast radius (per runbook): at most MaxTargets distinct targets in
//     Window (a target already acted on in the window does not count again),
//     and, with a gate, only while the gate query returns a result.
//   - tier: a run whose tier is above the ceiling waits for approval.
//
// Dry runs pass through the same guards (so a dry run says truly what would
// happen) but never count as runs for cooldowns, rates or blast radius.
package guard

import (
	"fmt"
	"time"

	"github.com/deus-ex-machina/deus/internal/action"
)

// Counts are what the guards need to know of a runbook's past runs since a
// window's start.
type Counts struct {
	// LastStart is when a run of the runbook on the target last started
	// (zero if never), for the cooldown.
	LastStart time.Time
	// InWindow is how many runs of the runbook started in the window, on
	// any target, for the rate limit.
	InWindow int
	// Targets is how many distinct targets the runbook's runs acted on in
	// the window, for the blast radius.
	Targets int
	// TargetSeen reports whether the run's target is among them.
	TargetSeen bool
}

// Breaker is the state of a circuit breaker (one per runbook and target).
type Breaker struct {
	Failures    int       // in a row
	OpenedAt    time.Time // zero while closed
	LastFailure time.Time
	Escalated   bool // people were told it opened
}

// Policy is the guards' configuration for one runbook.
type Policy struct {
	MaxTier          action.Tier
	Cooldown         time.Duration
	RateMax          int // 0: no rate limit
	RateWindow       time.Duration
	BreakerFailures  int // 0: no breaker
	BreakerQuiet     time.Duration
	BlastMaxTargets  int // 0: no limit on targets
	BlastWindow      time.Duration
	HasGate          bool
	ApprovalRequired bool // every run waits for approval, whatever its tier
	Maintenance      bool // the runbook runs only inside a maintenance window
}

// Facts are what the healer knows when it checks.
type Facts struct {
	Now      time.Time
	Tier     action.Tier
	Target   string
	Silenced bool
	// Cooldown and rate: counts over the longest of the windows.
	Counts Counts
	// Counts over the blast radius window (may equal Counts).
	BlastCounts Counts
	Breaker     Breaker
	// GateOK is the gate query's verdict (true when it returned a result).
	GateOK bool
	// Approved says a person approved this run already.
	Approved bool
	// Maintenance is what the maintenance guard knows (Policy.Maintenance).
	Maintenance MaintenanceFacts
}

// Verdict is the outcome of Check.
type Verdict int

// The verdicts.
const (
	Allow Verdict = iota
	Skip
	NeedApproval
	Defer // not now: the run waits until Decision.Until
)

func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allowed"
	case Skip:
		return "skipped"
	case Defer:
		return "deferred"
	default:
		return "approval_required"
	}
}

// Decision is a verdict with the guard that gave it and why.
type Decision struct {
	Verdict Verdict
	Guard   string // silenced, circuit_breaker, cooldown, rate_limit, blast_radius, gate, tier, maintenance, or "" when allowed
	Reason  string
	Until   time.Time // when a deferred run may try again
}

// Check applies the guards in order.
func Check(p Policy, f Facts) Decision {
	if f.Silenced {
		return Decision{Skip, "silenced", "an Alertmanager silence covers the alert", time.Time{}}
	}
	if BreakerOpen(p, f.Breaker, f.Now) {
		return Decision{Skip, "circuit_breaker", fmt.Sprintf("circuit breaker open since %s after %d failures in a row on %s; it closes %s after the last failure",
			f.Breaker.OpenedAt.UTC().Format(time.RFC3339), f.Breaker.Failures, f.Target, p.BreakerQuiet), time.Time{}}
	}
	if p.Cooldown > 0 && !f.Counts.LastStart.IsZero() {
		if since := f.Now.Sub(f.Counts.LastStart); since < p.Cooldown {
			return Decision{Skip, "cooldown", fmt.Sprintf("last run on %s started %s ago; cooldown is %s", f.Target, since.Round(time.Second), p.Cooldown), time.Time{}}
		}
	}
	if p.RateMax > 0 && f.Counts.InWindow >= p.RateMax {
		return Decision{Skip, "rate_limit", fmt.Sprintf("%d runs in the last %s; the limit is %d", f.Counts.InWindow, p.RateWindow, p.RateMax), time.Time{}}
	}
	if p.BlastMaxTargets > 0 && !f.BlastCounts.TargetSeen && f.BlastCounts.Targets >= p.BlastMaxTargets {
		return Decision{Skip, "blast_radius", fmt.Sprintf("already acted on %d targets in the last %s; the limit is %d", f.BlastCounts.Targets, p.BlastWindow, p.BlastMaxTargets), time.Time{}}
	}
	if p.HasGate && !f.GateOK {
		return Decision{Skip, "gate", "the blast-radius gate query returned nothing", time.Time{}}
	}
	if !f.Approved && (p.ApprovalRequired || f.Tier > p.MaxTier) {
		return Decision{NeedApproval, "tier", fmt.Sprintf("tier %s is above the ceiling %s for acting alone", f.Tier, p.MaxTier), time.Time{}}
	}
	if p.Maintenance {
		return Maintenance(f.Maintenance, f.Now)
	}
	return Decision{Verdict: Allow}
}

// BreakerOpen reports whether b is open at now: it has opened and Quiet has
// not yet passed since its last failure.
func BreakerOpen(p Policy, b Breaker, now time.Time) bool {
	if p.BreakerFailures <= 0 || b.OpenedAt.IsZero() {
		return false
	}
	return now.Sub(b.LastFailure) < p.BreakerQuiet
}

// Failed records a failure in b and reports whether it opened the breaker
// now (it was closed before).
func Failed(p Policy, b Breaker, now time.Time) (Breaker, bool) {
	if p.BreakerFailures <= 0 {
		return b, false
	}
	if !b.LastFailure.IsZero() && now.Sub(b.LastFailure) >= p.BreakerQuiet {
		// A failure after a quiet period starts a new count.
		b.Failures, b.OpenedAt, b.Escalated = 0, time.Time{}, false
	}
	b.Failures++
	b.LastFailure = now
	if b.OpenedAt.IsZero() && b.Failures >= p.BreakerFailures {
		b.OpenedAt = now
		return b, true
	}
	return b, false
}

// Succeeded records a success: the count of failures in a row starts over
// and the breaker is closed.
func Succeeded(b Breaker) Breaker {
	b.Failures, b.OpenedAt, b.Escalated = 0, time.Time{}, false
	return b
}
