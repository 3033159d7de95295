// Package incident groups alerts that are one problem: alerts about one
// host (or one service, by the labels grouped by) that fire within a
// window of each other and are linked by a cause ("a full disk takes
// services down", "a service down fails its probe"). Of an incident's
// alerts the primary is the one the others follow from, and the healer
// acts once, on the highest-ranked alert a runbook matches.
//
// It is pure: it decides from labels, times and rules; the store keeps
// incidents and the planner applies the decisions.
package incident

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"
)

// Cause says that alerts matching Cause bring about alerts matching
// Effect (all matchers of a side must match).
type Cause struct {
	Name   string
	Cause  labels.Matchers
	Effect labels.Matchers
	// Equal are labels the cause and the effect must share the values of
	// (a label missing on both counts as equal), as in an Alertmanager
	// inhibit rule: ServiceDown brings about the TargetDown of its own
	// service, not of every service of the host.
	Equal []string
}

// Rules say how alerts are grouped and linked.
type Rules struct {
	// GroupBy are the labels an incident's alerts share; an alert that
	// lacks one of them is in no incident.
	GroupBy []string
	// Window is how long after an incident's latest onset an alert may
	// still join it.
	Window time.Duration
	Causes []Cause
}

// Group returns the key of the group an alert with ls belongs to, and
// false when it lacks a label grouped by.
func (r Rules) Group(ls model.LabelSet) (string, bool) {
	if len(r.GroupBy) == 0 {
		return "", false
	}
	parts := make([]string, len(r.GroupBy))
	for i, name := range r.GroupBy {
		v, ok := ls[model.LabelName(name)]
		if !ok || v == "" {
			return "", false
		}
		parts[i] = name + "=" + quote(string(v))
	}
	return "{" + strings.Join(parts, ",") + "}", true
}

func quote(s string) string { return strconv.Quote(s) }

// causes reports whether an alert with a brings about one with b by one
// of the rules.
func (r Rules) causes(a, b model.LabelSet) bool {
	for _, c := range r.Causes {
		if c.Cause.Matches(a) && c.Effect.Matches(b) && equal(a, b, c.Equal) {
			return true
		}
	}
	return false
}

func equal(a, b model.LabelSet, names []string) bool {
	for _, n := range names {
		if a[model.LabelName(n)] != b[model.LabelName(n)] {
			return false
		}
	}
	return true
}

// IsEffect reports whether a rule names ls as an effect: only such an
// alert's run may be superseded by a cause arriving later.
func (r Rules) IsEffect(ls model.LabelSet) bool {
	for _, c := range r.Causes {
		if c.Effect.Matches(ls) {
			return true
		}
	}
	return false
}

// Linked reports whether a rule names ls as a cause or an effect: only
// such alerts, and those a runbook matches, are worth an incident.
func (r Rules) Linked(ls model.LabelSet) bool {
	for _, c := range r.Causes {
		if c.Cause.Matches(ls) || c.Effect.Matches(ls) {
			return true
		}
	}
	return false
}

// State is open or resolved.
type State string

// Incident states.
const (
	Open     State = "open"
	Resolved State = "resolved"
	// Merged: a cause that joined linked it to another incident, which
	// holds its alerts from then on (MergedInto).
	Merged State = "merged"
)

// Member is one alert (one firing) of an incident.
type Member struct {
	Key         string         `json:"key"`
	Fingerprint string         `json:"fingerprint"`
	Alertname   string         `json:"alertname"`
	Labels      model.LabelSet `json:"labels"`
	StartsAt    time.Time      `json:"starts_at"`
	JoinedAt    time.Time      `json:"joined_at"`
	Resolved    bool           `json:"resolved"`
	// Runbook is the runbook that matches it, if any.
	Runbook string `json:"runbook,omitempty"`
}

