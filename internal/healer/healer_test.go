package healer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/config"
	"github.com/deus-ex-machina/deus/internal/store"
	"github.com/deus-ex-machina/deus/internal/testenv"
)

// clock is a fake clock that tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeAction records its runs and rollbacks.
type fakeAction struct {
	spec action.Spec
	fail bool
	// gate, when set, holds each run until it is closed or sent to.
	gate chan struct{}

	mu        sync.Mutex
	runs      []action.Request
	rollbacks []string
}

func (f *fakeAction) Spec() action.Spec { return f.spec }

func (f *fakeAction) Run(ctx context.Context, req action.Request) (action.Result, error) {
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return action.Result{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs = append(f.runs, req)
	if f.fail {
		return action.Result{}, errors.New("it broke")
	}
	return action.Result{Target: req.Params["unit"], Summary: "did it", Undo: json.RawMessage(`{"n":1}`)}, nil
}

func (f *fakeAction) Rollback(_ context.Context, runID string, _ json.RawMessage) (action.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rollbacks = append(f.rollbacks, runID)
	return action.Result{Summary: "undone"}, nil
}

func (f *fakeAction) count() (runs, rollbacks int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.runs), len(f.rollbacks)
}

// fakeQuerier answers every query with the samples of answer(), and moves
// the clock on each query so that verifications run out of time.
type fakeQuerier struct {
	mu      sync.Mutex
	load    func(time.Time) float64 // the history QueryRange answers with
	answer  bool
	clock   *clock
	step    time.Duration
	queries []string
}

func (q *fakeQuerier) Query(_ context.Context, expr string, _ time.Time) (model.Vector, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queries = append(q.queries, expr)
	if q.clock != nil {
		q.clock.Add(q.step)
	}
	if q.answer {
		return model.Vector{{Metric: model.Metric{"x": "1"}, Value: 1}}, nil
	}
	return nil, nil
}

func (q *fakeQuerier) set(v bool) { q.mu.Lock(); q.answer = v; q.mu.Unlock() }

// QueryRange answers with q.load, sampled from start to end.
func (q *fakeQuerier) QueryRange(_ context.Context, _ string, start, end time.Time, step time.Duration) (model.Matrix, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.load == nil {
		return nil, nil
	}
	ss := &model.SampleStream{Metric: model.Metric{"instance": "x"}}
	for t := start; !t.After(end); t = t.Add(step) {
		ss.Values = append(ss.Values, model.SamplePair{Timestamp: model.TimeFromUnixNano(t.UnixNano()), Value: model.SampleValue(q.load(t))})
	}
	return model.Matrix{ss}, nil
}

type fakeAM struct {
	mu          sync.Mutex
	escalations []map[string]string
	silenced    bool
	freeze      string // an active maintenance silence
}

func (a *fakeAM) Escalate(_ context.Context, labels, ann map[string]string, _ time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := map[string]string{}
	for k, v := range labels {
		m[k] = v
	}
	m["description"] = ann["description"]
	a.escalations = append(a.escalations, m)
	return nil
}

func (a *fakeAM) Silence(context.Context, map[string]string, time.Duration, string, time.Time) (string, error) {
	return "s1", nil
}
func (a *fakeAM) Expire(context.Context, string) error { return nil }
func (a *fakeAM) ActiveSilence(context.Context, map[string]string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.freeze, nil
}

func (a *fakeAM) Silenced(context.Context, string, map[string]string) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.silenced, nil
}

func (a *fakeAM) count() int { a.mu.Lock(); defer a.mu.Unlock(); return len(a.escalations) }

type env struct {
	t     *testing.T
	h     *Healer
	st    *store.Store
	dir   string
	act   *fakeAction
	q     *fakeQuerier
	am    *fakeAM
	clock *clock
}

func newEnv(t *testing.T, yml string, with ...func(*Options)) *env {
	t.Helper()
	return newEnvWith(t, yml, nil, with...)
}

