// Package config loads the healer's YAML configuration: strictly (an unknown
// key or a value of the wrong type is an error naming its path and line),
// with defaults set in one place, and validated as a whole so that every
// problem is reported at once.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/units"
	"github.com/prometheus/alertmanager/pkg/labels"
	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/guard"
)

// Config is the healer's configuration file.
type Config struct {
	Global       Global      `yaml:"global"`
	Prometheus   *Endpoint   `yaml:"prometheus"`
	Alertmanager *Endpoint   `yaml:"alertmanager"`
	Webhook      Webhook     `yaml:"webhook"`
	API          API         `yaml:"api"`
	Approvals    Approvals   `yaml:"approvals"`
	Maintenance  Maintenance `yaml:"maintenance"`
	Incidents    Incidents   `yaml:"incidents"`
	Brain        Brain       `yaml:"brain"`
	Storage      Storage     `yaml:"storage"`
	Audit        Audit       `yaml:"audit"`
	Actions      Actions     `yaml:"actions"`
	Runbooks     []*Runbook  `yaml:"runbooks"`

	// Source is the file the configuration was read from.
	Source string `yaml:"-"`
	root   *yaml.Node
}

// Global holds the policy that applies to every runbook.
type Global struct {
	// DryRun records what would be done and does nothing.
	DryRun bool `yaml:"dry_run"`
	// Identity lists the values of InstanceLabel that name this host. An
	// alert about another instance is recorded and skipped, unless its
	// runbook only runs remote actions. Default: the host name; a value
	// matches with or without a :port suffix.
	Identity []string `yaml:"identity"`
	// InstanceLabel is the label that names the host an alert is about.
	InstanceLabel string `yaml:"instance_label"`
	// MaxTier is the highest tier the healer runs alone; above it a run
	// waits for approval.
	MaxTier Tier `yaml:"max_tier"`
	// ApprovalTimeout is how long a run waits for approval before it
	// expires.
	ApprovalTimeout model.Duration `yaml:"approval_timeout"`
	// Concurrency is how many runs may act at once, over all runbooks.
	Concurrency int `yaml:"concurrency"`
}

// Endpoint is a Prometheus-API or Alertmanager server.
type Endpoint struct {
	URL        string                      `yaml:"url"`
	Timeout    model.Duration              `yaml:"timeout"`
	HTTPConfig promconfig.HTTPClientConfig `yaml:"http_config"`
}

// Webhook configures how Alertmanager authenticates to the healer. TLS and
// basic auth for every endpoint are set with --web.config.file.
type Webhook struct {
	// BearerTokenFile holds the token Alertmanager sends as
	// "Authorization: Bearer <token>" (its http_config.authorization
	// credentials_file).
	BearerTokenFile string `yaml:"bearer_token_file"`
	// MaxBodySize bounds a request body.
	MaxBodySize units.Base2Bytes `yaml:"max_body_size"`
}

// API configures who may use the JSON API (approve, deny, roll back, run).
type API struct {
	// BearerTokenFile holds the token API clients send as
	// "Authorization: Bearer <token>"; `healer approve` reads it too.
	BearerTokenFile string `yaml:"bearer_token_file"`
	// AllowedHosts are host names, besides loopback ones, that requests
	// nothing authenticates may name in their Host header (for a healer
	// reached through a local alias). Without authentication every other
	// Host is refused, so that a web page cannot rebind its own name to
	// the healer's address and read or drive it.
	AllowedHosts []string `yaml:"allowed_hosts"`
}

// Approvals is how runs above the tier ceiling are decided.
type Approvals struct {
	// DistinctApprover refuses an approval by the principal that asked for
	// the run (four eyes), and any approval that nothing authenticated.
	DistinctApprover bool `yaml:"distinct_approver"`
}

// Storage is where the healer keeps its state.
type Storage struct {
	Path string `yaml:"path"`
	// Synchronous is when a commit reaches the disk. "normal" (the
	// default): an accepted alert survives the healer being killed at any
	// moment (it is in the write-ahead log, in the kernel's hands), and a
	// power loss may lose the last second of them, which Alertmanager
	// sends again with its next notification. "full": every commit is
	// fsync'd before the webhook is answered, at about half the intake.
	Synchronous string    `yaml:"synchronous"`
	Retention   Retention `yaml:"retention"`
}

// Retention says how long records are kept.
type Retention struct {
	Alerts     model.Duration `yaml:"alerts"`
	Runs       model.Duration `yaml:"runs"`
	Quarantine model.Duration `yaml:"quarantine"`
}

