package guard

import (
	"testing"
	"time"

	"github.com/deus-ex-machina/deus/internal/action"
)

var t0 = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func TestCheck(t *testing.T) {
	t.Parallel()
	base := Policy{
		MaxTier: action.TierMedium, Cooldown: 10 * time.Minute, RateMax: 3, RateWindow: time.Hour,
		BreakerFailures: 2, BreakerQuiet: time.Hour, BlastMaxTargets: 2, BlastWindow: time.Hour,
	}
	for name, tc := range map[string]struct {
		p      Policy
		f      Facts
		want   Verdict
		guard  string
		reason string
	}{
		"nothing in the way":                {p: base, f: Facts{Now: t0, Tier: action.TierLow}, want: Allow},
		"a silenced alert is skipped":       {p: base, f: Facts{Now: t0, Silenced: true}, want: Skip, guard: "silenced"},
		"within the cooldown":               {p: base, f: Facts{Now: t0, Target: "nginx.service", Counts: Counts{LastStart: t0.Add(-9 * time.Minute)}}, want: Skip, guard: "cooldown", reason: "last run on nginx.service started 9m0s ago; cooldown is 10m0s"},
		"the cooldown just passed":          {p: base, f: Facts{Now: t0, Counts: Counts{LastStart: t0.Add(-10 * time.Minute)}}, want: Allow},
		"at the rate limit":                 {p: base, f: Facts{Now: t0, Counts: Counts{InWindow: 3}}, want: Skip, guard: "rate_limit", reason: "3 runs in the last 1h0m0s; the limit is 3"},
		"below the rate limit":              {p: base, f: Facts{Now: t0, Counts: Counts{InWindow: 2}}, want: Allow},
		"a third target exceeds the blast":  {p: base, f: Facts{Now: t0, BlastCounts: Counts{Targets: 2}}, want: Skip, guard: "blast_radius"},
		"a target already in the blast":     {p: base, f: Facts{Now: t0, BlastCounts: Counts{Targets: 2, TargetSeen: true}}, want: Allow},
		"the gate says no":                  {p: Policy{HasGate: true, MaxTier: action.TierHigh}, f: Facts{Now: t0}, want: Skip, guard: "gate"},
		"the gate says yes":                 {p: Policy{HasGate: true, MaxTier: action.TierHigh}, f: Facts{Now: t0, GateOK: true}, want: Allow},
		"above the tier ceiling":            {p: base, f: Facts{Now: t0, Tier: action.TierHigh}, want: NeedApproval, guard: "tier", reason: "tier high is above the ceiling medium for acting alone"},
		"above the ceiling but approved":    {p: base, f: Facts{Now: t0, Tier: action.TierHigh, Approved: true}, want: Allow},
		"at the ceiling":                    {p: base, f: Facts{Now: t0, Tier: action.TierMedium}, want: Allow},
		"an open breaker":                   {p: base, f: Facts{Now: t0, Breaker: Breaker{Failures: 2, OpenedAt: t0.Add(-time.Minute), LastFailure: t0.Add(-time.Minute)}}, want: Skip, guard: "circuit_breaker"},
		"an open breaker after its quiet":   {p: base, f: Facts{Now: t0, Breaker: Breaker{Failures: 2, OpenedAt: t0.Add(-2 * time.Hour), LastFailure: t0.Add(-time.Hour)}}, want: Allow},
		"silence comes before the cooldown": {p: base, f: Facts{Now: t0, Silenced: true, Counts: Counts{LastStart: t0}}, want: Skip, guard: "silenced"},
		"the breaker comes before the tier": {p: base, f: Facts{Now: t0, Tier: action.TierHigh, Breaker: Breaker{OpenedAt: t0, LastFailure: t0}}, want: Skip, guard: "circuit_breaker"},
		"no cooldown configured":            {p: Policy{MaxTier: action.TierHigh}, f: Facts{Now: t0, Counts: Counts{LastStart: t0}}, want: Allow},
		"approval required for every run":   {p: Policy{MaxTier: action.TierHigh, ApprovalRequired: true}, f: Facts{Now: t0}, want: NeedApproval, guard: "tier"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := Check(tc.p, tc.f)
			if d.Verdict != tc.want || d.Guard != tc.guard {
				t.Fatalf("Check = %v by %q (%s); want %v by %q", d.Verdict, d.Guard, d.Reason, tc.want, tc.guard)
			}
			if tc.reason != "" && d.Reason != tc.reason {
				t.Errorf("reason: got %q, want %q", d.Reason, tc.reason)
			}
		})
	}
}

func TestBreaker(t *testing.T) {
	t.Parallel()
	p := Policy{BreakerFailures: 3, BreakerQuiet: time.Hour}
	var b Breaker
	var opened bool
	for i := range 3 {
		b, opened = Failed(p, b, t0.Add(time.Duration(i)*time.Minute))
		if want := i == 2; opened != want {
			t.Fatalf("failure %d: opened %v, want %v", i+1, opened, want)
		}
	}
	if !BreakerOpen(p, b, t0.Add(30*time.Minute)) {
		t.Error("breaker closed 28 minutes after the last failure; want open for an hour")
	}
	// A fourth failure while open does not open it again (one escalation).
	if b, opened = Failed(p, b, t0.Add(3*time.Minute)); opened {
		t.Error("a failure while open reopened the breaker")
	}
	if BreakerOpen(p, b, t0.Add(3*time.Minute+time.Hour)) {
		t.Error("breaker still open an hour after the last failure; want closed")
	}
	// After the quiet period a failure starts a new count.
	b, opened = Failed(p, b, t0.Add(5*time.Hour))
	if opened || b.Failures != 1 {
		t.Errorf("failure after the quiet period: opened %v with %d failures, want closed with 1", opened, b.Failures)
	}
	b = Succeeded(b)
	if b.Failures != 0 || !b.OpenedAt.IsZero() {
		t.Errorf("after a success: got %+v, want reset", b)
	}
	if _, opened := Failed(Policy{}, Breaker{}, t0); opened {
		t.Error("a breaker without a failure limit opened")
	}
}