// newEnvWith is newEnv with before called on the store before the healer
// starts, as a store left by an earlier process.
func newEnvWith(t *testing.T, yml string, before func(*store.Store), with ...func(*Options)) *env {
	t.Helper()
	dir := t.TempDir()
	clk := &clock{now: time.Date(2026, 11, 23, 18, 20, 0, 0, time.UTC)}
	act := &fakeAction{spec: action.Spec{
		Name: "restart_service", Tier: action.TierMedium, Reversible: true,
		Params: []action.Param{{Name: "unit", Type: action.TypeUnit, Required: true}},
	}}
	reg, err := action.NewRegistry(act)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]byte(yml), config.StaticSpecs(reg.Specs()))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	st, err := store.Open(filepath.Join(dir, "db"), store.Options{Synchronous: "normal", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	alog, err := audit.Open(filepath.Join(dir, "audit"), audit.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(st)
	}
	q := &fakeQuerier{answer: true}
	am := &fakeAM{}
	opts := Options{
		Store: st, Audit: alog, Actions: reg, Querier: q, Alertmanager: am, Logger: testenv.Logger(t),
		Now: clk.Now, PollInterval: 5 * time.Millisecond,
	}
	for _, w := range with {
		w(&opts)
	}
	h := New(opts, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Error(err)
		}
		if err := alog.Close(); err != nil {
			t.Error(err)
		}
		if _, err := audit.Verify(filepath.Join(dir, "audit")); err != nil {
			t.Errorf("audit verify: %v", err)
		}
	})
	return &env{t: t, h: h, st: st, dir: dir, act: act, q: q, am: am, clock: clk}
}

// post delivers a fixture payload, rewritten by edit.
func (e *env) post(fixture string, edit func(m map[string]any)) []alertmanager.Alert {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "alertmanager", "testdata", fixture))
	if err != nil {
		e.t.Fatal(err)
	}
	if edit != nil {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			e.t.Fatal(err)
		}
		edit(m)
		if b, err = json.Marshal(m); err != nil {
			e.t.Fatal(err)
		}
	}
	msg, err := alertmanager.Decode(bytes.NewReader(b))
	if err != nil {
		e.t.Fatalf("decode %s: %v", fixture, err)
	}
	alerts := alertmanager.Split(msg)
	if _, err := e.h.Accept(e.t.Context(), "webhook", alerts); err != nil {
		e.t.Fatal(err)
	}
	return alerts
}

// settle waits until nothing is new, pending, approved or running.
func (e *env) settle() []store.Run {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := e.st.Stats(e.t.Context())
		if err != nil {
			e.t.Fatal(err)
		}
		e.h.mu.Lock()
		active := len(e.h.active)
		e.h.mu.Unlock()
		if st.NewAlerts == 0 && st.PendingRuns == 0 && active == 0 {
			runs, err := e.st.Runs(e.t.Context(), store.RunFilter{})
			if err != nil {
				e.t.Fatal(err)
			}
			return runs
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the healer did not settle: %+v, %d active", st, active)
		}
		<-tick.C
	}
}

func states(runs []store.Run) store.RunState {
	var s []string
	for i := len(runs) - 1; i >= 0; i-- {
		s = append(s, string(runs[i].State))
	}
	return store.RunState(strings.Join(s, ","))
}

func auditKinds(t *testing.T, dir string) string {
	t.Helper()
	var kinds []string
	for _, r := range auditRecords(t, dir) {
		kinds = append(kinds, string(r.Kind)+":"+r.Result)
	}
	return strings.Join(kinds, " ")
}

// auditRecords reads the test's audit log.
func auditRecords(t *testing.T, dir string) []audit.Record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "audit", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []audit.Record
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var r audit.Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}

// The fixture's alert is HealerTestTrigger on instance 127.0.0.1:19100.
const restart = `
global: {identity: ["127.0.0.1"], max_tier: medium}
prometheus: {url: "http://prometheus.invalid"}
runbooks:
  - name: restart
    match: ['alertname="HealerTestTrigger"']
    steps:
      - action: restart_service
        params: {unit: "{{ $labels.job }}.service"}
`