// Audit configures the audit log.
type Audit struct {
	Path      string           `yaml:"path"`
	MaxSize   units.Base2Bytes `yaml:"max_size"`
	MaxAge    model.Duration   `yaml:"max_age"`
	Retention model.Duration   `yaml:"retention"`
	// KeyFile holds the key that seals each record with HMAC-SHA256 (a
	// keyed chain), read once at start; empty means an unkeyed chain
	// (plain SHA-256). It must not lie in Path.
	KeyFile string `yaml:"key_file"`
}

// Actions configures the built-in actions and defines commands.
type Actions struct {
	// TempRoots are the folders clean_temp_files may clean.
	TempRoots []string `yaml:"temp_roots"`
	// LogRoots are the folders rotate_log may rotate files in.
	LogRoots []string `yaml:"log_roots"`
	// QuarantineDir keeps what clean_temp_files moved away, for rollback.
	QuarantineDir string `yaml:"quarantine_dir"`
	// NeverKill names processes (by comm) kill_process refuses.
	NeverKill []string `yaml:"never_kill"`
	// NeverBlock lists addresses or prefixes block_ip refuses.
	NeverBlock []string `yaml:"never_block"`
	// Firewall is block_ip's backend: auto, nftables or iptables.
	Firewall string `yaml:"firewall"`
	// HTTPAllow lists the URL prefixes http_request may call.
	HTTPAllow []string `yaml:"http_allow"`
	// ServiceBackend is restart_service's: auto, systemd or process.
	ServiceBackend string `yaml:"service_backend"`
	// Services are restarted by the process backend: a pidfile and a start
	// command, as Monit does.
	Services []*Service `yaml:"services"`
	// Commands are site-defined actions that run a fixed argv.
	Commands []*Command `yaml:"commands"`
}

// Service is a service the process backend restarts.
type Service struct {
	// Name is the unit name runbooks use (myapp.service).
	Name    string   `yaml:"name"`
	Pidfile string   `yaml:"pidfile"`
	Start   []string `yaml:"start"`
	// WritePidfile makes the healer write the started process's pid, for
	// services that do not write their own.
	WritePidfile bool `yaml:"write_pidfile"`
	// Comm is the command name the pidfile's process must have; another
	// (a stale pidfile, a reused pid) is not signalled.
	Comm string `yaml:"comm"`
	// Stop is the signal that stops it: TERM (the default), INT, QUIT,
	// HUP or KILL.
	Stop string `yaml:"stop"`
	// LogFile receives the started process's output.
	LogFile string   `yaml:"log_file"`
	Env     []string `yaml:"env"`
}

// Command defines a run_command action.
type Command struct {
	Name    string         `yaml:"name"`
	Doc     string         `yaml:"doc"`
	Tier    Tier           `yaml:"tier"`
	Argv    []string       `yaml:"argv"`
	Params  []action.Param `yaml:"params"`
	Timeout model.Duration `yaml:"timeout"`
}

// Runbook says what to do about the alerts it matches.
type Runbook struct {
	Name string `yaml:"name"`
	// Match lists Alertmanager matchers (alertname="DiskWillFillIn4Hours",
	// mountpoint=~"/tmp|/var/tmp"); all must match.
	Match []string `yaml:"match"`
	// On lists the statuses the runbook acts on: firing (the default),
	// resolved, or both.
	On []string `yaml:"on"`
	// DryRun makes this runbook's runs dry, whatever the global setting.
	DryRun bool `yaml:"dry_run"`
	// Precheck is asked before acting: is it still true?
	Precheck *Query `yaml:"precheck"`
	// Steps run in order; a failed step stops the runbook.
	Steps []*Step `yaml:"steps"`
	// Verify is asked after the steps, until it holds or Within passes.
	Verify *Verify `yaml:"verify"`
	// Rollback undoes the steps (newest first) when Verify fails.
	Rollback *bool `yaml:"rollback"`
	// Escalate posts HealerEscalation to Alertmanager when the runbook
	// fails, or its circuit breaker opens.
	Escalate *bool `yaml:"escalate"`
	// Cooldown is the least time between two runs on one target.
	Cooldown model.Duration `yaml:"cooldown"`
	// RateLimit bounds the runs of the runbook in a window, all targets.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// CircuitBreaker stops the runbook on a target after failures.
	CircuitBreaker *CircuitBreaker `yaml:"circuit_breaker"`
	// BlastRadius bounds how many targets the runbook touches.
	BlastRadius *BlastRadius `yaml:"blast_radius"`
	// Silence creates an Alertmanager silence for the alert while it runs.
	Silence *Silence `yaml:"silence"`
	// Maintenance marks a clean-up that can wait: it runs only inside a
	// maintenance window (see Maintenance).
	Maintenance bool `yaml:"maintenance"`

	matchers labels.Matchers
	line     int
}

