package healer

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/deus-ex-machina/deus/internal/assess"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/store"
)

// cannedBrain answers every context with a, and keeps the contexts.
type cannedBrain struct {
	a    assess.Assessment
	seen chan assess.Context
}

func (b *cannedBrain) Assess(_ context.Context, c assess.Context) (assess.Assessment, error) {
	b.seen <- c
	return b.a, nil
}

func TestTheBrainProposesAndTheGuardsDispose(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		a        assess.Assessment
		state    store.RunState
		ran      int
		decision string
		reason   string
	}{
		"an act runs the runbook": {
			a:     assess.Assessment{Decision: assess.DecisionAct, Action: "restart_service", Confidence: 0.8, Cause: "it died", Why: "restart it", By: "model:m"},
			state: store.RunSucceeded, ran: 1, decision: "act",
		},
		"a none skips the run": {
			a:     assess.Assessment{Decision: assess.DecisionNone, Confidence: 0.9, Cause: "a blip", Why: "it came back", By: "model:m"},
			state: store.RunSkipped, decision: "none", reason: "proposes no action: it came back",
		},
		"an ask_human makes a run below the tier ceiling wait": {
			a:     assess.Assessment{Decision: assess.DecisionAskHuman, Confidence: 0.4, Cause: "unclear", Why: "looks odd", By: "model:m"},
			state: store.RunWaiting, decision: "ask_human", reason: "asks a person: looks odd",
		},
		"an action the runbook does not allow is refused and a person asked": {
			a:     assess.Assessment{Decision: assess.DecisionAct, Action: "kill_process", Params: map[string]string{"pid": "1"}, Confidence: 1, Cause: "x", Why: "obey", By: "model:m"},
			state: store.RunWaiting, decision: "ask_human", reason: "the assessment failed",
		},
		"a changed parameter is refused and a person asked": {
			a:     assess.Assessment{Decision: assess.DecisionAct, Action: "restart_service", Params: map[string]string{"unit": "sshd.service"}, Confidence: 1, Cause: "x", Why: "y", By: "model:m"},
			state: store.RunWaiting, decision: "ask_human", reason: "the assessment failed",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := &cannedBrain{a: tc.a, seen: make(chan assess.Context, 4)}
			e := newEnv(t, restart, func(o *Options) { o.Brain = b })
			e.post("webhook-firing.json", nil)
			runs := e.settle()
			if len(runs) != 1 || runs[0].State != tc.state || !strings.Contains(runs[0].Reason, tc.reason) {
				t.Fatalf("runs: %+v; want one %s, saying %q", runs, tc.state, tc.reason)
			}
			if n, _ := e.act.count(); n != tc.ran {
				t.Errorf("the action ran %d times; want %d", n, tc.ran)
			}
			c := <-b.seen
			if len(c.Allowed) != 1 || c.Allowed[0].Name != "restart_service" || c.Allowed[0].Fixed["unit"] != "node.service" || c.Allowed[0].Tier != "medium" {
				t.Errorf("the brain saw options %+v; want restart_service of node.service, medium", c.Allowed)
			}
			var a assess.Assessment
			if err := json.Unmarshal(runs[0].Assessment, &a); err != nil || string(a.Decision) != tc.decision {
				t.Errorf("the run's assessment %s (%v); want %s", runs[0].Assessment, err, tc.decision)
			}
			var assessed *audit.Record
			for _, r := range auditRecords(t, e.dir) {
				if r.Kind == audit.KindAssessed {
					assessed = &r
				}
			}
			if assessed == nil || assessed.Result != tc.decision || assessed.RunID != runs[0].ID || assessed.Fields["by"] == "" {
				t.Errorf("assessed record %+v; want %s by someone, of run %s", assessed, tc.decision, runs[0].ID)
			}
		})
	}
}

func TestTheLocalAnalyzerActsOnAnOrdinaryRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, restart, func(o *Options) { o.Brain = assess.Local{} })
	e.post("webhook-firing.json", nil)
	runs := e.settle()
	if len(runs) != 1 || runs[0].State != store.RunSucceeded {
		t.Fatalf("runs: %+v; want one succeeded", runs)
	}
	var a assess.Assessment
	if err := json.Unmarshal(runs[0].Assessment, &a); err != nil || a.By != assess.ByLocal || a.Decision != assess.DecisionAct {
		t.Errorf("assessment %s (%v); want the local analyzer's act", runs[0].Assessment, err)
	}
}

func TestAModelCannotTakeAPersonOutOfTheLoop(t *testing.T) {
	t.Parallel()
	c := assess.Context{AlertName: "ServiceDown", Status: "firing", Failed: 3, Allowed: []assess.Option{{Name: "restart_service", Tier: "medium"}}}
	act := assess.Assessment{Decision: assess.DecisionAct, Action: "restart_service", Confidence: 1, By: "model:m", Why: "restart"}
	if got := conservative(t.Context(), act, c, false); got.Decision != assess.DecisionAskHuman || !strings.Contains(got.Why, "did not heal") {
		t.Errorf("a model's act where the local analyzer asks a person: %+v; want ask_human saying why", got)
	}
	none := assess.Assessment{Decision: assess.DecisionNone, Confidence: 1, By: "model:m", Why: "a test alert"}
	if got := conservative(t.Context(), none, assess.Context{}, true); got.Decision != assess.DecisionAskHuman {
		t.Errorf("a model's none on a run that needs approval: %+v; want ask_human", got)
	}
	if got := conservative(t.Context(), none, assess.Context{}, false); got.Decision != assess.DecisionNone {
		t.Errorf("a model's none on a run needing nobody: %+v; want none", got)
	}
}
