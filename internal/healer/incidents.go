package healer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/common/model"

	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/incident"
	"github.com/deus-ex-machina/deus/internal/store"
)

// grouper is the planner's view of the open incidents while it plans a
// batch: read once for the batch's groups, changed in memory as each alert
// is placed, and saved with the decision that changed them.
type grouper struct {
	ctx   context.Context //nolint:containedctx // the planBatch it serves
	h     *Healer
	rules incident.Rules
	wait  time.Duration
	now   time.Time
	open  map[string][]*incident.Incident // by group
	// merged are incidents a join merged, saved with the next decision.
	merged []*incident.Incident
}

// newGrouper reads the open incidents of the groups of alerts.
func (h *Healer) newGrouper(ctx context.Context, alerts []store.StoredAlert) (*grouper, error) {
	cfg := h.cfg.Load()
	g := &grouper{ctx: ctx, h: h, rules: cfg.Incidents.Rules(), wait: time.Duration(cfg.Incidents.GroupWait), now: h.now(), open: map[string][]*incident.Incident{}}
	var groups []string
	for _, a := range alerts {
		if grp, ok := g.rules.Group(a.Labels); ok && !slices.Contains(groups, grp) {
			groups = append(groups, grp)
		}
	}
	// An alert joins an incident within the window of its latest onset;
	// twice the window allows for an alert delivered late.
	ins, err := h.opts.Store.OpenIncidents(ctx, groups, g.now.Add(-2*g.rules.Window))
	if err != nil {
		return nil, fmt.Errorf("read open incidents: %w", err)
	}
	for i := range ins {
		g.open[ins[i].Group] = append(g.open[ins[i].Group], &ins[i])
	}
	return g, nil
}

// placed is the planner's decision on one alert, as place may change it.
type placed struct {
	recs []audit.Record
	d    store.Decision
	run  *store.Run
}

// place puts a planned alert into its incident: a firing joins the open
// incident it belongs to, or opens one; a resolution resolves its member.
// Of an incident's alerts only the acting one (the highest-ranked a
// runbook matches) keeps its run. An alert in no group, or one no runbook
// and no cause names, is left as it was planned.
func (g *grouper) place(b *batch, a store.StoredAlert, stale bool, p placed) placed {
	grp, ok := g.rules.Group(a.Labels)
	if !ok || stale {
		return p
	}
	if a.Status == alertmanager.StatusResolved {
		return g.resolve(b, grp, a, p)
	}
	if p.run == nil && !g.rules.Linked(a.Labels) {
		return p
	}
	m := incident.Member{
		Key: a.Key, Fingerprint: a.Fingerprint, Alertname: string(a.Labels[model.AlertNameLabel]),
		Labels: a.Labels, StartsAt: a.StartsAt, JoinedAt: g.now,
	}
	if p.run != nil {
		m.Runbook = p.run.Runbook
	}
	in, opened := g.join(b, grp, m)
	acting, _ := g.rules.Acting(in)
	p.recs = append(p.recs, g.record(in, a, opened))
	switch {
	case p.run == nil:
	case acting != m.Key:
		act, _ := in.Member(acting)
		g.drop(&p, in, fmt.Sprintf("part of incident %s, which acts once, by the runbook of %s", in.ID, act.Alertname))
	default:
		if in.RunID != "" {
			g.supersede(b, in, m)
		}
		g.act(&p, in, m)
	}
	return g.saved(in, p)
}

// join adds m to the open incident of grp that accepts it, or to a new
// one, and ranks its members. An alert that links several incidents (a
// disk under two services that are down) merges them into the oldest:
// their runs not yet started are superseded, and they are saved as merged.
func (g *grouper) join(b *batch, grp string, m incident.Member) (*incident.Incident, bool) {
	var in *incident.Incident
	for _, o := range g.open[grp] {
		if !g.rules.Accepts(o, grp, m) {
			continue
		}
		if in == nil {
			in = o
			continue
		}
		in.Members = append(in.Members, o.Members...)
		if o.RunID != "" {
			g.supersede(b, o, m)
		}
		o.State, o.MergedInto, o.UpdatedAt = incident.Merged, in.ID, g.now
		g.merged = append(g.merged, o)
	}
	g.open[grp] = slices.DeleteFunc(g.open[grp], func(o *incident.Incident) bool { return o.State == incident.Merged })
	opened := in == nil
	if opened {
		in = &incident.Incident{ID: newID(), Group: grp, State: incident.Open, OpenedAt: g.now}
		g.open[grp] = append(g.open[grp], in)
	}
	in.Members = append(in.Members, m)
	in.UpdatedAt = g.now
	in.Primary = g.rules.Ranked(in)[0]
	return in, opened
}