// Step is one action of a runbook.
type Step struct {
	Action string `yaml:"action"`
	// Params are templates: {{ $labels.name }}, {{ $annotations.name }} and
	// {{ $value }} are replaced by the alert's values, and the result is
	// validated by the action's parameter schema.
	Params  map[string]string `yaml:"params"`
	Timeout model.Duration    `yaml:"timeout"`

	// templates are Params parsed once, at load.
	templates map[string]*Template
}

// Template returns the parsed template of parameter name, parsed when the
// configuration was loaded.
func (s *Step) Template(name string) (*Template, bool) {
	t, ok := s.templates[name]
	return t, ok
}

// Query is a PromQL condition.
type Query struct {
	Expr string `yaml:"expr"`
	// Labels are alert labels added as equality matchers to every series
	// selector of Expr, so that the query asks about this alert's series:
	// label values never become PromQL text.
	Labels []string `yaml:"labels"`
	// Expect is what makes the condition hold: nonempty (the default) or
	// empty. A query with a Forecast has none.
	Expect string `yaml:"expect"`
	// Forecast, on a precheck only, makes it hold when a series of Expr
	// is forecast to cross a threshold within a horizon, instead of when
	// Expr has series.
	Forecast *QueryForecast `yaml:"forecast"`
}

// QueryForecast asks whether a series of a precheck's expression crosses
// Threshold, in Direction, now or within Horizon ("full within 1h?"). It
// is asked only of a run an alert started, so it can stop a run, never
// start one.
type QueryForecast struct {
	Horizon model.Duration `yaml:"horizon"`
	// Threshold is required (0 is a value: free bytes reaching 0).
	Threshold *float64 `yaml:"threshold"`
	// Direction is below (the default: the value falls to the threshold
	// or under it) or above.
	Direction string `yaml:"direction"`
	// By is what must cross within the horizon: point (the default), the
	// point forecast, or interval, the prediction interval's near edge
	// (the earliest the crossing is likely), which holds sooner.
	By string `yaml:"by"`
	// History is how much of the past is read; 14 days when 0.
	History model.Duration `yaml:"history"`
}

// Verify is the query asked after the steps.
type Verify struct {
	Query    `yaml:",inline"`
	Within   model.Duration `yaml:"within"`
	Interval model.Duration `yaml:"interval"`
}

// RateLimit is at most Max runs per Window.
type RateLimit struct {
	Max    int            `yaml:"max"`
	Window model.Duration `yaml:"window"`
}

// CircuitBreaker opens after Failures failed runs (or verifications) in a
// row on a target, and closes after Quiet without one.
type CircuitBreaker struct {
	Failures int            `yaml:"failures"`
	Quiet    model.Duration `yaml:"quiet"`
}

// BlastRadius is at most MaxTargets distinct targets per Window, and, when
// Gate is set, only while the Gate query returns a result.
type BlastRadius struct {
	MaxTargets int            `yaml:"max_targets"`
	Window     model.Duration `yaml:"window"`
	Gate       string         `yaml:"gate"`
}

// Maintenance is when runbooks marked maintenance may run: in the Windows
// quietest hours of the week by Signal over History, never inside a
// Blackout, never while an Alertmanager silence matching SilenceMatchers
// is active.
type Maintenance struct {
	// Signal is the load to be quiet by, a PromQL expression whose
	// series are summed (scoped to nothing: the host's or the fleet's).
	Signal string `yaml:"signal"`
	// History is how far back the signal is read.
	History model.Duration `yaml:"history"`
	// Windows is how many hours of the week are maintenance windows.
	Windows int `yaml:"windows"`
	// Blackouts are recurring times, in UTC, no maintenance runs in.
	Blackouts []Blackout `yaml:"blackouts"`
	// SilenceMatchers, in Alertmanager's matcher syntax: an active
	// silence whose matchers all match these labels holds maintenance.
	SilenceMatchers []string `yaml:"silence_matchers"`

	silenceLabels map[string]string
	blackouts     []guard.Blackout
}

// Blackout is a recurring time without maintenance: on Days (mon ... sun;
// every day when empty), From to To (HH:MM, UTC; To before From crosses
// midnight).
type Blackout struct {
	Days []string `yaml:"days"`
	From string   `yaml:"from"`
	To   string   `yaml:"to"`
}

// SilenceLabels are the labels a maintenance silence must match, from
// silence_matchers (equality matchers only).
func (m *Maintenance) SilenceLabels() map[string]string { return m.silenceLabels }

