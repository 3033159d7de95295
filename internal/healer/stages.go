package healer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/assess"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/guard"
	"github.com/deus-ex-machina/deus/internal/store"
)

// The stages, in the order of the pipeline. Each does one thing; a change
// of the run's state goes through Healer.transition, whose audit record
// precedes it.

// current ends this execution of a run that moved on since it was read:
// resume lists runs, then starts those not active, and one may have ended
// in between. A run this process just made or moved needs no reading.
type current struct{ h *Healer }

func (current) Name() string { return "current" }

func (s current) Exec(ctx context.Context, f *flow) (Verdict, error) {
	if f.fresh {
		return Next, nil
	}
	cur, err := s.h.opts.Store.Run(ctx, f.run.ID)
	if err != nil {
		return Stop, err
	}
	if cur.State != f.run.State {
		return Stop, nil
	}
	return Next, nil
}

// chainIntact ends every run that comes to act while the audit log fails
// its check against the head stored in the database: what the healer does
// must be on a record nobody cut.
type chainIntact struct{ h *Healer }

func (chainIntact) Name() string { return "audit_chain" }

func (s chainIntact) Exec(ctx context.Context, f *flow) (Verdict, error) {
	err := s.h.chainBroken()
	if err == nil {
		return Next, nil
	}
	why := notActing(err)
	rec := audit.Record{Kind: audit.KindSkipped, Result: string(store.RunSkipped), Reason: why}
	return Stop, s.h.transition(ctx, f, store.RunSkipped, rec, store.Update{Reason: why})
}

// stillWanted ends a run that has nothing left to do: its runbook was
// removed, or its alert resolved before it started.
type stillWanted struct{ h *Healer }

func (stillWanted) Name() string { return "still_wanted" }

func (s stillWanted) Exec(ctx context.Context, f *flow) (Verdict, error) {
	h := s.h
	if f.run.Runbook != "" && f.rb == nil {
		const why = "the runbook was removed from the configuration"
		rec := audit.Record{Kind: audit.KindSkipped, Result: string(store.RunSkipped), Reason: why}
		return Stop, h.transition(ctx, f, store.RunSkipped, rec, store.Update{Reason: why})
	}
	if f.alert == nil {
		a, err := h.alertOf(ctx, f.run)
		if err != nil {
			return Stop, err
		}
		f.alert = a
	}
	if f.alert != nil && f.alert.Status == alertmanager.StatusFiring {
		resolved, err := h.opts.Store.Resolved(ctx, f.alert.Fingerprint, f.alert.StartsAt)
		if err != nil {
			return Stop, err
		}
		if resolved {
			const why = "the alert resolved before the run started"
			return Stop, h.transition(ctx, f, store.RunCancelled, audit.Record{Kind: audit.KindSkipped, Result: string(store.RunCancelled), Reason: why},
				store.Update{Reason: why})
		}
	}
	return Next, nil
}

// precheck asks the runbook's PromQL precheck whether the condition still
// holds, and skips the run when it does not (or cannot be asked).
type precheck struct{ h *Healer }

func (precheck) Name() string { return "precheck" }

func (s precheck) Exec(ctx context.Context, f *flow) (Verdict, error) {
	h := s.h
	if f.rb == nil || f.rb.Precheck == nil {
		return Next, nil
	}
	ok, detail, err := h.condition(ctx, f.rb.Precheck, f.run.Labels)
	rec := h.base(f.run)
	rec.Kind, rec.Fields = audit.KindPrechecked, map[string]string{"query": detail}
	switch {
	case err != nil:
		rec.Result, rec.Reason = "error", err.Error()
	case ok:
		rec.Result = "holds"
		f.recheck, f.recheckHolds = detail, assess.SignalYes
	default:
		rec.Result = "no_longer_true"
	}
	if rerr := h.record(ctx, rec); rerr != nil {
		return Stop, rerr
	}
	why := ""
	switch {
	case err != nil:
		why = "precheck failed: " + err.Error()
	case !ok:
		why = "precheck: the condition no longer holds"
	default:
		return Next, nil
	}
	return Stop, h.transition(ctx, f, store.RunSkipped, audit.Record{Kind: audit.KindSkipped, Result: string(store.RunSkipped), Reason: why},
		store.Update{Reason: why})
}

// guards checks the guards. They read the runbook's past runs, so checking
// them and recording this run's start are one step: the runbook's guard
// lock is taken here and let go by begin (or when the run stops), or two
// alerts about one target arriving together would both pass the cooldown
// (and the rate and blast radius limits could be overrun the same way).
type guards struct{ h *Healer }

func (guards) Name() string { return "guard" }

