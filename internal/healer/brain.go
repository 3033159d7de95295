package healer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/assess"
	"github.com/deus-ex-machina/deus/internal/assess/mask"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/guard"
	"github.com/deus-ex-machina/deus/internal/store"
)

// assessment is the brain's stage, between the guards and approval: the
// run's alert and its context go to the assessor (the local analyzer, or
// a model in front of it), whose answer is validated against the runbook
// and recorded. It proposes; the guards and tiers have decided already and
// still decide: an act goes on as the runbook says, a none skips the run,
// an ask_human makes it wait for a person. It can never raise a tier,
// approve, or skip a guard, since an assessment has no field for them.
//
// A run a person approved is not assessed again, nor a run by hand, nor
// one on a resolved alert (its runbook asked to act on the resolution).
type assessment struct{ h *Healer }

func (assessment) Name() string { return "assess" }

func (s assessment) Exec(ctx context.Context, f *flow) (Verdict, error) {
	h := s.h
	if h.opts.Brain == nil || h.cfg.Load().Brain.Disabled || f.rb == nil || f.run.State == store.RunApproved ||
		f.alert == nil || f.alert.Status != alertmanager.StatusFiring {
		return Next, nil
	}
	c, err := h.assessContext(ctx, f)
	if err != nil {
		return Stop, err
	}
	a := conservative(ctx, h.assessRun(ctx, c), c, f.decision.Verdict == guard.NeedApproval)
	if err := h.recordAssessment(f, a); err != nil {
		return Stop, err
	}
	switch a.Decision {
	case assess.DecisionNone:
		why := "the assessment (" + a.By + ") proposes no action: " + a.Why
		f.release()
		return Stop, h.transition(ctx, f, store.RunSkipped, audit.Record{Kind: audit.KindSkipped, Result: string(store.RunSkipped), Reason: why}, store.Update{Reason: why})
	case assess.DecisionAskHuman:
		if f.decision.Verdict == guard.Allow {
			f.decision.Verdict = guard.NeedApproval
			f.decision.Reason = "the assessment (" + a.By + ") asks a person: " + a.Why
		}
	}
	return Next, nil
}

// conservative keeps a model from taking a person out of the loop: its
// act gives way to the local analyzer's ask_human, and its none on a run
// that waits for approval anyway becomes ask_human, so that the person
// the tiers call for is still asked.
func conservative(ctx context.Context, a assess.Assessment, c assess.Context, needsApproval bool) assess.Assessment {
	if a.By == assess.ByLocal {
		return a
	}
	if a.Decision == assess.DecisionNone && needsApproval {
		a.Decision, a.Action, a.Params = assess.DecisionAskHuman, "", nil
		a.Why = truncate("the model proposes no action, and the run needs a person's approval: "+a.Why, assess.MaxWhy)
		return a
	}
	if a.Decision == assess.DecisionAct {
		if local, err := (assess.Local{}).Assess(ctx, c); err == nil && local.Decision == assess.DecisionAskHuman {
			why := "the model proposes " + a.Action + ", but the local analyzer asks a person: " + local.Why
			a.Decision, a.Action, a.Params = assess.DecisionAskHuman, "", nil
			a.Why = truncate(why, assess.MaxWhy)
		}
	}
	return a
}

// assessRun asks the brain about c. An answer that fails the runbook's
// bounds (which the fallback should have caught) or an error (the local
// analyzer never fails) becomes a question for a person.
func (h *Healer) assessRun(ctx context.Context, c assess.Context) assess.Assessment {
	a, err := h.opts.Brain.Assess(ctx, c)
	if err == nil {
		err = assess.Validate(c, a)
	}
	if err != nil {
		return assess.Assessment{
			Decision: assess.DecisionAskHuman, Confidence: 0.5, Cause: "unknown", By: assess.ByLocal,
			Why: "the assessment failed", Fallback: truncate(err.Error(), assess.MaxFallback),
		}
	}
	return a
}

