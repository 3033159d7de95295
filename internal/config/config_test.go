package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/deus-ex-machina/deus/internal/action"
)

var specs = []action.Spec{
	{Name: "restart_service", Tier: action.TierMedium, Params: []action.Param{{Name: "unit", Type: action.TypeUnit, Required: true}}},
	{Name: "clean_temp_files", Tier: action.TierLow, Params: []action.Param{
		{Name: "path", Type: action.TypePath, Required: true, Roots: []string{"/tmp"}},
		{Name: "older_than", Type: action.TypeDuration, Default: "1h"},
	}},
}

const good = `
global:
  dry_run: true
  max_tier: medium
  identity: [web1]
prometheus:
  url: http://127.0.0.1:9090
  http_config:
    basic_auth: {username: u, password: hunter2}
runbooks:
  - name: restart-nginx
    match: ['alertname="ServiceDown"', 'service=~"nginx|apache2"']
    precheck:
      expr: deus_service_up == 0
      labels: [instance, service]
    steps:
      - action: restart_service
        params: {unit: "{{ $labels.service }}.service"}
        timeout: 1m
    verify:
      expr: deus_service_up == 1
      labels: [service]
      within: 2m
    cooldown: 10m
    rate_limit: {max: 3, window: 1h}
    circuit_breaker: {failures: 2}
`

func TestLoadGood(t *testing.T) {
	c, err := Load([]byte(good), StaticSpecs(specs))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	r := c.Runbooks[0]
	if got, want := len(r.Matchers()), 2; got != want {
		t.Errorf("matchers: got %d, want %d", got, want)
	}
	if got, want := r.On, []string{"firing"}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("on: got %v, want %v", got, want)
	}
	if got, want := time.Duration(r.CircuitBreaker.Quiet), time.Hour; got != want {
		t.Errorf("circuit_breaker.quiet default: got %v, want %v", got, want)
	}
	if got, want := c.Global.MaxTier.Tier, action.TierMedium; got != want {
		t.Errorf("max_tier: got %v, want %v", got, want)
	}
	if got, want := time.Duration(r.Verify.Interval), 15*time.Second; got != want {
		t.Errorf("verify.interval default: got %v, want %v", got, want)
	}
	if got, want := r.Line(), 11; got != want {
		t.Errorf("runbook line: got %d, want %d", got, want)
	}
}

func TestLoadAuditKeyFile(t *testing.T) {
	c, err := Load([]byte("audit:\n  path: /var/lib/deus/audit\n  key_file: /etc/deus/audit.key\n"), StaticSpecs(specs))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := c.Audit.KeyFile, "/etc/deus/audit.key"; got != want {
		t.Errorf("audit.key_file: got %q, want %q", got, want)
	}
}

func TestLoadEmpty(t *testing.T) {
	c, err := Load(nil, StaticSpecs(specs))
	if err != nil {
		t.Fatalf("Load(empty): %v", err)
	}
	if c.Storage.Path != "data" || c.Global.Concurrency != 4 || c.Global.MaxTier.Tier != action.TierObserve {
		t.Errorf("defaults: got %+v", c.Global)
	}
}

func TestLoadErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		yaml string
		want []string
	}{
		"an unknown key names its path and line": {
			yaml: "global:\n  dry_run: true\n  dryrun: false\n",
			want: []string{"global.dryrun (line 3): field dryrun not found"},
		},
		"a bad value names its path and line": {
			yaml: "global:\n  concurrency: many\n",
			want: []string{"global.concurrency (line 2): cannot unmarshal"},
		},
		"an unknown tier names its line": {
			yaml: "global:\n  max_tier: root\n",
			want: []string{`global.max_tier (line 2): unknown tier "root"`},
		},
		"a bad matcher names the runbook's matcher": {
			yaml: "runbooks:\n  - name: a\n    match: ['alertname=~\"(\"']\n    steps: [{action: restart_service, params: {unit: x.service}}]\n",
			want: []string{"runbooks[0].match[0] (line 3)"},
		},
		"an unknown action": {
			yaml: "runbooks:\n  - name: a\n    match: ['alertname=\"A\"']\n    steps:\n      - action: reboot\n",
			want: []string{`runbooks[0].steps[0].action (line 5): unknown action "reboot"`},
		},
		"an unknown parameter": {
			yaml: "runbooks:\n  - name: a\n    match: ['alertname=\"A\"']\n    steps:\n      - action: restart_service\n        params: {unit: a.service, force: yes}\n",
			want: []string{`runbooks[0].steps[0].params.force (line 6): restart_service has no parameter "force"`},
		},
		"a missing required parameter": {
			yaml: "runbooks:\n  - name: a\n    match: ['alertname=\"A\"']\n    steps:\n      - action: restart_service\n",
			want: []string{`needs parameter "unit"`},
		},
		"a static parameter outside its root": {
			yaml: "runbooks:\n  - name: a\n    match: ['alertname=\"A\"']\n    steps:\n      - action: clean_temp_files\n        params: {path: /etc}\n",
			want: []string{`runbooks[0].steps[0].params.path (line 6): "/etc" is not under /tmp`},
		},
		"a template that tries to call a function": {
			yaml: "runbooks:\n  - name: a\n    match: ['alertname=\"A\"']\n    steps:\n      - action: restart_service\n        params: {unit: '{{ printf \"%s\" $labels.x }}'}\n",
			want: []string{`only {{ $labels.NAME }}`},
		},
		"a bad PromQL precheck": {
			yaml: "prometheus: {url: http://x}\nrunbooks:\n  - name: a\n    match: ['alertname=\"A\"']\n    precheck: {expr: 'up ==='}\n    steps: [{action: restart_service, params: {unit: a.service}}]\n",
			want: []string{"runbooks[0].precheck.expr (line 5)"},
		},
		"a forecast without a horizon": {
			yaml: forecastRunbook("{threshold: 0}"),
			want: []string{"runbooks[0].precheck.forecast.horizon (line 8): must be > 0"},
		},
		"a forecast without a threshold": {
			yaml: forecastRunbook("{horizon: 1h}"),
			want: []string{"runbooks[0].precheck.forecast.threshold (line 8): a forecast needs a threshold"},
		},
		"a forecast in an unknown direction": {
			yaml: forecastRunbook("{horizon: 1h, threshold: 0, direction: sideways}"),
			want: []string{`runbooks[0].precheck.forecast.direction (line 8): "sideways": want below or above`},
		},
		"a forecast by something other than the point or the interval": {
			yaml: forecastRunbook("{horizon: 1h, threshold: 0, by: median}"),
			want: []string{`runbooks[0].precheck.forecast.by (line 8): "median": want point or interval`},
		},
		"a forecast whose history is no longer than its horizon": {
			yaml: forecastRunbook("{horizon: 1d, threshold: 0, history: 1d}"),
			want: []string{"runbooks[0].precheck.forecast.history (line 8): must be longer than the horizon"},
		},
		"expect beside a forecast": {
			yaml: forecastRunbook("{horizon: 1h, threshold: 0}\n      expect: empty"),
			want: []string{"runbooks[0].precheck.expect (line 9): has no meaning beside a forecast"},
		},
		"an incident cause with a bad matcher and no effect": {
			yaml: "incidents:\n  causes:\n    - name: x\n      cause: ['alertname=~\"(\"']\n",
			want: []string{"incidents.causes[0].cause[0] (line 4)", "incidents.causes[0].effect", "at least one matcher"},
		},
		"an incident group_wait longer than its window": {
			yaml: "incidents: {window: 1m, group_wait: 2m}\n",
			want: []string{"incidents.group_wait (line 1): 2m is longer than the window (1m)"},
		},
		"an incident grouped by what is not a label": {
			yaml: "incidents: {group_by: [instance, 'not a label']}\n",
			want: []string{"incidents.group_by[1] (line 1)"},
		},
		"a forecast on a verification": {
			yaml: "prometheus: {url: http://x}\nrunbooks:\n  - name: a\n    match: ['alertname=\"A\"']\n    steps: [{action: restart_service, params: {unit: a.service}}]\n" +
				"    verify:\n      expr: up\n      forecast: {horizon: 1h, threshold: 0}\n",
			want: []string{"runbooks[0].verify.forecast (line 8): a forecast is a precheck's only"},
		},
		"a runbook without matchers would match everything": {
			yaml: "runbooks:\n  - name: a\n    steps: [{action: restart_service, params: {unit: a.service}}]\n",
			want: []string{"runbooks[0].match", "matches every alert"},
		},
		"two runbooks with one name": {
			yaml: "runbooks:\n  - {name: a, match: ['x=\"1\"'], steps: [{action: restart_service, params: {unit: a.service}}]}\n  - {name: a, match: ['x=\"1\"'], steps: [{action: restart_service, params: {unit: a.service}}]}\n",
			want: []string{`runbooks[1].name (line 3): a runbook called "a" already exists`},
		},
		"every problem is reported at once": {
			yaml: "global: {concurrency: -1}\nstorage: {synchronous: sometimes}\n",
			want: []string{"global.concurrency (line 1)", "storage.synchronous (line 2)"},
		},
		"an allowed host with a port": {
			yaml: "api:\n  allowed_hosts: [healer.local, \"healer.local:9111\"]\n",
			want: []string{`api.allowed_hosts[1] (line 2): "healer.local:9111": want a host name without scheme, port or path`},
		},
		"an audit key inside the audit log's directory": {
			yaml: "storage: {path: /var/lib/deus}\naudit:\n  path: /var/lib/deus/audit\n  key_file: /var/lib/deus/audit/key\n",
			want: []string{`audit.key_file (line 4): "/var/lib/deus/audit/key" is inside audit.path`},
		},
		"a second document": {
			yaml: "global: {}\n---\nglobal: {}\n",
			want: []string{"second YAML document"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load([]byte(tc.yaml), StaticSpecs(specs))
			if err == nil {
				t.Fatalf("Load: got no error, want one containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load: got %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// forecastRunbook is a runbook whose precheck has the forecast block
// forecast, on line 8.
func forecastRunbook(forecast string) string {
	return "prometheus: {url: http://x}\nrunbooks:\n  - name: a\n    match: ['alertname=\"A\"']\n    steps: [{action: restart_service, params: {unit: a.service}}]\n" +
		"    precheck:\n      expr: node_filesystem_avail_bytes\n      forecast: " + forecast + "\n"
}

func TestAPrecheckForecastDefaultsToThePointFallingBelow(t *testing.T) {
	t.Parallel()
	c, err := Load([]byte(forecastRunbook("{horizon: 1h, threshold: 0}")), StaticSpecs(specs))
	if err != nil {
		t.Fatal(err)
	}
	q := c.Runbooks[0].Precheck
	f := q.Forecast
	if f == nil || time.Duration(f.Horizon) != time.Hour || f.Threshold == nil || *f.Threshold != 0 || f.Direction != "below" || f.By != "point" {
		t.Errorf("forecast: got %+v, want a 1h horizon, threshold 0, below, by point", f)
	}
	if q.Expect != "" {
		t.Errorf("expect: got %q, want none beside a forecast", q.Expect)
	}
}

func TestTemplate(t *testing.T) {
	labels := map[string]string{"service": "$(touch pwned)", "path": "../etc"}
	for name, tc := range map[string]struct {
		in, want string
		err      error
	}{
		"a label is substituted as text":         {in: "{{ $labels.service }}.service", want: "$(touch pwned).service"},
		"index form":                             {in: `{{ index $labels "path" }}`, want: "../etc"},
		"literal text only":                      {in: "nginx.service", want: "nginx.service"},
		"a missing label is an error, not empty": {in: "{{ $labels.nope }}", err: ErrMissing},
		"an annotation that is missing too":      {in: "{{ $annotations.summary }}", err: ErrMissing},
	} {
		t.Run(name, func(t *testing.T) {
			tmpl, err := ParseTemplate(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tmpl.Execute(labels, nil)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Execute(%q): got error %v, want %v", tc.in, err, tc.err)
			}
			if got != tc.want {
				t.Errorf("Execute(%q) = %q; want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestSecretsDoNotPrint(t *testing.T) {
	c, err := Load([]byte(good), StaticSpecs(specs))
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Prometheus.HTTPConfig.BasicAuth.Password; string(s) != "hunter2" {
		t.Fatalf("password: got %q", s)
	}
	out, err := yaml.Marshal(c.Prometheus)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "hunter2") {
		t.Errorf("the marshalled configuration shows the password:\n%s", out)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("global: {dry_run: true}\n"))
	f.Add([]byte("runbooks: [{name: a, match: ['a=\"b\"'], steps: [{action: x}]}]"))
	f.Add([]byte("{{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Load(b, StaticSpecs(specs))
		if err == nil && c == nil {
			t.Fatal("Load returned neither a config nor an error")
		}
		if err != nil && c != nil {
			t.Fatal("Load returned both a config and an error")
		}
	})
}

func TestValidationErrorsComeInAStableOrder(t *testing.T) {
	t.Parallel()
	yml := "prometheus: {url: ftp://p}\nalertmanager: {url: ftp://a}\nrunbooks:\n  - name: a\n    match: ['x=\"1\"']\n    steps: [{action: restart_service, params: {unit: 'bad unit', b: x, c: y, d: z}}]\n"
	var first string
	for i := range 20 {
		_, err := Load([]byte(yml), StaticSpecs(specs))
		if err == nil {
			t.Fatal("want errors")
		}
		if i == 0 {
			first = err.Error()
			continue
		}
		if err.Error() != first {
			t.Fatalf("load %d reported\n%s\nwant the same order as the first:\n%s", i, err, first)
		}
	}
}

func TestStepTemplatesAreParsedAtLoad(t *testing.T) {
	t.Parallel()
	c, err := Load([]byte("runbooks:\n  - name: a\n    match: ['x=\"1\"']\n    steps: [{action: restart_service, params: {unit: '{{ $labels.job }}.service'}}]\n"), StaticSpecs(specs))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, ok := c.Runbooks[0].Steps[0].Template("unit")
	if !ok {
		t.Fatal("the unit parameter's template was not parsed at load")
	}
	if got, err := tmpl.Execute(map[string]string{"job": "nginx"}, nil); err != nil || got != "nginx.service" {
		t.Errorf("Execute: got %q, %v; want nginx.service", got, err)
	}
}

func TestABlackoutOfNoTimeIsRefused(t *testing.T) {
	t.Parallel()
	_, err := Load([]byte("maintenance:\n  blackouts:\n    - {days: [mon], from: \"00:00\", to: \"00:00\"}\n"), StaticSpecs(specs))
	if err == nil || !strings.Contains(err.Error(), "maintenance.blackouts[0].to (line 3)") || !strings.Contains(err.Error(), "no time") {
		t.Errorf("from equal to to: got %v, want an error naming maintenance.blackouts[0].to", err)
	}
}
