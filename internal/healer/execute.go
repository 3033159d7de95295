package healer

import (
	"context"
	"errors"
	"fmt"
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
func (h *Healer) start(ctx context.Context, run store.Run, approved bool) {
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
		if err := h.execute(ctx, run, approved); err != nil && ctx.Err() == nil {
			h.logger.Error("run_failed", "run_id", run.ID, "runbook", run.Runbook, "err", err)
		}
	}()
}

func (h *Healer) base(r store.Run) audit.Record {
	return audit.Record{
		RunID: r.ID, Fingerprint: r.Fingerprint, Alertname: r.Alertname, Runbook: r.Runbook,
		Action: r.Action, Target: r.Target, DryRun: r.DryRun,
	}
}

// finish ends a run in a final state, with its audit record and metric.
func (h *Healer) finish(ctx context.Context, r store.Run, kind audit.Kind, state, reason string, from ...string) error {
	rec := h.base(r)
	rec.Kind, rec.Result, rec.Reason = kind, state, reason
	if err := h.record(ctx, rec); err != nil {
		return err
	}
	if err := h.opts.Store.UpdateRun(ctx, r.ID, store.Update{State: state, Reason: reason, FinishedAt: h.now()}, from...); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// The run left the state it was read in (cancelled, decided
			// or expired meanwhile): the record above did not take
			// effect, and the log says so.
			lost := h.base(r)
			lost.Kind, lost.Result, lost.Reason = audit.KindSkipped, "superseded", "the run was no longer "+strings.Join(from, " or ")+" when it was to become "+state
			// Written even when ctx ends (a shutdown): the record above
			// must not stand uncorrected.
			return errors.Join(err, h.record(context.WithoutCancel(ctx), lost))
		}
		return err
	}
	h.opts.Metrics.runs.WithLabelValues(r.Action, state).Inc()
	h.logger.Info("run_ended", "state", state, "run_id", r.ID, "runbook", r.Runbook, "action", r.Action, "target", r.Target, "reason", reason)
	return nil
}

