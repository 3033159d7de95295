package config

import (
	"fmt"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"

	"github.com/deus-ex-machina/deus/internal/incident"
)

// Incidents say which alerts are one problem: those that share the labels
// of GroupBy, start within Window of each other, and are linked by one of
// Causes. The healer acts once per incident, on its highest-ranked alert a
// runbook matches; the others are recorded as part of it.
type Incidents struct {
	// GroupBy defaults to the instance label.
	GroupBy []string `yaml:"group_by"`
	// Window defaults to 5m.
	Window model.Duration `yaml:"window"`
	// GroupWait holds a new incident's run this long for the alerts that
	// may yet join it (the cause may arrive after its effect), as
	// Alertmanager's group_wait holds a notification. 0 acts at once.
	GroupWait model.Duration `yaml:"group_wait"`
	// Causes replace the shipped ones when given.
	Causes []CauseRule `yaml:"causes"`

	rules incident.Rules
}

// CauseRule says that alerts matching Cause bring about alerts matching
// Effect (Alertmanager matchers; all of a side must match).
type CauseRule struct {
	Name   string   `yaml:"name"`
	Cause  []string `yaml:"cause"`
	Effect []string `yaml:"effect"`
	// Equal are labels cause and effect must share the values of.
	Equal []string `yaml:"equal"`
}

// DefaultCauses link the shipped alerts.
var DefaultCauses = []CauseRule{
	{Name: "a full disk takes services down", Cause: []string{`alertname=~"DiskAlmostFull|DiskWillFillIn4Hours"`}, Effect: []string{`alertname="ServiceDown"`}},
	{Name: "memory pressure gets services killed", Cause: []string{`alertname="MemoryPressure"`}, Effect: []string{`alertname="ServiceDown"`}},
	{Name: "a service down fails its scrape", Cause: []string{`alertname="ServiceDown"`}, Effect: []string{`alertname="TargetDown"`}, Equal: []string{"service"}},
}

// Rules are the compiled incident rules.
func (in *Incidents) Rules() incident.Rules { return in.rules }

func (c *Config) defaultIncidents() {
	in := &c.Incidents
	if len(in.GroupBy) == 0 {
		in.GroupBy = []string{c.Global.InstanceLabel}
	}
	if in.Window == 0 {
		in.Window = model.Duration(5 * time.Minute)
	}
	if in.Causes == nil {
		in.Causes = DefaultCauses
	}
}

func (c *Config) validateIncidents(bad func(string, ...any)) {
	in := &c.Incidents
	if in.Window < 0 || in.GroupWait < 0 {
		bad("window and group_wait must not be negative", "incidents")
	}
	if in.GroupWait > in.Window {
		bad(fmt.Sprintf("%s is longer than the window (%s): alerts that could join would be refused", in.GroupWait, in.Window), "incidents", "group_wait")
	}
	for i, l := range in.GroupBy {
		if !model.LegacyValidation.IsValidLabelName(l) {
			bad(fmt.Sprintf("%q is not a label name", l), "incidents", "group_by", i)
		}
	}
	in.rules = incident.Rules{GroupBy: in.GroupBy, Window: time.Duration(in.Window)}
	for i, cr := range in.Causes {
		ca := incident.Cause{Name: cr.Name, Equal: cr.Equal}
		for j, l := range cr.Equal {
			if !model.LegacyValidation.IsValidLabelName(l) {
				bad(fmt.Sprintf("%q is not a label name", l), "incidents", "causes", i, "equal", j)
			}
		}
		for _, sd := range []struct {
			side string
			ms   []string
			into *labels.Matchers
		}{{"cause", cr.Cause, &ca.Cause}, {"effect", cr.Effect, &ca.Effect}} {
			side, ms := sd.side, sd.ms
			if len(ms) == 0 {
				bad("at least one matcher is needed", "incidents", "causes", i, side)
			}
			var all labels.Matchers
			for j, m := range ms {
				parsed, err := labels.ParseMatchers(m)
				if err != nil {
					bad(err.Error(), "incidents", "causes", i, side, j)
					continue
				}
				all = append(all, parsed...)
			}
			*sd.into = all
		}
		in.rules.Causes = append(in.rules.Causes, ca)
	}
}
