package healer

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/config"
	"github.com/deus-ex-machina/deus/internal/guard"
	"github.com/deus-ex-machina/deus/internal/store"
	"github.com/deus-ex-machina/deus/internal/testenv"
)

func TestPipelineRunsStagesInOrderUntilOneStops(t *testing.T) {
	t.Parallel()
	var ran []string
	stage := func(name string, v Verdict, err error) Stage {
		return StageFunc{name, func(context.Context, *flow) (Verdict, error) {
			ran = append(ran, name)
			return v, err
		}}
	}
	boom := errors.New("boom")
	for name, tc := range map[string]struct {
		p       Pipeline
		want    string
		verdict Verdict
		err     error
	}{
		"every stage says next":       {Pipeline{stage("a", Next, nil), stage("b", Next, nil)}, "a b", Next, nil},
		"a stage stops the rest":      {Pipeline{stage("a", Stop, nil), stage("b", Next, nil)}, "a", Stop, nil},
		"an error stops, named":       {Pipeline{stage("a", Next, nil), stage("b", Stop, boom), stage("c", Next, nil)}, "a b", Stop, boom},
		"a lost race stops, no error": {Pipeline{stage("a", Stop, errSuperseded), stage("b", Next, nil)}, "a", Stop, nil},
	} {
		ran = nil
		v, err := tc.p.Exec(t.Context(), &flow{})
		if got := strings.Join(ran, " "); got != tc.want || v != tc.verdict || !errors.Is(err, tc.err) {
			t.Errorf("%s: ran %q, verdict %v, err %v; want %q, %v, %v", name, got, v, err, tc.want, tc.verdict, tc.err)
		}
		if tc.err != nil && !strings.HasPrefix(err.Error(), "b: ") {
			t.Errorf("%s: error %q does not name the stage", name, err)
		}
	}
}

// stageEnv is a healer whose stages are run one by one: nothing runs in the
// background.
type stageEnv struct {
	h     *Healer
	st    *store.Store
	alog  *audit.Log
	dir   string
	act   *fakeAction
	q     *fakeQuerier
	am    *fakeAM
	clock *clock
	chain error
}

func newStageEnv(t *testing.T, yml string) *stageEnv {
	t.Helper()
	dir := t.TempDir()
	clk := &clock{now: time.Date(2026, 11, 23, 18, 20, 0, 0, time.UTC)}
	// Each query moves the clock on, so that a verification runs out.
	e := &stageEnv{dir: dir, clock: clk, q: &fakeQuerier{answer: true, clock: clk, step: time.Millisecond}, am: &fakeAM{}}
	e.act = &fakeAction{spec: action.Spec{
		Name: "restart_service", Tier: action.TierMedium, Reversible: true,
		Params: []action.Param{{Name: "unit", Type: action.TypeUnit, Required: true}},
	}}
	reg, err := action.NewRegistry(e.act)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]byte(yml), config.StaticSpecs(reg.Specs()))
	if err != nil {
		t.Fatal(err)
	}
	alog, err := audit.Open(filepath.Join(dir, "audit"), audit.Options{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.alog = alog
	head := func() (uint64, string, bool) { seq, hash := alog.Head(); return seq, hash, true }
	if e.st, err = store.Open(filepath.Join(dir, "db"), store.Options{Synchronous: "normal", Now: e.clock.Now, AuditHead: head}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.st.Close(); err != nil {
			t.Error(err)
		}
		if err := alog.Close(); err != nil {
			t.Error(err)
		}
	})
	e.h = New(Options{
		Store: e.st, Audit: alog, Actions: reg, Querier: e.q, Alertmanager: e.am, Logger: testenv.Logger(t), Now: e.clock.Now,
		AuditChain: func() error { return e.chain },
	}, cfg)
	return e
}

