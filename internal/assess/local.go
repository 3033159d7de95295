package assess

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// ByLocal is the By of the local analyzer's assessments.
const ByLocal = "local"

// Local is the local analyzer: deterministic rules over the Context that
// need no network and always answer. The rules, in order, the first that
// applies deciding:
//
//  1. A resolved alert needs nothing: none.
//  2. The re-check says the condition no longer holds: none.
//  3. The runbook allows no action: ask_human.
//  4. An alert of the incident that brings this one about still fires (a
//     full disk under a service that is down): ask_human, since acting on
//     the symptom may not heal it.
//  5. This runbook failed to heal the alert on this host at least twice and
//     more often than it healed it: ask_human.
//  6. Otherwise act with one allowed action: the only one, or, of several,
//     those the runbook gives every required parameter (the local analyzer
//     chooses no parameter), the lowest tier first (low, medium, high, then
//     any other), the runbook's order breaking ties. When none can run
//     without a chosen parameter: ask_human.
//
// The confidence of an act starts at 0.5 and adds 0.2 when the re-check
// holds, 0.1 when the forecast crosses, and 0.15 when the runbook healed
// the alert here before and never failed; it loses 0.1 when there were
// several actions to choose from. A none from a re-check or a resolution
// has confidence 0.9; an ask_human 0.5. The cause of an act names the
// alert, cut to fit MaxCause and made valid UTF-8, so that every answer
// passes Validate whatever the alert's name.
type Local struct{}

// Assess applies the local rules to c. It never fails.
func (Local) Assess(_ context.Context, c Context) (Assessment, error) {
	a := localRules(c)
	a.By = ByLocal
	return a, nil
}

func localRules(c Context) Assessment {
	switch {
	case c.Status == "resolved":
		return Assessment{Decision: DecisionNone, Confidence: 0.9, Cause: "the alert is resolved", Why: "a resolved alert needs no action"}
	case c.RecheckHolds == SignalNo:
		return Assessment{Decision: DecisionNone, Confidence: 0.9, Cause: "the condition cleared", Why: "the re-check says the condition no longer holds"}
	case len(c.Allowed) == 0:
		return askHuman(fmt.Sprintf("runbook %q allows no action", c.Runbook))
	case len(c.Causes) > 0:
		return askHuman(fmt.Sprintf("%s brings this alert about and still fires: acting on the symptom may not heal it", bound(strings.ToValidUTF8(c.Causes[0], "\uFFFD"), 200)))
	case c.Failed >= 2 && c.Failed > c.Healed:
		return askHuman(fmt.Sprintf("runbook %q did not heal this alert here %d times (healed %d)", c.Runbook, c.Failed, c.Healed))
	}
	o, ok := pickOption(c.Allowed)
	if !ok {
		return askHuman("every allowed action needs a parameter the runbook does not set")
	}
	return Assessment{
		Decision:   DecisionAct,
		Action:     o.Name,
		Confidence: localConfidence(c),
		Cause:      firedCause(c.AlertName),
		Why:        localWhy(c, o),
	}
}

// firedCause is the cause of an act: the alert fired. The name is the
// alert's, untrusted: cut to the cause's bound and made valid UTF-8, so
// that the local answer always passes Validate.
func firedCause(alertName string) string {
	const fired = " fired"
	return bound(strings.ToValidUTF8(alertName, "\uFFFD"), MaxCause-len(fired)) + fired
}

func askHuman(why string) Assessment {
	return Assessment{Decision: DecisionAskHuman, Confidence: 0.5, Cause: "unclear", Why: why}
}

// pickOption returns the only allowed option, or of several the first, by
// tier and then by the runbook's order, that needs no chosen parameter.
func pickOption(opts []Option) (Option, bool) {
	if len(opts) == 1 {
		return opts[0], runnable(opts[0])
	}
	sorted := slices.Clone(opts)
	slices.SortStableFunc(sorted, func(a, b Option) int { return tierRank(a.Tier) - tierRank(b.Tier) })
	for _, o := range sorted {
		if runnable(o) {
			return o, true
		}
	}
	return Option{}, false
}

// runnable reports whether the runbook sets every required parameter of o.
func runnable(o Option) bool {
	for _, p := range o.Params {
		if _, ok := o.Fixed[p.Name]; p.Required && !ok {
			return false
		}
	}
	return true
}

func tierRank(tier string) int {
	switch tier {
	case "low":
		return 0
	case "medium":
		return 1
	case "high":
		return 2
	}
	return 3
}

func localConfidence(c Context) float64 {
	conf := 0.5
	if c.RecheckHolds == SignalYes {
		conf += 0.2
	}
	if c.ForecastCrosses == SignalYes {
		conf += 0.1
	}
	if c.Healed > 0 && c.Failed == 0 {
		conf += 0.15
	}
	if len(c.Allowed) > 1 {
		conf -= 0.1
	}
	return min(max(conf, 0), 1)
}

func localWhy(c Context, o Option) string {
	why := fmt.Sprintf("runbook %q allows %s (tier %s)", c.Runbook, o.Name, o.Tier)
	if len(c.Allowed) > 1 {
		why += fmt.Sprintf(", the lowest tier of %d allowed actions that the runbook fully sets", len(c.Allowed))
	}
	if c.RecheckHolds == SignalYes {
		why += "; the re-check holds"
	}
	if c.ForecastCrosses == SignalYes {
		why += "; the forecast crosses the threshold"
	}
	if c.Healed > 0 {
		why += fmt.Sprintf("; it healed this alert here %d times before (failed %d)", c.Healed, c.Failed)
	}
	return why
}