// Incident is alerts that are one problem.
type Incident struct {
	ID         string    `json:"id"`
	Group      string    `json:"group"`
	State      State     `json:"state"`
	OpenedAt   time.Time `json:"opened_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// Primary is the key of the member the others follow from; Acting
	// the key of the member whose runbook the incident runs, RunID that
	// run.
	Primary string   `json:"primary"`
	Acting  string   `json:"acting,omitempty"`
	RunID   string   `json:"run_id,omitempty"`
	Members []Member `json:"members"`
	// MergedInto names the incident that took this one's alerts.
	MergedInto string `json:"merged_into,omitempty"`
}

// Member returns the member with key.
func (in *Incident) Member(key string) (*Member, bool) {
	i := slices.IndexFunc(in.Members, func(m Member) bool { return m.Key == key })
	if i < 0 {
		return nil, false
	}
	return &in.Members[i], true
}

// latest is the latest onset among the members.
func (in *Incident) latest() time.Time {
	var t time.Time
	for _, m := range in.Members {
		if m.StartsAt.After(t) {
			t = m.StartsAt
		}
	}
	return t
}

// Accepts reports whether m belongs to the open incident in under r: the
// same group, within the window of its latest onset, and a cause of one of
// its members or an effect of one.
func (r Rules) Accepts(in *Incident, group string, m Member) bool {
	if in.State != Open || in.Group != group || m.StartsAt.Sub(in.latest()) > r.Window || in.latest().Sub(m.StartsAt) > r.Window {
		return false
	}
	for _, o := range in.Members {
		if r.causes(o.Labels, m.Labels) || r.causes(m.Labels, o.Labels) {
			return true
		}
	}
	return false
}

// Ranked returns the members' keys, the primary first: by how deep in the
// chain of causes among the members each is (a root first), then by
// onset.
func (r Rules) Ranked(in *Incident) []string {
	depth := make([]int, len(in.Members))
	// The longest chain of causes ending at each member, by relaxation in
	// at most n rounds (so that a cycle in the rules ends). Two alerts
	// that cause each other are at one depth.
	for range in.Members {
		changed := false
		for i, a := range in.Members {
			for j, b := range in.Members {
				if i != j && depth[j] < depth[i]+1 && r.causes(a.Labels, b.Labels) && !r.causes(b.Labels, a.Labels) {
					depth[j], changed = depth[i]+1, true
				}
			}
		}
		if !changed {
			break
		}
	}
	idx := make([]int, len(in.Members))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		return cmp.Or(cmp.Compare(depth[a], depth[b]), in.Members[a].StartsAt.Compare(in.Members[b].StartsAt))
	})
	keys := make([]string, len(idx))
	for i, k := range idx {
		keys[i] = in.Members[k].Key
	}
	return keys
}

// CausesOf returns the members still firing that bring about the member
// with key by one of the rules (and are not brought about by it).
func (r Rules) CausesOf(in *Incident, key string) []Member {
	m, ok := in.Member(key)
	if !ok {
		return nil
	}
	var out []Member
	for _, o := range in.Members {
		if o.Key != key && !o.Resolved && r.causes(o.Labels, m.Labels) && !r.causes(m.Labels, o.Labels) {
			out = append(out, o)
		}
	}
	return out
}

// Acting returns the key of the highest-ranked member a runbook matches,
// and false when none is.
func (r Rules) Acting(in *Incident) (string, bool) {
	for _, k := range r.Ranked(in) {
		if m, _ := in.Member(k); m.Runbook != "" && !m.Resolved {
			return k, true
		}
	}
	return "", false
}

// Resolve marks the member with key resolved at t, and the incident when
// every member is; it reports whether the incident resolved.
func (in *Incident) Resolve(key string, t time.Time) bool {
	m, ok := in.Member(key)
	if !ok || m.Resolved {
		return false
	}
	m.Resolved = true
	in.UpdatedAt = t
	for _, o := range in.Members {
		if !o.Resolved {
			return false
		}
	}
	in.State, in.ResolvedAt = Resolved, t
	return true
}
