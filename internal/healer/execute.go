package healer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/config"
	"github.com/deus-ex-machina/deus/internal/guard"
	"github.com/deus-ex-machina/deus/internal/query"
	"github.com/deus-ex-machina/deus/internal/store"
)

// start executes run in its own goroutine, unless this process already is.
// alert is the run's alert when the caller has it (nil: read it); fresh
// says the caller just created the run or moved it to its state, so that
// its state need not be read back.
func (h *Healer) start(ctx context.Context, run store.Run, alert *store.StoredAlert, fresh bool) {
	h.mu.Lock()
	if h.active[run.ID] {
		h.mu.Unlock()
		return
	}
	h.active[run.ID] = true
	h.wg.Add(1)
	h.mu.Unlock()
	go func() {
		defer h.wg.Done()
		defer func() {
			h.mu.Lock()
			delete(h.active, run.ID)
			h.mu.Unlock()
		}()
		if err := h.execute(ctx, h.newFlow(run, alert, fresh)); err != nil && ctx.Err() == nil {
			h.logger.Error("run_failed", "run_id", run.ID, "runbook", run.Runbook, "err", err)
		}
	}()
}

// newFlow is a run about to go through the pipeline.
func (h *Healer) newFlow(run store.Run, alert *store.StoredAlert, fresh bool) *flow {
	return &flow{run: run, rb: h.runbook(run.Runbook), alert: alert, fresh: fresh}
}

func (h *Healer) base(r store.Run) audit.Record {
	return audit.Record{
		RunID: r.ID, Incident: r.IncidentID, Fingerprint: r.Fingerprint, Alertname: r.Alertname, Runbook: r.Runbook,
		Action: r.Action, Target: r.Target, DryRun: r.DryRun,
	}
}

// execute takes a run through the pipeline: from pending (or approved) to
// a final state, or to waiting for approval. Runs acting at once are
// bounded by global.concurrency.
func (h *Healer) execute(ctx context.Context, f *flow) error {
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-h.sem }()
	defer f.release()
	defer func() {
		// A run stopped before settle (a shutdown) still says what its
		// last step did.
		if err := h.flush(context.WithoutCancel(ctx), f); err != nil {
			h.logger.Error("audit_flush_failed", "run_id", f.run.ID, "err", err)
		}
		if f.silenceID != "" {
			if err := h.opts.Alertmanager.Expire(context.WithoutCancel(ctx), f.silenceID); err != nil {
				h.logger.Warn("silence_expire_failed", "run_id", f.run.ID, "silence_id", f.silenceID, "err", err)
			}
		}
	}()
	_, err := h.pipeline().Exec(ctx, f)
	return err
}

