package healer_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/deus-ex-machina/deus/internal/testenv"
)

// healer schedule asks the running healer for the coming week's maintenance
// windows: the standalone healer's own engine answers the load signal's
// history.
func TestScheduleFromTheStandaloneHealer(t *testing.T) {
	t.Parallel()
	url, p := startStandalone(t, "--standalone.scrape-interval=1s")
	code, out := testenv.RunCommand(t, healerBin, "--healer.url="+url, "schedule")
	if code != 0 || !strings.Contains(out, "Maintenance windows for the coming week, by sum(rate(node_cpu_seconds_total") {
		t.Fatalf("healer schedule: exit %d\n%s", code, out)
	}
	code, out = testenv.RunCommand(t, healerBin, "--healer.url="+url, "schedule", "--output=json")
	var s struct {
		Signal   string   `json:"signal"`
		Runbooks []string `json:"runbooks"`
	}
	if err := json.Unmarshal([]byte(out), &s); code != 0 || err != nil || s.Signal == "" || s.Runbooks == nil {
		t.Fatalf("healer schedule --output=json: exit %d, %v\n%s", code, err, out)
	}
	if err := p.Stop(20 * time.Second); err != nil {
		t.Errorf("healer exited with %v after SIGTERM", err)
	}
}
