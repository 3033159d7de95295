package healer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/deus-ex-machina/deus/internal/action"
)

// AlertmanagerActions returns the actions that act through Alertmanager:
// escalate (post HealerEscalation with the alert's context) and silence
// (silence the alert for a while). am may be nil: the actions then fail
// with a clear error, and a runbook that needs them is still valid.
func AlertmanagerActions(am Alertmanager, now func() time.Time) []action.Action {
	if now == nil {
		now = time.Now
	}
	return []action.Action{&escalateAction{am: am, now: now}, &silenceAction{am: am, now: now}}
}

var errNoAlertmanager = errors.New("no alertmanager.url is configured")

type alertContext struct {
	RunID   string            `json:"run_id"`
	Runbook string            `json:"runbook"`
	Labels  map[string]string `json:"labels"`
}

func parseAlert(b json.RawMessage) (alertContext, error) {
	var a alertContext
	if len(b) == 0 {
		return a, errors.New("this action needs an alert: run it from a runbook")
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("alert: %w", err)
	}
	return a, nil
}

type escalateAction struct {
	am  Alertmanager
	now func() time.Time
}

func (*escalateAction) Spec() action.Spec {
	return action.Spec{
		Name: "escalate", Tier: action.TierObserve, Remote: true, Timeout: 30 * time.Second,
		Doc: "Posts a HealerEscalation alert to Alertmanager with the alert's instance, job and name, so people are told through the receivers the site has.",
		Params: []action.Param{
			{Name: "summary", Type: action.TypeString, Doc: "What to tell people; default: the alert needs a person."},
			{Name: "severity", Type: action.TypeEnum, Enum: []string{"info", "warning", "critical"}, Default: "critical"},
		},
	}
}

func (e *escalateAction) Run(ctx context.Context, req action.Request) (action.Result, error) {
	a, err := parseAlert(req.Alert)
	if err != nil {
		return action.Result{}, err
	}
	summary := req.Params["summary"]
	if summary == "" {
		summary = fmt.Sprintf("%s on %s needs a person.", a.Labels["alertname"], a.Labels["instance"])
	}
	res := action.Result{Target: "alertmanager", Summary: "post HealerEscalation: " + summary}
	if req.DryRun {
		res.Summary = "would " + res.Summary
		return res, nil
	}
	if e.am == nil {
		return res, errNoAlertmanager
	}
	labels := map[string]string{"severity": req.Params["severity"], "runbook": a.Runbook, "healer_alertname": a.Labels["alertname"]}
	for _, k := range []string{"instance", "job"} {
		if v, ok := a.Labels[k]; ok {
			labels[k] = v
		}
	}
	return res, e.am.Escalate(ctx, labels, map[string]string{"summary": summary, "run_id": a.RunID}, e.now())
}

type silenceAction struct {
	am  Alertmanager
	now func() time.Time
}

func (*silenceAction) Spec() action.Spec {
	return action.Spec{
		Name: "silence", Tier: action.TierLow, Remote: true, Timeout: 30 * time.Second,
		Doc: "Creates an Alertmanager silence matching the alert's labels exactly.",
		Params: []action.Param{
			{Name: "duration", Type: action.TypeDuration, Default: "1h", Min: action.Bound(60), Max: action.Bound(7 * 24 * 3600)},
			{Name: "comment", Type: action.TypeString, Default: "silenced by deus-healer"},
		},
	}
}

func (s *silenceAction) Run(ctx context.Context, req action.Request) (action.Result, error) {
	a, err := parseAlert(req.Alert)
	if err != nil {
		return action.Result{}, err
	}
	d, err := action.ParseDuration(req.Params["duration"])
	if err != nil {
		return action.Result{}, err
	}
	res := action.Result{Target: "alertmanager", Summary: fmt.Sprintf("silence %s on %s for %s", a.Labels["alertname"], a.Labels["instance"], d)}
	if req.DryRun {
		res.Summary = "would " + res.Summary
		return res, nil
	}
	if s.am == nil {
		return res, errNoAlertmanager
	}
	id, err := s.am.Silence(ctx, a.Labels, d, req.Params["comment"], s.now())
	if err == nil {
		res.Summary += " (silence " + id + ")"
	}
	return res, err
}
