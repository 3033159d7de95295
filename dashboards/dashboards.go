// Package dashboards builds the Grafana dashboards (host overview,
// anomalies, security, healer) from one description, so that every panel
// follows the same conventions: a datasource variable, job and instance
// variables that every query selects on, $__rate_interval in rates, units,
// titles and descriptions. `go test ./dashboards -update` writes the JSON
// files beside this one; the test fails when they are stale.
package dashboards

import (
	"encoding/json"
	"strings"
)

// Panel is one time series or stat panel.
type Panel struct {
	Title, Description string
	// Kind is timeseries (default) or stat.
	Kind string
	// Unit is Grafana's unit id: percentunit, bytes, Bps, s, short, ...
	Unit    string
	Targets []Target
	// Width in grid units (24 is the full width); default 12.
	Width int
}

// Target is one query of a panel.
type Target struct {
	Expr, Legend string
}

// Dashboard is one dashboard.
type Dashboard struct {
	UID, Title, Description string
	Tags                    []string
	Panels                  []Panel
}

// sel is the selector every query carries.
const sel = `job=~"$job", instance=~"$instance"`

// All returns every dashboard.
func All() []Dashboard {
	return []Dashboard{host(), anomalies(), security(), healer()}
}

func host() Dashboard {
	return Dashboard{
		UID: "deus-host", Title: "Deus / Host overview", Tags: []string{"deus"},
		Description: "A host's vitals from the shipped recording rules, with forecasts of when its file systems fill.",
		Panels: []Panel{
			{
				Title: "CPU utilisation", Unit: "percentunit", Description: "Share of CPU time not idle, averaged over the host's CPUs (instance:node_cpu_utilisation:rate5m).",
				Targets: []Target{{`instance:node_cpu_utilisation:rate5m{` + sel + `}`, "{{instance}}"}},
			},
			{
				Title: "Memory utilisation", Unit: "percentunit", Description: "Share of memory not available to new work (instance:node_memory_utilisation:ratio).",
				Targets: []Target{{`instance:node_memory_utilisation:ratio{` + sel + `}`, "{{instance}}"}},
			},
			{
				Title: "Load per CPU", Unit: "short", Description: "1-minute load average divided by the number of CPUs; above 1 tasks wait.",
				Targets: []Target{{`instance:node_load1_per_cpu:ratio{` + sel + `}`, "{{instance}}"}},
			},
			{
				Title: "Pressure stalls", Unit: "percentunit", Description: "Share of time tasks stalled on CPU, memory and I/O (PSI).",
				Targets: []Target{
					{`instance:node_pressure_cpu_waiting_seconds:rate5m{` + sel + `}`, "cpu waiting {{instance}}"},
					{`instance:node_pressure_memory_stalled_seconds:rate5m{` + sel + `}`, "memory stalled {{instance}}"},
					{`instance:node_pressure_io_stalled_seconds:rate5m{` + sel + `}`, "io stalled {{instance}}"},
				},
			},
			{
				Title: "File system space available", Unit: "percentunit", Width: 16,
				Description: "Share of each file system available, with the 24-hour linear forecast as a dashed band: where it crosses 0 the disk is full.",
				Targets: []Target{
					{`instance_mountpoint:node_filesystem_avail_bytes:ratio{` + sel + `}`, "{{mountpoint}}"},
					{`instance_mountpoint:node_filesystem_avail_bytes:predict_linear24h{` + sel + `} / node_filesystem_size_bytes{` + sel + `}`, "{{mountpoint}} in 24h"},
				},
			},
			{
				Title: "Time to full", Kind: "stat", Unit: "s", Width: 8,
				Description: "At the rate of the last 6 hours, time until each file system is full; infinite for those that are not filling.",
				Targets:     []Target{{`instance_mountpoint:node_filesystem_time_to_full:seconds{` + sel + `} or (instance_mountpoint:node_filesystem_avail_bytes:ratio{` + sel + `} * 0 + Inf)`, "{{mountpoint}}"}},
			},
			{
				Title: "Disk I/O utilisation", Unit: "percentunit", Description: "Share of time each disk was busy.",
				Targets: []Target{{`instance_device:node_disk_io_time_seconds:rate5m{` + sel + `}`, "{{device}}"}},
			},
			{
				Title: "Network throughput", Unit: "Bps", Description: "Bytes received and sent per second, all interfaces but loopback.",
				Targets: []Target{
					{`instance:node_network_receive_bytes_excluding_lo:rate5m{` + sel + `}`, "received {{instance}}"},
					{`instance:node_network_transmit_bytes_excluding_lo:rate5m{` + sel + `}`, "sent {{instance}}"},
				},
			},
			{
				Title: "Network errors and drops", Unit: "pps", Description: "Packets dropped or in error per second, all interfaces but loopback.",
				Targets: []Target{
					{`instance:node_network_receive_drop_excluding_lo:rate5m{` + sel + `} + instance:node_network_receive_errs_excluding_lo:rate5m{` + sel + `}`, "received {{instance}}"},
					{`instance:node_network_transmit_drop_excluding_lo:rate5m{` + sel + `} + instance:node_network_transmit_errs_excluding_lo:rate5m{` + sel + `}`, "sent {{instance}}"},
				},
			},
			{
				Title: "Top processes by CPU", Unit: "percentunit", Description: "CPU used by the busiest process groups (deus_process_group_cpu_seconds_total).",
				Targets: []Target{{`topk(5, sum by (groupname) (rate(deus_process_group_cpu_seconds_total{` + sel + `}[$__rate_interval])))`, "{{groupname}}"}},
			},
		},
	}
}

