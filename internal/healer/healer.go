// Package healer is the healer's pipeline after intake: it plans what to do
// about each accepted alert (match a runbook, render and validate the
// parameters, check the host), then runs the plan: precheck, guards,
// approval, act, verify, roll back or escalate, with an audit record written
// before each step is taken.
//
// The store is the work queue: an alert is "new" until it is planned, and a
// run moves through pending, (waiting, approved,) running and a final state.
// After a crash, alerts still new are planned, runs not yet started are run,
// and of runs that were running, whatever is left of their commands (the
// cgroup or process group recorded as each command started) is killed,
// then they are marked interrupted and re-planned only if their runbook
// has a precheck to ask first and nothing of them was left running:
// nothing is blindly repeated. One not re-planned is escalated, as a
// failed run is: what its last step did is unknown.
package healer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/common/model"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/assess"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/config"
	"github.com/deus-ex-machina/deus/internal/query"
	"github.com/deus-ex-machina/deus/internal/store"
)

// Alertmanager is what the healer asks of Alertmanager's API.
type Alertmanager interface {
	Escalate(ctx context.Context, labels, annotations map[string]string, now time.Time) error
	Silence(ctx context.Context, labels map[string]string, d time.Duration, comment string, now time.Time) (string, error)
	Expire(ctx context.Context, id string) error
	Silenced(ctx context.Context, fingerprint string, labels map[string]string) (bool, error)
	// ActiveSilence names an active silence whose matchers all match
	// labels ("" for none): a maintenance freeze.
	ActiveSilence(ctx context.Context, labels map[string]string) (string, error)
}

// Options are the healer's dependencies.
type Options struct {
	Store   *store.Store
	Audit   *audit.Log
	Actions *action.Registry
	// Querier answers prechecks, verifications and gates; nil when no
	// Prometheus is configured.
	Querier query.Querier
	// Alertmanager escalates, silences and says what is silenced; nil
	// when none is configured.
	Alertmanager Alertmanager
	Metrics      *Metrics
	Logger       *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Brain assesses each run between the guards and approval; nil
	// assesses nothing.
	Brain assess.Assessor
	// BrainRequest returns the request a model would be sent for a
	// context, for healer assess --dry-run; nil without a model.
	BrainRequest func(assess.Context) ([]byte, error)
	// PollInterval is how often waiting approvals are checked for expiry
	// and the queue for work missed by a wake-up; 0 means 1s.
	PollInterval time.Duration
	// AuditChain reports what checking the audit log against the head
	// stored in the database found at start: nil when they match. While
	// it returns an error no action runs: every run that comes to act
	// ends skipped, saying why, before its precheck and guards, a
	// rollback by hand is refused, and Run escalates once. Nil means the
	// chain is not checked.
	AuditChain func() error
}

// Healer runs the pipeline.
type Healer struct {
	opts   Options
	cfg    atomic.Pointer[config.Config]
	logger *slog.Logger
	now    func() time.Time
	wake   chan struct{}
	sem    chan struct{}

	// fresh holds the alerts this process accepted and has not planned
	// yet, by key, so that the planner need not read them back; the store
	// stays the queue (alerts accepted by an earlier process are read
	// from it).
	// auditFailed is set when an audit append failed: the chain on disk
	// may then lack a record of a step (deus_healer_audit_chain_ok).
	auditFailed atomic.Bool

	freshMu sync.Mutex
	fresh   map[string]store.StoredAlert

	windows maintenancePlan

	mu         sync.Mutex
	active     map[string]bool // runs being executed by this process
	guardLocks map[string]*sync.Mutex
	wg         sync.WaitGroup
	runCtx     context.Context
	started    chan struct{}
}

// New returns a healer with the configuration cfg.
func New(opts Options, cfg *config.Config) *Healer {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = time.Second
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	h := &Healer{
		opts: opts, logger: opts.Logger, now: opts.Now,
		wake:       make(chan struct{}, 1),
		sem:        make(chan struct{}, cfg.Global.Concurrency),
		active:     map[string]bool{},
		guardLocks: map[string]*sync.Mutex{},
		fresh:      map[string]store.StoredAlert{},
		started:    make(chan struct{}),
	}
	h.cfg.Store(cfg)
	return h
}