// execute takes a run from pending (or approved) to a final state, or to
// waiting for approval.
func (h *Healer) execute(ctx context.Context, run store.Run, approved bool) error {
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-h.sem }()

	from := store.RunPending
	if approved {
		from = store.RunApproved
	}
	// The run may have been read before an execution that has ended since
	// (resume lists runs, then starts those not active): act only on its
	// state now.
	cur, err := h.opts.Store.Run(ctx, run.ID)
	if err != nil {
		return err
	}
	if cur.State != from {
		return nil
	}
	if err := h.chainBroken(); err != nil {
		return h.finish(ctx, run, audit.KindSkipped, store.RunSkipped, notActing(err), from)
	}
	rb := h.runbook(run.Runbook)
	if run.Runbook != "" && rb == nil {
		return h.finish(ctx, run, audit.KindSkipped, store.RunSkipped, "the runbook was removed from the configuration", from)
	}
	alert, err := h.alertOf(ctx, run)
	if err != nil {
		return err
	}
	if alert != nil && alert.Status == "firing" {
		resolved, err := h.opts.Store.Resolved(ctx, alert.Fingerprint, alert.StartsAt)
		if err != nil {
			return err
		}
		if resolved {
			return h.finish(ctx, run, audit.KindSkipped, store.RunCancelled, "the alert resolved before the run started", from)
		}
	}

	// Precheck: is it still true?
	if rb != nil && rb.Precheck != nil {
		ok, detail, err := h.condition(ctx, rb.Precheck, run.Labels)
		rec := h.base(run)
		rec.Kind, rec.Fields = audit.KindPrechecked, map[string]string{"query": detail}
		switch {
		case err != nil:
			rec.Result, rec.Reason = "error", err.Error()
		case ok:
			rec.Result = "holds"
		default:
			rec.Result = "no_longer_true"
		}
		if err := h.record(ctx, rec); err != nil {
			return err
		}
		if err != nil {
			return h.finish(ctx, run, audit.KindSkipped, store.RunSkipped, "precheck failed: "+err.Error(), from)
		}
		if !ok {
			return h.finish(ctx, run, audit.KindSkipped, store.RunSkipped, "precheck: the condition no longer holds", from)
		}
	}

	// Guards. The guards read the runbook's past runs, so checking them
	// and recording this run's start are one step: runs of one runbook
	// pass here one at a time, or two alerts about one target arriving
	// together would both pass the cooldown (and the rate and blast
	// radius limits could be overrun the same way).
	unlock := h.lockRunbook(run.Runbook)
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()
	d, err := h.guard(ctx, run, rb, approved)
	if err != nil {
		return err
	}
	rec := h.base(run)
	rec.Kind, rec.Result, rec.Reason = audit.KindGuarded, d.Verdict.String(), d.Reason
	if d.Guard != "" {
		rec.Fields = map[string]string{"guard": d.Guard}
	}
	if err := h.record(ctx, rec); err != nil {
		return err
	}
	switch d.Verdict {
	case guard.Skip:
		h.opts.Metrics.guarded.WithLabelValues(d.Guard).Inc()
		if err := h.opts.Store.UpdateRun(ctx, run.ID, store.Update{State: store.RunSkipped, Reason: d.Reason, FinishedAt: h.now()}, from); err != nil {
			return err
		}
		h.opts.Metrics.runs.WithLabelValues(run.Action, store.RunSkipped).Inc()
		h.logger.Info("run_skipped", "run_id", run.ID, "runbook", run.Runbook, "guard", d.Guard, "reason", d.Reason)
		return nil
	case guard.NeedApproval:
		if run.DryRun {
			break // a dry run says what it would do; it needs nobody's approval
		}
		expires := h.now().Add(time.Duration(h.cfg.Load().Global.ApprovalTimeout))
		if err := h.opts.Store.UpdateRun(ctx, run.ID, store.Update{State: store.RunWaiting, Reason: d.Reason, ExpiresAt: expires}, from); err != nil {
			return err
		}
		h.logger.Info("run_waiting_approval", "run_id", run.ID, "runbook", run.Runbook, "tier", run.Tier, "expires", expires)
		return nil
	}

	now := h.now()
	if err := h.opts.Store.UpdateRun(ctx, run.ID, store.Update{State: store.RunRunning, StartedAt: now}, from); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil // cancelled or decided meanwhile
		}
		return err
	}
	run.StartedAt = now
	unlock()
	locked = false
	return h.act(ctx, run, rb, alert)
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