// act makes the member's run the incident's, held for group_wait from
// the incident's opening so that a cause arriving after its effect can
// still take over.
func (g *grouper) act(p *placed, in *incident.Incident, m incident.Member) {
	in.Acting, in.RunID = m.Key, p.run.ID
	p.run.IncidentID = in.ID
	// Only an effect's run can be superseded by a cause arriving later:
	// only it is held.
	if release := in.OpenedAt.Add(g.wait); g.wait > 0 && release.After(g.now) && g.rules.IsEffect(m.Labels) {
		p.run.State, p.run.ExpiresAt = store.RunScheduled, release
		p.run.Reason = "held until " + release.Format(time.RFC3339) + " for the alerts that may yet join incident " + in.ID + " (incidents.group_wait)"
	}
	p.d.Runs = []store.Run{*p.run}
}

// drop takes the run off an alert whose incident acts by another's.
func (g *grouper) drop(p *placed, in *incident.Incident, why string) {
	r := audit.Record{Kind: audit.KindSkipped, Incident: in.ID, Fingerprint: p.run.Fingerprint, Alertname: p.run.Alertname, Runbook: p.run.Runbook, Reason: why}
	g.h.logger.Info("alert_grouped", "fingerprint", p.run.Fingerprint, "alertname", p.run.Alertname, "incident", in.ID, "reason", why)
	p.recs = append(p.recs, r)
	p.d = store.Decision{ID: p.d.ID, State: store.AlertDone, Note: why}
	p.run = nil
}

// supersede ends the run of the member m outranks: taken out of the batch
// when it is not yet committed, cancelled after the commit when it has not
// started (one that started is let be).
func (g *grouper) supersede(b *batch, in *incident.Incident, m incident.Member) {
	why := fmt.Sprintf("superseded: %s, a cause of what it was for, joined incident %s and acts instead", m.Alertname, in.ID)
	if b.dropRun(in.RunID, why) {
		return
	}
	b.cancel = append(b.cancel, superseded{runID: in.RunID, why: why})
}

// resolve marks the resolved alert's member, in the incident its firing
// was placed in; when it was the acting one and others still fire, the
// next one's runbook acts.
func (g *grouper) resolve(b *batch, grp string, a store.StoredAlert, p placed) placed {
	firing := a.Alert
	firing.Status = alertmanager.StatusFiring
	key := firing.Key()
	in := g.incidentOf(grp, key)
	if in == nil {
		return p
	}
	if in.Resolve(key, g.now) {
		p.recs = append(p.recs, audit.Record{Kind: audit.KindIncident, Result: "resolved", Incident: in.ID, Fingerprint: a.Fingerprint, Alertname: string(a.Labels[model.AlertNameLabel]), Reason: "every alert of the incident resolved"})
		g.open[grp] = slices.DeleteFunc(g.open[grp], func(o *incident.Incident) bool { return o == in })
	} else if in.Acting == key {
		g.handOver(b, in, &p)
	}
	return g.saved(in, p)
}

// incidentOf returns the open incident the firing key was placed in: one
// read already, or the one its stored alert names.
func (g *grouper) incidentOf(grp, key string) *incident.Incident {
	for _, in := range g.open[grp] {
		if _, ok := in.Member(key); ok {
			return in
		}
	}
	a, err := g.h.opts.Store.AlertByKey(g.ctx, key)
	if err != nil || a.IncidentID == "" {
		return nil // never placed, or pruned
	}
	in, err := g.h.opts.Store.Incident(g.ctx, a.IncidentID)
	if err != nil || in.State != incident.Open {
		return nil
	}
	g.open[grp] = append(g.open[grp], &in)
	return &in
}