func TestFiringOnceResolvedNever(t *testing.T) {
	t.Parallel()
	e := newEnv(t, restart)
	e.post("webhook-firing.json", nil)
	e.post("webhook-firing.json", nil)                                                             // a retry
	e.post("webhook-firing.json", func(m map[string]any) { m["externalURL"] = "http://am2:9093" }) // the HA peer
	runs := e.settle()
	e.post("webhook-resolved.json", nil)
	e.post("webhook-resolved.json", nil) // resolved alerts come back
	e.settle()
	if n, _ := e.act.count(); n != 1 {
		t.Errorf("the action ran %d times; want once", n)
	}
	if got, want := states(runs), store.RunState("succeeded"); got != want {
		t.Errorf("runs: got %s, want %s", got, want)
	}
	if got := e.act.runs[0].Params["unit"]; got != "node.service" {
		t.Errorf("unit: got %q, want node.service", got)
	}
	want := "received:firing matched:matched incident:opened guarded:allowed started: finished:ok finished:succeeded received:resolved matched:none incident:resolved"
	if got := auditKinds(t, e.dir); got != want {
		t.Errorf("audit:\n got %s\nwant %s", got, want)
	}
}

func TestStaleFiringAfterResolved(t *testing.T) {
	t.Parallel()
	e := newEnv(t, restart)
	// The resolution arrives first (a late retry of the firing follows).
	e.post("webhook-resolved.json", nil)
	e.settle()
	e.post("webhook-firing.json", nil)
	e.settle()
	if n, _ := e.act.count(); n != 0 {
		t.Errorf("the action ran %d times for a resolved alert; want never", n)
	}
}

func TestRunbookOnResolved(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `
global: {identity: ["127.0.0.1"], max_tier: medium}
runbooks:
  - name: after
    match: ['alertname="HealerTestTrigger"']
    on: [resolved]
    steps: [{action: restart_service, params: {unit: "{{ $labels.job }}.service"}}]
`)
	e.post("webhook-firing.json", nil)
	e.settle()
	if n, _ := e.act.count(); n != 0 {
		t.Fatalf("a resolved-only runbook ran on firing")
	}
	e.post("webhook-resolved.json", nil)
	e.settle()
	if n, _ := e.act.count(); n != 1 {
		t.Errorf("the resolved-only runbook ran %d times on the resolution; want once", n)
	}
}

func TestPrecheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t, restart+`
    precheck: {expr: 'deus_service_up == 0', labels: [instance]}
`)
	e.q.set(false)
	e.post("webhook-firing.json", nil)
	runs := e.settle()
	if n, _ := e.act.count(); n != 0 || states(runs) != store.RunSkipped {
		t.Fatalf("precheck false: ran %d times, runs %s; want skipped", n, states(runs))
	}
	if got, want := e.q.queries[0], `deus_service_up{instance="127.0.0.1:19100"} == 0`; got != want {
		t.Errorf("precheck query: got %s, want %s", got, want)
	}
	if !strings.Contains(runs[0].Reason, "no longer holds") {
		t.Errorf("reason: got %q", runs[0].Reason)
	}
}

func TestVerifyFailsRollsBackAndBreakerEscalatesOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, restart+`
    verify: {expr: 'deus_service_up == 1', within: 1m, interval: 1ms}
    circuit_breaker: {failures: 2, quiet: 1h}
    escalate: false
`)
	e.q.set(false)
	e.q.clock, e.q.step = e.clock, 20*time.Second
	for i := range 3 {
		e.post("webhook-firing.json", func(m map[string]any) {
			a := m["alerts"].([]any)[0].(map[string]any)
			a["startsAt"] = fmt.Sprintf("2026-11-23T18:2%d:00Z", i) // a new firing each time
		})
		e.settle()
	}
	runs := e.settle()
	if got, want := states(runs), store.RunState("rolled_back,rolled_back,skipped"); got != want {
		t.Errorf("runs: got %s, want %s", got, want)
	}
	if n, rb := e.act.count(); n != 2 || rb != 2 {
		t.Errorf("ran %d, rolled back %d; want 2 and 2", n, rb)
	}
	// escalate: false silences per-failure escalation; the breaker's
	// opening is what escalates, once.
	if got := e.am.count(); got != 0 {
		t.Errorf("escalations with escalate: false: got %d, want 0", got)
	}
	if !strings.Contains(runs[0].Reason, "circuit breaker open") {
		t.Errorf("third run's reason: got %q", runs[0].Reason)
	}
}

func TestBreakerEscalatesOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, restart+`
    circuit_breaker: {failures: 2, quiet: 1h}
`)
	e.act.fail = true
	for i := range 3 {
		e.post("webhook-firing.json", func(m map[string]any) {
			m["alerts"].([]any)[0].(map[string]any)["startsAt"] = fmt.Sprintf("2026-11-23T18:2%d:00Z", i)
		})
		e.settle()
	}
	if got, want := states(e.settle()), store.RunState("failed,failed,skipped"); got != want {
		t.Errorf("runs: got %s, want %s", got, want)
	}
	// The first failure escalates (breaker closed), the second opens the
	// breaker and escalates once more; the skipped third does not.
	if got := e.am.count(); got != 2 {
		t.Errorf("escalations: got %d, want 2", got)
	}
	b, _ := e.st.Breaker(t.Context(), "restart", "node.service")
	if b.OpenedAt.IsZero() || !b.Escalated {
		t.Errorf("breaker: got %+v, want open and escalated", b)
	}
}

func TestApproval(t *testing.T) {
	t.Parallel()
	e := newEnv(t, strings.Replace(restart, "max_tier: medium", "max_tier: low", 1))
	e.post("webhook-firing.json", nil)
	runs := e.settle()
	if got := states(runs); got != store.RunWaiting {
		t.Fatalf("a medium-tier run above a low ceiling: got %s, want waiting", got)
	}
	if err := e.h.Deny(t.Context(), "nope", Actor{Principal: "user:ops"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Deny of a missing run: got %v", err)
	}
	if err := e.h.Approve(t.Context(), runs[0].ID, Actor{Principal: "user:alice"}); err != nil {
		t.Fatal(err)
	}
	runs = e.settle()
	if got := states(runs); got != store.RunSucceeded || runs[0].DecidedBy != "user:alice" {
		t.Errorf("after approval: got %s by %q, want succeeded by user:alice", got, runs[0].DecidedBy)
	}
	if err := e.h.Approve(t.Context(), runs[0].ID, Actor{Principal: "user:bob"}); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("approving twice: got %v, want ErrNotAllowed", err)
	}
	if n, _ := e.act.count(); n != 1 {
		t.Errorf("ran %d times; want once", n)
	}
}

func TestApprovalExpiresAndResolvedCancels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, strings.Replace(restart, "max_tier: medium", "max_tier: low", 1)+"\n")
	e.post("webhook-firing.json", nil)
	e.settle()
	e.clock.Add(61 * time.Minute) // past the default approval timeout
	deadline := time.Now().Add(5 * time.Second)
	for {
		runs := e.settle()
		if states(runs) == store.RunExpired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("runs: got %s, want expired", states(runs))
		}
		e.h.poke()
	}
	// A new firing waits again, and its resolution cancels it.
	e.post("webhook-firing.json", func(m map[string]any) {
		m["alerts"].([]any)[0].(map[string]any)["startsAt"] = "2026-11-23T19:00:00Z"
	})
	e.settle()
	e.post("webhook-resolved.json", func(m map[string]any) {
		m["alerts"].([]any)[0].(map[string]any)["startsAt"] = "2026-11-23T19:00:00Z"
	})
	if got, want := states(e.settle()), store.RunState("expired,cancelled"); got != want {
		t.Errorf("runs: got %s, want %s", got, want)
	}
	if n, _ := e.act.count(); n != 0 {
		t.Errorf("ran %d times; want never", n)
	}
}