// flow stores a run of runbook "restart" in state and returns it as the
// pipeline would hold it.
func (e *stageEnv) flow(t *testing.T, state store.RunState) *flow {
	t.Helper()
	run := store.Run{
		ID: newID(), Runbook: "restart", Action: "restart_service", Target: "nginx.service", Tier: action.TierMedium,
		State: state, CreatedAt: e.clock.Now(), Labels: map[string]string{"instance": "127.0.0.1"},
		Steps: []store.StepRecord{{Action: "restart_service", Params: map[string]string{"unit": "nginx.service"}, Target: "nginx.service"}},
	}
	if err := e.st.InsertRun(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	return e.h.newFlow(run, nil, true)
}

// stateOf is the run's state in the store.
func (e *stageEnv) stateOf(t *testing.T, f *flow) store.RunState {
	t.Helper()
	r, err := e.st.Run(t.Context(), f.run.ID)
	if err != nil {
		t.Fatal(err)
	}
	return r.State
}

const stageRunbook = `
global: {identity: ["127.0.0.1"], max_tier: medium}
prometheus: {url: "http://prometheus.invalid"}
runbooks:
  - name: restart
    match: ['alertname="HealerTestTrigger"']
    precheck: {expr: 'up == 0'}
    cooldown: 10m
    steps:
      - action: restart_service
        params: {unit: "{{ $labels.job }}.service"}
    verify: {expr: 'up == 1', within: 1ms, interval: 1ms}
`

// want checks a stage's verdict, the run's state in the store and the
// audit log's kinds.
func (e *stageEnv) want(t *testing.T, what string, f *flow, v Verdict, err error, wantV Verdict, wantState store.RunState, wantAudit string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if v != wantV {
		t.Errorf("%s: verdict %v, want %v", what, v, wantV)
	}
	if got := e.stateOf(t, f); got != wantState {
		t.Errorf("%s: state %s, want %s", what, got, wantState)
	}
	if got := strings.TrimSpace(auditKindsOrNone(t, e.dir)); got != wantAudit {
		t.Errorf("%s: audit %q, want %q", what, got, wantAudit)
	}
}

func auditKindsOrNone(t *testing.T, dir string) string {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join(dir, "audit", "audit.log")); err != nil || len(b) == 0 {
		return ""
	}
	return auditKinds(t, dir)
}

func TestStageCurrentStopsARunThatMovedOn(t *testing.T) {
	t.Parallel()
	e := newStageEnv(t, stageRunbook)
	f := e.flow(t, store.RunPending)
	f.fresh = false
	if err := e.st.UpdateRun(t.Context(), f.run.ID, store.Update{State: store.RunSkipped}, store.RunPending); err != nil {
		t.Fatal(err)
	}
	v, err := current{e.h}.Exec(t.Context(), f)
	e.want(t, "a run read pending that is skipped now", f, v, err, Stop, store.RunSkipped, "")
	g := e.flow(t, store.RunPending)
	g.fresh = false
	v, err = current{e.h}.Exec(t.Context(), g)
	e.want(t, "a run still pending", g, v, err, Next, store.RunPending, "")
	reads, _ := e.st.Ops()
	h := e.flow(t, store.RunPending)
	if v, err := (current{e.h}).Exec(t.Context(), h); v != Next || err != nil {
		t.Errorf("a fresh run: %v, %v", v, err)
	}
	if after, _ := e.st.Ops(); after != reads {
		t.Errorf("a fresh run was read back (%d reads)", after-reads)
	}
}

func TestStageAuditChainSkipsEveryRunWhileTheChainIsBroken(t *testing.T) {
	t.Parallel()
	e := newStageEnv(t, stageRunbook)
	f := e.flow(t, store.RunPending)
	v, err := chainIntact{e.h}.Exec(t.Context(), f)
	e.want(t, "an intact chain", f, v, err, Next, store.RunPending, "")
	e.chain = errors.New("the log ends at seq 11, the head is 13")
	v, err = chainIntact{e.h}.Exec(t.Context(), f)
	e.want(t, "a broken chain", f, v, err, Stop, store.RunSkipped, "skipped:skipped")
}

