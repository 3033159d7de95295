// Package assess is the brain's contract: what an assessor sees of an alert
// (Context), what it answers (Assessment), the rule every answer must pass
// before the healer uses it (Validate), the local analyzer that always
// answers without a network (Local), and WithFallback, which puts a model in
// front of the local analyzer and falls back to it when the model fails or
// answers out of bounds.
//
// An assessment proposes; it never disposes. It names at most one of the
// actions the runbook already allows, with at most the parameters that
// action declares, and nothing else: it has no field for a tier, a guard,
// an approval or a dry run, so no answer can raise a tier or skip a guard.
// The guards and tiers that follow the brain decide whether the proposal
// runs. Alert labels and annotations are data an assessor reads, never
// instructions it follows.
//
// The package is pure: no network, no files, no clock.
package assess

import (
	"context"
	"time"
)

// Decision is what an assessment proposes.
type Decision string

// The decisions an assessment may make.
const (
	// DecisionAct proposes running Assessment.Action.
	DecisionAct Decision = "act"
	// DecisionNone proposes doing nothing: the alert needs no action.
	DecisionNone Decision = "none"
	// DecisionAskHuman proposes that a person looks before anything runs.
	DecisionAskHuman Decision = "ask_human"
)

// Valid reports whether d is one of the three decisions.
func (d Decision) Valid() bool {
	return d == DecisionAct || d == DecisionNone || d == DecisionAskHuman
}

// Signal is a fact the healer established before assessing (by a PromQL
// re-check or a forecast): unknown when it was not asked or could not say.
type Signal string

// The values of a Signal.
const (
	SignalUnknown Signal = ""
	SignalYes     Signal = "yes"
	SignalNo      Signal = "no"
)

// Param is a parameter an action declares.
type Param struct {
	Name     string
	Required bool
}

// Option is one action the runbook allows for the alert: the action's name
// and tier (as the policy sees them), the parameters it declares, and the
// values the runbook would pass (Fixed). A parameter in Fixed is the
// runbook's: an assessment may repeat it with the same value or leave it
// out, never change it.
type Option struct {
	Name   string
	Tier   string
	Params []Param
	Fixed  map[string]string
}

// Param returns the parameter of o named name.
func (o Option) Param(name string) (Param, bool) {
	for _, p := range o.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// Merge returns the parameters the action runs with when an assessment
// chose chosen: the runbook's fixed values, and the chosen value of every
// parameter the runbook left open. Merge does not validate; Validate does.
func (o Option) Merge(chosen map[string]string) map[string]string {
	out := make(map[string]string, len(o.Fixed)+len(chosen))
	for k, v := range chosen {
		out[k] = v
	}
	for k, v := range o.Fixed {
		out[k] = v
	}
	return out
}

// Context is what an assessor sees of one alert: the alert itself, the
// runbook that matched it and the actions it allows, and what the healer
// learned around it. The text fields (Recheck, Forecast, History, Related)
// are for a model and for display; the local analyzer reads the Signals
// and counts beside them.
type Context struct {
	AlertName   string
	Status      string
	StartsAt    time.Time
	Labels      map[string]string
	Annotations map[string]string

	Runbook string
	Allowed []Option

	// Recheck is the PromQL re-check's result, as text.
	Recheck string
	// RecheckHolds says whether the re-check found the condition still true.
	RecheckHolds Signal
	// Forecast is the forecast's summary, as text.
	Forecast string
	// ForecastCrosses says whether the forecast crosses the threshold
	// within its horizon.
	ForecastCrosses Signal
	// History holds recent lines about this alert and runbook on this host.
	History []string
	// Healed and Failed count the recent runs of this runbook on this host
	// that healed the alert and that did not.
	Healed, Failed int
	// Related lists the incident's other alerts.
	Related []string
	// Causes lists the incident's alerts, still firing, that bring this
	// one about (by the incident's cause rules): acting on this one, the
	// symptom, may not heal it.
	Causes []string
}

// Option returns the allowed option named name.
func (c Context) Option(name string) (Option, bool) {
	for _, o := range c.Allowed {
		if o.Name == name {
			return o, true
		}
	}
	return Option{}, false
}

// Assessment is an assessor's answer. Action and Params are set only when
// Decision is DecisionAct; Params holds only what the assessor chose, and
// the action runs with Option.Merge of it. By names the assessor ("local",
// or "model:NAME"); Fallback, when set, says why a model's answer was
// refused and the local analyzer's is given instead.
type Assessment struct {
	Cause      string            `json:"cause"`
	Confidence float64           `json:"confidence"`
	Decision   Decision          `json:"decision"`
	Action     string            `json:"action,omitempty"`
	Params     map[string]string `json:"params,omitempty"`
	Why        string            `json:"why"`
	By         string            `json:"by"`
	Fallback   string            `json:"fallback,omitempty"`
}

// Assessor assesses one alert in its context.
type Assessor interface {
	Assess(ctx context.Context, c Context) (Assessment, error)
}
