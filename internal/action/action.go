// Package action is what the healer can do to a host: a library of actions,
// each with a permission tier, a parameter schema, a timeout and, where it
// changes state, a way back.
//
// Parameters arrive as strings (rendered from alert labels and annotations,
// or typed by a person) and are validated against the action's schema before
// the action sees them: an action never receives a value its schema would
// refuse. Nothing here runs a shell; commands are argv with a minimal
// environment (see Exec).
package action

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Tier is how much harm an action can do, and so how much trust it needs.
// Policy sets the highest tier the healer may run alone; above it a run
// waits for approval.
type Tier int

// The tiers, in order.
const (
	TierObserve Tier = iota // reads only
	TierLow                 // reversible and local: move files to a quarantine
	TierMedium              // disruptive but bounded: restart a service
	TierHigh                // destructive or security: kill a process, block an address
)

var tierNames = [...]string{"observe", "low", "medium", "high"}

func (t Tier) String() string {
	if t < 0 || int(t) >= len(tierNames) {
		return fmt.Sprintf("tier(%d)", int(t))
	}
	return tierNames[t]
}

// ParseTier returns the tier named s.
func ParseTier(s string) (Tier, error) {
	for i, n := range tierNames {
		if n == s {
			return Tier(i), nil
		}
	}
	return 0, fmt.Errorf("unknown tier %q (want observe, low, medium or high)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (t Tier) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *Tier) UnmarshalText(b []byte) error {
	v, err := ParseTier(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Spec describes an action: what `healer actions` lists and what the planner
// checks a runbook step against.
type Spec struct {
	Name string `json:"name"`
	Doc  string `json:"doc"`
	Tier Tier   `json:"tier"`
	// Params is the schema of the action's parameters.
	Params []Param `json:"params"`
	// Timeout is the default for one run; a runbook step may lower it.
	Timeout time.Duration `json:"timeout"`
	// Remote actions act elsewhere than on this host (an HTTP endpoint,
	// Alertmanager), so they may run for an alert about another instance.
	Remote bool `json:"remote"`
	// Reversible says Rollback can undo a successful run.
	Reversible bool `json:"reversible"`
}

// Param returns the schema of the parameter called name.
func (s Spec) Param(name string) (Param, bool) {
	for _, p := range s.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// Validate checks raw parameter values against the schema: every key must
// be a declared parameter, every required one present (defaults filled in),
// every value valid for its type. It returns the values to run with and
// every problem, joined, each naming its parameter.
func (s Spec) Validate(raw map[string]string) (map[string]string, error) {
	var errs []error
	out := make(map[string]string, len(s.Params))
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, ok := s.Param(k); !ok {
			errs = append(errs, fmt.Errorf("param %q: %s has no such parameter", k, s.Name))
		}
	}
	for _, p := range s.Params {
		v, ok := raw[p.Name]
		if !ok || v == "" {
			if p.Default != "" {
				v = p.Default
			} else if p.Required {
				errs = append(errs, fmt.Errorf("param %q: required", p.Name))
				continue
			} else {
				continue
			}
		}
		clean, err := p.Check(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("param %q: %w", p.Name, err))
			continue
		}
		out[p.Name] = clean
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Request is one run of an action with validated parameters.
type Request struct {
	// RunID names the run; actions use it to name what they keep for a
	// rollback (a quarantine folder, a backup file).
	RunID string
	// Params were validated against the action's Spec.
	Params map[string]string
	// DryRun asks the action to say what it would do and change nothing.
	DryRun bool
	// Alert is the alert that led to the run, as JSON, for actions that
	// hand it on (run_command's stdin, http_request's body). Nil when the
	// run was started by hand.
	Alert json.RawMessage
}

// Result is what a run did.
type Result struct {
	// Target is what the action acted on (a unit, a path, an address), for
	// the audit log and for cooldowns per target.
	Target string `json:"target,omitempty"`
	// Summary says in one line what was done, or would be in a dry run.
	Summary string `json:"summary,omitempty"`
	// Argv is the command run, if any.
	Argv []string `json:"argv,omitempty"`
	// Output is the command's combined output, cut to a bound.
	Output string `json:"output,omitempty"`
	// Undo is what Rollback needs to undo the run, opaque to everyone but
	// the action. Nil when there is nothing to undo.
	Undo json.RawMessage `json:"undo,omitempty"`
}

// Action is one thing the healer can do.
type Action interface {
	Spec() Spec
	// Run does it. The context carries the run's deadline. An error says
	// whether retrying is safe (see Retryable).
	Run(ctx context.Context, req Request) (Result, error)
}

// Checker is implemented by actions that can tell from a run's parameters
// that they would refuse it (a protected address, say). The healer asks
// before it plans a run or lets one wait for approval, so that nobody is
// asked to approve what would be refused; Run checks again, since what is
// protected can change in between.
type Checker interface {
	// Check returns an error wrapping ErrRefused when a run with params
	// (validated against the Spec) would be refused.
	Check(params map[string]string) error
}

// Reverser is implemented by actions whose runs can be undone.
type Reverser interface {
	// Rollback undoes a run from the Undo of its Result.
	Rollback(ctx context.Context, runID string, undo json.RawMessage) (Result, error)
}

// Retryable reports whether a failed run may be tried again without harm:
// it failed before it changed anything.
type Retryable interface{ Retryable() bool }

// IsRetryable reports whether err says a retry is safe.
func IsRetryable(err error) bool {
	var r Retryable
	return errors.As(err, &r) && r.Retryable()
}

// Registry holds the actions by name. It is built once at start and read
// concurrently.
type Registry struct {
	byName map[string]Action
}

// NewRegistry returns a registry of the given actions; two with one name is
// an error.
func NewRegistry(actions ...Action) (*Registry, error) {
	r := &Registry{byName: make(map[string]Action, len(actions))}
	for _, a := range actions {
		n := a.Spec().Name
		if _, dup := r.byName[n]; dup {
			return nil, fmt.Errorf("action %q registered twice", n)
		}
		r.byName[n] = a
	}
	return r, nil
}

// Get returns the action called name.
func (r *Registry) Get(name string) (Action, bool) {
	a, ok := r.byName[name]
	return a, ok
}

// Specs returns the specs of every action, by name.
func (r *Registry) Specs() []Spec {
	out := make([]Spec, 0, len(r.byName))
	for _, a := range r.byName {
		out = append(out, a.Spec())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