// ParsedBlackouts returns the blackouts as the maintenance guard takes
// them.
func (m *Maintenance) ParsedBlackouts() []guard.Blackout { return m.blackouts }

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// timeOfDay parses HH:MM.
func timeOfDay(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q: want HH:MM", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

func (c *Config) validateMaintenance(bad func(string, ...any)) {
	m := &c.Maintenance
	if _, err := parser.NewParser(parser.Options{}).ParseExpr(m.Signal); err != nil {
		bad(err.Error(), "maintenance", "signal")
	}
	if m.Windows < 1 || m.Windows > 168 {
		bad(fmt.Sprintf("%d: want 1 to 168 hours of the week", m.Windows), "maintenance", "windows")
	}
	if m.History < model.Duration(24*time.Hour) {
		bad("must be at least 1d, to know the hours of a day", "maintenance", "history")
	}
	m.blackouts = nil
	for i, b := range m.Blackouts {
		var pb guard.Blackout
		for j, d := range b.Days {
			wd, ok := weekdays[strings.ToLower(d)]
			if !ok {
				bad(fmt.Sprintf("%q: want mon, tue, wed, thu, fri, sat or sun", d), "maintenance", "blackouts", i, "days", j)
			}
			pb.Days = append(pb.Days, wd)
		}
		var err error
		if pb.From, err = timeOfDay(b.From); err != nil {
			bad(err.Error(), "maintenance", "blackouts", i, "from")
		}
		if pb.To, err = timeOfDay(b.To); err != nil {
			bad(err.Error(), "maintenance", "blackouts", i, "to")
		} else if pb.To == pb.From {
			bad(fmt.Sprintf("%q is also from: a blackout of no time (for a whole day write from 00:00 to 23:59)", b.To), "maintenance", "blackouts", i, "to")
		}
		m.blackouts = append(m.blackouts, pb)
	}
	m.silenceLabels = map[string]string{}
	for i, s := range m.SilenceMatchers {
		ms, err := labels.ParseMatchers(s)
		if err != nil {
			bad(err.Error(), "maintenance", "silence_matchers", i)
			continue
		}
		for _, mt := range ms {
			if mt.Type != labels.MatchEqual {
				bad(mt.String()+": only name=\"value\" matchers say which labels a maintenance silence must match", "maintenance", "silence_matchers", i)
				continue
			}
			m.silenceLabels[mt.Name] = mt.Value
		}
	}
}

// Silence is an Alertmanager silence created while a run acts.
type Silence struct {
	Duration model.Duration `yaml:"duration"`
}

// Matchers returns the runbook's parsed matchers.
func (r *Runbook) Matchers() labels.Matchers { return r.matchers }

// Line is the runbook's line in the file.
func (r *Runbook) Line() int { return r.line }

// ShouldRollback reports whether a failed verification rolls back.
func (r *Runbook) ShouldRollback() bool { return r.Rollback == nil || *r.Rollback }

// ShouldEscalate reports whether a failure escalates.
func (r *Runbook) ShouldEscalate() bool { return r.Escalate == nil || *r.Escalate }

// ActsOn reports whether the runbook acts on alerts of status.
func (r *Runbook) ActsOn(status string) bool {
	for _, s := range r.On {
		if s == status {
			return true
		}
	}
	return false
}

// Default returns the configuration of an empty file.
func Default() *Config {
	c := &Config{}
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	g := &c.Global
	if g.InstanceLabel == "" {
		g.InstanceLabel = "instance"
	}
	c.defaultIncidents()
	c.defaultBrain()
	m := &c.Maintenance
	if m.Signal == "" {
		m.Signal = `sum(rate(node_cpu_seconds_total{mode!="idle"}[5m]))`
	}
	if m.History == 0 {
		m.History = model.Duration(14 * 24 * time.Hour)
	}
	if m.Windows == 0 {
		m.Windows = 3
	}
	if len(g.Identity) == 0 {
		if h, err := os.Hostname(); err == nil {
			g.Identity = []string{h, "localhost", "127.0.0.1"}
		}
	}
	if g.ApprovalTimeout == 0 {
		g.ApprovalTimeout = model.Duration(time.Hour)
	}
	if g.Concurrency == 0 {
		g.Concurrency = 4
	}
	for _, e := range []*Endpoint{c.Prometheus, c.Alertmanager} {
		if e != nil && e.Timeout == 0 {
			e.Timeout = model.Duration(10 * time.Second)
		}
	}
	if c.Webhook.MaxBodySize == 0 {
		c.Webhook.MaxBodySize = 4 * units.MiB
	}
	s := &c.Storage
	if s.Path == "" {
		s.Path = "data"
	}
	if s.Synchronous == "" {
		s.Synchronous = "normal"
	}
	if s.Retention.Alerts == 0 {
		s.Retention.Alerts = model.Duration(30 * 24 * time.Hour)
	}
	if s.Retention.Runs == 0 {
		s.Retention.Runs = model.Duration(90 * 24 * time.Hour)
	}
	if s.Retention.Quarantine == 0 {
		s.Retention.Quarantine = model.Duration(7 * 24 * time.Hour)
	}
	a := &c.Audit
	if a.Path == "" {
		a.Path = s.Path + "/audit"
	}
	if a.MaxSize == 0 {
		a.MaxSize = 64 * units.MiB
	}
	if a.MaxAge == 0 {
		a.MaxAge = model.Duration(7 * 24 * time.Hour)
	}
	if a.Retention == 0 {
		a.Retention = model.Duration(365 * 24 * time.Hour)
	}
	ac := &c.Actions
	if ac.QuarantineDir == "" {
		// Absolute, because clean_temp_files records where it moved files.
		q, err := filepath.Abs(filepath.Join(s.Path, "quarantine"))
		if err != nil {
			q = filepath.Join(s.Path, "quarantine")
		}
		ac.QuarantineDir = q
	}
	if ac.Firewall == "" {
		ac.Firewall = "auto"
	}
	if ac.ServiceBackend == "" {
		ac.ServiceBackend = "auto"
	}
	for _, cmd := range ac.Commands {
		if cmd.Timeout == 0 {
			cmd.Timeout = model.Duration(time.Minute)
		}
	}
	for _, r := range c.Runbooks {
		if r == nil {
			continue
		}
		if len(r.On) == 0 {
			r.On = []string{string(alertmanager.StatusFiring)}
		}
		for _, q := range []*Query{r.Precheck, verifyQuery(r.Verify)} {
			if q != nil && q.Expect == "" && q.Forecast == nil {
				q.Expect = "nonempty"
			}
			if q != nil && q.Forecast != nil {
				if q.Forecast.Direction == "" {
					q.Forecast.Direction = "below"
				}
				if q.Forecast.By == "" {
					q.Forecast.By = "point"
				}
			}
		}
		if r.Verify != nil {
			if r.Verify.Within == 0 {
				r.Verify.Within = model.Duration(5 * time.Minute)
			}
			if r.Verify.Interval == 0 {
				r.Verify.Interval = model.Duration(15 * time.Second)
			}
		}
		if r.CircuitBreaker != nil && r.CircuitBreaker.Quiet == 0 {
			r.CircuitBreaker.Quiet = model.Duration(time.Hour)
		}
		if r.BlastRadius != nil && r.BlastRadius.Window == 0 {
			r.BlastRadius.Window = model.Duration(time.Hour)
		}
		if r.Silence != nil && r.Silence.Duration == 0 {
			r.Silence.Duration = model.Duration(15 * time.Minute)
		}
	}
}

func verifyQuery(v *Verify) *Query {
	if v == nil {
		return nil
	}
	return &v.Query
}

// Specs gives the specs of the actions a configuration makes available,
// to check its runbooks against: the built-ins as its actions section
// configures them (roots, allow-lists) and its commands.
type Specs func(*Config) ([]action.Spec, error)

// StaticSpecs returns a Specs that ignores the configuration.
func StaticSpecs(specs []action.Spec) Specs {
	return func(*Config) ([]action.Spec, error) { return specs, nil }
}

// LoadFile reads and validates the configuration in path.
func LoadFile(path string, specs Specs) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Load(b, specs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Source = path
	return c, nil
}

// Load parses and validates a configuration.
func Load(b []byte, specs Specs) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, cleanYAMLError(err, nil)
	}
	c := &Config{root: &root}
	if len(bytes.TrimSpace(b)) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil {
			return nil, cleanYAMLError(err, &root)
		}
		var extra yaml.Node
		if err := dec.Decode(&extra); err == nil {
			return nil, fmt.Errorf("line %d: a second YAML document; the configuration is one document", extra.Line)
		}
	}
	c.setDefaults()
	actions, err := specs(c)
	if err != nil {
		return nil, fmt.Errorf("actions: %w", err)
	}
	if err := c.validate(actions); err != nil {
		return nil, err
	}
	return c, nil
}

