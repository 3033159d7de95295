package action

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewCommandRefusesBadTemplates(t *testing.T) {
	t.Parallel()
	spec := Spec{Name: "c", Params: []Param{{Name: "pool", Type: TypeString, Pattern: "[a-z]+"}}}
	tests := []struct {
		name    string
		spec    Spec
		argv    []string
		wantErr string
	}{
		{name: "an undeclared parameter is refused", spec: spec, argv: []string{"x", "{{nope}}"}, wantErr: "{{nope}} is not a declared parameter"},
		{name: "a parameter in argv[0] is refused", spec: spec, argv: []string{"{{pool}}"}, wantErr: "argv[0] may not hold a parameter"},
		{name: "an unclosed placeholder is refused", spec: spec, argv: []string{"x", "{{pool"}, wantErr: "malformed"},
		{name: "a placeholder with a bad name is refused", spec: spec, argv: []string{"x", "{{po-ol}}"}, wantErr: "malformed"},
		{name: "an empty argv is refused", spec: spec, argv: nil, wantErr: "empty argv"},
		{name: "a relative argv[0] is refused", spec: spec, argv: []string{"bin/x"}, wantErr: "must be an absolute path"},
		{name: "a default its schema refuses is refused", spec: Spec{Name: "c", Params: []Param{{Name: "n", Type: TypeInt, Default: "x"}}}, argv: []string{"x"}, wantErr: `param "n": default`},
		{name: "a parameter declared twice is refused", spec: Spec{Name: "c", Params: []Param{{Name: "n"}, {Name: "n"}}}, argv: []string{"x"}, wantErr: "declared twice"},
		{name: "a nameless command is refused", spec: Spec{}, argv: []string{"x"}, wantErr: "no name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewCommand(tt.spec, tt.argv, &fakeRunner{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestCommandRendersEachValueAsOneElement(t *testing.T) {
	t.Parallel()
	spec := Spec{Name: "reload_pool", Tier: TierMedium, Params: []Param{
		{Name: "pool", Type: TypeString, Required: true},
		{Name: "mode", Type: TypeEnum, Enum: []string{"soft", "hard"}, Default: "soft"},
	}}
	tests := []struct {
		name       string
		params     map[string]string
		want       []string
		wantTarget string
		wantRefuse bool
	}{
		{
			name:       "a value with spaces and shell syntax stays one element",
			params:     map[string]string{"pool": "www; rm -rf / $(id)"},
			want:       []string{"/usr/local/bin/reload", "--pool=www; rm -rf / $(id)", "www; rm -rf / $(id)", "soft"},
			wantTarget: "www; rm -rf / $(id) soft",
		},
		{
			name:       "a dash value is refused when it also stands as a whole element",
			params:     map[string]string{"pool": "-x", "mode": "hard"},
			wantRefuse: true, // the whole-element {{pool}} would be "-x"
		},
		{
			name:       "a whole-element value that looks like an option is refused",
			params:     map[string]string{"pool": "--help"},
			wantRefuse: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &fakeRunner{}
			c, err := NewCommand(spec, []string{"/usr/local/bin/reload", "--pool={{pool}}", "{{ pool }}", "{{mode}}"}, r)
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.Run(t.Context(), Request{RunID: "r1", Params: tt.params, Alert: json.RawMessage(`{"a":1}`)})
			if tt.wantRefuse {
				if !errors.Is(err, ErrRefused) {
					t.Fatalf("got error %v, want a refusal", err)
				}
				if len(r.Calls()) != 0 {
					t.Errorf("got calls %q, want none", r.Calls())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if calls := r.Calls(); len(calls) != 1 || !slices.Equal(calls[0], tt.want) {
				t.Errorf("got calls %q, want [%q]", calls, tt.want)
			}
			if !slices.Equal(res.Argv, tt.want) {
				t.Errorf("got Result.Argv %q, want %q", res.Argv, tt.want)
			}
			if res.Target != tt.wantTarget {
				t.Errorf("got target %q, want %q", res.Target, tt.wantTarget)
			}
			if got := string(r.stdin[0]); got != `{"a":1}` {
				t.Errorf("got stdin %q, want the alert", got)
			}
		})
	}
}

func TestCommandInjectionReachesTheChildAsOneLiteralElement(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pwned := filepath.Join(dir, "pwned")
	spec := Spec{Name: "echo_args", Tier: TierLow, Timeout: time.Minute, Params: []Param{{Name: "msg", Type: TypeString, Required: true}}}
	c, err := NewCommand(spec, []string{helperPath(t), "{{msg}}", "x{{msg}}"}, &Exec{Env: helperEnvs("args")})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"$(touch " + pwned + ")", "`touch " + pwned + "`", "; touch " + pwned, "| touch " + pwned, "&& touch " + pwned} {
		res, err := c.Run(t.Context(), Request{RunID: "r1", Params: map[string]string{"msg": v}})
		if err != nil {
			t.Fatalf("Run(%q): %v", v, err)
		}
		var got []string
		if err := json.Unmarshal([]byte(res.Output), &got); err != nil {
			t.Fatalf("decode %q: %v", res.Output, err)
		}
		if want := []string{v, "x" + v}; !slices.Equal(got, want) {
			t.Errorf("got child args %q, want %q", got, want)
		}
	}
	if _, err := os.Stat(pwned); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got stat error %v, want no file pwned", err)
	}
}

func TestCommandGivesTheAlertOnStdin(t *testing.T) {
	t.Parallel()
	c, err := NewCommand(Spec{Name: "cat_alert"}, []string{helperPath(t)}, &Exec{Env: helperEnvs("stdin")})
	if err != nil {
		t.Fatal(err)
	}
	alert := json.RawMessage(`{"labels":{"alertname":"DiskFull","mountpoint":"$(id)"}}`)
	res, err := c.Run(t.Context(), Request{RunID: "r1", Alert: alert})
	if err != nil {
		t.Fatal(err)
	}
	if res.Output != string(alert) {
		t.Errorf("got output %q, want the alert %q", res.Output, alert)
	}
	if res.Target != "cat_alert" {
		t.Errorf("got target %q, want the command's name", res.Target)
	}
}

func TestCommandTimeout(t *testing.T) {
	t.Parallel()
	// The timeout must pass after the command has started: one that
	// passes before is a command that never ran, which Exec rightly calls
	// retryable. A second is a generous bound on starting it.
	c, err := NewCommand(Spec{Name: "hang", Timeout: time.Second}, []string{helperPath(t)}, &Exec{Env: helperEnvs("block")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Run(t.Context(), Request{RunID: "r1"})
	if !errors.Is(err, context.DeadlineExceeded) || IsRetryable(err) {
		t.Errorf("got %v (retryable %v), want a timeout that is not retryable", err, IsRetryable(err))
	}
}

func TestCommandAndJournalDryRunRunNothing(t *testing.T) {
	t.Parallel()
	r := &fakeRunner{}
	c, err := NewCommand(Spec{Name: "c", Params: []Param{{Name: "n", Type: TypeInt}}}, []string{"/bin/x", "{{n}}"}, r)
	if err != nil {
		t.Fatal(err)
	}
	j, err := NewVacuumJournal(r)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		a           Action
		params      map[string]string
		wantSummary string
		wantArgv    []string
	}{
		{name: "run_command says what it would run", a: c, params: map[string]string{"n": "5"}, wantSummary: "would run /bin/x 5 with the alert on stdin", wantArgv: []string{"/bin/x", "5"}},
		{name: "vacuum_journal says what it would run", a: j, wantSummary: "would run journalctl --vacuum-size=500M", wantArgv: []string{"journalctl", "--vacuum-size=500M"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.a.Run(t.Context(), Request{DryRun: true, Params: tt.params})
			if err != nil {
				t.Fatal(err)
			}
			if res.Summary != tt.wantSummary {
				t.Errorf("got summary %q, want %q", res.Summary, tt.wantSummary)
			}
			if !slices.Equal(res.Argv, tt.wantArgv) {
				t.Errorf("got argv %q, want %q", res.Argv, tt.wantArgv)
			}
		})
	}
	if calls := r.Calls(); len(calls) != 0 {
		t.Errorf("got calls %q, want none", calls)
	}
}

func TestVacuumJournal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		params     map[string]string
		want       []string
		wantRefuse bool
	}{
		{name: "the default size is 500M", want: []string{"journalctl", "--vacuum-size=500M"}},
		{name: "a size in G passes", params: map[string]string{"max_size": "2G"}, want: []string{"journalctl", "--vacuum-size=2G"}},
		{name: "a size with another flag is refused", params: map[string]string{"max_size": "1G --rotate"}, wantRefuse: true},
		{name: "a size without a unit is refused", params: map[string]string{"max_size": "100"}, wantRefuse: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &fakeRunner{}
			j, err := NewVacuumJournal(r)
			if err != nil {
				t.Fatal(err)
			}
			_, err = j.Run(t.Context(), Request{RunID: "r1", Params: tt.params})
			if tt.wantRefuse {
				if !errors.Is(err, ErrRefused) || IsRetryable(err) {
					t.Errorf("got %v, want a refusal that is not retryable", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if calls := r.Calls(); len(calls) != 1 || !slices.Equal(calls[0], tt.want) {
				t.Errorf("got calls %q, want [%q]", calls, tt.want)
			}
		})
	}
}
