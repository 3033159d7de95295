package assess

import (
	"math"
	"strings"
	"testing"
)

// diskContext is a runbook that allows two actions: a clean-up whose path
// the runbook sets, and a restart whose unit is left to the assessor.
func diskContext() Context {
	return Context{
		AlertName: "DiskAlmostFull",
		Status:    "firing",
		Labels:    map[string]string{"instance": "web-1:9100", "mountpoint": "/var"},
		Runbook:   "disk-full",
		Allowed: []Option{
			{Name: "clean_tmp", Tier: "low", Params: []Param{{Name: "path", Required: true}, {Name: "older_than"}}, Fixed: map[string]string{"path": "/var/tmp"}},
			{Name: "restart_unit", Tier: "medium", Params: []Param{{Name: "unit", Required: true}}},
		},
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	act := func(action string, params map[string]string) Assessment {
		return Assessment{Decision: DecisionAct, Action: action, Params: params, Confidence: 0.8, Cause: "c", Why: "w", By: "model:x"}
	}
	for name, tc := range map[string]struct {
		a    Assessment
		want string // a substring of the error; "" for valid
	}{
		"an allowed action with no parameters":      {a: act("clean_tmp", nil)},
		"a fixed parameter repeated with its value": {a: act("clean_tmp", map[string]string{"path": "/var/tmp"})},
		"an open parameter chosen":                  {a: act("clean_tmp", map[string]string{"older_than": "7d"})},
		"a required open parameter chosen":          {a: act("restart_unit", map[string]string{"unit": "nginx.service"})},
		"none with nothing else":                    {a: Assessment{Decision: DecisionNone, Confidence: 1}},
		"ask_human with nothing else":               {a: Assessment{Decision: DecisionAskHuman}},
		"an action the runbook does not allow":      {a: act("kill_process", nil), want: `action "kill_process": not allowed by runbook "disk-full"`},
		"act without an action":                     {a: act("", nil), want: "action: must be set when the decision is act"},
		"an unknown parameter":                      {a: act("clean_tmp", map[string]string{"recursive": "true"}), want: `params.recursive: action "clean_tmp" has no such parameter`},
		"a fixed parameter changed":                 {a: act("clean_tmp", map[string]string{"path": "/"}), want: "params.path: the runbook sets it"},
		"a required open parameter missing":         {a: act("restart_unit", nil), want: `params.unit: required by action "restart_unit" and not set`},
		"an unknown decision":                       {a: Assessment{Decision: "approve"}, want: `decision "approve": must be act, none or ask_human`},
		"an empty decision":                         {a: Assessment{}, want: `decision "": must be`},
		"a confidence above one":                    {a: Assessment{Decision: DecisionNone, Confidence: 1.5}, want: "confidence 1.5: must be between 0 and 1"},
		"a negative confidence":                     {a: Assessment{Decision: DecisionNone, Confidence: -0.1}, want: "confidence -0.1"},
		"a confidence that is not a number":         {a: Assessment{Decision: DecisionNone, Confidence: math.NaN()}, want: "confidence NaN"},
		"none naming an action":                     {a: Assessment{Decision: DecisionNone, Action: "clean_tmp"}, want: `decision "none": must not name an action`},
		"a cause beyond its bound":                  {a: Assessment{Decision: DecisionNone, Cause: strings.Repeat("x", MaxCause+1)}, want: "cause: 1001 bytes, at most 1000"},
		"a why that is not UTF-8":                   {a: Assessment{Decision: DecisionNone, Why: "\xff"}, want: "why: not valid UTF-8"},
		"a parameter value beyond its bound":        {a: act("clean_tmp", map[string]string{"older_than": strings.Repeat("x", MaxParamValue+1)}), want: "params.older_than: 1025 bytes"},
		"every problem is reported at once":         {a: Assessment{Decision: "x", Confidence: 2}, want: "decision \"x\": must be act, none or ask_human\nconfidence 2"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := Validate(diskContext(), tc.a)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate = %v; want nil", err)
			case tc.want != "" && err == nil:
				t.Fatalf("Validate = nil; want an error holding %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("Validate = %q; want it to hold %q", err, tc.want)
			}
		})
	}
}

func TestOptionMergeKeepsTheRunbooksValues(t *testing.T) {
	t.Parallel()
	o := diskContext().Allowed[0]
	got := o.Merge(map[string]string{"path": "/", "older_than": "7d"})
	if got["path"] != "/var/tmp" || got["older_than"] != "7d" {
		t.Fatalf("Merge = %v; want path /var/tmp (the runbook's) and older_than 7d (chosen)", got)
	}
}