// recordAssessment puts the assessment on the run and its record with the
// records of what happened, both written with the run's next change of
// state (before anything acts): no write of its own per run.
func (h *Healer) recordAssessment(f *flow, a assess.Assessment) error {
	rec := h.base(f.run)
	rec.Kind, rec.Result, rec.Reason = audit.KindAssessed, string(a.Decision), a.Why
	rec.Fields = map[string]string{"by": a.By, "cause": a.Cause, "confidence": strconv.FormatFloat(a.Confidence, 'f', 2, 64)}
	if a.Action != "" {
		rec.Fields["action"] = a.Action
	}
	if a.Fallback != "" {
		rec.Fields["fallback"] = a.Fallback
	}
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	f.pending = append(f.pending, rec)
	f.run.Assessment, f.assessment = b, b
	return nil
}

// assessContext is what the brain sees of a run: the alert, the actions
// its runbook allows with the values the runbook gives them, the
// precheck's answer, this alert's recent runs on this host, and the other
// alerts of its incident.
func (h *Healer) assessContext(ctx context.Context, f *flow) (assess.Context, error) {
	c := assess.Context{
		AlertName: f.run.Alertname, Status: string(f.alert.Status), StartsAt: f.alert.StartsAt,
		Labels: maps.Clone(f.run.Labels), Annotations: labelMap(f.alert.Annotations), Runbook: f.run.Runbook,
		Allowed: h.options(f.run), Recheck: f.recheck, RecheckHolds: f.recheckHolds,
	}
	if f.rb.Precheck != nil && f.rb.Precheck.Forecast != nil {
		c.Forecast, c.ForecastCrosses = f.recheck, f.recheckHolds
	}
	past, err := h.opts.Store.Outcomes(ctx, f.run.Fingerprint, f.run.Runbook, 20)
	if err != nil {
		return c, fmt.Errorf("read the alert's past runs: %w", err)
	}
	for _, o := range past {
		switch o.State {
		case store.RunSucceeded:
			c.Healed++
		case store.RunFailed, store.RunRolledBack:
			c.Failed++
		default:
			continue
		}
		c.History = append(c.History, fmt.Sprintf("%s: runbook %s %s", o.CreatedAt.UTC().Format(time.RFC3339), f.run.Runbook, o.State))
	}
	if f.run.IncidentID != "" {
		in, err := h.opts.Store.Incident(ctx, f.run.IncidentID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return c, fmt.Errorf("read the run's incident: %w", err)
		}
		// The other alerts are shown without their identity labels (host
		// and user names, as the masker knows them): they are this
		// host's alerts, and a model is sent only what it masks.
		cfg := h.cfg.Load()
		shown := func(ls model.LabelSet) string {
			out := model.LabelSet{}
			for k, v := range ls {
				_, id := mask.DefaultFields[string(k)]
				_, conf := cfg.Brain.Mask.Fields[string(k)]
				if !id && !conf {
					out[k] = v
				}
			}
			return out.String()
		}
		for _, m := range in.Members {
			if m.Key != f.run.AlertKey {
				c.Related = append(c.Related, shown(m.Labels))
			}
		}
		for _, m := range cfg.Incidents.Rules().CausesOf(&in, f.run.AlertKey) {
			c.Causes = append(c.Causes, shown(m.Labels))
		}
	}
	return c, nil
}

// options are the actions the run's steps take, each once, with the
// values the runbook gives their parameters.
func (h *Healer) options(r store.Run) []assess.Option {
	var out []assess.Option
	for _, st := range r.Steps {
		if slices.ContainsFunc(out, func(o assess.Option) bool { return o.Name == st.Action }) {
			continue
		}
		o := assess.Option{Name: st.Action, Fixed: maps.Clone(st.Params)}
		if act, ok := h.opts.Actions.Get(st.Action); ok {
			spec := act.Spec()
			o.Tier = spec.Tier.String()
			for _, p := range spec.Params {
				o.Params = append(o.Params, assess.Param{Name: p.Name, Required: p.Required})
			}
		}
		out = append(out, o)
	}
	return out
}