func TestStageStillWantedEndsARunWithNothingLeftToDo(t *testing.T) {
	t.Parallel()
	e := newStageEnv(t, stageRunbook)
	f := e.flow(t, store.RunPending)
	f.rb = nil // the runbook was removed on reload
	v, err := stillWanted{e.h}.Exec(t.Context(), f)
	e.want(t, "a removed runbook", f, v, err, Stop, store.RunSkipped, "skipped:skipped")

	start := e.clock.Now().Add(-time.Minute)
	a := alertmanager.Alert{Fingerprint: "00000000000000aa", Status: alertmanager.StatusFiring, StartsAt: start}
	r := a
	r.Status, r.EndsAt = alertmanager.StatusResolved, e.clock.Now()
	if _, err := e.st.Accept(t.Context(), "webhook", []alertmanager.Alert{a, r}); err != nil {
		t.Fatal(err)
	}
	g := e.flow(t, store.RunPending)
	g.alert = &store.StoredAlert{Alert: a}
	v, err = stillWanted{e.h}.Exec(t.Context(), g)
	if v != Stop || err != nil || e.stateOf(t, g) != store.RunCancelled {
		t.Errorf("a run whose alert resolved: %v, %v, state %s; want stopped, cancelled", v, err, e.stateOf(t, g))
	}
}

func TestStagePrecheckSkipsARunWhoseConditionIsGone(t *testing.T) {
	t.Parallel()
	e := newStageEnv(t, stageRunbook)
	f := e.flow(t, store.RunPending)
	v, err := precheck{e.h}.Exec(t.Context(), f)
	e.want(t, "a condition that holds", f, v, err, Next, store.RunPending, "prechecked:holds")
	e.q.set(false)
	v, err = precheck{e.h}.Exec(t.Context(), f)
	e.want(t, "a condition that is gone", f, v, err, Stop, store.RunSkipped, "prechecked:holds prechecked:no_longer_true skipped:skipped")
}

// forecastRunbook is stageRunbook whose precheck asks whether free space
// reaches 0 within the hour, by the point forecast or the interval.
func forecastRunbook(by string) string {
	return strings.Replace(stageRunbook, "precheck: {expr: 'up == 0'}",
		"precheck: {expr: node_filesystem_avail_bytes, labels: [instance], forecast: {horizon: 1h, threshold: 0, history: 2d, by: "+by+"}}", 1)
}

// noisyFall falls by 1 a second to 0 at 90 minutes after now, with a
// uniform noise of +-3000 drawn from the time: the point forecast reaches
// 0 after the hour, the interval's lower edge within it.
func noisyFall(now time.Time) func(time.Time) float64 {
	return func(t time.Time) float64 {
		u := float64((uint64(t.Unix())*0x9E3779B97F4A7C15)>>11) / (1 << 53)
		return now.Add(90*time.Minute).Sub(t).Seconds() + (2*u-1)*3000
	}
}

