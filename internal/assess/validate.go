package assess

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"unicode/utf8"
)

// The bounds on an assessment's text, in bytes. An answer is audited and
// shown; a longer one is refused rather than cut, since a cut can change
// what it says.
const (
	MaxCause      = 1000
	MaxWhy        = 2000
	MaxBy         = 128
	MaxFallback   = 1000
	MaxAction     = 128
	MaxParamValue = 1024
)

// Validate is the rule every answer passes before the healer uses it. It
// returns every problem at once (errors.Join), each naming what was wrong:
//
//   - Decision is act, none or ask_human.
//   - Confidence is a number in [0, 1].
//   - With act, Action is the name of one of c.Allowed; with none or
//     ask_human, Action and Params are empty.
//   - Params has only parameters the action declares (no unknown key); a
//     parameter the runbook fixes may be repeated with the runbook's value,
//     never changed; a required parameter the runbook leaves open must be
//     chosen; every value is bounded.
//   - The text fields are valid UTF-8 within their bounds.
//
// There is nothing to check about tiers, guards or approvals: an
// Assessment has no field for them, so an answer cannot raise a tier or
// touch a guard, and what a model wrote about them is never read.
func Validate(c Context, a Assessment) error {
	var errs []error
	if !a.Decision.Valid() {
		errs = append(errs, fmt.Errorf("decision %q: must be act, none or ask_human", a.Decision))
	}
	if math.IsNaN(a.Confidence) || a.Confidence < 0 || a.Confidence > 1 {
		errs = append(errs, fmt.Errorf("confidence %v: must be between 0 and 1", a.Confidence))
	}
	errs = append(errs, checkText("cause", a.Cause, MaxCause), checkText("why", a.Why, MaxWhy),
		checkText("by", a.By, MaxBy), checkText("fallback", a.Fallback, MaxFallback))
	if a.Decision == DecisionAct {
		errs = append(errs, checkAction(c, a))
	} else if a.Action != "" || len(a.Params) > 0 {
		errs = append(errs, fmt.Errorf("decision %q: must not name an action or parameters", a.Decision))
	}
	return errors.Join(errs...)
}

// checkAction checks the action and parameters of an act assessment.
func checkAction(c Context, a Assessment) error {
	if a.Action == "" {
		return errors.New("action: must be set when the decision is act")
	}
	if err := checkText("action", a.Action, MaxAction); err != nil {
		return err
	}
	o, ok := c.Option(a.Action)
	if !ok {
		return fmt.Errorf("action %q: not allowed by runbook %q (allowed: %v)", a.Action, c.Runbook, optionNames(c.Allowed))
	}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(a.Params)) {
		errs = append(errs, checkParam(o, k, a.Params[k]))
	}
	for _, p := range o.Params {
		_, chosen := a.Params[p.Name]
		_, fixed := o.Fixed[p.Name]
		if p.Required && !chosen && !fixed {
			errs = append(errs, fmt.Errorf("params.%s: required by action %q and not set", p.Name, o.Name))
		}
	}
	return errors.Join(errs...)
}

// checkParam checks one chosen parameter of option o.
func checkParam(o Option, name, value string) error {
	if _, ok := o.Param(name); !ok {
		return fmt.Errorf("params.%s: action %q has no such parameter", name, o.Name)
	}
	if fixed, ok := o.Fixed[name]; ok && value != fixed {
		return fmt.Errorf("params.%s: the runbook sets it; an assessment may not change it", name)
	}
	return checkText("params."+name, value, MaxParamValue)
}

// checkText checks that a text field is valid UTF-8 within max bytes.
func checkText(field, s string, maxLen int) error {
	if len(s) > maxLen {
		return fmt.Errorf("%s: %d bytes, at most %d", field, len(s), maxLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s: not valid UTF-8", field)
	}
	return nil
}

func optionNames(opts []Option) []string {
	names := make([]string, len(opts))
	for i, o := range opts {
		names[i] = o.Name
	}
	return names
}