// AuditFailed reports whether an audit append failed since start.
func (h *Healer) AuditFailed() bool { return h.auditFailed.Load() }

// Config returns the configuration in use.
func (h *Healer) Config() *config.Config { return h.cfg.Load() }

// SetConfig replaces the configuration (a reload). Runs already planned
// keep the steps they were planned with and use the runbook's current
// guards and verification; a runbook that was removed ends them as skipped.
func (h *Healer) SetConfig(cfg *config.Config) { h.cfg.Store(cfg) }

// Accept stores alerts durably (see store.Accept) and wakes the planner.
func (h *Healer) Accept(ctx context.Context, source string, alerts []alertmanager.Alert) (store.AcceptResult, error) {
	// The alerts are offered to the planner's memory before the commit, so
	// that the planner, which may see them queued as soon as the commit is
	// done, finds them there; duplicates and failures are withdrawn after.
	now := h.now()
	keys := make([]string, len(alerts))
	var offered []bool
	h.freshMu.Lock()
	for i, a := range alerts {
		keys[i] = a.Key()
		_, held := h.fresh[keys[i]]
		take := !held && len(h.fresh) < maxFresh
		offered = append(offered, take)
		if take {
			h.fresh[keys[i]] = store.StoredAlert{Alert: a, Key: keys[i], Source: source, ReceivedAt: now, Deliveries: 1, State: store.AlertNew}
		}
	}
	h.freshMu.Unlock()
	res, err := h.opts.Store.AcceptKeyed(ctx, source, alerts, keys)
	h.freshMu.Lock()
	for i := range alerts {
		if offered[i] && (err != nil || !res[i]) {
			delete(h.fresh, keys[i])
		}
	}
	h.freshMu.Unlock()
	if err != nil {
		h.opts.Metrics.intakeErrors.Inc()
		return nil, err
	}
	var firing, resolved, dups int
	for i, a := range alerts {
		switch {
		case !res[i]:
			dups++
		case a.Status == alertmanager.StatusResolved:
			resolved++
		default:
			firing++
		}
	}
	if firing > 0 {
		h.opts.Metrics.received.WithLabelValues(string(alertmanager.StatusFiring), source).Add(float64(firing))
	}
	if resolved > 0 {
		h.opts.Metrics.received.WithLabelValues(string(alertmanager.StatusResolved), source).Add(float64(resolved))
	}
	if dups > 0 {
		h.opts.Metrics.duplicates.WithLabelValues(source).Add(float64(dups))
	}
	h.poke()
	return res, nil
}

func (h *Healer) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// maxFresh bounds the alerts kept in memory for the planner; beyond it
// (a storm the planner is behind on) they are read back from the store.
const maxFresh = 100_000

// queued returns up to limit alerts waiting to be planned, oldest first:
// from memory when this process accepted them, from the store otherwise.
func (h *Healer) queued(ctx context.Context, limit int) ([]store.StoredAlert, error) {
	refs, err := h.opts.Store.QueuedRefs(ctx, limit)
	if err != nil || len(refs) == 0 {
		return nil, err
	}
	out := make([]store.StoredAlert, len(refs))
	var missing []int64
	at := map[int64]int{}
	h.freshMu.Lock()
	for i, r := range refs {
		if a, ok := h.fresh[r.Key]; ok {
			a.ID = r.ID
			out[i] = a
			continue
		}
		missing = append(missing, r.ID)
		at[r.ID] = i
	}
	h.freshMu.Unlock()
	if len(missing) > 0 {
		read, err := h.opts.Store.AlertsByID(ctx, missing)
		if err != nil {
			return nil, err
		}
		for _, a := range read {
			out[at[a.ID]] = a
		}
		// An alert pruned meanwhile leaves a hole; drop it.
		kept := out[:0]
		for _, a := range out {
			if a.Key != "" {
				kept = append(kept, a)
			}
		}
		out = kept
	}
	return out, nil
}

// planned forgets the alerts the planner decided on, by key.
func (h *Healer) planned(keys []string) {
	h.freshMu.Lock()
	for _, k := range keys {
		delete(h.fresh, k)
	}
	h.freshMu.Unlock()
}

