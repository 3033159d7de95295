package standalone

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/testenv"
	shipped "github.com/deus-ex-machina/deus/rules"
)

const testRules = `groups:
  - name: test
    rules:
      - record: instance:thing_up:max
        expr: max by (instance) (thing_up)
      - alert: ThingDown
        expr: thing_up == 0
        labels: {severity: critical, remediation: restart_service}
        annotations: {summary: "{{ $labels.thing }} is down on {{ $labels.instance }}"}
`

type collected struct {
	mu     sync.Mutex
	alerts []alertmanager.Alert
}

func (c *collected) sink(_ context.Context, a []alertmanager.Alert) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.alerts = append(c.alerts, a...)
	return nil
}

func (c *collected) find(status alertmanager.Status) (alertmanager.Alert, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.alerts {
		if a.Status == status {
			return a, true
		}
	}
	return alertmanager.Alert{}, false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		<-tick.C
	}
}

func TestScrapeRulesAlertsAndAPI(t *testing.T) {
	t.Parallel()
	var up atomic.Int32
	target := Target{Job: "node", Instance: "web1:9110", Scrape: func(_ context.Context, w io.Writer) error {
		_, err := fmt.Fprintf(w, "# TYPE thing_up gauge\nthing_up{thing=\"nginx\"} %d\nthing_up{thing=\"db\",instance=\"spoofed\"} 1\n", up.Load())
		return err
	}}
	sink := &collected{}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := Open(ctx, Options{
		Dir: t.TempDir(), ScrapeInterval: 50 * time.Millisecond, EvalInterval: 50 * time.Millisecond,
		Targets: []Target{target}, Rules: fstest.MapFS{"test.rules.yml": {Data: []byte(testRules)}},
		Sink: sink.sink, Logger: testenv.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})

	// Down: the rule fires and the sink gets it as Alertmanager would.
	waitFor(t, "ThingDown fires", func() bool { _, ok := sink.find(alertmanager.StatusFiring); return ok })
	a, _ := sink.find(alertmanager.StatusFiring)
	if a.Labels["alertname"] != "ThingDown" || a.Labels["instance"] != "web1:9110" || a.Labels["job"] != "node" || a.Labels["thing"] != "nginx" {
		t.Errorf("firing alert labels: got %v", a.Labels)
	}
	if a.Annotations["summary"] != "nginx is down on web1:9110" {
		t.Errorf("summary: got %q", a.Annotations["summary"])
	}
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(a.Fingerprint) || a.StartsAt.IsZero() {
		t.Errorf("fingerprint %q, startsAt %v; want 16 hex digits and a time", a.Fingerprint, a.StartsAt)
	}

	// Up again: it resolves, with the same fingerprint and start.
	up.Store(1)
	waitFor(t, "ThingDown resolves", func() bool { _, ok := sink.find(alertmanager.StatusResolved); return ok })
	r, _ := sink.find(alertmanager.StatusResolved)
	if r.Fingerprint != a.Fingerprint || !r.StartsAt.Equal(a.StartsAt) || r.EndsAt.IsZero() {
		t.Errorf("resolved alert: fingerprint %s start %v end %v; want %s, %v and an end", r.Fingerprint, r.StartsAt, r.EndsAt, a.Fingerprint, a.StartsAt)
	}

	// The query API answers as Prometheus does.
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	get := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env struct {
			Status string          `json:"status"`
			Error  string          `json:"error"`
			Data   json.RawMessage `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || env.Status != "success" {
			t.Fatalf("GET %s: %d %v %s", path, resp.StatusCode, err, env.Error)
		}
		if err := json.Unmarshal(env.Data, v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	var q struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
		} `json:"result"`
	}
	get("/api/v1/query?query="+url.QueryEscape(`thing_up{thing="db"}`), &q)
	if q.ResultType != "vector" || len(q.Result) != 1 || q.Result[0].Metric["exported_instance"] != "spoofed" || q.Result[0].Metric["instance"] != "web1:9110" {
		t.Errorf("query: got %+v; want the db series with the target's instance and exported_instance=spoofed", q)
	}
	get("/api/v1/query?query="+url.QueryEscape(`instance:thing_up:max`), &q)
	if len(q.Result) != 1 || q.Result[0].Value[1] != "1" {
		t.Errorf("recorded series: got %+v; want 1", q)
	}
	var rq struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Values [][]any `json:"values"`
		} `json:"result"`
	}
	now := time.Now()
	get(fmt.Sprintf("/api/v1/query_range?query=up&start=%.3f&end=%.3f&step=0.05", float64(now.Add(-time.Minute).UnixMilli())/1e3, float64(now.Add(time.Second).UnixMilli())/1e3), &rq)
	if rq.ResultType != "matrix" || len(rq.Result) != 1 || len(rq.Result[0].Values) == 0 {
		t.Errorf("query_range up: got %+v", rq)
	}
	var names []string
	get("/api/v1/labels", &names)
	if !strings.Contains(strings.Join(names, ","), "thing") {
		t.Errorf("labels: got %v", names)
	}
	var values []string
	get("/api/v1/label/job/values", &values)
	if strings.Join(values, ",") != "node" {
		t.Errorf("job values: got %v", values)
	}
	var series []map[string]string
	get("/api/v1/series?match[]=thing_up", &series)
	if len(series) != 2 {
		t.Errorf("series: got %v; want 2", series)
	}
	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name   string `json:"name"`
				Health string `json:"health"`
			} `json:"rules"`
		} `json:"groups"`
	}
	get("/api/v1/rules", &rules)
	if len(rules.Groups) != 1 || len(rules.Groups[0].Rules) != 2 || rules.Groups[0].Rules[1].Health != "ok" {
		t.Errorf("rules: got %+v", rules)
	}
	vec, err := p.Query(ctx, `thing_up == 1`, time.Now())
	if err != nil || len(vec) != 2 {
		t.Errorf("Query: got %v, %v; want 2 series", vec, err)
	}
	now = time.Now()
	m, err := p.QueryRange(ctx, `thing_up`, now.Add(-time.Minute), now, 10*time.Second)
	if err != nil || len(m) != 2 || len(m[0].Values) == 0 {
		t.Errorf("QueryRange: got %v, %v; want 2 series with samples", m, err)
	}
	if _, err := p.QueryRange(ctx, `thing_up ===`, now.Add(-time.Minute), now, 10*time.Second); err == nil {
		t.Error("QueryRange of a bad expression: got no error")
	}
	resp, _ := http.Get(srv.URL + "/api/v1/query?query=" + url.QueryEscape("up ==="))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad query: got %d, want 400", resp.StatusCode)
	}
	resp.Body.Close()
}

// The shipped rules load and evaluate in the embedded engine without error.
func TestShippedRulesLoad(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := Open(ctx, Options{Dir: t.TempDir(), Rules: shipped.Files, EvalInterval: 50 * time.Millisecond, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	groups := p.mgr.RuleGroups()
	if len(groups) < 5 {
		t.Fatalf("loaded %d rule groups; want every shipped group", len(groups))
	}
	for _, g := range groups {
		g.Eval(ctx, time.Now())
		for _, r := range g.Rules() {
			if err := r.LastError(); err != nil {
				t.Errorf("%s/%s: %v", g.Name(), r.Name(), err)
			}
		}
	}
}