func (s guards) Exec(ctx context.Context, f *flow) (Verdict, error) {
	h := s.h
	f.unlock = h.lockRunbook(f.run.Runbook)
	d, err := h.guard(ctx, f.run, f.rb, f.run.State == store.RunApproved)
	if err != nil {
		return Stop, err
	}
	f.decision = d
	if d.Verdict == guard.Defer {
		// Not now: the run waits, and says until when.
		h.opts.Metrics.guarded.WithLabelValues(d.Guard).Inc()
		err = h.transition(ctx, f, store.RunScheduled, guardedRecord(d), store.Update{Reason: d.Reason, ExpiresAt: d.Until})
		f.release()
		return Stop, err
	}
	if d.Verdict != guard.Skip {
		return Next, nil
	}
	h.opts.Metrics.guarded.WithLabelValues(d.Guard).Inc()
	err = h.transition(ctx, f, store.RunSkipped, guardedRecord(d), store.Update{Reason: d.Reason})
	f.release()
	return Stop, err
}

// guardedRecord is the audit record of the guards' decision, which
// precedes the change of state it leads to.
func guardedRecord(d guard.Decision) audit.Record {
	rec := audit.Record{Kind: audit.KindGuarded, Result: d.Verdict.String(), Reason: d.Reason}
	if d.Guard != "" {
		rec.Fields = map[string]string{"guard": d.Guard}
	}
	return rec
}

// approval makes a run above the tier ceiling wait for a person (a dry run
// says what it would do, and needs nobody's approval).
type approval struct{ h *Healer }

func (approval) Name() string { return "approval" }

func (s approval) Exec(ctx context.Context, f *flow) (Verdict, error) {
	h := s.h
	if f.decision.Verdict != guard.NeedApproval || f.run.DryRun {
		return Next, nil
	}
	expires := h.now().Add(time.Duration(h.cfg.Load().Global.ApprovalTimeout))
	err := h.transition(ctx, f, store.RunWaiting, guardedRecord(f.decision), store.Update{Reason: f.decision.Reason, ExpiresAt: expires})
	f.release()
	return Stop, err
}

// begin records the start: the run is running from here, and the guard
// lock is let go, since the guards of the next run now count this one.
type begin struct{ h *Healer }

func (begin) Name() string { return "begin" }

func (s begin) Exec(ctx context.Context, f *flow) (Verdict, error) {
	err := s.h.transition(ctx, f, store.RunRunning, guardedRecord(f.decision), store.Update{StartedAt: s.h.now()})
	f.release()
	if err != nil {
		return Stop, err
	}
	return Next, nil
}

// steps runs the run's steps in order, each recorded before it runs and
// after; the first that fails ends the steps.
type steps struct{ h *Healer }

func (steps) Name() string { return "steps" }

func (s steps) Exec(ctx context.Context, f *flow) (Verdict, error) {
	if err := s.silence(ctx, f); err != nil {
		return Stop, err
	}
	for i := range f.run.Steps {
		failed, err := s.step(ctx, f, i)
		if err != nil {
			return Stop, err
		}
		if failed != "" {
			f.failed = failed
			break
		}
	}
	if err := ctx.Err(); err != nil && !f.run.DryRun {
		// Stopping: leave the run as running for recovery; no
		// verification, rollback or escalation on the way out.
		return Stop, err
	}
	return Next, nil
}

// silence creates the runbook's Alertmanager silence for the time the run
// acts (expired by execute when the run ends).
func (s steps) silence(ctx context.Context, f *flow) error {
	h := s.h
	if f.rb == nil || f.rb.Silence == nil || h.opts.Alertmanager == nil || f.run.DryRun {
		return nil
	}
	id, err := h.opts.Alertmanager.Silence(ctx, f.run.Labels, time.Duration(f.rb.Silence.Duration), "deus-healer run "+f.run.ID+" ("+f.rb.Name+")", h.now())
	rec := h.base(f.run)
	rec.Kind = audit.KindSilenced
	if err != nil {
		rec.Result, rec.Reason = "failed", err.Error()
	} else {
		rec.Result, rec.Fields = "created", map[string]string{"silence_id": id}
		f.silenceID = id
	}
	return h.record(ctx, rec)
}

// step runs step i, and returns why it failed ("" when it did not) or the
// error that stops the run.
func (s steps) step(ctx context.Context, f *flow, i int) (string, error) {
	h := s.h
	st := &f.run.Steps[i]
	act, ok := h.opts.Actions.Get(st.Action)
	if !ok {
		return fmt.Sprintf("step %d: action %q is not available", i, st.Action), nil
	}
	rec := h.base(f.run)
	rec.Kind, rec.Action, rec.Target = audit.KindStarted, st.Action, st.Target
	rec.Fields = map[string]string{"step": strconv.Itoa(i)}
	for k, v := range st.Params {
		rec.Fields["param."+k] = v
	}
	if err := h.record(ctx, rec); err != nil {
		// Not recorded, not taken: stop here and leave the run as running,
		// for recovery to mark it interrupted. Rolling back earlier steps
		// now would be another unrecorded step.
		return "", err
	}
	o := s.act(ctx, f, i, act)
	return s.finished(ctx, f, i, o)
}