var yamlLineRE = regexp.MustCompile(`line (\d+): `)

// cleanYAMLError rewrites yaml.v3's errors to name the path of the key at
// each line they mention: "runbooks[0].steps[1].timeout (line 14): cannot
// unmarshal ...".
func cleanYAMLError(err error, root *yaml.Node) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	errs := make([]error, 0, len(te.Errors))
	for _, msg := range te.Errors {
		m := yamlLineRE.FindStringSubmatchIndex(msg)
		if m == nil || root == nil {
			errs = append(errs, errors.New(msg))
			continue
		}
		line, _ := strconv.Atoi(msg[m[2]:m[3]])
		rest := msg[m[1]:]
		rest = strings.ReplaceAll(rest, "config.", "")
		if p := pathAtLine(root, line); p != "" {
			errs = append(errs, fmt.Errorf("%s (line %d): %s", p, line, rest))
		} else {
			errs = append(errs, fmt.Errorf("line %d: %s", line, rest))
		}
	}
	return errors.Join(errs...)
}

// pathAtLine returns the path of the deepest key or item that starts at
// line, e.g. runbooks[0].steps[1].timeout.
func pathAtLine(n *yaml.Node, line int) string {
	var best string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if k.Line == line {
					best = p
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if c.Line == line && c.Kind == yaml.ScalarNode {
					best = p
				}
				walk(c, p)
			}
		}
	}
	walk(n, "")
	return best
}

