package audit

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "update golden files")

// TestGoldenFormat pins the on-disk format: a change to the canonical
// encoding would make every log already written fail to verify. The golden
// log is also verified as it is, as an old log would be.
func TestGoldenFormat(t *testing.T) {
	t.Parallel()
	golden := filepath.Join("testdata", "golden", currentName)
	dir := t.TempDir()
	c := newClock()
	l := openLog(t, dir, Options{Now: c.Now})
	records := []Record{
		{
			Kind: KindReceived, Fingerprint: "5f6e7d8c9b0a1f2e", Alertname: "DiskWillFillSoon",
			Fields: map[string]string{"status": "firing", "starts_at": "2026-03-01T11:58:00Z", "instance": "web-1:9100"},
		},
		{Kind: KindMatched, RunID: "01JNQ3W1", Fingerprint: "5f6e7d8c9b0a1f2e", Runbook: "disk-full"},
		{Kind: KindPrechecked, RunID: "01JNQ3W1", Result: "true", Fields: map[string]string{"query": `predict_linear(node_filesystem_avail_bytes{mountpoint="/"}[6h], 4*3600) < 0`, "value": "-1.2e9"}},
		{Kind: KindGuarded, RunID: "01JNQ3W1", Result: "allowed", Reason: "tier low <= ceiling medium; cooldown clear"},
		{
			Kind: KindStarted, RunID: "01JNQ3W1", Action: "clean_temp_files", Target: "/var/tmp", DryRun: true,
			Argv: []string{"clean", "--older-than=7d", "--token", "abc", "/var/tmp/tab\there", "quote\"back\\slash", "bell\a", "é ✓"},
		},
		{Kind: KindFinished, RunID: "01JNQ3W1", Action: "clean_temp_files", Result: "ok", Fields: map[string]string{"duration_seconds": "0.042", "moved_files": "17"}},
		{Kind: KindSkipped, Fingerprint: "0a1b2c3d4e5f6071", Alertname: "NodeDown", Reason: "instance web-2:9100 is not this host\n(identity web-1)"},
		{Kind: KindEscalated, RunID: "01JNQ3W1", Reason: "<verification failed> & rolled back", Fields: map[string]string{"alertmanager": "http://am:9093", "password": "x"}},
	}
	for _, rec := range records {
		if _, err := l.Append(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
		c.advance(1500 * time.Millisecond)
	}
	closeLog(t, l)
	got, err := os.ReadFile(filepath.Join(dir, currentName))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(golden, got, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("line %d of the log differs from %s (run with -update if the change is intended, and think about old logs):\ngot  %s\nwant %s", i+1, golden, gl[i], wl[i])
			}
		}
		t.Fatalf("the log has %d lines; %s has %d", len(gl), golden, len(wl))
	}
	rep, err := Verify(filepath.Dir(golden))
	if err != nil {
		t.Fatalf("Verify(%s): %v", filepath.Dir(golden), err)
	}
	if rep.Records != uint64(len(records)) {
		t.Errorf("Verify(%s) counted %d records; want %d", filepath.Dir(golden), rep.Records, len(records))
	}
}

func TestKindValid(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		kind Kind
		want bool
	}{
		"a word":                  {"received", true},
		"two words":               {"rolled_back", true},
		"the prune kind":          {KindPruned, true},
		"digits after a letter":   {"retry2", true},
		"empty":                   {"", false},
		"a capital":               {"Received", false},
		"a leading digit":         {"2fa", false},
		"a leading underscore":    {"_x", false},
		"a trailing underscore":   {"x_", false},
		"a double underscore":     {"x__y", false},
		"a dash":                  {"x-y", false},
		"a space":                 {"x y", false},
		"a non-ASCII letter":      {"é", false},
		"longer than 64 bytes":    {Kind(strings.Repeat("a", 65)), false},
		"exactly 64 bytes":        {Kind(strings.Repeat("a", 64)), true},
		"a digit after a divider": {"x_1", true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := tt.kind.valid(); got != tt.want {
				t.Errorf("Kind(%q).valid() = %v; want %v", tt.kind, got, tt.want)
			}
		})
	}
}
