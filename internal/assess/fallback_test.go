package assess

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// fixed is an assessor that answers a or fails with err.
type fixed struct {
	a   Assessment
	err error
}

func (f fixed) Assess(context.Context, Context) (Assessment, error) { return f.a, f.err }

func TestWithFallback(t *testing.T) {
	t.Parallel()
	good := Assessment{Decision: DecisionAct, Action: "clean_tmp", Confidence: 0.9, By: "model:m"}
	for name, tc := range map[string]struct {
		primary  fixed
		by       string
		fallback string
		reason   FallbackReason
	}{
		"a valid answer is kept": {
			primary: fixed{a: good}, by: "model:m",
		},
		"a failing assessor falls back": {
			primary: fixed{err: errors.New("connection refused")}, by: ByLocal,
			fallback: "assessor failed: connection refused", reason: FallbackError,
		},
		"an action the runbook does not allow falls back": {
			primary: fixed{a: Assessment{Decision: DecisionAct, Action: "kill_process", Confidence: 0.9}}, by: ByLocal,
			fallback: `answer refused: action "kill_process": not allowed`, reason: FallbackInvalid,
		},
		"a changed fixed parameter falls back": {
			primary: fixed{a: Assessment{Decision: DecisionAct, Action: "clean_tmp", Params: map[string]string{"path": "/"}, Confidence: 0.9}}, by: ByLocal,
			fallback: "answer refused: params.path", reason: FallbackInvalid,
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var reasons []FallbackReason
			f := WithFallbackNotify(tc.primary, Local{}, func(r FallbackReason) { reasons = append(reasons, r) })
			a, err := f.Assess(t.Context(), diskContext())
			if err != nil {
				t.Fatalf("Assess: %v", err)
			}
			if a.By != tc.by || !strings.HasPrefix(a.Fallback, tc.fallback) || (tc.fallback == "") != (a.Fallback == "") {
				t.Fatalf("Assess by %q with fallback %q; want by %q with fallback %q", a.By, a.Fallback, tc.by, tc.fallback)
			}
			if tc.reason == "" && len(reasons) != 0 || tc.reason != "" && (len(reasons) != 1 || reasons[0] != tc.reason) {
				t.Errorf("notified %v; want %q", reasons, tc.reason)
			}
		})
	}
}

func TestWithFallbackBoundsTheReason(t *testing.T) {
	t.Parallel()
	f := WithFallback(fixed{err: errors.New(strings.Repeat("é", MaxFallback))}, Local{})
	a, err := f.Assess(t.Context(), diskContext())
	if err != nil {
		t.Fatalf("Assess: %v", err)
	}
	if len(a.Fallback) > MaxFallback || !strings.HasSuffix(a.Fallback, "…") {
		t.Fatalf("fallback of %d bytes ending %q; want at most %d ending in …", len(a.Fallback), a.Fallback[len(a.Fallback)-5:], MaxFallback)
	}
}

func TestWithFallbackFailsWhenTheLocalAnalyzerFails(t *testing.T) {
	t.Parallel()
	f := WithFallback(fixed{err: errors.New("down")}, fixed{err: errors.New("broken")})
	if _, err := f.Assess(t.Context(), diskContext()); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("Assess = %v; want the local analyzer's error", err)
	}
}