// handOver gives the incident's run, once its acting alert resolved, to
// the alerts still firing that a runbook matches and no alert still firing
// brings about (a service still down once its disk was cleaned; both
// services, when two were down), each once: an alert with a run not yet
// ended keeps it.
func (g *grouper) handOver(b *batch, in *incident.Incident, p *placed) {
	in.Acting, in.RunID = "", ""
	for _, key := range g.rules.Ranked(in) {
		m := mustMember(in, key)
		if m.Runbook == "" || m.Resolved || len(g.rules.CausesOf(in, key)) > 0 || g.hasLiveRun(key) {
			continue
		}
		a, err := g.h.opts.Store.AlertByKey(g.ctx, key)
		rb := g.h.runbook(m.Runbook)
		if err != nil || rb == nil {
			continue // pruned, or its runbook removed: nothing to hand over to
		}
		run, err := g.h.build(g.h.cfg.Load(), rb, a)
		if err != nil {
			continue
		}
		q := placed{run: &run}
		if in.RunID == "" {
			g.act(&q, in, *m)
		} else {
			run.IncidentID = in.ID
		}
		p.d.Runs = append(p.d.Runs, *q.run)
		p.recs = append(p.recs, audit.Record{
			Kind: audit.KindMatched, Result: "matched", Incident: in.ID, RunID: run.ID, Fingerprint: a.Fingerprint, Alertname: run.Alertname, Runbook: run.Runbook,
			Reason: "the incident's acting alert resolved; this one still fires, and its runbook acts",
		})
		if q.run.State != store.RunScheduled {
			b.runs = append(b.runs, plannedRun{*q.run, a})
		}
	}
}

// hasLiveRun reports whether the alert key has a run that has not ended.
func (g *grouper) hasLiveRun(key string) bool {
	rs, err := g.h.opts.Store.Runs(g.ctx, store.RunFilter{AlertKey: key, States: []store.RunState{
		store.RunPending, store.RunWaiting, store.RunApproved, store.RunScheduled, store.RunRunning, store.RunRollingBack,
	}, Limit: 1})
	return err != nil || len(rs) > 0 // not knowing is a reason not to start a second
}

func mustMember(in *incident.Incident, key string) *incident.Member {
	m, _ := in.Member(key)
	return m
}

// record says the alert opened or joined the incident.
func (g *grouper) record(in *incident.Incident, a store.StoredAlert, opened bool) audit.Record {
	r := audit.Record{Kind: audit.KindIncident, Result: "joined", Incident: in.ID, Fingerprint: a.Fingerprint, Alertname: string(a.Labels[model.AlertNameLabel])}
	if opened {
		r.Result = "opened"
	}
	primary, _ := in.Member(in.Primary)
	r.Fields = map[string]string{"group": in.Group, "primary": primary.Alertname, "alerts": fmt.Sprint(len(in.Members))}
	return r
}

// saved names the incident on every record of the decision and saves a
// copy of it with the decision.
func (g *grouper) saved(in *incident.Incident, p placed) placed {
	for i := range p.recs {
		p.recs[i].Incident = in.ID
	}
	c := *in
	c.Members = slices.Clone(in.Members)
	p.d.Incident = &c
	for _, o := range g.merged {
		p.d.Merged = append(p.d.Merged, *o)
	}
	g.merged = nil
	return p
}

// superseded is a committed run a new acting alert replaces, cancelled
// after the batch is committed if it has not started.
type superseded struct{ runID, why string }

// cancelSuperseded cancels the superseded runs that have not started. A
// run the pipeline moved meanwhile (to waiting, or scheduled) is read
// again and cancelled from where it is; one that started is let be.
func (h *Healer) cancelSuperseded(ctx context.Context, cs []superseded) error {
	for _, c := range cs {
		for range 3 {
			r, err := h.opts.Store.Run(ctx, c.runID)
			if errors.Is(err, store.ErrNotFound) {
				break
			}
			if err != nil {
				return err
			}
			if !store.CanTransition(r.State, store.RunCancelled) {
				break // it started: let it be
			}
			rec := audit.Record{Kind: audit.KindSkipped, Result: string(store.RunCancelled), Reason: c.why}
			err = h.transition(ctx, h.newFlow(r, nil, true), store.RunCancelled, rec, store.Update{Reason: c.why})
			if !errors.Is(err, errSuperseded) {
				if err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}