func TestNotThisHost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, strings.Replace(restart, `identity: ["127.0.0.1"]`, `identity: ["web9"]`, 1))
	e.post("webhook-firing.json", nil)
	e.settle()
	alerts, _ := e.st.Alerts(t.Context(), "", 10)
	if n, _ := e.act.count(); n != 0 {
		t.Errorf("acted on another host's alert")
	}
	if !strings.Contains(alerts[0].Note, `instance "127.0.0.1:19100" is not this host`) {
		t.Errorf("note: got %q", alerts[0].Note)
	}
}

func TestHostileLabelsAreRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, restart)
	for i, v := range []string{"$(touch pwned)", "a;b", "`id`", "a\nb", "a\x00b", "../../etc/passwd", "--help"} {
		e.post("webhook-firing.json", func(m map[string]any) {
			a := m["alerts"].([]any)[0].(map[string]any)
			a["labels"].(map[string]any)["job"] = v
			a["fingerprint"] = fmt.Sprintf("%016x", i+1)
		})
	}
	e.settle()
	if n, _ := e.act.count(); n != 0 {
		t.Errorf("the action ran %d times with hostile units; want never", n)
	}
	alerts, _ := e.st.Alerts(t.Context(), "", 10)
	for _, a := range alerts {
		if a.State != store.AlertDone || !strings.Contains(a.Note, "parameters refused") {
			t.Errorf("alert with job %q: state %s note %q; want done, parameters refused", a.Labels["job"], a.State, a.Note)
		}
	}
}

func TestDryRunAndCooldown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, restart+`
    dry_run: true
    cooldown: 10m
`)
	e.post("webhook-firing.json", nil)
	runs := e.settle()
	if states(runs) != store.RunDryRun || !e.act.runs[0].DryRun {
		t.Fatalf("dry run: got %s, DryRun %v", states(runs), e.act.runs[0].DryRun)
	}
	// A dry run does not count for the cooldown.
	e.post("webhook-firing.json", func(m map[string]any) {
		m["alerts"].([]any)[0].(map[string]any)["startsAt"] = "2026-11-23T18:30:00Z"
	})
	if got := states(e.settle()); got != "dry_run,dry_run" {
		t.Errorf("runs: got %s, want dry_run,dry_run", got)
	}
}

func TestCooldown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, restart+`
    cooldown: 10m
`)
	post := func(start string) {
		e.post("webhook-firing.json", func(m map[string]any) {
			m["alerts"].([]any)[0].(map[string]any)["startsAt"] = start
		})
		e.settle()
	}
	post("2026-11-23T18:21:00Z")
	e.clock.Add(5 * time.Minute)
	post("2026-11-23T18:26:00Z")
	e.clock.Add(6 * time.Minute)
	post("2026-11-23T18:32:00Z")
	if got, want := states(e.settle()), store.RunState("succeeded,skipped,succeeded"); got != want {
		t.Errorf("runs: got %s, want %s", got, want)
	}
}

func TestSilencedIsNotActedOn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, restart)
	e.am.silenced = true
	e.post("webhook-firing.json", nil)
	runs := e.settle()
	if states(runs) != store.RunSkipped || !strings.Contains(runs[0].Reason, "silence") {
		t.Errorf("runs: got %s (%s), want skipped for a silence", states(runs), runs[0].Reason)
	}
}

func TestRollbackByHand(t *testing.T) {
	t.Parallel()
	e := newEnv(t, restart)
	e.post("webhook-firing.json", nil)
	runs := e.settle()
	run, err := e.h.Rollback(t.Context(), runs[0].ID, Actor{Principal: "user:ops"})
	if err != nil {
		t.Fatal(err)
	}
	if run.State != store.RunRolledBack || run.Steps[0].State != "rolled_back" {
		t.Errorf("after rollback: run %s, step %s", run.State, run.Steps[0].State)
	}
	if _, err := e.h.Rollback(t.Context(), runs[0].ID, Actor{Principal: "user:ops"}); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("rolling back twice: got %v, want ErrNotAllowed", err)
	}
}