// Run plans and runs until ctx is done, then waits for the runs it started
// (which see ctx done: their actions are stopped).
func (h *Healer) Run(ctx context.Context) error {
	h.mu.Lock()
	h.runCtx = ctx
	h.mu.Unlock()
	close(h.started)
	defer func() {
		// The last records before a shutdown are covered by the stored
		// head too.
		if err := h.opts.Store.CommitAuditHead(context.WithoutCancel(ctx)); err != nil {
			h.logger.Error("audit_head_commit_failed", "err", err)
		}
	}()
	defer h.wg.Wait()
	if err := h.chainBroken(); err != nil {
		h.escalateChain(ctx, err)
	}
	if err := h.recover(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while recovering: the next start recovers again
		}
		return fmt.Errorf("recover: %w", err)
	}
	t := time.NewTicker(h.opts.PollInterval)
	defer t.Stop()
	for {
		if err := h.planNew(ctx); err != nil && ctx.Err() == nil {
			h.logger.Error("plan_failed", "err", err)
		}
		if err := h.expireApprovals(ctx); err != nil && ctx.Err() == nil {
			h.logger.Error("expire_approvals_failed", "err", err)
		}
		if err := h.releaseScheduled(ctx); err != nil && ctx.Err() == nil {
			h.logger.Error("release_scheduled_failed", "err", err)
		}
		if err := h.resume(ctx); err != nil && ctx.Err() == nil {
			h.logger.Error("resume_failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-h.wake:
			// Let a burst gather, so that it is planned in one batch
			// rather than one alert at a time.
			coalesce := time.NewTimer(coalesceDelay)
			select {
			case <-ctx.Done():
				coalesce.Stop()
				return nil
			case <-coalesce.C:
			}
		case <-t.C:
		}
	}
}

// coalesceDelay is how long the planner lets new alerts gather after the
// first one arrives: a few milliseconds on the way to an action, many
// fewer transactions and fsyncs in an alert storm.
const coalesceDelay = 25 * time.Millisecond

// resume starts the runs that are pending or approved and that nothing in
// this process executes: those whose execution stopped on an error (a
// failed audit append, a store error) are tried again, from the top.
func (h *Healer) resume(ctx context.Context) error {
	runs, err := h.opts.Store.Runs(ctx, store.RunFilter{States: []store.RunState{store.RunPending, store.RunApproved}, Limit: 1000})
	if err != nil {
		return err
	}
	for _, r := range runs {
		h.start(ctx, r, nil, false)
	}
	return nil
}