// outcome is what running an action did.
type outcome struct {
	res      action.Result
	err      error
	timedOut bool
	dur      time.Duration
	holds    []action.Hold
}

// act runs step i's action under its timeout. What holds each command the
// step runs is stored before the command starts, for recovery to kill if
// the healer dies.
func (s steps) act(ctx context.Context, f *flow, i int, act action.Action) outcome {
	h := s.h
	run := &f.run
	st := &run.Steps[i]
	timeout := act.Spec().Timeout
	if f.rb != nil && i < len(f.rb.Steps) && f.rb.Steps[i].Timeout > 0 {
		timeout = time.Duration(f.rb.Steps[i].Timeout)
	}
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var o outcome
	actx = action.WithHoldReporter(actx, func(hd action.Hold) error {
		o.holds = putHold(o.holds, hd)
		b, err := json.Marshal(o.holds)
		if err != nil {
			return err
		}
		st.Held = b
		return h.opts.Store.UpdateRun(ctx, run.ID, store.Update{Steps: run.Steps})
	})
	t0 := h.now()
	o.res, o.err = act.Run(actx, action.Request{RunID: run.ID, Params: st.Params, DryRun: run.DryRun, Alert: alertJSON(*run, f.alert)})
	o.dur = h.now().Sub(t0)
	o.timedOut = errors.Is(actx.Err(), context.DeadlineExceeded)
	h.opts.Metrics.duration.WithLabelValues(st.Action).Observe(o.dur.Seconds())
	return o
}

// finished records what step i did, in the run and the audit log, and
// returns why it failed ("" when it did not).
func (s steps) finished(ctx context.Context, f *flow, i int, o outcome) (string, error) {
	h := s.h
	run := &f.run
	st := &run.Steps[i]
	if o.res.Target != "" {
		st.Target = o.res.Target
	}
	st.Argv, st.Output, st.Undo = o.res.Argv, o.res.Output, o.res.Undo
	rec := h.base(*run)
	rec.Kind, rec.Action, rec.Target, rec.Argv = audit.KindFinished, st.Action, st.Target, o.res.Argv
	rec.Fields = map[string]string{"step": strconv.Itoa(i), "duration_seconds": strconv.FormatFloat(o.dur.Seconds(), 'f', 3, 64)}
	if o.res.Summary != "" {
		rec.Fields["summary"] = o.res.Summary
	}
	if len(o.holds) > 0 {
		rec.Fields["held_by"] = holdsText(o.holds)
	}
	failed := ""
	switch {
	case o.err != nil:
		st.State, st.Error = store.StepFailed, o.err.Error()
		rec.Result, rec.Reason = "failed", o.err.Error()
		if o.timedOut {
			rec.Result = "timeout"
		}
		failed = fmt.Sprintf("step %d (%s): %v", i, st.Action, o.err)
	case run.DryRun:
		st.State, rec.Result = store.StepDryRun, "dry_run"
	default:
		st.State, rec.Result = store.StepOK, "ok"
	}
	// The last step's result goes to the store and the log with the run's
	// end (settle), one write and one fsync fewer, unless a verification
	// of it comes in between. It records what already happened: a crash
	// before settle leaves the run running, and recovery treats it as one
	// that was acting.
	last := i == len(run.Steps)-1 || failed != ""
	if last && (failed != "" || f.rb == nil || f.rb.Verify == nil || run.DryRun) {
		f.pending = append(f.pending, rec)
		return failed, nil
	}
	if aerr := h.record(ctx, rec); aerr != nil {
		if uerr := h.opts.Store.UpdateRun(ctx, run.ID, store.Update{Steps: run.Steps}); uerr != nil {
			return "", errors.Join(aerr, uerr)
		}
		return "", aerr
	}
	if err := h.opts.Store.UpdateRun(ctx, run.ID, store.Update{Steps: run.Steps}); err != nil {
		return "", err
	}
	return failed, nil
}

// verification asks the runbook's verification query until it holds or
// its deadline passes.
type verification struct{ h *Healer }

func (verification) Name() string { return "verify" }

func (s verification) Exec(ctx context.Context, f *flow) (Verdict, error) {
	h := s.h
	if f.failed != "" || f.run.DryRun || f.rb == nil || f.rb.Verify == nil {
		return Next, nil
	}
	ok, detail, err := h.verify(ctx, f.rb.Verify, f.run.Labels)
	rec := h.base(f.run)
	rec.Kind, rec.Fields = audit.KindVerified, map[string]string{"query": detail}
	switch {
	case err != nil:
		rec.Result, rec.Reason = "error", err.Error()
		f.failed = "verification failed: " + err.Error()
	case ok:
		rec.Result = "ok"
	default:
		rec.Result = "failed"
		f.failed = fmt.Sprintf("verification: the condition did not hold within %s", time.Duration(f.rb.Verify.Within))
	}
	if err := h.record(ctx, rec); err != nil {
		return Stop, err
	}
	return Next, nil
}

