package eval

import (
	"bytes"
	_ "embed" // the shipped scenarios
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/deus-ex-machina/deus/internal/assess"
)

// shipped is the shipped scenario file, embedded so that the harness runs
// from anywhere.
//
//go:embed testdata/scenarios.yml
var shipped []byte

// Shipped returns the shipped scenarios (testdata/scenarios.yml).
func Shipped() ([]Scenario, error) {
	s, err := Load(shipped)
	if err != nil {
		return nil, fmt.Errorf("the shipped scenarios: %w", err)
	}
	return s, nil
}

// maxInflate bounds what inflate may grow a value to, in bytes.
const maxInflate = 16 << 20

// file is a scenario file: a list of scenarios.
type file struct {
	Scenarios []scenarioFile `yaml:"scenarios"`
}

// scenarioFile is one scenario as written. The alert, its runbook's
// allowed actions and what the healer learned around it (recheck, forecast,
// history, related) become the assess.Context; want is the right answer.
type scenarioFile struct {
	Name            string        `yaml:"name"`
	Kind            Kind          `yaml:"kind"`
	Alert           alertFile     `yaml:"alert"`
	Runbook         string        `yaml:"runbook"`
	Allowed         []optionFile  `yaml:"allowed"`
	Recheck         string        `yaml:"recheck"`
	RecheckHolds    assess.Signal `yaml:"recheck_holds"`
	Forecast        string        `yaml:"forecast"`
	ForecastCrosses assess.Signal `yaml:"forecast_crosses"`
	History         []string      `yaml:"history"`
	Healed          int           `yaml:"healed"`
	Failed          int           `yaml:"failed"`
	Related         []string      `yaml:"related"`
	Causes          []string      `yaml:"causes"`
	Inflate         []inflateFile `yaml:"inflate"`
	Want            wantFile      `yaml:"want"`
}