func TestCooldownHoldsForAlertsArrivingTogether(t *testing.T) {
	t.Parallel()
	e := newEnv(t, restart+`
    cooldown: 10m
`)
	// Two alerts about one target in one notification, as DiskAlmostFull and
	// DiskWillFillIn4Hours for one file system arrive: with concurrency 4
	// their runs would pass the cooldown together if the guards were not
	// one step with the start.
	e.post("webhook-firing.json", func(m map[string]any) {
		a := m["alerts"].([]any)[0].(map[string]any)
		b := map[string]any{}
		for k, v := range a {
			b[k] = v
		}
		b["fingerprint"] = "00000000000000bb"
		m["alerts"] = []any{a, b}
	})
	runs := e.settle()
	got := map[store.RunState]int{}
	for _, r := range runs {
		got[r.State]++
	}
	if got[store.RunSucceeded] != 1 || got[store.RunSkipped] != 1 {
		t.Errorf("runs: got %v; want one succeeded and one skipped by the cooldown", got)
	}
	if n, _ := e.act.count(); n != 1 {
		t.Errorf("the action ran %d times; want once", n)
	}
}

// A final state that loses its race (the run left the state it was read
// in) leaves the run as it is, and the audit log follows the record that
// did not take effect with one that says so.
func TestFinishThatLosesItsRaceIsCorrected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, strings.Replace(restart, "max_tier: medium", "max_tier: low", 1))
	e.post("webhook-firing.json", nil)
	runs := e.settle()
	if got := states(runs); got != store.RunWaiting {
		t.Fatalf("got %s, want waiting", got)
	}
	stale := runs[0] // as an execution that read it running would see it
	stale.State = store.RunRunning
	err := e.h.transition(t.Context(), e.h.newFlow(stale, nil, true), store.RunSucceeded,
		audit.Record{Kind: audit.KindFinished, Result: string(store.RunSucceeded)}, store.Update{})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("finish from running of a waiting run: got %v, want ErrConflict", err)
	}
	r, err := e.st.Run(t.Context(), runs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != store.RunWaiting {
		t.Errorf("state: got %s, want waiting", r.State)
	}
	kinds := auditKinds(t, e.dir)
	if !strings.HasSuffix(kinds, "finished:succeeded skipped:superseded") {
		t.Errorf("audit: got %s, want it to end with finished:succeeded skipped:superseded", kinds)
	}
}

func TestFourEyesRefusesSelfApproval(t *testing.T) {
	t.Parallel()
	e := newEnv(t, strings.Replace(restart, "max_tier: medium}", "max_tier: low}\napprovals: {distinct_approver: true}", 1))
	alice := Actor{Principal: "user:alice", Claimed: "alice"}
	run, err := e.h.RunAction(t.Context(), "restart_service", map[string]string{"unit": "nginx.service"}, false, alice)
	if err != nil {
		t.Fatal(err)
	}
	if run.State != store.RunWaiting || run.Labels["requested_principal"] != "user:alice" {
		t.Fatalf("a medium run asked for by alice above a low ceiling: got %s requested by %q, want waiting, requested by user:alice", run.State, run.Labels["requested_principal"])
	}
	for name, by := range map[string]Actor{
		"the requester under another claimed name": {Principal: "user:alice", Claimed: "bob"},
		"nobody authenticated":                     {Claimed: "bob"},
	} {
		if err := e.h.Approve(t.Context(), run.ID, by); !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "distinct_approver") {
			t.Errorf("approval by %s: got %v, want ErrNotAllowed naming approvals.distinct_approver", name, err)
		}
	}
	if n, _ := e.act.count(); n != 0 {
		t.Fatalf("the action ran %d times before anyone else approved", n)
	}
	if err := e.h.Approve(t.Context(), run.ID, Actor{Principal: "user:bob", Claimed: "Bob"}); err != nil {
		t.Fatalf("approval by another principal: %v", err)
	}
	runs := e.settle()
	if got, want := runs[0].DecidedBy, `"Bob" (user:bob)`; got != want {
		t.Errorf("decided by: got %q, want %q", got, want)
	}
}