// lockRunbook serialises the guard check and start of the runs of one
// runbook (runs by hand share the lock of the empty name).
func (h *Healer) lockRunbook(name string) func() {
	h.mu.Lock()
	l, ok := h.guardLocks[name]
	if !ok {
		l = &sync.Mutex{}
		h.guardLocks[name] = l
	}
	h.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (h *Healer) alertOf(ctx context.Context, run store.Run) (*store.StoredAlert, error) {
	if run.AlertKey == "" {
		return nil, nil
	}
	a, err := h.opts.Store.AlertByKey(ctx, run.AlertKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // pruned
	}
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// condition runs a runbook query scoped to the alert's labels; a query with
// a forecast asks it of the scoped expression's history.
func (h *Healer) condition(ctx context.Context, q *config.Query, labels map[string]string) (bool, string, error) {
	expr, err := query.Scope(q.Expr, q.Labels, labels)
	if err != nil {
		return false, q.Expr, err
	}
	if q.Forecast != nil {
		return h.forecastHolds(ctx, expr, q.Forecast)
	}
	ok, v, err := query.Holds(ctx, h.opts.Querier, expr, q.Expect, h.now())
	detail := expr
	if err == nil {
		detail += " -> " + strconv.Itoa(len(v)) + " series"
	}
	return ok, detail, err
}

func (h *Healer) policy(rb *config.Runbook) guard.Policy {
	cfg := h.cfg.Load()
	p := guard.Policy{MaxTier: cfg.Global.MaxTier.Tier}
	if rb == nil {
		return p
	}
	p.Cooldown = time.Duration(rb.Cooldown)
	p.Maintenance = rb.Maintenance
	if rb.RateLimit != nil {
		p.RateMax, p.RateWindow = rb.RateLimit.Max, time.Duration(rb.RateLimit.Window)
	}
	if rb.CircuitBreaker != nil {
		p.BreakerFailures, p.BreakerQuiet = rb.CircuitBreaker.Failures, time.Duration(rb.CircuitBreaker.Quiet)
	}
	if rb.BlastRadius != nil {
		p.BlastMaxTargets, p.BlastWindow, p.HasGate = rb.BlastRadius.MaxTargets, time.Duration(rb.BlastRadius.Window), rb.BlastRadius.Gate != ""
	}
	return p
}

func (h *Healer) guard(ctx context.Context, run store.Run, rb *config.Runbook, approved bool) (guard.Decision, error) {
	p := h.policy(rb)
	now := h.now()
	f := guard.Facts{Now: now, Tier: run.Tier, Target: run.Target, Approved: approved}
	// Only what a configured guard needs is read.
	if p.Cooldown > 0 || p.RateMax > 0 {
		c, err := h.opts.Store.Counts(ctx, run.Runbook, run.Target, now.Add(-p.RateWindow))
		if err != nil {
			return guard.Decision{}, err
		}
		f.Counts = countsOf(c)
	}
	if p.BlastMaxTargets > 0 {
		c, err := h.opts.Store.Counts(ctx, run.Runbook, run.Target, now.Add(-p.BlastWindow))
		if err != nil {
			return guard.Decision{}, err
		}
		f.BlastCounts = countsOf(c)
	}
	if p.BreakerFailures > 0 {
		b, err := h.opts.Store.Breaker(ctx, run.Runbook, run.Target)
		if err != nil {
			return guard.Decision{}, err
		}
		f.Breaker = breakerOf(b)
	}
	if h.opts.Alertmanager != nil && run.AlertKey != "" {
		s, err := h.opts.Alertmanager.Silenced(ctx, run.Fingerprint, run.Labels)
		if err != nil {
			// Acting on an alert someone may have silenced is the unsafe
			// side: not knowing is a reason to wait.
			return guard.Decision{Verdict: guard.Skip, Guard: "silenced", Reason: "could not ask Alertmanager about silences: " + err.Error()}, nil
		}
		f.Silenced = s
	}
	if p.Maintenance {
		f.Maintenance = h.maintenanceFacts(ctx, run, now)
	}
	if p.HasGate {
		ok, _, err := query.Holds(ctx, h.opts.Querier, rb.BlastRadius.Gate, "nonempty", now)
		if err != nil {
			return guard.Decision{Verdict: guard.Skip, Guard: "gate", Reason: "the gate query failed: " + err.Error()}, nil
		}
		f.GateOK = ok
	}
	return guard.Check(p, f), nil
}

// countsOf is the guards' view of stored counts.
func countsOf(c store.GuardCounts) guard.Counts {
	return guard.Counts{LastStart: c.LastStart, InWindow: c.InWindow, Targets: c.Targets, TargetSeen: c.TargetSeen}
}

// putHold adds hd to holds, or replaces the one with its ID.
func putHold(holds []action.Hold, hd action.Hold) []action.Hold {
	for i := range holds {
		if holds[i].ID == hd.ID {
			holds[i] = hd
			return holds
		}
	}
	return append(holds, hd)
}

// holdsText says what held a step's commands, for the audit record.
func holdsText(holds []action.Hold) string {
	s := make([]string, len(holds))
	for i, hd := range holds {
		s[i] = hd.String()
	}
	return strings.Join(s, ", ")
}

// verify asks the verification query until it holds or its deadline.
func (h *Healer) verify(ctx context.Context, v *config.Verify, labels map[string]string) (bool, string, error) {
	deadline := h.now().Add(time.Duration(v.Within))
	t := time.NewTicker(time.Duration(v.Interval))
	defer t.Stop()
	for {
		ok, detail, err := h.condition(ctx, &v.Query, labels)
		if err == nil && ok {
			return true, detail, nil
		}
		if !h.now().Before(deadline) {
			return false, detail, err
		}
		select {
		case <-ctx.Done():
			return false, detail, ctx.Err()
		case <-t.C:
		}
	}
}

// escalate posts HealerEscalation to Alertmanager.
func (h *Healer) escalate(ctx context.Context, run store.Run, reason string) error {
	return h.escalateWith(ctx, run, nil, fmt.Sprintf("The healer could not fix %s on %s.", run.Alertname, run.Labels["instance"]), reason)
}

// escalateWith posts HealerEscalation with extra labels and a summary.
func (h *Healer) escalateWith(ctx context.Context, run store.Run, extra map[string]string, summary, reason string) error {
	rec := h.base(run)
	rec.Kind, rec.Reason = audit.KindEscalated, reason
	if h.opts.Alertmanager == nil {
		rec.Result = "no_alertmanager"
		return h.recordLast(ctx, rec)
	}
	labels := map[string]string{"severity": "critical", "runbook": run.Runbook, "action": run.Action}
	for _, k := range []string{"instance", "job"} {
		if v, ok := run.Labels[k]; ok {
			labels[k] = v
		}
	}
	if run.Alertname != "" {
		labels["healer_alertname"] = run.Alertname
	}
	for k, v := range extra {
		labels[k] = v
	}
	ann := map[string]string{
		"summary":     summary,
		"description": fmt.Sprintf("Run %s of runbook %s (%s on %s): %s", run.ID, run.Runbook, run.Action, run.Target, reason),
		"run_id":      run.ID,
	}
	err := h.opts.Alertmanager.Escalate(ctx, labels, ann, h.now())
	if err != nil {
		rec.Result, rec.Reason = "failed", reason+"; posting to Alertmanager failed: "+err.Error()
	} else {
		rec.Result = "posted"
		h.opts.Metrics.escalations.Inc()
	}
	return h.recordLast(ctx, rec)
}

// recordLast appends a record that no change of state follows, and commits
// the chain's head with it, so that cutting it from the log is told from a
// crash.
func (h *Healer) recordLast(ctx context.Context, rec audit.Record) error {
	if err := h.record(ctx, rec); err != nil {
		return err
	}
	return h.opts.Store.CommitAuditHead(ctx)
}

// rollbackSteps undoes the run's steps that can be undone, newest first, and
// returns how many it undid.
// who, when not nil, names who asked for it (Actor.fields) in its records.
func (h *Healer) rollbackSteps(ctx context.Context, run *store.Run, why string, who map[string]string) (int, error) {
	n := 0
	for i := len(run.Steps) - 1; i >= 0; i-- {
		st := &run.Steps[i]
		if st.State != "ok" || len(st.Undo) == 0 {
			continue
		}
		act, ok := h.opts.Actions.Get(st.Action)
		rev, canUndo := act.(action.Reverser)
		if !ok || !canUndo {
			continue
		}
		// Recorded before it is taken, like every step.
		start := h.base(*run)
		start.Kind, start.Action, start.Target, start.Result, start.Reason = audit.KindRolledBack, st.Action, st.Target, "started", why
		start.Fields = map[string]string{"step": strconv.Itoa(i)}
		maps.Copy(start.Fields, who)
		if err := h.record(ctx, start); err != nil {
			return n, err
		}
		res, err := rev.Rollback(ctx, run.ID, st.Undo)
		rec := h.base(*run)
		rec.Kind, rec.Action, rec.Target, rec.Reason = audit.KindRolledBack, st.Action, st.Target, why
		rec.Fields = map[string]string{"step": strconv.Itoa(i)}
		maps.Copy(rec.Fields, who)
		if res.Summary != "" {
			rec.Fields["summary"] = res.Summary
		}
		if err != nil {
			rec.Result, rec.Reason = "failed", why+"; rollback failed: "+err.Error()
		} else {
			rec.Result = "ok"
			st.State = "rolled_back"
			n++
		}
		h.opts.Metrics.rollbacks.WithLabelValues(st.Action, rec.Result).Inc()
		if err := h.record(ctx, rec); err != nil {
			return n, err
		}
	}
	if n > 0 {
		if err := h.opts.Store.UpdateRun(ctx, run.ID, store.Update{Steps: run.Steps}); err != nil {
			return n, err
		}
	}
	return n, nil
}

// ErrNotAllowed is returned when a request about a run does not fit its
// state.
var ErrNotAllowed = errors.New("not allowed in the run's state")

// Approve approves a run waiting for approval and starts it.
func (h *Healer) Approve(ctx context.Context, id string, by Actor) error {
	return h.decide(ctx, id, by, true)
}

// Deny denies a run waiting for approval.
func (h *Healer) Deny(ctx context.Context, id string, by Actor) error {
	return h.decide(ctx, id, by, false)
}

// requesterKey is the run label naming the principal that asked for a run
// by hand, which four eyes compares the approver with.
const requesterKey = "requested_principal"

func (h *Healer) decide(ctx context.Context, id string, actor Actor, approve bool) error {
	if err := actor.Validate(); err != nil {
		return err
	}
	run, err := h.opts.Store.Run(ctx, id)
	if err != nil {
		return err
	}
	if run.State != store.RunWaiting {
		return fmt.Errorf("run %s is %s, not waiting for approval: %w", id, run.State, ErrNotAllowed)
	}
	if !h.now().Before(run.ExpiresAt) {
		return fmt.Errorf("run %s: its approval expired at %s: %w", id, run.ExpiresAt.Format(time.RFC3339), ErrNotAllowed)
	}
	if approve && h.cfg.Load().Approvals.DistinctApprover {
		switch {
		case actor.Principal == "":
			return fmt.Errorf("run %s: approvals.distinct_approver is set and this request is not authenticated, so who approves cannot be told from who asked: %w", id, ErrNotAllowed)
		case actor.mayBe(run.Labels[requesterKey]):
			return fmt.Errorf("run %s: %s asked for it and %s may be the same (approvals.distinct_approver): %w", id, run.Labels[requesterKey], actor.Principal, ErrNotAllowed)
		}
	}
	by := actor.String()
	f := h.newFlow(run, nil, true)
	rec := audit.Record{Kind: audit.KindApproved, Fields: actor.fields()}
	u := store.Update{DecidedBy: by}
	state := store.RunApproved
	if !approve {
		rec.Kind, rec.Result, state = audit.KindDenied, "denied", store.RunDenied
		u.Reason = "denied by " + by
	}
	if err := h.transition(ctx, f, state, rec, u); err != nil {
		return err
	}
	if approve {
		h.start(h.lifetime(ctx), f.run, f.alert, true)
	}
	return nil
}

// lifetime is the context runs started from a request live in: Run's, not
// the request's.
func (h *Healer) lifetime(ctx context.Context) context.Context {
	select {
	case <-h.started:
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.runCtx
	default:
		return context.WithoutCancel(ctx)
	}
}

// due returns the runs in state whose ExpiresAt has come: a waiting run's
// approval expires then, a scheduled run's window opens.
func (h *Healer) due(ctx context.Context, state store.RunState) ([]store.Run, error) {
	runs, err := h.opts.Store.Runs(ctx, store.RunFilter{States: []store.RunState{state}, Limit: 10000})
	if err != nil {
		return nil, err
	}
	now := h.now()
	due := runs[:0]
	for _, r := range runs {
		if !now.Before(r.ExpiresAt) {
			due = append(due, r)
		}
	}
	return due, nil
}

// expireApprovals ends the runs whose approval expired.
func (h *Healer) expireApprovals(ctx context.Context) error {
	runs, err := h.due(ctx, store.RunWaiting)
	if err != nil {
		return err
	}
	for _, r := range runs {
		reason := "nobody approved the run before " + r.ExpiresAt.Format(time.RFC3339)
		rec := audit.Record{Kind: audit.KindDenied, Result: string(store.RunExpired), Reason: reason}
		if err := h.transition(ctx, h.newFlow(r, nil, true), store.RunExpired, rec, store.Update{Reason: reason}); err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return nil
}

// Rollback undoes a finished run by hand.
func (h *Healer) Rollback(ctx context.Context, id string, by Actor) (store.Run, error) {
	if err := by.Validate(); err != nil {
		return store.Run{}, err
	}
	if err := h.chainBroken(); err != nil {
		return store.Run{}, fmt.Errorf("%s: %w", notActing(err), ErrNotAllowed)
	}
	run, err := h.opts.Store.Run(ctx, id)
	if err != nil {
		return run, err
	}
	switch run.State {
	case store.RunSucceeded, store.RunFailed:
	default:
		return run, fmt.Errorf("run %s is %s; only a succeeded or failed run can be rolled back: %w", id, run.State, ErrNotAllowed)
	}
	undoable := false
	for _, st := range run.Steps {
		undoable = undoable || (st.State == "ok" && len(st.Undo) > 0)
	}
	if !undoable {
		return run, fmt.Errorf("run %s changed nothing that can be undone: %w", id, ErrNotAllowed)
	}
	// Claim the run first, so that two rollbacks of one run (a retried
	// request) cannot both undo it.
	before := run.State
	if err := h.opts.Store.UpdateRun(ctx, id, store.Update{State: store.RunRollingBack}, before); err != nil {
		return run, err
	}
	// Claimed, the rollback finishes even if the client goes away: a run
	// left rolling_back could not be rolled back again.
	ctx = context.WithoutCancel(ctx)
	n, err := h.rollbackSteps(ctx, &run, "by hand, by "+by.String(), by.fields())
	state, reason := store.RunRolledBack, "rolled back by "+by.String()
	if n == 0 {
		state, reason = before, "a rollback by "+by.String()+" undid nothing"
	}
	if uerr := h.opts.Store.UpdateRun(ctx, id, store.Update{State: state, Reason: reason}, store.RunRollingBack); uerr != nil {
		return run, errors.Join(err, uerr)
	}
	if err != nil {
		return run, err
	}
	if n == 0 {
		return run, fmt.Errorf("run %s: no step could be undone: %w", id, ErrNotAllowed)
	}
	return h.opts.Store.Run(ctx, id)
}

// RunAction runs one action by hand, through the same guards (the tier
// ceiling; an action above it needs approval like any other run) and the
// same audit, and waits for it. It returns the run as it ended, or waiting.
func (h *Healer) RunAction(ctx context.Context, name string, raw map[string]string, dryRun bool, by Actor) (store.Run, error) {
	if err := by.Validate(); err != nil {
		return store.Run{}, err
	}
	act, ok := h.opts.Actions.Get(name)
	if !ok {
		return store.Run{}, fmt.Errorf("unknown action %q", name)
	}
	spec := act.Spec()
	params, err := spec.Validate(raw)
	if err != nil {
		return store.Run{}, fmt.Errorf("%s: %w", name, err)
	}
	// What the action would refuse is refused now, not after an approval.
	if c, ok := act.(action.Checker); ok {
		if err := c.Check(params); err != nil {
			return store.Run{}, err
		}
	}
	run := store.Run{
		ID: newID(), Alertname: "", Action: name, Target: targetOf(spec, params), Tier: spec.Tier,
		DryRun: dryRun || h.cfg.Load().Global.DryRun, State: store.RunPending, CreatedAt: h.now(),
		Steps:  []store.StepRecord{{Action: name, Params: params, Target: targetOf(spec, params)}},
		Labels: map[string]string{"requested_by": by.String(), requesterKey: by.Principal},
	}
	// Marked active before it is stored, so that resume (which starts the
	// pending runs nothing in this process executes) cannot start it too.
	h.mu.Lock()
	h.active[run.ID] = true
	h.wg.Add(1)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.active, run.ID)
		h.mu.Unlock()
		h.wg.Done()
	}()
	// Recorded before the run exists: a request the log lacks is not
	// stored, so it cannot be run later by resume.
	rec := h.base(run)
	rec.Kind, rec.Fields = audit.KindRequested, by.fields()
	if err := h.record(ctx, rec); err != nil {
		return run, err
	}
	if err := h.opts.Store.InsertRun(ctx, run); err != nil {
		return run, err
	}
	if err := h.execute(h.lifetime(ctx), h.newFlow(run, nil, true)); err != nil {
		return run, err
	}
	return h.opts.Store.Run(ctx, run.ID)
}
