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

// busyWeeks is a fortnight of a CPU counter that runs at one core but on
// Sundays from 02:00 to 05:00 UTC, when it idles.
func busyWeeks(now time.Time) []testenv.Series {
	s := testenv.Series{Labels: labels.FromStrings("__name__", "node_cpu_seconds_total", "cpu", "0", "mode", "user", "instance", "backfill:9100", "job", "node")}
	end := now.Add(-10 * time.Minute).Truncate(time.Minute)
	v := 0.0
	for t := end.Add(-14 * 24 * time.Hour); !t.After(end); t = t.Add(time.Minute) {
		rate := 1.0
		if t.Weekday() == time.Sunday && t.Hour() >= 2 && t.Hour() < 5 {
			rate = 0.05
		}
		v += rate * 60
		s.Samples = append(s.Samples, testenv.Sample{T: t, V: v})
	}
	return []testenv.Series{s}
}

// healer schedule on the standalone healer, as make run starts it, whose
// TSDB holds a fortnight of load: the week's windows are the quiet Sunday
// hours, each with why.
func TestScheduleFromTheStandaloneHealer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	testenv.WriteBlock(t, filepath.Join(dir, "data", "tsdb"), busyWeeks(time.Now().UTC()))
	addr := testenv.FreeAddr(t)
	p := startProc(t, dir, healerBin, "--web.listen-address="+addr)
	url := "http://" + addr
	testenv.WaitHTTP(t, url+"/-/ready", 30*time.Second)
	code, out := testenv.RunCommand(t, healerBin, "--healer.url="+url, "schedule")
	t.Logf("healer schedule:\n%s", out)
	if code != 0 || !strings.Contains(out, "Maintenance windows for the coming week, by sum(rate(node_cpu_seconds_total") {
		t.Fatalf("healer schedule: exit %d\n%s", code, out)
	}
	code, out = testenv.RunCommand(t, healerBin, "--healer.url="+url, "schedule", "--output=json")
	var s struct {
		Signal   string   `json:"signal"`
		Runbooks []string `json:"runbooks"`
		Windows  []struct {
			Start time.Time `json:"start"`
			End   time.Time `json:"end"`
		} `json:"windows"`
	}
	if err := json.Unmarshal([]byte(out), &s); code != 0 || err != nil || s.Signal == "" || s.Runbooks == nil {
		t.Fatalf("healer schedule --output=json: exit %d, %v\n%s", code, err, out)
	}
	hours := 0
	for _, w := range s.Windows {
		for h := w.Start.UTC(); h.Before(w.End); h = h.Add(time.Hour) {
			hours++
			if h.Weekday() != time.Sunday || h.Hour() < 2 || h.Hour() >= 5 {
				t.Errorf("window hour %s; want Sunday 02:00 to 05:00 UTC, the quiet hours", h.Format(time.RFC3339))
			}
		}
	}
	if hours != 3 {
		t.Errorf("windows %+v hold %d hours; want the 3 quiet ones", s.Windows, hours)
	}
	if err := p.Stop(20 * time.Second); err != nil {
		t.Errorf("healer exited with %v after SIGTERM", err)
	}
}