// recover resumes after a stop: runs not yet started are run. Of a run
// that was acting, what is left of its commands is killed first (see
// reap); then it is interrupted, and re-planned when a precheck can
// re-check it and nothing of it is left running, or escalated, since
// nobody knows what its last step did.
func (h *Healer) recover(ctx context.Context) error {
	runs, err := h.opts.Store.Runs(ctx, store.RunFilter{States: []store.RunState{store.RunPending, store.RunApproved, store.RunRunning}, Limit: 100000})
	if err != nil {
		return err
	}
	for _, r := range runs {
		if r.State != store.RunRunning {
			h.start(ctx, r, nil, false)
			continue
		}
		if err := h.interrupted(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// interrupted settles a run that was acting when the healer stopped: what
// is left of its commands is killed first, then it is marked interrupted
// and re-planned when a precheck can confirm the problem is still there,
// or escalated when not.
func (h *Healer) interrupted(ctx context.Context, r store.Run) error {
	left, err := h.reap(ctx, r)
	if err != nil {
		return err
	}
	reason := "the healer stopped while the run was acting; it is not repeated blindly"
	rb := h.runbook(r.Runbook)
	replan := rb != nil && rb.Precheck != nil && r.AlertKey != "" && left == ""
	switch {
	case replan:
		reason += "; re-planned, to be prechecked first"
	case left != "":
		reason += "; " + left + ", so it is not re-planned"
	default:
		reason += "; no precheck to re-check it with, so it is not re-planned"
	}
	step, unknown := interruptedStep(r)
	rec := audit.Record{
		Kind: audit.KindInterrupted, RunID: r.ID, Fingerprint: r.Fingerprint, Alertname: r.Alertname,
		Runbook: r.Runbook, Action: r.Action, Target: r.Target, Reason: reason, DryRun: r.DryRun,
	}
	if step >= 0 {
		rec.Fields = map[string]string{"step": strconv.Itoa(step), "step_action": r.Steps[step].Action}
	}
	if err := h.record(ctx, rec); err != nil {
		return err
	}
	// Not re-planned, an interrupted run pages like a failed one: before
	// the commit, so that a crash in between pages again rather than never
	// (Alertmanager folds the repeat into one).
	if !replan && !r.DryRun && (rb == nil || rb.ShouldEscalate()) {
		summary := fmt.Sprintf("The healer was stopped while acting on %s on %s; what it did is unknown.", r.Alertname, r.Labels["instance"])
		if err := h.escalateWith(ctx, r, map[string]string{"outcome": string(store.RunInterrupted)}, summary, unknown+"; "+reason); err != nil {
			return err
		}
	}
	var nr *store.Run
	if replan {
		n := h.replanned(r)
		nr = &n
	}
	// The interruption and the re-planned run are one commit: a crash
	// between them must not lose the re-plan.
	if err := h.opts.Store.Interrupt(ctx, r.ID, reason, h.now(), nr); err != nil {
		return err
	}
	h.opts.Metrics.runs.WithLabelValues(r.Action, string(store.RunInterrupted)).Inc()
	if nr != nil {
		h.start(ctx, *nr, nil, true)
	}
	return nil
}

// replanned is a new pending run doing what the interrupted run r was to
// do, with none of its results.
func (h *Healer) replanned(r store.Run) store.Run {
	n := r
	n.ID = newID()
	n.State = store.RunPending
	n.Reason = "re-planned after run " + r.ID + " was interrupted"
	n.CreatedAt = h.now()
	n.StartedAt, n.FinishedAt = time.Time{}, time.Time{}
	n.Steps = make([]store.StepRecord, len(r.Steps))
	for i, st := range r.Steps {
		n.Steps[i] = store.StepRecord{Action: st.Action, Params: st.Params, Target: st.Target}
	}
	return n
}

// interruptedStep returns the step of an interrupted run that was acting
// (the first without a result; -1 when every step had ended), and says
// what is unknown about the run.
func interruptedStep(r store.Run) (int, string) {
	for i, st := range r.Steps {
		if st.State != "" {
			continue
		}
		what := fmt.Sprintf("run %s was interrupted in step %d (%s", r.ID, i, st.Action)
		if st.Target != "" {
			what += " on " + st.Target
		}
		what += "): whether that step took effect, in part or in full, is unknown"
		if i > 0 {
			what += fmt.Sprintf("; steps 0 to %d had ended", i-1)
		}
		return i, what
	}
	return -1, fmt.Sprintf("run %s was interrupted after its steps had ended, before its result was recorded: whether it fixed anything is unknown", r.ID)
}

// reap makes sure nothing is left running of an interrupted run's
// commands, from what held them (StepRecord.Held): each one still there is
// killed and waited for, and an audit record says what was found and
// killed. It returns, when something could not be killed, what.
func (h *Healer) reap(ctx context.Context, r store.Run) (string, error) {
	var failed []string
	for i, st := range r.Steps {
		if len(st.Held) == 0 {
			continue
		}
		var holds []action.Hold
		if err := json.Unmarshal(st.Held, &holds); err != nil {
			failed = append(failed, fmt.Sprintf("step %d: what held its commands is unreadable: %v", i, err))
			continue
		}
		for _, hd := range holds {
			res, err := action.Reap(ctx, hd)
			rec := audit.Record{
				Kind: audit.KindReaped, RunID: r.ID, Fingerprint: r.Fingerprint, Alertname: r.Alertname,
				Runbook: r.Runbook, Action: st.Action, Target: st.Target,
				Fields: map[string]string{"step": strconv.Itoa(i), "held_by": hd.String(), "mechanism": hd.Mechanism},
			}
			if len(res.Found) > 0 {
				pids := make([]string, len(res.Found))
				for j, p := range res.Found {
					pids[j] = strconv.Itoa(p)
				}
				rec.Fields["found"] = strings.Join(pids, ",")
			}
			switch {
			case err != nil:
				rec.Result, rec.Reason = "failed", err.Error()
				failed = append(failed, fmt.Sprintf("step %d: %s: %v", i, hd, err))
			case len(res.Found) > 0:
				rec.Result = "killed"
				rec.Reason = fmt.Sprintf("%d processes of the interrupted run were still running; killed", len(res.Found))
			default:
				rec.Result, rec.Reason = "none_left", "nothing of the interrupted run's command was still running"
			}
			if err := h.record(ctx, rec); err != nil {
				return "", err
			}
			h.logger.Info("run_reaped", "run_id", r.ID, "step", i, "held_by", hd.String(), "result", rec.Result, "found", len(res.Found))
		}
	}
	if len(failed) > 0 {
		return "what was left of it could not all be killed (" + strings.Join(failed, "; ") + ")", nil
	}
	return "", nil
}

func (h *Healer) runbook(name string) *config.Runbook {
	for _, rb := range h.cfg.Load().Runbooks {
		if rb.Name == name {
			return rb
		}
	}
	return nil
}

// record appends an audit record. A record that cannot be written stops the
// step it was to precede.
func (h *Healer) record(ctx context.Context, rec audit.Record) error {
	if _, err := h.opts.Audit.Append(ctx, rec); err != nil {
		h.auditFailed.Store(true)
		h.opts.Metrics.auditErrors.Inc()
		h.logger.Error("audit_append_failed", "kind", string(rec.Kind), "run_id", rec.RunID, "err", err)
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// recordAll appends records with one write and one fsync.
func (h *Healer) recordAll(ctx context.Context, recs []audit.Record) error {
	if len(recs) == 1 {
		return h.record(ctx, recs[0])
	}
	if _, err := h.opts.Audit.AppendBatch(ctx, recs); err != nil {
		h.auditFailed.Store(true)
		h.opts.Metrics.auditErrors.Inc()
		h.logger.Error("audit_append_failed", "kind", string(recs[len(recs)-1].Kind), "run_id", recs[len(recs)-1].RunID, "err", err)
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

func newID() string { return strings.ToLower(ulid.Make().String()) }

func labelMap(ls model.LabelSet) map[string]string {
	m := make(map[string]string, len(ls))
	for k, v := range ls {
		m[string(k)] = string(v)
	}
	return m
}

// planNew plans every alert that is new, in batches: the audit records of
// a batch are written with one fsync, then its decisions are committed in
// one transaction, then its runs start.
func (h *Healer) planNew(ctx context.Context) error {
	for {
		alerts, err := h.queued(ctx, 256)
		if err != nil {
			return err
		}
		if len(alerts) == 0 {
			return nil
		}
		if err := h.planBatch(ctx, alerts); err != nil {
			return err
		}
	}
}

// planBatch plans a batch of alerts in order. A resolution is handled
// where it comes: what was planned before it is committed first, then it
// cancels the runs of its firing that wait.
func (h *Healer) planBatch(ctx context.Context, alerts []store.StoredAlert) error {
	firing := make([]store.StoredAlert, 0, len(alerts))
	for _, a := range alerts {
		if a.Status == alertmanager.StatusFiring {
			firing = append(firing, a)
		}
	}
	// A firing notification that comes after its own resolution (a late
	// retry) is stale.
	stale, err := h.opts.Store.ResolvedOf(ctx, firing)
	if err != nil {
		return err
	}
	g, err := h.newGrouper(ctx, alerts)
	if err != nil {
		return err
	}
	b := newBatch(len(alerts))
	for _, a := range alerts {
		if a.Status == alertmanager.StatusResolved {
			if err := b.commit(ctx, h); err != nil {
				return err
			}
			if err := h.record(ctx, received(a)); err != nil {
				return err
			}
			if err := h.cancelWaiting(ctx, a); err != nil {
				return err
			}
		} else {
			b.recs = append(b.recs, received(a))
		}
		r, d, run, err := h.plan(a, stale[a.Key])
		if err != nil {
			return fmt.Errorf("plan %s: %w", a.Key, err)
		}
		p := g.place(b, a, stale[a.Key], placed{r, d, run})
		b.add(a, p.recs, p.d, p.run)
	}
	return b.commit(ctx, h)
}

// batch is what the planner decided about alerts and has not committed:
// their audit records (written with one fsync), their decisions (one
// transaction), and the runs to start once both are done.
type batch struct {
	recs       []audit.Record
	decisions  []store.Decision
	runs       []plannedRun
	decided    []string // keys
	nUnmatched int
	// cancel are committed runs an incident's new acting alert replaced.
	cancel []superseded
}

func newBatch(n int) *batch {
	// A received and a matched record per alert, in most batches.
	return &batch{recs: make([]audit.Record, 0, 2*n), decisions: make([]store.Decision, 0, n), decided: make([]string, 0, n)}
}

func (b *batch) add(a store.StoredAlert, recs []audit.Record, d store.Decision, run *store.Run) {
	b.recs, b.decisions, b.decided = append(b.recs, recs...), append(b.decisions, d), append(b.decided, a.Key)
	if slices.ContainsFunc(recs, func(r audit.Record) bool { return r.Kind == audit.KindMatched && r.Result == unmatched }) {
		b.nUnmatched++
	}
	// A held run (incidents.group_wait) starts when it is released.
	if run != nil && run.State != store.RunScheduled {
		b.runs = append(b.runs, plannedRun{*run, a})
	}
}

// dropRun takes a run not yet committed out of the batch: its alert is
// done, with why. It reports whether the run was in the batch.
func (b *batch) dropRun(id, why string) bool {
	for i := range b.decisions {
		d := &b.decisions[i]
		j := slices.IndexFunc(d.Runs, func(r store.Run) bool { return r.ID == id })
		if j < 0 {
			continue
		}
		r := d.Runs[j]
		d.Runs = slices.Delete(d.Runs, j, j+1)
		if len(d.Runs) == 0 {
			d.State, d.Note = store.AlertDone, why
		}
		b.runs = slices.DeleteFunc(b.runs, func(p plannedRun) bool { return p.run.ID == id })
		b.recs = append(b.recs, audit.Record{
			Kind: audit.KindSkipped, Result: string(store.RunCancelled), RunID: id, Incident: r.IncidentID,
			Fingerprint: r.Fingerprint, Alertname: r.Alertname, Runbook: r.Runbook, Reason: why,
		})
		return true
	}
	return false
}

// commit writes the records, then commits the decisions, then starts the
// runs, and empties the batch.
func (b *batch) commit(ctx context.Context, h *Healer) error {
	if len(b.recs) > 0 {
		if _, err := h.opts.Audit.AppendBatch(ctx, b.recs); err != nil {
			h.auditFailed.Store(true)
			h.opts.Metrics.auditErrors.Inc()
			return fmt.Errorf("audit: %w", err)
		}
	}
	// A run an incident's cause supersedes is cancelled before the cause's
	// alert is marked planned: after a crash in between, the cause is
	// planned again and supersedes nothing more.
	if err := h.cancelSuperseded(ctx, b.cancel); err != nil {
		return err
	}
	if len(b.decisions) > 0 {
		if err := h.opts.Store.PlanBatch(ctx, b.decisions); err != nil {
			return err
		}
	}
	for _, p := range b.runs {
		h.start(ctx, p.run, &p.alert, true)
	}
	h.planned(b.decided)
	if b.nUnmatched > 0 {
		h.logger.Info("alerts_unmatched", "alerts", b.nUnmatched, "note", "no runbook matches them; each is in the audit log")
	}
	b.recs, b.decisions, b.runs, b.decided, b.nUnmatched, b.cancel = b.recs[:0], b.decisions[:0], b.runs[:0], b.decided[:0], 0, nil
	return nil
}

// plannedRun is a run the planner made and the alert it is for, handed to
// the pipeline as they are in memory.
type plannedRun struct {
	run   store.Run
	alert store.StoredAlert
}

func received(a store.StoredAlert) audit.Record {
	return audit.Record{
		Kind: audit.KindReceived, Result: string(a.Status), Fingerprint: a.Fingerprint, Alertname: string(a.Labels[model.AlertNameLabel]),
		Fields: map[string]string{"dedup_id": a.Key, "source": a.Source, "starts_at": a.StartsAt.Format(time.RFC3339Nano)},
	}
}

// plan decides what to do about one alert, and returns the audit records
// of the decision, the decision, and the run to start, if any.
func (h *Healer) plan(a store.StoredAlert, stale bool) ([]audit.Record, store.Decision, *store.Run, error) {
	cfg := h.cfg.Load()
	name := string(a.Labels[model.AlertNameLabel])
	base := audit.Record{Fingerprint: a.Fingerprint, Alertname: name}
	done := func(recs []audit.Record, note string) ([]audit.Record, store.Decision, *store.Run, error) {
		r := base
		r.Kind, r.Reason = audit.KindSkipped, note
		h.logger.Info("alert_skipped", "fingerprint", a.Fingerprint, "alertname", name, "status", string(a.Status), "reason", note)
		return append(recs, r), store.Decision{ID: a.ID, State: store.AlertDone, Note: note}, nil, nil
	}

	if stale {
		return done(nil, "the alert is already resolved; a stale firing notification is not acted on")
	}

	rb := match(cfg.Runbooks, a.Labels, string(a.Status))
	mrec := base
	mrec.Kind = audit.KindMatched
	if rb == nil {
		mrec.Result, mrec.Reason = unmatched, "no runbook matches a "+string(a.Status)+" alert with these labels"
		// Most alerts match nothing, a storm of them included: one by one
		// at debug (the audit log and the API have each), counted at info
		// by planNew.
		h.logger.Debug("alert_unmatched", "fingerprint", a.Fingerprint, "alertname", name, "status", string(a.Status))
		return []audit.Record{mrec}, store.Decision{ID: a.ID, State: store.AlertDone, Note: mrec.Reason}, nil, nil
	}
	mrec.Result, mrec.Runbook = "matched", rb.Name
	mrec.Fields = map[string]string{"dedup_id": a.Key}
	base.Runbook = rb.Name

	run, err := h.build(cfg, rb, a)
	if err != nil {
		return done([]audit.Record{mrec}, err.Error())
	}
	mrec.RunID = run.ID
	h.logger.Info("run_planned", "run_id", run.ID, "fingerprint", a.Fingerprint, "alertname", name, "runbook", rb.Name, "action", run.Action, "target", run.Target)
	return []audit.Record{mrec}, store.Decision{ID: a.ID, State: store.AlertPlanned, Runs: []store.Run{run}}, &run, nil
}

// unmatched is the result of the matched record of an alert no runbook
// matches.
const unmatched = "none"

// match returns the first runbook, in file order, that matches labels and
// acts on status: one alert, at most one runbook, as an Alertmanager route
// without continue.
func match(runbooks []*config.Runbook, ls model.LabelSet, status string) *config.Runbook {
	for _, rb := range runbooks {
		if rb.ActsOn(status) && rb.Matchers().Matches(ls) {
			return rb
		}
	}
	return nil
}

// requestedByKey is the run label naming who asked for a run by hand, as
// they are recorded (Actor.String).
const requestedByKey = "requested_by"

// build makes the run of rb for a: every step's parameters rendered from
// the alert and validated by the action's schema, the host checked.
func (h *Healer) build(cfg *config.Config, rb *config.Runbook, a store.StoredAlert) (store.Run, error) {
	labels, annotations := labelMap(a.Labels), labelMap(a.Annotations)
	// The run's labels are the alert's, but for the keys that say who asked
	// for a run by hand: an alert naming a requester would decide who may
	// approve it.
	tmpl := labels
	labels = maps.Clone(labels)
	delete(labels, requesterKey)
	delete(labels, requestedByKey)
	run := store.Run{
		ID: newID(), AlertKey: a.Key, Fingerprint: a.Fingerprint, Alertname: labels["alertname"],
		Runbook: rb.Name, State: store.RunPending, CreatedAt: h.now(), Labels: labels,
		DryRun: cfg.Global.DryRun || rb.DryRun,
	}
	remote := true
	var top action.Tier
	for i, st := range rb.Steps {
		act, ok := h.opts.Actions.Get(st.Action)
		if !ok {
			return run, fmt.Errorf("step %d: action %q is not available on this healer", i, st.Action)
		}
		spec := act.Spec()
		raw := make(map[string]string, len(st.Params))
		for k := range st.Params {
			t, ok := st.Template(k)
			if !ok {
				return run, fmt.Errorf("step %d param %q: not parsed when the configuration was loaded", i, k)
			}
			var err error
			if raw[k], err = t.Execute(tmpl, annotations); err != nil {
				return run, fmt.Errorf("step %d param %q: %w", i, k, err)
			}
		}
		params, err := spec.Validate(raw)
		if err != nil {
			return run, fmt.Errorf("step %d (%s): parameters refused: %w", i, st.Action, err)
		}
		if c, ok := act.(action.Checker); ok {
			if err := c.Check(params); err != nil {
				return run, fmt.Errorf("step %d (%s): %w", i, st.Action, err)
			}
		}
		run.Steps = append(run.Steps, store.StepRecord{Action: st.Action, Params: params, Target: targetOf(spec, params)})
		remote = remote && spec.Remote
		top = max(top, spec.Tier)
	}
	run.Action, run.Target, run.Tier = run.Steps[0].Action, run.Steps[0].Target, top
	if run.Target == "" {
		run.Target = labels[cfg.Global.InstanceLabel]
	}
	if !remote {
		inst, ok := labels[cfg.Global.InstanceLabel]
		if !ok {
			return run, fmt.Errorf("the alert has no %s label to tell which host it is about, and the runbook acts on this host", cfg.Global.InstanceLabel)
		}
		if !isSelf(inst, cfg.Global.Identity) {
			return run, fmt.Errorf("%s %q is not this host (%s); the runbook acts on this host", cfg.Global.InstanceLabel, inst, strings.Join(cfg.Global.Identity, ", "))
		}
	}
	return run, nil
}

// targetOf is what a step acts on: the value of its first parameter, which
// is the unit, path, address or process of every built-in.
func targetOf(spec action.Spec, params map[string]string) string {
	for _, p := range spec.Params {
		if v, ok := params[p.Name]; ok && v != "" {
			return v
		}
	}
	return ""
}

// isSelf reports whether instance names this host: it equals one of the
// identities, with or without a port.
func isSelf(instance string, identity []string) bool {
	host := instance
	if h, _, err := net.SplitHostPort(instance); err == nil {
		host = h
	}
	for _, id := range identity {
		if id == instance || id == host {
			return true
		}
	}
	return false
}

// cancelWaiting cancels the runs of a resolved alert's firing that have not
// started.
func (h *Healer) cancelWaiting(ctx context.Context, a store.StoredAlert) error {
	firing := a.Alert
	firing.Status = alertmanager.StatusFiring
	runs, err := h.opts.Store.Runs(ctx, store.RunFilter{AlertKey: firing.Key(), States: []store.RunState{store.RunPending, store.RunWaiting, store.RunApproved, store.RunScheduled}})
	if err != nil {
		return err
	}
	for _, r := range runs {
		const reason = "the alert resolved before the run started"
		rec := audit.Record{Kind: audit.KindSkipped, Result: string(store.RunCancelled), Reason: reason}
		if err := h.transition(ctx, h.newFlow(r, nil, true), store.RunCancelled, rec, store.Update{Reason: reason}); err != nil && !errors.Is(err, store.ErrConflict) {
			return err // on a conflict it started meanwhile, and the log says so
		}
	}
	return nil
}

// alertJSON is the alert handed to actions that pass it on.
func alertJSON(r store.Run, a *store.StoredAlert) json.RawMessage {
	v := map[string]any{"run_id": r.ID, "runbook": r.Runbook, "labels": r.Labels, "fingerprint": r.Fingerprint}
	if a != nil {
		v["status"] = a.Status
		v["annotations"] = labelMap(a.Annotations)
		v["startsAt"] = a.StartsAt
	}
	b, _ := json.Marshal(v)
	return b
}