// lineOf returns the line of the node at path (keys and indexes), or 0.
func (c *Config) lineOf(path ...any) int {
	if c.root == nil || len(c.root.Content) == 0 {
		return 0
	}
	n := c.root.Content[0]
	line := n.Line
	for _, p := range path {
		switch p := p.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return line
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					line = n.Content[i].Line
					n = n.Content[i+1]
					found = true
					break
				}
			}
			if !found {
				return line
			}
		case int:
			if n.Kind != yaml.SequenceNode || p >= len(n.Content) {
				return line
			}
			n = n.Content[p]
			line = n.Line
		}
	}
	return line
}

// problem is one validation error, with the path and line it is about.
func (c *Config) problem(msg string, path ...any) error {
	var b strings.Builder
	for i, p := range path {
		switch p := p.(type) {
		case string:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		}
	}
	if line := c.lineOf(path...); line > 0 {
		return fmt.Errorf("%s (line %d): %s", b.String(), line, msg)
	}
	return fmt.Errorf("%s: %s", b.String(), msg)
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

func (c *Config) validate(specs []action.Spec) error {
	var errs []error
	bad := func(msg string, path ...any) { errs = append(errs, c.problem(msg, path...)) }

	if c.Global.Concurrency < 1 {
		bad("must be at least 1", "global", "concurrency")
	}
	for _, ep := range []struct {
		name string
		e    *Endpoint
	}{{"prometheus", c.Prometheus}, {"alertmanager", c.Alertmanager}} {
		name, e := ep.name, ep.e
		if e == nil {
			continue
		}
		if !strings.HasPrefix(e.URL, "http://") && !strings.HasPrefix(e.URL, "https://") {
			bad(fmt.Sprintf("%q is not an http or https URL", e.URL), name, "url")
		}
		if err := e.HTTPConfig.Validate(); err != nil {
			bad(err.Error(), name, "http_config")
		}
	}
	c.validateMaintenance(bad)
	c.validateIncidents(bad)
	c.validateBrain(bad)
	for i, h := range c.API.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/@:?# \t\n") {
			bad(fmt.Sprintf("%q: want a host name without scheme, port or path", h), "api", "allowed_hosts", i)
		}
	}
	if c.Storage.Synchronous != "full" && c.Storage.Synchronous != "normal" {
		bad(fmt.Sprintf("%q: want full or normal", c.Storage.Synchronous), "storage", "synchronous")
	}
	if k := c.Audit.KeyFile; k != "" {
		if rel, err := filepath.Rel(filepath.Clean(c.Audit.Path), filepath.Clean(k)); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			bad(fmt.Sprintf("%q is inside audit.path: whoever can rewrite the log could read its key", k), "audit", "key_file")
		}
	}
	switch c.Actions.Firewall {
	case "auto", "nftables", "iptables":
	default:
		bad(fmt.Sprintf("%q: want auto, nftables or iptables", c.Actions.Firewall), "actions", "firewall")
	}
	switch c.Actions.ServiceBackend {
	case "auto", "systemd", "systemctl", "process":
	default:
		bad(fmt.Sprintf("%q: want auto, systemd, systemctl or process", c.Actions.ServiceBackend), "actions", "service_backend")
	}
	for i, svc := range c.Actions.Services {
		if svc == nil {
			bad("empty service", "actions", "services", i)
			continue
		}
		if svc.Name == "" || svc.Pidfile == "" || len(svc.Start) == 0 || !strings.HasPrefix(svc.Start[0], "/") {
			bad("name, pidfile and start (an absolute argv[0]) are required", "actions", "services", i)
		}
		if _, err := StopSignal(svc.Stop); err != nil {
			bad(err.Error(), "actions", "services", i, "stop")
		}
	}
	for _, key := range []string{"temp_roots", "log_roots"} {
		roots := c.Actions.TempRoots
		if key == "log_roots" {
			roots = c.Actions.LogRoots
		}
		for i, r := range roots {
			if !strings.HasPrefix(r, "/") || r == "/" {
				bad(fmt.Sprintf("%q must be an absolute path other than /", r), "actions", key, i)
			}
		}
	}

	known := map[string]action.Spec{}
	for _, s := range specs {
		known[s.Name] = s
	}
	for i, cmd := range c.Actions.Commands {
		if cmd == nil {
			bad("empty command", "actions", "commands", i)
			continue
		}
		if !nameRE.MatchString(cmd.Name) {
			bad(fmt.Sprintf("name %q: want lowercase letters, digits, _ and -", cmd.Name), "actions", "commands", i, "name")
		} else if _, dup := known[cmd.Name]; dup {
			bad(fmt.Sprintf("an action called %q already exists", cmd.Name), "actions", "commands", i, "name")
		}
		if len(cmd.Argv) == 0 || !strings.HasPrefix(cmd.Argv[0], "/") {
			bad("argv[0] must be an absolute path", "actions", "commands", i, "argv")
		}
		known[cmd.Name] = action.Spec{Name: cmd.Name, Tier: cmd.Tier.Tier, Params: cmd.Params}
	}

	names := map[string]bool{}
	for i, r := range c.Runbooks {
		if r == nil {
			bad("empty runbook", "runbooks", i)
			continue
		}
		r.line = c.lineOf("runbooks", i)
		if !nameRE.MatchString(r.Name) {
			bad(fmt.Sprintf("name %q: want lowercase letters, digits, _ and -", r.Name), "runbooks", i, "name")
		} else if names[r.Name] {
			bad(fmt.Sprintf("a runbook called %q already exists", r.Name), "runbooks", i, "name")
		}
		names[r.Name] = true
		if len(r.Match) == 0 {
			bad("at least one matcher is needed; a runbook that matches every alert is a mistake", "runbooks", i, "match")
		}
		r.matchers = nil
		for j, m := range r.Match {
			ms, err := labels.ParseMatchers(m)
			if err != nil {
				bad(err.Error(), "runbooks", i, "match", j)
				continue
			}
			r.matchers = append(r.matchers, ms...)
		}
		for j, on := range r.On {
			if on != string(alertmanager.StatusFiring) && on != string(alertmanager.StatusResolved) {
				bad(fmt.Sprintf("%q: want firing or resolved", on), "runbooks", i, "on", j)
			}
		}
		if len(r.Steps) == 0 {
			bad("at least one step is needed", "runbooks", i, "steps")
		}
		for j, st := range r.Steps {
			if st == nil {
				bad("empty step", "runbooks", i, "steps", j)
				continue
			}
			spec, ok := known[st.Action]
			if !ok {
				bad(fmt.Sprintf("unknown action %q", st.Action), "runbooks", i, "steps", j, "action")
				continue
			}
			for _, k := range slices.Sorted(maps.Keys(st.Params)) {
				v := st.Params[k]
				p, ok := spec.Param(k)
				if !ok {
					bad(fmt.Sprintf("%s has no parameter %q", st.Action, k), "runbooks", i, "steps", j, "params", k)
					continue
				}
				tmpl, err := ParseTemplate(v)
				if err != nil {
					bad(err.Error(), "runbooks", i, "steps", j, "params", k)
					continue
				}
				if st.templates == nil {
					st.templates = make(map[string]*Template, len(st.Params))
				}
				st.templates[k] = tmpl
				if tmpl.Static() {
					if _, err := p.Check(v); err != nil {
						bad(err.Error(), "runbooks", i, "steps", j, "params", k)
					}
				}
			}
			for _, p := range spec.Params {
				if _, ok := st.Params[p.Name]; !ok && p.Required && p.Default == "" {
					bad(fmt.Sprintf("%s needs parameter %q", st.Action, p.Name), "runbooks", i, "steps", j, "params")
				}
			}
			if st.Timeout < 0 {
				bad("must not be negative", "runbooks", i, "steps", j, "timeout")
			}
		}
		if r.Precheck != nil {
			c.checkQuery(r.Precheck, &errs, "runbooks", i, "precheck")
		}
		if r.Verify != nil {
			c.checkQuery(&r.Verify.Query, &errs, "runbooks", i, "verify")
			if r.Verify.Forecast != nil {
				bad("a forecast is a precheck's only: a verification asks what is, not what will be", "runbooks", i, "verify", "forecast")
			}
		}
		if r.RateLimit != nil && (r.RateLimit.Max < 1 || r.RateLimit.Window <= 0) {
			bad("max must be at least 1 and window positive", "runbooks", i, "rate_limit")
		}
		if r.CircuitBreaker != nil && r.CircuitBreaker.Failures < 1 {
			bad("failures must be at least 1", "runbooks", i, "circuit_breaker", "failures")
		}
		if b := r.BlastRadius; b != nil {
			if b.MaxTargets < 0 {
				bad("must not be negative", "runbooks", i, "blast_radius", "max_targets")
			}
			if b.Gate != "" {
				if _, err := parser.NewParser(parser.Options{}).ParseExpr(b.Gate); err != nil {
					bad(err.Error(), "runbooks", i, "blast_radius", "gate")
				}
			}
		}
		if r.Silence != nil && c.Alertmanager == nil {
			bad("a silence needs alertmanager.url", "runbooks", i, "silence")
		}
	}
	return errors.Join(errs...)
}