func TestClaimedNamesAreValidatedEverywhere(t *testing.T) {
	t.Parallel()
	e := newEnv(t, restart)
	for name, claimed := range map[string]string{
		"900 KB":          strings.Repeat("a", 900<<10),
		"a newline":       "ops\nkind: approved",
		"a NUL":           "ops\x00",
		"not UTF-8":       "ops\xff",
		"a bidi override": "ops\u202e",
	} {
		by := Actor{Principal: "user:ops", Claimed: claimed}
		if _, err := e.h.RunAction(t.Context(), "restart_service", map[string]string{"unit": "nginx.service"}, true, by); !errors.Is(err, ErrInvalidActor) {
			t.Errorf("RunAction by a name with %s: got %v, want ErrInvalidActor", name, err)
		}
		if err := e.h.Approve(t.Context(), "any", by); !errors.Is(err, ErrInvalidActor) {
			t.Errorf("Approve by a name with %s: got %v, want ErrInvalidActor", name, err)
		}
		if _, err := e.h.Rollback(t.Context(), "any", by); !errors.Is(err, ErrInvalidActor) {
			t.Errorf("Rollback by a name with %s: got %v, want ErrInvalidActor", name, err)
		}
	}
	if runs := e.settle(); len(runs) != 0 {
		t.Errorf("%d runs were created by requests with invalid names", len(runs))
	}
}

func TestAnInterruptedRunThatIsNotReplannedEscalates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		yml      string
		wantPage bool
	}{
		{name: "without a precheck it pages, naming the run and the step whose effect is unknown", yml: restart, wantPage: true},
		{name: "a runbook that does not escalate does not page", yml: restart + "    escalate: false\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The run a healer killed mid-step left: its first step done,
			// its second started.
			const id = "01jinterruptedrun0000000000"
			e := newEnvWith(t, tt.yml, func(st *store.Store) {
				run := store.Run{
					ID: id, Fingerprint: "f00dfeed", Alertname: "HealerTestTrigger", Runbook: "restart",
					Action: "restart_service", Target: "node.service", Tier: action.TierMedium, State: store.RunRunning,
					Labels:    map[string]string{"alertname": "HealerTestTrigger", "instance": "127.0.0.1:19100", "job": "node"},
					CreatedAt: time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC),
					Steps: []store.StepRecord{
						{Action: "restart_service", Params: map[string]string{"unit": "db.service"}, Target: "db.service", State: "ok"},
						{Action: "restart_service", Params: map[string]string{"unit": "node.service"}, Target: "node.service"},
					},
				}
				if err := st.InsertRun(t.Context(), run); err != nil {
					t.Fatal(err)
				}
			})
			deadline := time.Now().Add(10 * time.Second)
			tick := time.NewTicker(2 * time.Millisecond) // polling the healer's goroutine, bounded by the deadline
			defer tick.Stop()
			for {
				r, err := e.st.Run(t.Context(), id)
				if err != nil {
					t.Fatal(err)
				}
				if r.State == store.RunInterrupted {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("run is %s after 10s, want interrupted", r.State)
				}
				<-tick.C
			}
			e.settle()
			e.am.mu.Lock()
			pages := slices.Clone(e.am.escalations)
			e.am.mu.Unlock()
			if !tt.wantPage {
				if len(pages) != 0 {
					t.Errorf("got %d escalations, want none: %v", len(pages), pages)
				}
				return
			}
			if len(pages) != 1 {
				t.Fatalf("got %d escalations, want 1", len(pages))
			}
			p := pages[0]
			if p["outcome"] != string(store.RunInterrupted) || p["runbook"] != "restart" || p["instance"] != "127.0.0.1:19100" {
				t.Errorf("got labels %v, want outcome=interrupted, the runbook and the instance", p)
			}
			for _, want := range []string{
				"run " + id + " was interrupted in step 1 (restart_service on node.service)",
				"whether that step took effect, in part or in full, is unknown",
				"steps 0 to 0 had ended",
				"not re-planned",
			} {
				if !strings.Contains(p["description"], want) {
					t.Errorf("got description %q, want it to say %q", p["description"], want)
				}
			}
			if kinds := auditKinds(t, e.dir); !strings.Contains(kinds, "interrupted: escalated:posted") {
				t.Errorf("got audit %s, want the interruption, then the escalation", kinds)
			}
		})
	}
}

