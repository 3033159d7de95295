package healer_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/deus-ex-machina/deus/internal/testenv"
)

// healer forecast against the standalone healer's own engine: the history
// of a vital it collects, forecast with an interval and a chart.
func TestForecastFromTheStandaloneHealer(t *testing.T) {
	t.Parallel()
	url, p := startStandalone(t, "--standalone.scrape-interval=1s")
	args := []string{"--healer.url=" + url, "forecast", "node_memory_MemAvailable_bytes", "--horizon=5s", "--threshold=0"}
	var out string
	// The forecast needs enough history to backtest its horizon on:
	// about half a minute of one-second scrapes.
	testenv.Eventually(t, 90*time.Second, 500*time.Millisecond, "a forecast of available memory", func() (bool, string) {
		var code int
		code, out = testenv.RunCommand(t, healerBin, args...)
		return code == 0 && strings.Contains(out, "why:"), out
	})
	for _, want := range []string{"node_memory_MemAvailable_bytes", "80% interval", "below 0:", " | "} {
		if !strings.Contains(out, want) {
			t.Errorf("healer forecast: output lacks %q\n%s", want, out)
		}
	}
	// The interval is the backtest errors' quantiles around the point: it
	// need not hold the point (a biased method), but it is an interval.
	code, js := testenv.RunCommand(t, healerBin, append(args, "--output=json")...)
	var fs []struct {
		Method string  `json:"method"`
		Lower  float64 `json:"lower"`
		Point  float64 `json:"point"`
		Upper  float64 `json:"upper"`
	}
	if err := json.Unmarshal([]byte(js), &fs); code != 0 || err != nil || len(fs) == 0 || fs[0].Method == "" || fs[0].Lower > fs[0].Upper {
		t.Errorf("healer forecast --output=json: exit %d, %v\n%s", code, err, js)
	}
	if code, out := testenv.RunCommand(t, healerBin, "--healer.url="+url, "forecast", "up ==="); code == 0 || !strings.Contains(out, "400") {
		t.Errorf("a bad expression: exit %d\n%s", code, out)
	}
	if err := p.Stop(20 * time.Second); err != nil {
		t.Errorf("healer exited with %v after SIGTERM", err)
	}
}
