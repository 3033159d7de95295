package web

import (
	"context"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/query"
	"github.com/deus-ex-machina/deus/internal/store"
)

// Status is what the status page needs.
type Status struct {
	Store   *store.Store
	Querier query.Querier // nil: no vitals
	// Mode says how the healer runs: "standalone" or "integrated".
	Mode    string
	DryRun  func() bool
	Host    string
	Version string
	Logger  *slog.Logger
}

type vital struct {
	Name, Value string
	Level       string // ok, warn, bad
}

type fsRow struct {
	Mount, Avail, Full string
	Level              string
}

type statusPage struct {
	Host, Mode, Version, Now string
	DryRun                   bool
	Vitals                   []vital
	Filesystems              []fsRow
	VitalsError              string
	Firing                   []store.StoredAlert
	Runs                     []store.Run
}

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	},
	"label": func(ls model.LabelSet, name string) string { return string(ls[model.LabelName(name)]) },
	"would": func(r store.Run) string {
		if r.State == store.RunDryRun {
			return "would run"
		}
		return string(r.State)
	},
	"params": func(r store.Run) string {
		var parts []string
		for _, s := range r.Steps {
			keys := make([]string, 0, len(s.Params))
			for k := range s.Params {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var kv []string
			for _, k := range keys {
				kv = append(kv, k+"="+s.Params[k])
			}
			parts = append(parts, s.Action+"("+strings.Join(kv, ", ")+")")
		}
		return strings.Join(parts, "; ")
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="10">
<title>Deus Ex Machina · {{.Host}}</title>
<link rel="stylesheet" href="/static/status.css">
</head>
<body>
<h1>Deus Ex Machina on {{.Host}}</h1>
<div class="meta">{{.Mode}} mode · version {{.Version}} · {{.Now}}
{{if .DryRun}}<span class="badge dry" id="dry-run">dry run: nothing is changed, runs say what they would do</span>{{end}}</div>

<h2>Vitals</h2>
{{if .VitalsError}}<p class="empty" id="vitals-error">{{.VitalsError}}</p>{{end}}
<div class="vitals" id="vitals">
{{range .Vitals}}<div class="vital"><div>{{.Name}}</div><div class="v {{.Level}}">{{.Value}}</div></div>
{{else}}<p class="empty">No vitals yet: the first collection and rule evaluation take a few seconds.</p>{{end}}
</div>
{{if .Filesystems}}
<table id="filesystems"><tr><th>File system</th><th>Available</th><th>Full in</th></tr>
{{range .Filesystems}}<tr><td>{{.Mount}}</td><td class="{{.Level}}">{{.Avail}}</td><td>{{.Full}}</td></tr>
{{end}}</table>{{end}}

<h2>Firing alerts</h2>
<table id="alerts"><tr><th>Alert</th><th>Instance</th><th>Severity</th><th>Summary</th><th>Since</th><th>Healer</th></tr>
{{range .Firing}}<tr><td>{{label .Labels "alertname"}}</td><td>{{label .Labels "instance"}}</td><td>{{label .Labels "severity"}}</td>
<td>{{label .Annotations "summary"}}</td><td>{{ago .StartsAt}}</td><td>{{.State}}{{if .Note}}: {{.Note}}{{end}}</td></tr>
{{else}}<tr><td colspan="6" class="empty">Nothing is firing.</td></tr>{{end}}
</table>

<h2>What the healer did{{if .DryRun}} or would do{{end}}</h2>
<table id="runs"><tr><th>When</th><th>Alert</th><th>Runbook</th><th>Action</th><th>Target</th><th>Result</th><th>Why</th></tr>
{{range .Runs}}<tr><td>{{ago .CreatedAt}}</td><td>{{.Alertname}}</td><td>{{.Runbook}}</td><td>{{params .}}</td><td>{{.Target}}</td>
<td>{{would .}}</td><td>{{.Reason}}</td></tr>
{{else}}<tr><td colspan="7" class="empty">No runs yet.</td></tr>{{end}}
</table>
<p class="meta">JSON: <a href="api/v1/alerts">alerts</a> · <a href="api/v1/runs">runs</a> · <a href="api/v1/approvals">approvals</a> · <a href="api/v1/actions">actions</a> · <a href="metrics">metrics</a>{{if eq .Mode "standalone"}} · Prometheus API: <a href="prometheus/api/v1/rules">rules</a>, <a href="prometheus/api/v1/alerts">alerts</a>{{end}}</p>
</body>
</html>
`))

// StatusHandler serves the status page.
func StatusHandler(s Status) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		page := statusPage{Host: s.Host, Mode: s.Mode, Version: s.Version, Now: time.Now().UTC().Format(time.RFC3339)}
		if s.DryRun != nil {
			page.DryRun = s.DryRun()
		}
		if s.Querier != nil {
			page.Vitals, page.Filesystems, page.VitalsError = vitals(ctx, s.Querier)
		}
		alerts, err := s.Store.Alerts(ctx, "", 200)
		if err != nil {
			http.Error(w, "read alerts: "+err.Error(), http.StatusInternalServerError)
			return
		}
		page.Firing = firing(alerts)
		if page.Runs, err = s.Store.Runs(ctx, store.RunFilter{Limit: 50}); err != nil {
			http.Error(w, "read runs: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", pageCSP)
		if err := statusTmpl.Execute(w, page); err != nil {
			s.Logger.Warn("status_page_failed", "err", err)
		}
	})
}

// pageCSP is the pages' content security policy: their own style sheet and
// nothing else, no inline script or style, no framing, forms only to the
// healer itself.
const pageCSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

//go:embed static
var static embed.FS

// staticHandler serves the pages' style sheets at /static/.
func staticHandler() http.Handler { return http.FileServerFS(static) }

// firing returns the alerts that fired and have not resolved, newest first.
func firing(alerts []store.StoredAlert) []store.StoredAlert {
	resolved := map[string]bool{}
	for _, a := range alerts {
		if a.Status == alertmanager.StatusResolved {
			resolved[a.Fingerprint+a.StartsAt.String()] = true
		}
	}
	var out []store.StoredAlert
	for _, a := range alerts {
		if a.Status == alertmanager.StatusFiring && !resolved[a.Fingerprint+a.StartsAt.String()] {
			out = append(out, a)
		}
	}
	return out
}

func pct(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) + "%" }

func level(v, warn, bad float64) string {
	switch {
	case v >= bad:
		return "bad"
	case v >= warn:
		return "warn"
	}
	return "ok"
}

// vitals reads the host's vitals from the recording rules.
func vitals(ctx context.Context, q query.Querier) ([]vital, []fsRow, string) {
	now := time.Now()
	one := func(expr string) (float64, bool, error) {
		v, err := q.Query(ctx, expr, now)
		if err != nil || len(v) == 0 {
			return 0, false, err
		}
		return float64(v[0].Value), true, nil
	}
	var out []vital
	for _, x := range []struct {
		name, expr string
		warn, bad  float64
		format     func(float64) string
	}{
		{"CPU", "max(instance:node_cpu_utilisation:rate5m)", 0.8, 0.95, pct},
		{"Memory", "max(instance:node_memory_utilisation:ratio)", 0.85, 0.95, pct},
		{"Load per CPU", "max(instance:node_load1_per_cpu:ratio)", 1, 2, func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }},
		{"Memory stalls", "max(instance:node_pressure_memory_stalled_seconds:rate5m)", 0.05, 0.10, pct},
	} {
		v, found, err := one(x.expr)
		if err != nil {
			return nil, nil, "Cannot read vitals: " + err.Error()
		}
		if found {
			out = append(out, vital{Name: x.name, Value: x.format(v), Level: level(v, x.warn, x.bad)})
		}
	}
	avail, err := q.Query(ctx, `instance_mountpoint:node_filesystem_avail_bytes:ratio`, now)
	if err != nil {
		return out, nil, "Cannot read file systems: " + err.Error()
	}
	full, _ := q.Query(ctx, `instance_mountpoint:node_filesystem_time_to_full:seconds`, now)
	fullAt := map[string]float64{}
	for _, s := range full {
		fullAt[string(s.Metric["mountpoint"])] = float64(s.Value)
	}
	var fs []fsRow
	for _, s := range avail {
		m := string(s.Metric["mountpoint"])
		row := fsRow{Mount: m, Avail: pct(float64(s.Value)), Level: level(1-float64(s.Value), 0.8, 0.9), Full: "not filling"}
		if t, ok := fullAt[m]; ok && t > 0 {
			row.Full = humanDuration(time.Duration(t * float64(time.Second)))
		}
		fs = append(fs, row)
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].Mount < fs[j].Mount })
	return out, fs, ""
}

// humanDuration writes d as people read it: 3d 4h, 5h 20m, 12m.
func humanDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d " + strconv.Itoa(int(d%(24*time.Hour)/time.Hour)) + "h"
	case d >= time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h " + strconv.Itoa(int(d%time.Hour/time.Minute)) + "m"
	default:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
}
