package healer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/deus-ex-machina/deus/internal/assess"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/config"
	"github.com/deus-ex-machina/deus/internal/guard"
	"github.com/deus-ex-machina/deus/internal/store"
)

// A Stage is one part of a run's life. It reads the run as the stages
// before it left it (the flow), does its one job, and says whether the run
// goes on to the next stage or this execution of it ends here: the run has
// reached a state where something else moves it next (a person, the
// expiry, recovery) or a final one.
type Stage interface {
	Name() string
	Exec(ctx context.Context, f *flow) (Verdict, error)
}

// Verdict is what a stage says of the run.
type Verdict int

// The verdicts.
const (
	Next Verdict = iota // go on to the next stage
	Stop                // this execution of the run ends here
)

// StageFunc is a Stage made of a function.
type StageFunc struct {
	name string
	fn   func(ctx context.Context, f *flow) (Verdict, error)
}

// Name implements Stage.
func (s StageFunc) Name() string { return s.name }

// Exec implements Stage.
func (s StageFunc) Exec(ctx context.Context, f *flow) (Verdict, error) { return s.fn(ctx, f) }

// Pipeline is stages run in order until one stops the run.
type Pipeline []Stage

// Name implements Stage.
func (Pipeline) Name() string { return "pipeline" }

// Exec runs the stages in order. A stage that lost a race to another
// decision (errSuperseded) stops the run without an error: the other
// decision stands, and the audit log says so.
func (p Pipeline) Exec(ctx context.Context, f *flow) (Verdict, error) {
	for _, s := range p {
		v, err := s.Exec(ctx, f)
		if errors.Is(err, errSuperseded) {
			return Stop, nil
		}
		if err != nil {
			return Stop, fmt.Errorf("%s: %w", s.Name(), err)
		}
		if v == Stop {
			return Stop, nil
		}
	}
	return Next, nil
}

// pipeline is the run's life, in the order its policy reads: is the run
// still where it was read, is the audit chain intact, is there still
// something to do (the runbook, the alert not resolved), does the
// precheck still hold, do the guards allow it, does it wait for a person,
// then start, run the steps, verify, and settle (succeeded, or roll back
// and escalate).
func (h *Healer) pipeline() Pipeline {
	return Pipeline{
		current{h},
		chainIntact{h},
		stillWanted{h},
		precheck{h},
		guards{h},
		assessment{h},
		approval{h},
		begin{h},
		steps{h},
		verification{h},
		settle{h},
	}
}

// flow is one execution of a run on its way through the pipeline: the run
// as the stages change it and what they found out.
type flow struct {
	run   store.Run
	rb    *config.Runbook // nil for a run by hand
	alert *store.StoredAlert
	// fresh: the run was planned by this process a moment ago and nothing
	// else has seen it, so its state need not be read back.
	fresh bool
	// decision is the guards'; its record precedes the change of state
	// that follows it (skipped, waiting or running).
	decision guard.Decision
	unlock   func() // the runbook's guard lock, held from guards to begin
	// assessment is the brain's, saved with the next change of state.
	assessment json.RawMessage
	// recheck and recheckHolds are the precheck's answer, for the brain.
	recheck      string
	recheckHolds assess.Signal
	// failed says why the run failed, once something did.
	failed    string
	silenceID string
	// pending are records of what already happened (the last step's
	// result) that go onto the log with the next one, in one fsync.
	pending []audit.Record
}

// flush writes the pending records.
func (h *Healer) flush(ctx context.Context, f *flow) error {
	if len(f.pending) == 0 {
		return nil
	}
	err := h.recordAll(ctx, f.pending)
	f.pending = nil
	return err
}

// release lets go of the runbook's guard lock if the flow holds it.
func (f *flow) release() {
	if f.unlock != nil {
		f.unlock()
		f.unlock = nil
	}
}

// errSuperseded is returned by transition when another decision moved the
// run first; the pipeline stops without an error.
var errSuperseded = fmt.Errorf("superseded by another decision: %w", store.ErrConflict)

// transition moves the run to state to. The audit record goes first: a
// step that is not in the log is not taken, so the record precedes the
// change it announces. Then the store, which refuses what the lifecycle
// forbids; if another decision (a cancellation, an approval, the expiry)
// moved the run first, the record did not take effect, a correcting
// record says so, and errSuperseded stops the run. Then the metric and the
// log.
func (h *Healer) transition(ctx context.Context, f *flow, to store.RunState, rec audit.Record, u store.Update) error {
	base := h.base(f.run)
	base.Kind, base.Result, base.Reason, base.Fields, base.Argv = rec.Kind, rec.Result, rec.Reason, rec.Fields, rec.Argv
	if rec.Action != "" {
		base.Action, base.Target = rec.Action, rec.Target
	}
	if err := h.recordAll(ctx, append(f.pending, base)); err != nil {
		return err
	}
	f.pending = nil
	from := f.run.State
	u.State = to
	if f.assessment != nil {
		u.Assessment, f.assessment = f.assessment, nil
	}
	if to.Final() && u.FinishedAt.IsZero() {
		u.FinishedAt = h.now()
	}
	if err := h.opts.Store.UpdateRun(ctx, f.run.ID, u, from); err != nil {
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
		lost := h.base(f.run)
		lost.Kind, lost.Result = audit.KindSkipped, "superseded"
		lost.Reason = fmt.Sprintf("the run was no longer %s when it was to become %s", from, to)
		// Written even when ctx ends (a shutdown): the record above must
		// not stand uncorrected.
		return errors.Join(errSuperseded, h.record(context.WithoutCancel(ctx), lost))
	}
	f.run.State = to
	if u.Reason != "" {
		f.run.Reason = u.Reason
	}
	if !u.StartedAt.IsZero() {
		f.run.StartedAt = u.StartedAt
	}
	if to.Final() {
		h.opts.Metrics.runs.WithLabelValues(f.run.Action, string(to)).Inc()
	}
	h.logger.Log(ctx, levelOf(to), "run_state_changed", "state", string(to), "from", string(from), "run_id", f.run.ID,
		"runbook", f.run.Runbook, "action", f.run.Action, "target", f.run.Target, "reason", u.Reason)
	return nil
}

// levelOf is how loud a change of state is logged: every decision at info
// (STYLE: every action decision), failures at warn.
func levelOf(s store.RunState) slog.Level {
	switch s {
	case store.RunFailed, store.RunRolledBack, store.RunInterrupted:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}