// condition runs a runbook query scoped to the alert's labels.
func (h *Healer) condition(ctx context.Context, q *config.Query, labels map[string]string) (bool, string, error) {
	expr, err := query.Scope(q.Expr, q.Labels, labels)
	if err != nil {
		return false, q.Expr, err
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
	tier, _ := action.ParseTier(run.Tier)
	now := h.now()
	f := guard.Facts{Now: now, Tier: tier, Target: run.Target, Approved: approved}
	var err error
	if f.Counts, err = h.opts.Store.Counts(ctx, run.Runbook, run.Target, now.Add(-p.RateWindow)); err != nil {
		return guard.Decision{}, err
	}
	if f.BlastCounts, err = h.opts.Store.Counts(ctx, run.Runbook, run.Target, now.Add(-p.BlastWindow)); err != nil {
		return guard.Decision{}, err
	}
	if f.Breaker, err = h.opts.Store.Breaker(ctx, run.Runbook, run.Target); err != nil {
		return guard.Decision{}, err
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
	if p.HasGate {
		ok, _, err := query.Holds(ctx, h.opts.Querier, rb.BlastRadius.Gate, "nonempty", now)
		if err != nil {
			return guard.Decision{Verdict: guard.Skip, Guard: "gate", Reason: "the gate query failed: " + err.Error()}, nil
		}
		f.GateOK = ok
	}
	return guard.Check(p, f), nil
}

// act runs the steps, verifies, and rolls back or escalates on failure.
func (h *Healer) act(ctx context.Context, run store.Run, rb *config.Runbook, alert *store.StoredAlert) error {
	var silenceID string
	if rb != nil && rb.Silence != nil && h.opts.Alertmanager != nil && !run.DryRun {
		id, err := h.opts.Alertmanager.Silence(ctx, run.Labels, time.Duration(rb.Silence.Duration), "deus-healer run "+run.ID+" ("+rb.Name+")", h.now())
		rec := h.base(run)
		rec.Kind = "silenced"
		if err != nil {
			rec.Result, rec.Reason = "failed", err.Error()
		} else {
			rec.Result, rec.Fields = "created", map[string]string{"silence_id": id}
			silenceID = id
		}
		if err := h.record(ctx, rec); err != nil {
			return err
		}
	}
	defer func() {
		if silenceID != "" {
			if err := h.opts.Alertmanager.Expire(context.WithoutCancel(ctx), silenceID); err != nil {
				h.logger.Warn("silence_expire_failed", "run_id", run.ID, "silence_id", silenceID, "err", err)
			}
		}
	}()

	failed := ""
	for i := range run.Steps {
		st := &run.Steps[i]
		act, ok := h.opts.Actions.Get(st.Action)
		if !ok {
			failed = fmt.Sprintf("step %d: action %q is not available", i, st.Action)
			break
		}
		rec := h.base(run)
		rec.Kind, rec.Action, rec.Target = audit.KindStarted, st.Action, st.Target
		rec.Fields = map[string]string{"step": strconv.Itoa(i)}
		for k, v := range st.Params {
			rec.Fields["param."+k] = v
		}
		if err := h.record(ctx, rec); err != nil {
			// Not recorded, not taken: stop here and leave the run as
			// running, for recovery to mark it interrupted. Rolling back
			// earlier steps now would be another unrecorded step.
			return err
		}
		timeout := act.Spec().Timeout
		if rb != nil && i < len(rb.Steps) && rb.Steps[i].Timeout > 0 {
			timeout = time.Duration(rb.Steps[i].Timeout)
		}
		if timeout <= 0 {
			timeout = 5 * time.Minute
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		t0 := h.now()
		res, err := act.Run(actx, action.Request{RunID: run.ID, Params: st.Params, DryRun: run.DryRun, Alert: alertJSON(run, alert)})
		cancel()
		dur := h.now().Sub(t0)
		h.opts.Metrics.duration.WithLabelValues(st.Action).Observe(dur.Seconds())
		if res.Target != "" {
			st.Target = res.Target
		}
		st.Argv, st.Output, st.Undo = res.Argv, res.Output, res.Undo
		rec = h.base(run)
		rec.Kind, rec.Action, rec.Target, rec.Argv = audit.KindFinished, st.Action, st.Target, res.Argv
		rec.Fields = map[string]string{"step": strconv.Itoa(i), "duration_seconds": strconv.FormatFloat(dur.Seconds(), 'f', 3, 64)}
		if res.Summary != "" {
			rec.Fields["summary"] = res.Summary
		}
		switch {
		case err != nil:
			st.State, st.Error = "failed", err.Error()
			rec.Result, rec.Reason = "failed", err.Error()
			if errors.Is(actx.Err(), context.DeadlineExceeded) {
				rec.Result = "timeout"
			}
		case run.DryRun:
			st.State, rec.Result = "dry_run", "dry_run"
		default:
			st.State, rec.Result = "ok", "ok"
		}
		if aerr := h.record(ctx, rec); aerr != nil {
			if uerr := h.opts.Store.UpdateRun(ctx, run.ID, store.Update{Steps: run.Steps}); uerr != nil {
				return errors.Join(aerr, uerr)
			}
			return aerr
		}
		if uerr := h.opts.Store.UpdateRun(ctx, run.ID, store.Update{Steps: run.Steps}); uerr != nil {
			return uerr
		}
		if err != nil {
			failed = fmt.Sprintf("step %d (%s): %v", i, st.Action, err)
			break
		}
	}

	if run.DryRun {
		// A dry run changed nothing: it neither counts for the breaker
		// nor pages anyone.
		if failed != "" {
			return h.finish(ctx, run, audit.KindFinished, store.RunFailed, "dry run: "+failed, store.RunRunning)
		}
		return h.finish(ctx, run, audit.KindFinished, store.RunDryRun, "dry run: nothing was changed", store.RunRunning)
	}
	if err := ctx.Err(); err != nil {
		// Stopping: leave the run as running for recovery; no rollback
		// or escalation on the way out.
		return err
	}

	if failed == "" && rb != nil && rb.Verify != nil {
		ok, detail, err := h.verify(ctx, rb.Verify, run.Labels)
		rec := h.base(run)
		rec.Kind, rec.Fields = audit.KindVerified, map[string]string{"query": detail}
		switch {
		case err != nil:
			rec.Result, rec.Reason = "error", err.Error()
			failed = "verification failed: " + err.Error()
		case ok:
			rec.Result = "ok"
		default:
			rec.Result = "failed"
			failed = fmt.Sprintf("verification: the condition did not hold within %s", time.Duration(rb.Verify.Within))
		}
		if err := h.record(ctx, rec); err != nil {
			return err
		}
	}

	if failed == "" {
		if rb != nil && rb.CircuitBreaker != nil {
			unlock := h.lockRunbook(run.Runbook)
			defer unlock()
			b, err := h.opts.Store.Breaker(ctx, run.Runbook, run.Target)
			if err != nil {
				return err
			}
			if b.Failures > 0 {
				if err := h.opts.Store.SaveBreaker(ctx, guard.Succeeded(b)); err != nil {
					return err
				}
			}
		}
		return h.finish(ctx, run, audit.KindFinished, store.RunSucceeded, "", store.RunRunning)
	}
	return h.fail(ctx, run, rb, failed)
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

// fail handles a failed run: roll back, count towards the breaker,
// escalate.
func (h *Healer) fail(ctx context.Context, run store.Run, rb *config.Runbook, why string) error {
	state := store.RunFailed
	if rb == nil || rb.ShouldRollback() {
		rolled, err := h.rollbackSteps(ctx, &run, "automatic, after: "+why)
		if err != nil {
			return err
		}
		if rolled > 0 {
			state = store.RunRolledBack
		}
	}
	escalate := rb != nil && rb.ShouldEscalate()
	reason := why
	if rb != nil && rb.CircuitBreaker != nil {
		unlock := h.lockRunbook(run.Runbook)
		defer unlock()
		p := h.policy(rb)
		b, err := h.opts.Store.Breaker(ctx, run.Runbook, run.Target)
		if err != nil {
			return err
		}
		b, opened := guard.Failed(p, b, h.now())
		if opened {
			reason += fmt.Sprintf("; circuit breaker opened after %d failures in a row", b.Failures)
			h.logger.Warn("circuit_breaker_opened", "runbook", run.Runbook, "target", run.Target, "failures", b.Failures)
		}
		if !b.OpenedAt.IsZero() {
			// While open, escalate once: when it opens.
			escalate = escalate && opened && !b.Escalated
			b.Escalated = b.Escalated || escalate
		}
		if err := h.opts.Store.SaveBreaker(ctx, b); err != nil {
			return err
		}
	}
	if err := h.finish(ctx, run, audit.KindFinished, state, reason, store.RunRunning); err != nil {
		return err
	}
	if escalate {
		return h.escalate(ctx, run, reason)
	}
	return nil
}

// escalate posts HealerEscalation to Alertmanager.
func (h *Healer) escalate(ctx context.Context, run store.Run, reason string) error {
	rec := h.base(run)
	rec.Kind, rec.Reason = audit.KindEscalated, reason
	if h.opts.Alertmanager == nil {
		rec.Result = "no_alertmanager"
		return h.record(ctx, rec)
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
	ann := map[string]string{
		"summary":     fmt.Sprintf("The healer could not fix %s on %s.", run.Alertname, run.Labels["instance"]),
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
	return h.record(ctx, rec)
}

// rollbackSteps undoes the run's steps that can be undone, newest first, and
// returns how many it undid.
func (h *Healer) rollbackSteps(ctx context.Context, run *store.Run, why string) (int, error) {
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
		if err := h.record(ctx, start); err != nil {
			return n, err
		}
		res, err := rev.Rollback(ctx, run.ID, st.Undo)
		rec := h.base(*run)
		rec.Kind, rec.Action, rec.Target, rec.Reason = audit.KindRolledBack, st.Action, st.Target, why
		rec.Fields = map[string]string{"step": strconv.Itoa(i)}
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
func (h *Healer) Approve(ctx context.Context, id, by string) error {
	return h.decide(ctx, id, by, true)
}

// Deny denies a run waiting for approval.
func (h *Healer) Deny(ctx context.Context, id, by string) error {
	return h.decide(ctx, id, by, false)
}

func (h *Healer) decide(ctx context.Context, id, by string, approve bool) error {
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
	rec := h.base(run)
	rec.Fields = map[string]string{"by": by}
	state := store.RunDenied
	if approve {
		rec.Kind, state = audit.KindApproved, store.RunApproved
	} else {
		rec.Kind, rec.Result = audit.KindDenied, "denied"
	}
	if err := h.record(ctx, rec); err != nil {
		return err
	}
	u := store.Update{State: state, DecidedBy: by}
	if !approve {
		u.FinishedAt, u.Reason = h.now(), "denied by "+by
	}
	if err := h.opts.Store.UpdateRun(ctx, id, u, store.RunWaiting); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// Another decision (or the expiry) came first: the record
			// above did not take effect, and the log says so.
			lost := h.base(run)
			lost.Kind, lost.Result, lost.Reason = audit.KindSkipped, "superseded", "the decision by "+by+" lost to another made at the same time"
			return errors.Join(err, h.record(ctx, lost))
		}
		return err
	}
	h.logger.Info("run_decided", "state", state, "run_id", id, "by", by)
	if approve {
		run.State = store.RunApproved
		h.start(h.lifetime(ctx), run, true)
	} else {
		h.opts.Metrics.runs.WithLabelValues(run.Action, store.RunDenied).Inc()
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

// expireApprovals ends the runs whose approval expired.
func (h *Healer) expireApprovals(ctx context.Context) error {
	runs, err := h.opts.Store.Runs(ctx, store.RunFilter{States: []string{store.RunWaiting}, Limit: 10000})
	if err != nil {
		return err
	}
	now := h.now()
	for _, r := range runs {
		if now.Before(r.ExpiresAt) {
			continue
		}
		reason := "nobody approved the run before " + r.ExpiresAt.Format(time.RFC3339)
		if err := h.finish(ctx, r, audit.KindDenied, store.RunExpired, reason, store.RunWaiting); err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return nil
}

// Rollback undoes a finished run by hand.
func (h *Healer) Rollback(ctx context.Context, id, by string) (store.Run, error) {
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
	n, err := h.rollbackSteps(ctx, &run, "by hand, by "+by)
	state, reason := store.RunRolledBack, "rolled back by "+by
	if n == 0 {
		state, reason = before, "a rollback by "+by+" undid nothing"
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
func (h *Healer) RunAction(ctx context.Context, name string, raw map[string]string, dryRun bool, by string) (store.Run, error) {
	act, ok := h.opts.Actions.Get(name)
	if !ok {
		return store.Run{}, fmt.Errorf("unknown action %q", name)
	}
	spec := act.Spec()
	params, err := spec.Validate(raw)
	if err != nil {
		return store.Run{}, fmt.Errorf("%s: %w", name, err)
	}
	run := store.Run{
		ID: newID(), Alertname: "", Action: name, Target: targetOf(spec, params), Tier: spec.Tier.String(),
		DryRun: dryRun || h.cfg.Load().Global.DryRun, State: store.RunPending, CreatedAt: h.now(),
		Steps:  []store.StepRecord{{Action: name, Params: params, Target: targetOf(spec, params)}},
		Labels: map[string]string{"requested_by": by},
	}
	if err := h.opts.Store.InsertRun(ctx, run); err != nil {
		return run, err
	}
	rec := h.base(run)
	rec.Kind, rec.Fields = "requested", map[string]string{"by": by}
	if err := h.record(ctx, rec); err != nil {
		return run, err
	}
	h.mu.Lock()
	h.active[run.ID] = true
	h.wg.Add(1)
	h.mu.Unlock()
	err = h.execute(h.lifetime(ctx), run, false)
	h.mu.Lock()
	delete(h.active, run.ID)
	h.mu.Unlock()
	h.wg.Done()
	if err != nil {
		return run, err
	}
	return h.opts.Store.Run(ctx, run.ID)
}