func anomalies() Dashboard {
	return Dashboard{
		UID: "deus-anomalies", Title: "Deus / Anomalies", Tags: []string{"deus"},
		Description: "Every watched signal against its 3-day robust baseline, the anomaly score and when SignalAnomalous fired (docs/anomaly.md).",
		Panels: []Panel{
			{
				Title: "Signals", Unit: "short", Width: 24, Description: "The vitals watched for anomalies, one series per signal (instance:deus_signal:value).",
				Targets: []Target{{`instance:deus_signal:value{` + sel + `}`, "{{signal}}"}},
			},
			{
				Title: "Signal against its baseline", Unit: "short", Description: "Each signal's 15-minute median beside its 3-day median.",
				Targets: []Target{
					{`instance:deus_signal:median_15m{` + sel + `}`, "{{signal}} now"},
					{`instance:deus_signal:median_3d{` + sel + `}`, "{{signal}} baseline"},
				},
			},
			{
				Title: "Anomaly score", Unit: "short", Description: "Robust z-score of each signal: distance from the 3-day median in units of the median absolute deviation.",
				Targets: []Target{{`instance:deus_signal:anomaly_score{` + sel + `}`, "{{signal}}"}},
			},
			{
				Title: "Anomalous signals", Kind: "stat", Unit: "short", Description: "Signals for which SignalAnomalous fires now.",
				Targets: []Target{{`count(ALERTS{alertname="SignalAnomalous", alertstate="firing", ` + sel + `}) or vector(0)`, "firing"}},
			},
			{
				Title: "Range excess", Unit: "short", Description: "How far each signal is above its 3-day range, in units of that range.",
				Targets: []Target{{`instance:deus_signal:range_excess_3d{` + sel + `}`, "{{signal}}"}},
			},
		},
	}
}

func security() Dashboard {
	return Dashboard{
		UID: "deus-security", Title: "Deus / Security", Tags: []string{"deus"},
		Description: "Sockets and listening ports, inbound connections per remote, authentication failures and file integrity.",
		Panels: []Panel{
			{
				Title: "Authentication failures", Unit: "short", Description: "Failed logins per second by service, from the auth log, and in all (0 when none was ever seen).",
				Targets: []Target{
					{`sum by (service) (rate(deus_auth_failures_total{` + sel + `}[$__rate_interval]))`, "{{service}}"},
					{`sum(rate(deus_auth_failures_total{` + sel + `}[$__rate_interval])) or vector(0)`, "all"},
				},
			},
			{
				Title: "Inbound connections from the busiest remote", Unit: "short", Description: "The most inbound TCP connections any one remote address holds; a flood shows here first.",
				Targets: []Target{{`deus_tcp_inbound_remote_max_connections{` + sel + `}`, "{{instance}}"}},
			},
			{
				Title: "Distinct remotes", Unit: "short", Description: "Distinct remote addresses holding inbound TCP connections.",
				Targets: []Target{{`deus_tcp_inbound_remote_addresses{` + sel + `}`, "{{instance}}"}},
			},
			{
				Title: "Sockets by state", Unit: "short", Description: "Sockets by protocol and state.",
				Targets: []Target{{`sum by (proto, state) (deus_sockets{` + sel + `})`, "{{proto}} {{state}}"}},
			},
			{
				Title: "Listening ports", Unit: "short", Description: "Listening sockets by protocol, port and process.",
				Targets: []Target{{`sum by (proto, port, process) (deus_socket_listening{` + sel + `})`, "{{proto}}/{{port}} {{process}}"}},
			},
			{
				Title: "Watched file changes", Unit: "short", Description: "Changes seen in the watched files over the dashboard's interval.",
				Targets: []Target{{`sum by (path) (increase(deus_file_changes_total{` + sel + `}[$__rate_interval]))`, "{{path}}"}},
			},
		},
	}
}