// truncate cuts s to at most n bytes, whole runes only.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// AssessView is what healer assess shows of an alert: the context the
// brain is given and, for a dry run, the exact request a model would be
// sent (masked), or otherwise the assessment. Nothing is acted on.
type AssessView struct {
	Alert      string             `json:"alert"`
	Runbook    string             `json:"runbook"`
	Context    assess.Context     `json:"context"`
	Request    json.RawMessage    `json:"request,omitempty"`
	Assessment *assess.Assessment `json:"assessment,omitempty"`
	Note       string             `json:"note,omitempty"`
}

// ErrNothingToAssess is returned for an alert no runbook matches.
var ErrNothingToAssess = errors.New("no runbook matches the alert: there is nothing to assess")

// Assess shows what the brain is given for the stored alert ref (its key,
// or a fingerprint for the newest alert of it) and what it answers; with
// dryRun nothing is sent anywhere, and the request a model would be sent
// is returned instead. It acts on nothing.
func (h *Healer) Assess(ctx context.Context, ref string, dryRun bool) (AssessView, error) {
	a, err := h.alertByRef(ctx, ref)
	if err != nil {
		return AssessView{}, err
	}
	cfg := h.cfg.Load()
	rb := match(cfg.Runbooks, a.Labels, string(a.Status))
	if rb == nil {
		return AssessView{}, fmt.Errorf("alert %s: %w", a.Key, ErrNothingToAssess)
	}
	run, err := h.build(cfg, rb, a)
	if err != nil {
		return AssessView{}, fmt.Errorf("alert %s: %w", a.Key, err)
	}
	f := &flow{run: run, rb: rb, alert: &a}
	if rb.Precheck != nil {
		if ok, detail, err := h.condition(ctx, rb.Precheck, run.Labels); err == nil {
			f.recheck, f.recheckHolds = detail, assess.SignalNo
			if ok {
				f.recheckHolds = assess.SignalYes
			}
		}
	}
	c, err := h.assessContext(ctx, f)
	if err != nil {
		return AssessView{}, err
	}
	// Shown with its secrets redacted (addresses and names are the
	// host's own, shown to who may read its alerts).
	shown := c
	m := mask.New(mask.Options{Fields: map[string]string{}, KeepIPs: true})
	shown.Labels, shown.Annotations = m.Map(c.Labels), m.Map(c.Annotations)
	v := AssessView{Alert: a.Key, Runbook: rb.Name, Context: shown}
	switch {
	case !dryRun:
		if h.opts.Brain == nil {
			return v, errors.New("the brain is off (brain.disabled)")
		}
		as := h.assessRun(ctx, c)
		v.Assessment = &as
	case h.opts.BrainRequest == nil:
		local, _ := assess.Local{}.Assess(ctx, c)
		v.Assessment = &local
		v.Note = "no model is configured: the local analyzer answers, and nothing leaves the host"
	default:
		if v.Request, err = h.opts.BrainRequest(c); err != nil {
			return v, fmt.Errorf("the model's request: %w", err)
		}
		v.Note = "the request a model would be sent, masked; nothing was sent"
	}
	return v, nil
}

// alertByRef finds a stored alert by key, or the newest of a fingerprint.
func (h *Healer) alertByRef(ctx context.Context, ref string) (store.StoredAlert, error) {
	if _, err := alertmanager.KeyStartsAt(ref); err == nil {
		return h.opts.Store.AlertByKey(ctx, ref)
	}
	as, err := h.opts.Store.Alerts(ctx, ref, 1)
	if err != nil {
		return store.StoredAlert{}, err
	}
	if len(as) == 0 {
		return store.StoredAlert{}, fmt.Errorf("alert %q: %w", ref, store.ErrNotFound)
	}
	return as[0], nil
}