// settle ends the run: a dry run says what it would have done; a run that
// did what it should closes its breaker and succeeds; one that failed is
// rolled back, counts towards its breaker and is escalated.
type settle struct{ h *Healer }

func (settle) Name() string { return "settle" }

func (s settle) Exec(ctx context.Context, f *flow) (Verdict, error) {
	h := s.h
	end := func(state store.RunState, reason string) error {
		return h.transition(ctx, f, state, audit.Record{Kind: audit.KindFinished, Result: string(state), Reason: reason},
			store.Update{Reason: reason, Steps: f.run.Steps})
	}
	if f.run.DryRun {
		// A dry run changed nothing: it neither counts for the breaker nor
		// pages anyone.
		if f.failed != "" {
			return Stop, end(store.RunFailed, "dry run: "+f.failed)
		}
		return Stop, end(store.RunDryRun, "dry run: nothing was changed")
	}
	if f.failed == "" {
		if err := s.closeBreaker(ctx, f); err != nil {
			return Stop, err
		}
		return Stop, end(store.RunSucceeded, "")
	}
	// The failed step's record goes before the rollback's.
	if err := h.flush(ctx, f); err != nil {
		return Stop, err
	}
	state := store.RunFailed
	if f.rb == nil || f.rb.ShouldRollback() {
		rolled, err := h.rollbackSteps(ctx, &f.run, "automatic, after: "+f.failed, nil)
		if err != nil {
			return Stop, err
		}
		if rolled > 0 {
			state = store.RunRolledBack
		}
	}
	reason, escalate, err := s.countFailure(ctx, f)
	if err != nil {
		return Stop, err
	}
	if err := end(state, reason); err != nil {
		return Stop, err
	}
	if escalate {
		return Stop, h.escalate(ctx, f.run, reason)
	}
	return Stop, nil
}

// closeBreaker resets the runbook's breaker on the target after a success.
func (s settle) closeBreaker(ctx context.Context, f *flow) error {
	h := s.h
	if f.rb == nil || f.rb.CircuitBreaker == nil {
		return nil
	}
	unlock := h.lockRunbook(f.run.Runbook)
	defer unlock()
	b, err := h.opts.Store.Breaker(ctx, f.run.Runbook, f.run.Target)
	if err != nil {
		return err
	}
	if b.Failures == 0 {
		return nil
	}
	return h.opts.Store.SaveBreaker(ctx, withBreaker(b, guard.Succeeded(breakerOf(b))))
}

// countFailure counts a failure towards the runbook's breaker and says why
// the run failed and whether to escalate: while a breaker is open, only
// when it opens.
func (s settle) countFailure(ctx context.Context, f *flow) (string, bool, error) {
	h := s.h
	reason, escalate := f.failed, f.rb != nil && f.rb.ShouldEscalate()
	if f.rb == nil || f.rb.CircuitBreaker == nil {
		return reason, escalate, nil
	}
	unlock := h.lockRunbook(f.run.Runbook)
	defer unlock()
	sb, err := h.opts.Store.Breaker(ctx, f.run.Runbook, f.run.Target)
	if err != nil {
		return "", false, err
	}
	b, opened := guard.Failed(h.policy(f.rb), breakerOf(sb), h.now())
	if opened {
		reason += fmt.Sprintf("; circuit breaker opened after %d failures in a row", b.Failures)
		h.logger.Warn("circuit_breaker_opened", "runbook", f.run.Runbook, "target", f.run.Target, "failures", b.Failures)
	}
	if !b.OpenedAt.IsZero() {
		escalate = escalate && opened && !b.Escalated
		b.Escalated = b.Escalated || escalate
	}
	return reason, escalate, h.opts.Store.SaveBreaker(ctx, withBreaker(sb, b))
}

// breakerOf is the guards' view of a stored breaker.
func breakerOf(b store.Breaker) guard.Breaker {
	return guard.Breaker{Failures: b.Failures, OpenedAt: b.OpenedAt, LastFailure: b.LastFailure, Escalated: b.Escalated}
}

// withBreaker is stored breaker sb with the state the guards made of it.
func withBreaker(sb store.Breaker, b guard.Breaker) store.Breaker {
	sb.Failures, sb.OpenedAt, sb.LastFailure, sb.Escalated = b.Failures, b.OpenedAt, b.LastFailure, b.Escalated
	return sb
}