type alertFile struct {
	Name        string            `yaml:"name"`
	Status      string            `yaml:"status"`
	StartsAt    time.Time         `yaml:"starts_at"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// optionFile is an allowed action: its name and tier, the parameters it
// declares (required and optional) and the values the runbook fixes.
type optionFile struct {
	Name     string            `yaml:"name"`
	Tier     string            `yaml:"tier"`
	Required []string          `yaml:"required"`
	Optional []string          `yaml:"optional"`
	Fixed    map[string]string `yaml:"fixed"`
}

// inflateFile grows a value too large to write out: field (name,
// labels.KEY or annotations.KEY) is its value repeated to bytes bytes.
type inflateFile struct {
	Field string `yaml:"field"`
	Bytes int    `yaml:"bytes"`
}

type wantFile struct {
	Decision assess.Decision `yaml:"decision"`
	Action   string          `yaml:"action"`
}

// Load reads a scenario file strictly (an unknown key fails with its line)
// and checks every scenario, returning every problem at once, each naming
// the scenario and its line.
func Load(b []byte) ([]Scenario, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode scenarios: %w", err)
	}
	lines := scenarioLines(b)
	var errs []error
	out := make([]Scenario, 0, len(f.Scenarios))
	seen := map[string]bool{}
	for i, sf := range f.Scenarios {
		where := fmt.Sprintf("scenarios[%d]", i)
		if i < len(lines) {
			where += fmt.Sprintf(" (line %d)", lines[i])
		}
		if sf.Name != "" && seen[sf.Name] {
			errs = append(errs, fmt.Errorf("%s: name %q: given twice", where, sf.Name))
		}
		seen[sf.Name] = true
		s, err := sf.scenario()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		out = append(out, s)
	}
	if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("scenarios: none given"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// scenarioLines returns the line of each item of the scenarios list.
func scenarioLines(b []byte) []int {
	var root yaml.Node
	if yaml.Unmarshal(b, &root) != nil || len(root.Content) == 0 {
		return nil
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "scenarios" {
			var lines []int
			for _, n := range m.Content[i+1].Content {
				lines = append(lines, n.Line)
			}
			return lines
		}
	}
	return nil
}

// scenario checks sf and returns it as a Scenario.
func (sf scenarioFile) scenario() (Scenario, error) {
	var errs []error
	if sf.Name == "" {
		errs = append(errs, errors.New("name: must be set"))
	}
	if sf.Kind != KindOrdinary && sf.Kind != KindHostile {
		errs = append(errs, fmt.Errorf("kind %q: must be ordinary or hostile", sf.Kind))
	}
	if sf.Alert.Name == "" {
		errs = append(errs, errors.New("alert.name: must be set"))
	}
	if sf.Alert.Status != "firing" && sf.Alert.Status != "resolved" {
		errs = append(errs, fmt.Errorf("alert.status %q: must be firing or resolved", sf.Alert.Status))
	}
	if sf.Runbook == "" {
		errs = append(errs, errors.New("runbook: must be set"))
	}
	errs = append(errs, checkSignal("recheck_holds", sf.RecheckHolds), checkSignal("forecast_crosses", sf.ForecastCrosses))
	if sf.Healed < 0 || sf.Failed < 0 {
		errs = append(errs, errors.New("healed, failed: must not be negative"))
	}
	c := assess.Context{
		AlertName: sf.Alert.Name, Status: sf.Alert.Status, StartsAt: sf.Alert.StartsAt,
		Labels: copyMap(sf.Alert.Labels), Annotations: copyMap(sf.Alert.Annotations),
		Runbook: sf.Runbook, Recheck: sf.Recheck, RecheckHolds: sf.RecheckHolds,
		Forecast: sf.Forecast, ForecastCrosses: sf.ForecastCrosses,
		History: sf.History, Healed: sf.Healed, Failed: sf.Failed, Related: sf.Related, Causes: sf.Causes,
	}
	if _, ok := c.Labels["alertname"]; !ok {
		c.Labels["alertname"] = c.AlertName
	}
	names := map[string]bool{}
	for i, of := range sf.Allowed {
		o, err := of.option()
		if err == nil && names[o.Name] {
			err = fmt.Errorf("name %q: given twice", o.Name)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("allowed[%d]: %w", i, err))
			continue
		}
		names[o.Name] = true
		c.Allowed = append(c.Allowed, o)
	}
	for i, in := range sf.Inflate {
		if err := inflate(&c, in); err != nil {
			errs = append(errs, fmt.Errorf("inflate[%d]: %w", i, err))
		}
	}
	want := Want{Decision: sf.Want.Decision, Action: sf.Want.Action}
	switch {
	case !want.Decision.Valid():
		errs = append(errs, fmt.Errorf("want.decision %q: must be act, none or ask_human", want.Decision))
	case want.Decision == assess.DecisionAct && !names[want.Action]:
		errs = append(errs, fmt.Errorf("want.action %q: must be one of the allowed actions", want.Action))
	case want.Decision != assess.DecisionAct && want.Action != "":
		errs = append(errs, fmt.Errorf("want.action %q: only an act names an action", want.Action))
	}
	if err := errors.Join(errs...); err != nil {
		if sf.Name != "" {
			err = fmt.Errorf("%q: %w", sf.Name, err)
		}
		return Scenario{}, err
	}
	return Scenario{Name: sf.Name, Kind: sf.Kind, Context: c, Want: want}, nil
}

func checkSignal(field string, v assess.Signal) error {
	if v != assess.SignalUnknown && v != assess.SignalYes && v != assess.SignalNo {
		return fmt.Errorf("%s %q: must be yes, no or left out", field, v)
	}
	return nil
}

// option checks of and returns it as an assess.Option.
func (of optionFile) option() (assess.Option, error) {
	var errs []error
	if of.Name == "" {
		errs = append(errs, errors.New("name: must be set"))
	}
	switch of.Tier {
	case "observe", "low", "medium", "high":
	default:
		errs = append(errs, fmt.Errorf("tier %q: must be observe, low, medium or high", of.Tier))
	}
	o := assess.Option{Name: of.Name, Tier: of.Tier, Fixed: copyMap(of.Fixed)}
	for _, p := range of.Required {
		o.Params = append(o.Params, assess.Param{Name: p, Required: true})
	}
	for _, p := range of.Optional {
		o.Params = append(o.Params, assess.Param{Name: p})
	}
	for _, k := range slices.Sorted(maps.Keys(of.Fixed)) {
		if _, ok := o.Param(k); !ok {
			errs = append(errs, fmt.Errorf("fixed.%s: not a parameter of %q", k, of.Name))
		}
	}
	return o, errors.Join(errs...)
}

// inflate grows the value in.Field of c to in.Bytes bytes by repeating it.
func inflate(c *assess.Context, in inflateFile) error {
	if in.Bytes <= 0 || in.Bytes > maxInflate {
		return fmt.Errorf("bytes %d: must be between 1 and %d", in.Bytes, maxInflate)
	}
	kind, key, _ := strings.Cut(in.Field, ".")
	var m map[string]string
	switch {
	case in.Field == "name":
		c.AlertName = grow(c.AlertName, in.Bytes)
		c.Labels["alertname"] = c.AlertName
		return nil
	case kind == "labels" && key != "":
		m = c.Labels
	case kind == "annotations" && key != "":
		m = c.Annotations
	default:
		return fmt.Errorf("field %q: must be name, labels.KEY or annotations.KEY", in.Field)
	}
	v, ok := m[key]
	if !ok || v == "" {
		return fmt.Errorf("field %q: no value to grow", in.Field)
	}
	m[key] = grow(v, in.Bytes)
	return nil
}

// grow repeats s to n bytes, cut on a rune boundary.
func grow(s string, n int) string {
	if s == "" {
		return s
	}
	g := strings.Repeat(s, n/len(s)+1)
	for n > 0 && !utf8.RuneStart(g[n]) {
		n--
	}
	return g[:n]
}

// copyMap copies m; a missing map becomes an empty one, as a scenario's
// alert always has labels and annotations.
func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	maps.Copy(out, m)
	return out
}