func TestStagePrecheckForecastLetsOnlyARunWhoseSeriesCrossesWithinTheHorizon(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		by        string // point when empty
		load      func(now time.Time) func(time.Time) float64
		rangeless bool // the querier answers no range queries
		verdict   Verdict
		state     store.RunState
		audit     string
		detail    string // in the prechecked record's query field
		reason    string // the prechecked record's reason
	}{
		"a falling series that reaches 0 in half an hour proceeds": {
			load: func(now time.Time) func(time.Time) float64 {
				return func(t time.Time) float64 { return now.Add(30 * time.Minute).Sub(t).Seconds() }
			},
			verdict: Next, state: store.RunPending, audit: "prechecked:holds",
			detail: `node_filesystem_avail_bytes{instance="127.0.0.1"} -> 1 series; {instance="x"} forecast by linear: below 0 at 2026-11-23T18:50:00Z (in 30m), within 1h`,
		},
		"a series already at 0 proceeds": {
			load:    func(time.Time) func(time.Time) float64 { return func(time.Time) float64 { return 0 } },
			verdict: Next, state: store.RunPending, audit: "prechecked:holds",
			detail: `{instance="x"} is at or below 0 now`,
		},
		"a flat series is skipped, saying it does not cross within the horizon": {
			load:    func(time.Time) func(time.Time) float64 { return func(time.Time) float64 { return 5e9 } },
			verdict: Stop, state: store.RunSkipped, audit: "prechecked:no_longer_true skipped:skipped",
			detail: "1 series; forecast by naive: not below 0 within 1h",
		},
		"a noisy fall whose point forecast crosses after the horizon is skipped": {
			load:    noisyFall,
			verdict: Stop, state: store.RunSkipped, audit: "prechecked:no_longer_true skipped:skipped",
			detail: "not below 0 within 1h",
		},
		"the same fall proceeds by the interval, whose lower edge crosses within it": {
			by: "interval", load: noisyFall,
			verdict: Next, state: store.RunPending, audit: "prechecked:holds",
			detail: `, its interval's near edge: below 0 at`,
		},
		"a series with half an hour of history fails the precheck, which cannot tell": {
			load: func(now time.Time) func(time.Time) float64 {
				return func(t time.Time) float64 {
					if t.Before(now.Add(-30 * time.Minute)) {
						return math.NaN() // dropped, as a gap is
					}
					return 5e9
				}
			},
			verdict: Stop, state: store.RunSkipped, audit: "prechecked:error skipped:skipped",
			detail: "none crosses, and a series could not be forecast", reason: `forecast {instance="x"}: not enough data`,
		},
		"without range queries the precheck fails and the run is skipped": {
			load:      func(time.Time) func(time.Time) float64 { return func(time.Time) float64 { return 0 } },
			rangeless: true,
			verdict:   Stop, state: store.RunSkipped, audit: "prechecked:error skipped:skipped",
			reason: "forecast: the configured Prometheus answers no range queries",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newStageEnv(t, forecastRunbook(cmp.Or(tc.by, "point")))
			e.q.load = tc.load(e.clock.Now())
			if tc.rangeless {
				e.h.opts.Querier = instantOnly{e.q}
			}
			f := e.flow(t, store.RunPending)
			v, err := precheck{e.h}.Exec(t.Context(), f)
			e.want(t, name, f, v, err, tc.verdict, tc.state, tc.audit)
			rec := lastRecord(t, e.dir, audit.KindPrechecked)
			if !strings.Contains(rec.Fields["query"], tc.detail) || !strings.Contains(rec.Reason, tc.reason) {
				t.Errorf("prechecked: query %q, reason %q; want them to contain %q and %q", rec.Fields["query"], rec.Reason, tc.detail, tc.reason)
			}
		})
	}
}

// instantOnly answers instant queries only, as a server without the range
// API would.
type instantOnly struct{ q *fakeQuerier }

func (i instantOnly) Query(ctx context.Context, expr string, ts time.Time) (model.Vector, error) {
	return i.q.Query(ctx, expr, ts)
}

// lastRecord is the last audit record of kind.
func lastRecord(t *testing.T, dir string, kind audit.Kind) audit.Record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "audit", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	var last audit.Record
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var r audit.Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		if r.Kind == kind {
			last = r
		}
	}
	if last.Kind != kind {
		t.Fatalf("no %s record", kind)
	}
	return last
}

func TestStageGuardHoldsTheRunbooksLockUntilBegin(t *testing.T) {
	t.Parallel()
	e := newStageEnv(t, stageRunbook)
	f := e.flow(t, store.RunPending)
	v, err := guards{e.h}.Exec(t.Context(), f)
	e.want(t, "nothing in the way", f, v, err, Next, store.RunPending, "")
	if f.unlock == nil || f.decision.Verdict != guard.Allow {
		t.Fatalf("after the guards: decision %+v, lock held %v; want allowed, held", f.decision, f.unlock != nil)
	}
	v, err = begin{e.h}.Exec(t.Context(), f)
	e.want(t, "begin", f, v, err, Next, store.RunRunning, "guarded:allowed")
	if f.unlock != nil {
		t.Error("begin did not let go of the runbook's lock")
	}
	// The run that began counts for the cooldown of the next.
	g := e.flow(t, store.RunPending)
	v, err = guards{e.h}.Exec(t.Context(), g)
	e.want(t, "a second run within the cooldown", g, v, err, Stop, store.RunSkipped, "guarded:allowed guarded:skipped")
}

