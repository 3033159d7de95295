package healer_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/alertmanager/template"
)

// TestLabelsNeverReachAShell posts alerts whose labels hold shell syntax,
// control characters and path traversals, to runbooks that put a label into
// a command's argv. Each value reaches the command as exactly one argv
// element, or is refused by the parameter's schema (before a run is
// planned) or by the command (before anything is executed); no shell ever
// runs it, so no file called pwned appears.
func TestLabelsNeverReachAShell(t *testing.T) {
	t.Parallel()
	// The commands run in /, so a relative "touch pwned" that reached a
	// shell would leave /pwned.
	if _, err := os.Lstat("/pwned"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("/pwned exists before the test (%v): remove it, or this test cannot tell", err)
	}
	dir := t.TempDir()
	safe := filepath.Join(dir, "safe")
	if err := os.Mkdir(safe, 0o750); err != nil {
		t.Fatal(err)
	}
	canary := filepath.Join(dir, "pwned")
	h := newHealer(t, dir, map[string]any{
		"global": map[string]any{"identity": []string{"testhost"}, "max_tier": "observe"},
		"actions": map[string]any{"commands": []any{
			map[string]any{
				"name": "echo_arg", "tier": "observe", "doc": "print one argument",
				"argv":   []string{"/usr/bin/printf", `%s\n`, "{{value}}"},
				"params": []any{map[string]any{"name": "value", "type": "string", "required": true}},
			},
			map[string]any{
				"name": "append_under", "tier": "observe", "doc": "append the alert to a file under safe/",
				"argv":   []string{"/usr/bin/tee", "-a", "{{path}}"},
				"params": []any{map[string]any{"name": "path", "type": "path", "required": true, "roots": []string{safe}}},
			},
		}},
		"runbooks": []any{
			map[string]any{
				"name": "inject-arg", "match": []string{`alertname="InjectArg"`},
				"steps": []any{map[string]any{"action": "echo_arg", "params": map[string]string{"value": "{{ $labels.payload }}"}}},
			},
			map[string]any{
				"name": "inject-path", "match": []string{`alertname="InjectPath"`},
				"steps": []any{map[string]any{"action": "append_under", "params": map[string]string{"path": "{{ $labels.payload }}"}}},
			},
		},
	})
	h.start()

	type outcome int
	const (
		oneArg        outcome = iota // ran, with the value as one argv element
		refusedSchema                // no run: the parameter schema refused it
		refusedOption                // the run failed before executing: it would be an option
		ran                          // ran (the control case of a path)
	)
	cases := []struct {
		name, alertname, payload string
		want                     outcome
	}{
		{"command substitution", "InjectArg", "$(touch " + canary + ")", oneArg},
		{"command substitution, relative", "InjectArg", "$(touch pwned)", oneArg},
		{"a semicolon", "InjectArg", "x; touch " + canary + "; touch pwned", oneArg},
		{"backticks", "InjectArg", "`touch " + canary + "`", oneArg},
		{"a pipe and &&", "InjectArg", "x | touch " + canary + " && touch pwned", oneArg},
		{"quotes and globs", "InjectArg", `'"*?[a]{b,c}~ $HOME \' ` + "\u00e9\u202e", oneArg},
		{"a path traversal as text", "InjectArg", "../../etc/passwd", oneArg},
		{"a newline", "InjectArg", "x\ntouch " + canary, refusedSchema},
		{"a carriage return", "InjectArg", "x\rtouch pwned", refusedSchema},
		{"a NUL", "InjectArg", "x\x00touch " + canary, refusedSchema},
		{"an escape sequence", "InjectArg", "\x1b]0;pwned\x07", refusedSchema},
		{"an option", "InjectArg", "--version", refusedOption},
		{"a relative path traversal", "InjectPath", "../../etc/passwd", refusedSchema},
		{"an absolute path traversal", "InjectPath", safe + "/../../../../etc/passwd", refusedSchema},
		{"a path with a NUL", "InjectPath", safe + "/ok\x00/../../etc/passwd", refusedSchema},
		{"a path under the root", "InjectPath", safe + "/ok", ran},
	}
	startsAt := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	var alerts []template.Alert
	fps := map[string]int{}
	for i, c := range cases {
		fp := fmt.Sprintf("%016x", 0x1ec7_0000+i)
		fps[fp] = i
		alerts = append(alerts, firing(fp, startsAt, template.KV{
			"alertname": c.alertname, "instance": "testhost", "payload": c.payload,
		}))
	}
	h.webhook(message(t, "http://am-a.invalid:9093", alerts...))

	var stored []storedAlert
	var runs []run
	eventually(t, 30*time.Second, "every alert planned and every run ended", func() (bool, string) {
		stored = h.alerts("")
		if len(stored) != len(cases) {
			return false, "not all alerts stored"
		}
		for _, a := range stored {
			if a.State == "new" {
				return false, a.Key + " is new"
			}
		}
		runs = h.runs("")
		for _, r := range runs {
			if r.State == "pending" || r.State == "running" {
				return false, "run " + r.ID + " is " + string(r.State)
			}
		}
		return true, ""
	})
	alertOf := map[string]storedAlert{}
	for _, a := range stored {
		alertOf[a.Fingerprint] = a
	}
	runsOf := map[string][]run{}
	for _, r := range runs {
		runsOf[r.Fingerprint] = append(runsOf[r.Fingerprint], r)
	}

	for i, c := range cases {
		fp := alerts[i].Fingerprint
		t.Run(c.name, func(t *testing.T) {
			a := alertOf[fp]
			if got := string(a.Labels["payload"]); got != c.payload {
				t.Errorf("stored label payload = %q; want %q, byte for byte", got, c.payload)
			}
			rs := runsOf[fp]
			switch c.want {
			case refusedSchema:
				if len(rs) != 0 {
					t.Fatalf("%d runs were planned (%s: %v); want none", len(rs), rs[0].State, rs[0].Steps)
				}
				if a.State != "done" || !strings.Contains(a.Note, "parameters refused") {
					t.Errorf("alert is %s (%q); want done, with the parameters refused", a.State, a.Note)
				}
				t.Logf("refused: %s", a.Note)
				return
			}
			if len(rs) != 1 {
				t.Fatalf("%d runs; want 1 (alert %s: %s)", len(rs), a.State, a.Note)
			}
			r := rs[0]
			st := r.Steps[0]
			switch c.want {
			case oneArg:
				if r.State != "succeeded" {
					t.Fatalf("run is %s (%s); want succeeded", r.State, r.Reason)
				}
				if diff := cmp.Diff([]string{"/usr/bin/printf", `%s\n`, c.payload}, st.Argv); diff != "" {
					t.Errorf("argv (-want +got):\n%s", diff)
				}
				if st.Output != c.payload+"\n" {
					t.Errorf("printf printed %q; want %q: the value as one argument, unexpanded", st.Output, c.payload+"\n")
				}
			case refusedOption:
				if r.State != "failed" || len(st.Argv) != 0 || !strings.Contains(st.Error, "option") {
					t.Errorf("run is %s with argv %q (%s); want failed before executing anything, as an option", r.State, st.Argv, st.Error)
				}
			case ran:
				if r.State != "succeeded" || !slices.Equal(st.Argv, []string{"/usr/bin/tee", "-a", c.payload}) {
					t.Errorf("run is %s with argv %q (%s); want succeeded with the path as one element", r.State, st.Argv, r.Reason)
				}
			}
		})
	}

	h.stop()
	h.verifyAudit()

	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// The healer's working directory is dir; its commands run in /.
	for _, root := range []string{dir, wd} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.Contains(d.Name(), "pwned") {
				t.Errorf("%s exists: a label reached a shell", path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Lstat("/pwned"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("/pwned: %v; want it not to exist: a label reached a shell", err)
	}
}
