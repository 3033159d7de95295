package healer_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/deus-ex-machina/deus/internal/testenv"
)

// alertsHistory is a fortnight of Prometheus' ALERTS, a sample a minute
// while an alert fires, as the rule evaluation writes them.
type alertsHistory struct {
	end    time.Time
	series map[string]*testenv.Series
}

func (h *alertsHistory) fire(name, instance string, start time.Time, d time.Duration) {
	k := name + "/" + instance
	s := h.series[k]
	if s == nil {
		s = &testenv.Series{Labels: labels.FromStrings("__name__", "ALERTS", "alertname", name, "alertstate", "firing", "instance", instance, "severity", "warning")}
		h.series[k] = s
	}
	for t := start.Truncate(time.Minute); t.Before(start.Add(d)); t = t.Add(time.Minute) {
		s.Samples = append(s.Samples, testenv.Sample{T: t, V: 1})
	}
}

func (h *alertsHistory) list() []testenv.Series {
	var out []testenv.Series
	for _, s := range h.series {
		out = append(out, *s)
	}
	return out
}

// fortnight returns the history both analyze tests read: a nightly
// alert, a flapping one and two that fire together.
func fortnight(now time.Time) []testenv.Series {
	h := &alertsHistory{end: now.Add(-time.Hour), series: map[string]*testenv.Series{}}
	day := now.Truncate(24 * time.Hour)
	for d := 14; d >= 1; d-- {
		// 03:00 UTC every night, a few minutes either way.
		h.fire("NightlyBackupSlow", "db1", day.Add(-time.Duration(d)*24*time.Hour+3*time.Hour+time.Duration(d%5-2)*time.Minute), 20*time.Minute)
	}
	// Three bursts: two minutes on, ten off, five times. The gaps are wider
	// than the five-minute lookback, which a backfill without stale
	// markers leaves each episode's end to.
	for _, at := range []time.Duration{30 * time.Hour, 100 * time.Hour, 200 * time.Hour} {
		for i := range 5 {
			h.fire("LinkFlap", "sw1", now.Add(-at+time.Duration(i)*12*time.Minute), 2*time.Minute)
		}
	}
	// The database goes down at odd times and the app errors follow.
	for _, at := range []time.Duration{20 * time.Hour, 57 * time.Hour, 131 * time.Hour, 190 * time.Hour, 250 * time.Hour, 301 * time.Hour} {
		start := now.Add(-at - 17*time.Minute)
		h.fire("DBDown", "db2", start, 15*time.Minute)
		h.fire("AppErrors", "web1", start.Add(time.Minute), 14*time.Minute)
	}
	return h.list()
}

// analysisJSON is what the analyze tests read of healer analyze
// --output=json.
type analysisJSON struct {
	Recurring []struct {
		Alertname  string  `json:"alertname"`
		Period     string  `json:"period"`
		Confidence float64 `json:"confidence"`
	} `json:"recurring"`
	Flapping []struct {
		Alertname string `json:"alertname"`
		Bursts    int    `json:"bursts"`
	} `json:"flapping"`
	Together []struct {
		A, B     string
		Together int `json:"together"`
	} `json:"together"`
	Sources map[string]int `json:"sources"`
	Notes   []string       `json:"notes"`
}

// checkAnalysis runs healer analyze through cli and requires the
// fortnight's three findings, in text and in JSON.
func checkAnalysis(t *testing.T, cli func(args ...string) (int, string)) {
	t.Helper()
	code, out := cli("analyze", "--since=15d")
	if code != 0 {
		t.Fatalf("healer analyze: exit %d\n%s", code, out)
	}
	t.Logf("healer analyze --since=15d:\n%s", out)
	for _, want := range []string{
		"Look at first:", "NightlyBackupSlow", "daily", "at 03:0", "LinkFlap", "Fire together:", `DBDown{instance="db2"}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("healer analyze: output lacks %q\n%s", want, out)
		}
	}
	code, js := cli("analyze", "--since=15d", "--output=json")
	var a analysisJSON
	if err := json.Unmarshal([]byte(js), &a); code != 0 || err != nil {
		t.Fatalf("healer analyze --output=json: exit %d, %v\n%s", code, err, js)
	}
	if len(a.Recurring) != 1 || a.Recurring[0].Alertname != "NightlyBackupSlow" || a.Recurring[0].Period != "daily" || a.Recurring[0].Confidence < 0.8 {
		t.Errorf("recurring: %+v; want NightlyBackupSlow daily, alone", a.Recurring)
	}
	if len(a.Flapping) != 1 || a.Flapping[0].Alertname != "LinkFlap" || a.Flapping[0].Bursts != 3 {
		t.Errorf("flapping: %+v; want LinkFlap in 3 bursts, alone", a.Flapping)
	}
	if len(a.Together) != 1 || a.Together[0].Together != 6 {
		t.Errorf("together: %+v; want AppErrors with DBDown 6 times, alone", a.Together)
	}
	if a.Sources["prometheus"] == 0 || len(a.Notes) != 0 {
		t.Errorf("sources %v, notes %q; want episodes from ALERTS and nothing missing", a.Sources, a.Notes)
	}
}

// healer analyze against a real Prometheus whose TSDB holds a backfilled
// fortnight of ALERTS.
func TestAnalyzeReadsPrometheusAlerts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "prom-data")
	testenv.WriteBlock(t, data, fortnight(time.Now().UTC()))
	promFile := filepath.Join(dir, "prometheus.yml")
	writeFile(t, promFile, "global: {scrape_interval: 15s}\n")
	promAddr := testenv.FreeAddr(t)
	startProc(t, dir, testenv.Binary(t, "prometheus"), "--config.file="+promFile,
		"--storage.tsdb.path="+data, "--web.listen-address="+promAddr)
	testenv.WaitHTTP(t, "http://"+promAddr+"/-/ready", 30*time.Second)

	hl := newHealer(t, dir, map[string]any{"prometheus": map[string]any{"url": "http://" + promAddr}})
	hl.start()
	checkAnalysis(t, hl.cli)
	hl.stop()
}

// healer analyze on the standalone healer, as make run starts it, whose
// own TSDB holds the fortnight: its rule engine's ALERTS are read the same.
func TestAnalyzeOnTheStandaloneHealer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	testenv.WriteBlock(t, filepath.Join(dir, "data", "tsdb"), fortnight(time.Now().UTC()))
	addr := testenv.FreeAddr(t)
	p := startProc(t, dir, healerBin, "--web.listen-address="+addr)
	testenv.WaitHTTP(t, "http://"+addr+"/-/ready", 30*time.Second)
	checkAnalysis(t, func(args ...string) (int, string) {
		return testenv.RunCommand(t, healerBin, append(args, "--healer.url=http://"+addr)...)
	})
	if err := p.Stop(20 * time.Second); err != nil {
		t.Errorf("healer exited with %v after SIGTERM", err)
	}
}
