package assess

import (
	"strings"
	"testing"
)

func TestLocal(t *testing.T) {
	t.Parallel()
	one := func(c Context) Context { c.Allowed = c.Allowed[:1]; return c }
	for name, tc := range map[string]struct {
		c          func(Context) Context
		decision   Decision
		action     string
		confidence float64
		why        string
	}{
		"a resolved alert needs nothing": {
			c: func(c Context) Context { c.Status = "resolved"; return c }, decision: DecisionNone, confidence: 0.9,
		},
		"a re-check that no longer holds needs nothing": {
			c: func(c Context) Context { c.RecheckHolds = SignalNo; return c }, decision: DecisionNone, confidence: 0.9, why: "no longer holds",
		},
		"a runbook that allows nothing asks a human": {
			c: func(c Context) Context { c.Allowed = nil; return c }, decision: DecisionAskHuman, why: "allows no action",
		},
		"a symptom whose cause still fires asks a human": {
			c: func(c Context) Context { c.Causes = []string{`{alertname="DiskAlmostFull"}`}; return c }, decision: DecisionAskHuman, why: "acting on the symptom may not heal it",
		},
		"a runbook that failed here repeatedly asks a human": {
			c: func(c Context) Context { c.Failed, c.Healed = 3, 1; return c }, decision: DecisionAskHuman, why: "did not heal this alert here 3 times",
		},
		"a single action with no signals": {
			c: one, decision: DecisionAct, action: "clean_tmp", confidence: 0.5,
		},
		"a single action with every signal": {
			c: func(c Context) Context {
				c = one(c)
				c.RecheckHolds, c.ForecastCrosses, c.Healed = SignalYes, SignalYes, 4
				return c
			},
			decision: DecisionAct, action: "clean_tmp", confidence: 0.95, why: "healed this alert here 4 times",
		},
		"of several actions the lowest tier the runbook fully sets": {
			c: func(c Context) Context { c.RecheckHolds = SignalYes; return c }, decision: DecisionAct, action: "clean_tmp", confidence: 0.6,
		},
		"a low tier that needs a chosen parameter is passed over": {
			c: func(c Context) Context {
				c.Allowed = []Option{
					{Name: "restart_unit", Tier: "low", Params: []Param{{Name: "unit", Required: true}}},
					{Name: "reboot", Tier: "high"},
				}
				return c
			},
			decision: DecisionAct, action: "reboot", confidence: 0.4,
		},
		"a single action that needs a chosen parameter asks a human": {
			c: func(c Context) Context { c.Allowed = c.Allowed[1:]; return c }, decision: DecisionAskHuman, why: "needs a parameter",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := tc.c(diskContext())
			a, err := Local{}.Assess(t.Context(), c)
			if err != nil {
				t.Fatalf("Assess: %v", err)
			}
			if a.Decision != tc.decision || a.Action != tc.action {
				t.Fatalf("Assess = %s %q (%s); want %s %q", a.Decision, a.Action, a.Why, tc.decision, tc.action)
			}
			if tc.confidence != 0 && !near(a.Confidence, tc.confidence) {
				t.Errorf("confidence: got %v, want %v", a.Confidence, tc.confidence)
			}
			if !strings.Contains(a.Why, tc.why) {
				t.Errorf("why: got %q, want it to hold %q", a.Why, tc.why)
			}
			if a.By != ByLocal {
				t.Errorf("by: got %q, want %q", a.By, ByLocal)
			}
			if err := Validate(c, a); err != nil {
				t.Errorf("the local answer fails Validate: %v", err)
			}
		})
	}
}

func TestLocalAnswersAreValidWhateverTheAlertName(t *testing.T) {
	t.Parallel()
	for name, alertName := range map[string]string{
		"a name of four kilobytes":     strings.Repeat("ServiceDown", 400),
		"a name that is not UTF-8":     "Disk\xffFull",
		"a long name cut inside runes": strings.Repeat("é", 600),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := diskContext()
			c.AlertName = alertName
			a, err := Local{}.Assess(t.Context(), c)
			if err != nil {
				t.Fatalf("Assess: %v", err)
			}
			if a.Decision != DecisionAct {
				t.Fatalf("decision: got %s, want act", a.Decision)
			}
			if err := Validate(c, a); err != nil {
				t.Errorf("the local answer fails Validate: %v", err)
			}
			if !strings.HasSuffix(a.Cause, " fired") {
				t.Errorf("cause: got %q, want it to end in \" fired\"", a.Cause)
			}
		})
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