func healer() Dashboard {
	return Dashboard{
		UID: "deus-healer", Title: "Deus / Healer", Tags: []string{"deus"},
		Description: "The healer's intake, runs, guards, approvals and audit log health (deus_healer_*).",
		Panels: []Panel{
			{
				Title: "Alerts received", Unit: "short", Description: "Alerts stored per second, once per firing or resolution, and duplicate deliveries.",
				Targets: []Target{
					{`sum by (status) (rate(deus_healer_alerts_received_total{` + sel + `}[$__rate_interval]))`, "{{status}}"},
					{`sum(rate(deus_healer_alerts_duplicate_total{` + sel + `}[$__rate_interval]))`, "duplicates"},
				},
			},
			{
				Title: "Runs by result", Unit: "short", Description: "Runs ended per second by result.",
				Targets: []Target{{`sum by (result) (rate(deus_healer_runs_total{` + sel + `}[$__rate_interval]))`, "{{result}}"}},
			},
			{
				Title: "Action duration (p95)", Unit: "s", Description: "95th percentile of how long actions ran, by action.",
				Targets: []Target{{`histogram_quantile(0.95, sum by (le, action) (rate(deus_healer_run_duration_seconds_bucket{` + sel + `}[$__rate_interval])))`, "{{action}}"}},
			},
			{
				Title: "Queue depth", Unit: "short", Description: "Alerts waiting to be planned and runs waiting to act.",
				Targets: []Target{{`deus_healer_queue_depth{` + sel + `}`, "{{kind}}"}},
			},
			{
				Title: "Open circuit breakers", Kind: "stat", Unit: "short", Width: 6, Description: "Runbook and target pairs whose breaker is open.",
				Targets: []Target{{`sum(deus_healer_circuit_breakers_open{` + sel + `})`, "open"}},
			},
			{
				Title: "Approvals pending", Kind: "stat", Unit: "short", Width: 6, Description: "Runs waiting for a person's approval.",
				Targets: []Target{{`sum(deus_healer_approvals_pending{` + sel + `})`, "pending"}},
			},
			{
				Title: "Audit chain", Kind: "stat", Unit: "bool_yes_no", Width: 6, Description: "Whether the audit log's hash chain verified at start and every append since succeeded.",
				Targets: []Target{{`min(deus_healer_audit_chain_ok{` + sel + `})`, "ok"}},
			},
			{
				Title: "Guard skips", Unit: "short", Width: 6, Description: "Runs a guard skipped, per second, by guard.",
				Targets: []Target{{`sum by (guard) (rate(deus_healer_guard_skips_total{` + sel + `}[$__rate_interval]))`, "{{guard}}"}},
			},
		},
	}
}

// JSON renders d as a Grafana dashboard.
func (d Dashboard) JSON() ([]byte, error) {
	variable := func(name, label, query string) map[string]any {
		return map[string]any{
			"name": name, "label": label, "type": "query", "query": map[string]any{"query": query, "refId": name},
			"datasource": map[string]any{"type": "prometheus", "uid": "${datasource}"},
			"definition": query, "includeAll": true, "multi": true, "allValue": ".+", "refresh": 2, "sort": 1,
			"current": map[string]any{"selected": true, "text": []string{"All"}, "value": []string{"$__all"}},
		}
	}
	panels := []map[string]any{}
	x, y, rowH := 0, 0, 8
	for i, p := range d.Panels {
		w := p.Width
		if w == 0 {
			w = 12
		}
		if x+w > 24 {
			x, y = 0, y+rowH
		}
		kind := p.Kind
		if kind == "" {
			kind = "timeseries"
		}
		targets := []map[string]any{}
		for j, t := range p.Targets {
			targets = append(targets, map[string]any{
				"datasource": map[string]any{"type": "prometheus", "uid": "${datasource}"},
				"expr":       t.Expr, "legendFormat": t.Legend, "refId": string(rune('A' + j)),
			})
		}
		panel := map[string]any{
			"id": i + 1, "type": kind, "title": p.Title, "description": p.Description,
			"datasource": map[string]any{"type": "prometheus", "uid": "${datasource}"},
			"gridPos":    map[string]any{"x": x, "y": y, "w": w, "h": rowH},
			"targets":    targets,
			"fieldConfig": map[string]any{
				"defaults":  map[string]any{"unit": p.Unit},
				"overrides": []any{},
			},
			"options": map[string]any{
				"legend":  map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true},
				"tooltip": map[string]any{"mode": "multi", "sort": "desc"},
			},
		}
		if kind == "timeseries" && len(p.Targets) > 1 && strings.Contains(p.Targets[1].Legend, "in 24h") {
			panel["fieldConfig"].(map[string]any)["overrides"] = []any{map[string]any{
				"matcher":    map[string]any{"id": "byRegexp", "options": ".* in 24h"},
				"properties": []any{map[string]any{"id": "custom.lineStyle", "value": map[string]any{"fill": "dash", "dash": []int{10, 10}}}},
			}}
		}
		panels = append(panels, panel)
		x += w
	}
	dash := map[string]any{
		"uid": d.UID, "title": d.Title, "description": d.Description, "tags": d.Tags,
		"schemaVersion": 39, "version": 1, "editable": true, "graphTooltip": 1, "timezone": "browser",
		"time": map[string]any{"from": "now-6h", "to": "now"}, "refresh": "30s",
		"templating": map[string]any{"list": []any{
			map[string]any{
				"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
				"current": map[string]any{}, "refresh": 1,
			},
			variable("job", "Job", "label_values(up, job)"),
			variable("instance", "Instance", `label_values(up{job=~"$job"}, instance)`),
		}},
		"annotations": map[string]any{"list": []any{}},
		"panels":      panels,
	}
	b, err := json.MarshalIndent(dash, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