func (c *Config) checkQuery(q *Query, errs *[]error, path ...any) {
	if _, err := parser.NewParser(parser.Options{}).ParseExpr(q.Expr); err != nil {
		*errs = append(*errs, c.problem(err.Error(), append(path, "expr")...))
	}
	for j, l := range q.Labels {
		if !model.LegacyValidation.IsValidLabelName(l) {
			*errs = append(*errs, c.problem(fmt.Sprintf("%q is not a label name", l), append(path, "labels", j)...))
		}
	}
	if f := q.Forecast; f != nil {
		c.checkForecast(f, q.Expect, errs, path...)
		return
	}
	if q.Expect != "nonempty" && q.Expect != "empty" {
		*errs = append(*errs, c.problem(fmt.Sprintf("%q: want nonempty or empty", q.Expect), append(path, "expect")...))
	}
}

// checkForecast checks the forecast block of the query at path; expect is
// refused beside it, since the forecast alone says when the query holds.
func (c *Config) checkForecast(f *QueryForecast, expect string, errs *[]error, path ...any) {
	bad := func(msg string, keys ...any) {
		*errs = append(*errs, c.problem(msg, append(slices.Clone(path), keys...)...))
	}
	if expect != "" {
		bad("has no meaning beside a forecast, which holds when a series crosses the threshold; remove it", "expect")
	}
	if f.Horizon <= 0 {
		bad("must be > 0", "forecast", "horizon")
	}
	if f.Threshold == nil {
		bad("a forecast needs a threshold", "forecast", "threshold")
	} else if math.IsNaN(*f.Threshold) || math.IsInf(*f.Threshold, 0) {
		bad("must be a finite number", "forecast", "threshold")
	}
	if f.Direction != "below" && f.Direction != "above" {
		bad(fmt.Sprintf("%q: want below or above", f.Direction), "forecast", "direction")
	}
	if f.By != "point" && f.By != "interval" {
		bad(fmt.Sprintf("%q: want point or interval", f.By), "forecast", "by")
	}
	if f.History < 0 {
		bad("must not be negative", "forecast", "history")
	} else if f.History > 0 && f.History <= f.Horizon {
		bad("must be longer than the horizon, whose past the forecast is scored on", "forecast", "history")
	}
}

// Tier is an action tier in the configuration: observe, low, medium or high.
type Tier struct{ action.Tier }

// UnmarshalYAML implements yaml.Unmarshaler, reporting a bad tier with its
// line like any other bad value.
func (t *Tier) UnmarshalYAML(n *yaml.Node) error {
	v, err := action.ParseTier(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: unknown tier %q (want observe, low, medium or high)", n.Line, n.Value)}}
	}
	t.Tier = v
	return nil
}

// StopSignal returns the signal a service's stop names ("" is TERM).
func StopSignal(name string) (syscall.Signal, error) {
	switch strings.TrimPrefix(strings.ToUpper(name), "SIG") {
	case "", "TERM":
		return syscall.SIGTERM, nil
	case "INT":
		return syscall.SIGINT, nil
	case "QUIT":
		return syscall.SIGQUIT, nil
	case "HUP":
		return syscall.SIGHUP, nil
	case "KILL":
		return syscall.SIGKILL, nil
	}
	return 0, fmt.Errorf("%q: want TERM, INT, QUIT, HUP or KILL", name)
}