// An alert cannot say who asked for its run: four eyes would then compare
// the approver with whom the alert names.
func TestAnAlertCannotNameItsRunsRequester(t *testing.T) {
	t.Parallel()
	e := newEnv(t, strings.Replace(restart, "max_tier: medium}", "max_tier: low}\napprovals: {distinct_approver: true}", 1))
	e.post("webhook-firing.json", func(m map[string]any) {
		a := m["alerts"].([]any)[0].(map[string]any)
		ls := a["labels"].(map[string]any)
		ls["requested_principal"], ls["requested_by"] = "user:bob", `"bob" (user:bob)`
	})
	runs := e.settle()
	if len(runs) != 1 || runs[0].State != store.RunWaiting {
		t.Fatalf("got %+v, want one run waiting", runs)
	}
	if _, ok := runs[0].Labels["requested_principal"]; ok {
		t.Errorf("the run's labels hold the alert's requested_principal: %v", runs[0].Labels)
	}
	if err := e.h.Approve(t.Context(), runs[0].ID, Actor{Principal: "user:bob"}); err != nil {
		t.Errorf("bob, whom the alert named, approving: %v; want it allowed, since nobody asked by hand", err)
	}
}

// checkingAction is fakeAction with a Check that refuses one unit.
type checkingAction struct{ *fakeAction }

func (c checkingAction) Check(params map[string]string) error {
	if params["unit"] == "node.service" {
		return fmt.Errorf("%w: node.service is protected", action.ErrRefused)
	}
	return nil
}

func TestWhatTheActionWouldRefuseIsNeitherPlannedNorLeftForApproval(t *testing.T) {
	t.Parallel()
	var act checkingAction
	e := newEnv(t, strings.Replace(restart, "max_tier: medium}", "max_tier: low}", 1), func(o *Options) {
		fa, _ := o.Actions.Get("restart_service")
		act = checkingAction{fa.(*fakeAction)}
		reg, err := action.NewRegistry(act)
		if err != nil {
			t.Fatal(err)
		}
		o.Actions = reg
	})
	// The fixture's job is node: the alert's run would be refused.
	e.post("webhook-firing.json", nil)
	e.settle()
	if runs, _ := e.st.Runs(t.Context(), store.RunFilter{Limit: 10}); len(runs) != 0 {
		t.Errorf("got runs %v for an alert whose step would be refused, want none", runs)
	}
	alerts, _ := e.st.Alerts(t.Context(), "", 10)
	if len(alerts) != 1 || alerts[0].State != store.AlertDone || !strings.Contains(alerts[0].Note, "node.service is protected") {
		t.Errorf("got alerts %+v, want one done saying node.service is protected", alerts)
	}
	// By hand, above the ceiling: refused at once, not waiting.
	run, err := e.h.RunAction(t.Context(), "restart_service", map[string]string{"unit": "node.service"}, false, Actor{Principal: "user:alice"})
	if !errors.Is(err, action.ErrRefused) || run.ID != "" {
		t.Errorf("RunAction(node.service) = run %q, %v; want no run and a refusal", run.ID, err)
	}
	run, err = e.h.RunAction(t.Context(), "restart_service", map[string]string{"unit": "nginx.service"}, false, Actor{Principal: "user:alice"})
	if err != nil || run.State != store.RunWaiting {
		t.Errorf("RunAction(nginx.service) = %s, %v; want it waiting for approval", run.State, err)
	}
	if n, _ := act.count(); n != 0 {
		t.Errorf("the action ran %d times, want never", n)
	}
}
