package healer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/config"
	"github.com/deus-ex-machina/deus/internal/guard"
	"github.com/deus-ex-machina/deus/internal/query"
	"github.com/deus-ex-machina/deus/internal/store"
)

// planTTL is how long the week's maintenance windows are kept before the
// load signal's history is read again.
const planTTL = time.Hour

// maintenancePlan is the week's quietest hours, computed from the load
// signal's history and kept for planTTL.
type maintenancePlan struct {
	mu       sync.Mutex
	slots    []guard.Slot
	unknown  string // why there are no slots
	signal   string
	computed time.Time
}

// slots returns the maintenance windows, reading the signal's history
// when the kept plan is older than planTTL or its configuration changed.
func (h *Healer) slots(ctx context.Context, m *config.Maintenance, now time.Time) ([]guard.Slot, string) {
	p := &h.windows
	p.mu.Lock()
	defer p.mu.Unlock()
	key := fmt.Sprintf("%s|%s|%d|%v", m.Signal, m.History, m.Windows, m.Blackouts)
	if p.signal == key && now.Sub(p.computed) < planTTL {
		return p.slots, p.unknown
	}
	p.slots, p.unknown = nil, ""
	history, err := h.loadHistory(ctx, m, now)
	switch {
	case err != nil:
		p.unknown = "the load signal's history could not be read: " + err.Error()
	case len(history) == 0:
		p.unknown = "the load signal has no history yet"
	default:
		p.slots = guard.QuietestSlots(history, m.Windows, m.ParsedBlackouts())
		if len(p.slots) == 0 {
			p.unknown = "every hour with history is inside a blackout"
		}
	}
	p.signal, p.computed = key, now
	return p.slots, p.unknown
}

// loadHistory reads the load signal over maintenance.history, every 5
// minutes, summing its series.
func (h *Healer) loadHistory(ctx context.Context, m *config.Maintenance, now time.Time) ([]guard.Sample, error) {
	rq, ok := h.opts.Querier.(query.RangeQuerier)
	if !ok {
		return nil, ErrNoRangeQueries
	}
	mat, err := rq.QueryRange(ctx, m.Signal, now.Add(-time.Duration(m.History)), now, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	sum := map[int64]float64{}
	for _, ss := range mat {
		for _, v := range ss.Values {
			sum[int64(v.Timestamp)] += float64(v.Value)
		}
	}
	out := make([]guard.Sample, 0, len(sum))
	for ts, v := range sum {
		out = append(out, guard.Sample{T: time.UnixMilli(ts), V: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].T.Before(out[j].T) })
	return out, nil
}

// maintenanceFacts are what the maintenance guard needs for run at now:
// the windows, the blackouts, and an active maintenance silence for the
// run's instance.
func (h *Healer) maintenanceFacts(ctx context.Context, run store.Run, now time.Time) guard.MaintenanceFacts {
	m := &h.cfg.Load().Maintenance
	f := guard.MaintenanceFacts{Blackouts: m.ParsedBlackouts()}
	f.Slots, f.Unknown = h.slots(ctx, m, now)
	if ls := m.SilenceLabels(); len(ls) > 0 && h.opts.Alertmanager != nil {
		labels := maps.Clone(ls)
		if inst, ok := run.Labels[h.cfg.Load().Global.InstanceLabel]; ok {
			labels[h.cfg.Load().Global.InstanceLabel] = inst
		}
		s, err := h.opts.Alertmanager.ActiveSilence(ctx, labels)
		if err != nil {
			// Not knowing whether a freeze is on is a reason to wait.
			s = "Alertmanager could not be asked: " + err.Error()
		}
		f.Silence = s
	}
	return f
}

// releaseScheduled returns the scheduled runs whose window has opened to
// the state they waited in (approved stays approved) and starts them,
// through the guards again.
func (h *Healer) releaseScheduled(ctx context.Context) error {
	runs, err := h.due(ctx, store.RunScheduled)
	if err != nil {
		return err
	}
	for _, r := range runs {
		to := store.RunPending
		if r.DecidedBy != "" {
			to = store.RunApproved
		}
		f := h.newFlow(r, nil, true)
		rec := audit.Record{Kind: audit.KindScheduled, Result: "due", Reason: "due at " + r.ExpiresAt.Format(time.RFC3339) + ", as it was " + r.Reason}
		if err := h.transition(ctx, f, to, rec, store.Update{Reason: "due"}); err != nil {
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			return err
		}
		h.start(ctx, f.run, nil, true)
	}
	return nil
}

// Window is one maintenance window of the coming week.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Load  float64   `json:"load"` // the signal's mean in that hour
	Why   string    `json:"why"`
}

// Schedule is the maintenance plan for the week from now.
type Schedule struct {
	Signal    string   `json:"signal"`
	History   string   `json:"history"`
	Windows   []Window `json:"windows"`
	Unknown   string   `json:"unknown,omitempty"`
	Blackouts []string `json:"blackouts,omitempty"`
	Runbooks  []string `json:"runbooks"` // those marked maintenance
}

// Schedule returns the maintenance windows of the coming week and why each
// was chosen.
func (h *Healer) Schedule(ctx context.Context) Schedule {
	cfg := h.cfg.Load()
	m := &cfg.Maintenance
	now := h.now()
	slots, unknown := h.slots(ctx, m, now)
	s := Schedule{Signal: m.Signal, History: m.History.String(), Unknown: unknown, Runbooks: []string{}}
	for _, rb := range cfg.Runbooks {
		if rb.Maintenance {
			s.Runbooks = append(s.Runbooks, rb.Name)
		}
	}
	for _, b := range m.Blackouts {
		s.Blackouts = append(s.Blackouts, fmt.Sprintf("%v %s-%s UTC", b.Days, b.From, b.To))
	}
	for i, sl := range slots {
		start, end, _ := guard.NextWindow([]guard.Slot{sl}, now)
		s.Windows = append(s.Windows, Window{
			Start: start, End: end, Load: sl.Load,
			Why: fmt.Sprintf("the %s quietest hour of the week (%s UTC: mean %.3g over %d samples of the last %s)", ordinal(i+1), sl, sl.Load, sl.Samples, m.History),
		})
	}
	sort.Slice(s.Windows, func(i, j int) bool { return s.Windows[i].Start.Before(s.Windows[j].Start) })
	return s
}

func ordinal(n int) string {
	switch n {
	case 1:
		return "1st"
	case 2:
		return "2nd"
	case 3:
		return "3rd"
	}
	return fmt.Sprintf("%dth", n)
}