func TestStageApprovalMakesARunAboveTheCeilingWait(t *testing.T) {
	t.Parallel()
	e := newStageEnv(t, strings.Replace(stageRunbook, "max_tier: medium", "max_tier: low", 1))
	f := e.flow(t, store.RunPending)
	f.decision = guard.Decision{Verdict: guard.NeedApproval, Guard: "tier", Reason: "tier medium is above the ceiling low"}
	f.unlock = func() {}
	v, err := approval{e.h}.Exec(t.Context(), f)
	e.want(t, "a run above the ceiling", f, v, err, Stop, store.RunWaiting, "guarded:approval_required")
	r, _ := e.st.Run(t.Context(), f.run.ID)
	if want := e.clock.Now().Add(time.Hour); !r.ExpiresAt.Equal(want) { // nothing queried: the clock stood
		t.Errorf("expires at %s, want %s (approval_timeout)", r.ExpiresAt, want)
	}
	g := e.flow(t, store.RunPending)
	g.decision = guard.Decision{Verdict: guard.Allow}
	v, err = approval{e.h}.Exec(t.Context(), g)
	e.want(t, "an allowed run", g, v, err, Next, store.RunPending, "guarded:approval_required")
}

func TestStageStepsRecordsEachStepAroundIt(t *testing.T) {
	t.Parallel()
	e := newStageEnv(t, stageRunbook)
	f := e.flow(t, store.RunRunning)
	v, err := steps{e.h}.Exec(t.Context(), f)
	// With a verification to come, the step's result is written now; a
	// failed one waits for settle's record, one fsync for both.
	e.want(t, "one step", f, v, err, Next, store.RunRunning, "started: finished:ok")
	if n, _ := e.act.count(); n != 1 || f.failed != "" || f.run.Steps[0].State != store.StepOK {
		t.Errorf("ran %d times, failed %q, step %s; want once, ok", n, f.failed, f.run.Steps[0].State)
	}
	e.act.fail = true
	g := e.flow(t, store.RunRunning)
	v, err = steps{e.h}.Exec(t.Context(), g)
	e.want(t, "a failing step", g, v, err, Next, store.RunRunning, "started: finished:ok started:")
	if !strings.Contains(g.failed, "it broke") || len(g.pending) != 1 {
		t.Errorf("failed %q, %d pending records; want the action's error and its record pending", g.failed, len(g.pending))
	}
}

func TestStageVerifyFailsARunWhoseConditionDoesNotHold(t *testing.T) {
	t.Parallel()
	e := newStageEnv(t, stageRunbook)
	f := e.flow(t, store.RunRunning)
	v, err := verification{e.h}.Exec(t.Context(), f)
	e.want(t, "a verification that holds", f, v, err, Next, store.RunRunning, "verified:ok")
	e.q.set(false)
	v, err = verification{e.h}.Exec(t.Context(), f)
	e.want(t, "a verification that does not hold", f, v, err, Next, store.RunRunning, "verified:ok verified:failed")
	if !strings.Contains(f.failed, "did not hold") {
		t.Errorf("failed: %q", f.failed)
	}
}

func TestStageSettleRollsBackAndEscalatesAFailedRun(t *testing.T) {
	t.Parallel()
	e := newStageEnv(t, stageRunbook)
	f := e.flow(t, store.RunRunning)
	v, err := settle{e.h}.Exec(t.Context(), f)
	e.want(t, "a run that did what it should", f, v, err, Stop, store.RunSucceeded, "finished:succeeded")
	g := e.flow(t, store.RunRunning)
	g.run.Steps[0].State, g.run.Steps[0].Undo = store.StepOK, []byte(`{"n":1}`)
	g.failed = "verification: the condition did not hold within 1ms"
	v, err = settle{e.h}.Exec(t.Context(), g)
	e.want(t, "a failed run", g, v, err, Stop, store.RunRolledBack,
		"finished:succeeded rolled_back:started rolled_back:ok finished:rolled_back escalated:posted")
	if _, rb := e.act.count(); rb != 1 || e.am.count() != 1 {
		t.Errorf("%d rollbacks, %d escalations; want one each", rb, e.am.count())
	}
	// The escalation, which no change of state follows, is covered by the
	// head stored in the database all the same: cutting it is detected.
	seq, _, ok, err := e.st.AuditHead(t.Context())
	if last, _ := e.alog.Head(); err != nil || !ok || seq != last {
		t.Errorf("stored head: seq %d (%v, %v); want the log's last record, %d", seq, ok, err, last)
	}
}
