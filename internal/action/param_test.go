package action

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParamCheck(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "secret-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "sub"), filepath.Join(root, "inside-link")); err != nil {
		t.Fatal(err)
	}

	str := Param{Type: TypeString}
	name := Param{Type: TypeString, Pattern: `[A-Za-z0-9_.:-]{1,64}`}
	enum := Param{Type: TypeEnum, Enum: []string{"TERM", "KILL"}}
	pid := Param{Type: TypeInt, Min: Bound(2), Max: Bound(4194304)}
	num := Param{Type: TypeNumber, Min: Bound(0), Max: Bound(100)}
	dur := Param{Type: TypeDuration, Max: Bound(7 * 24 * 3600)}
	path := Param{Type: TypePath, Roots: []string{root}}
	ip := Param{Type: TypeIP}
	cidr := Param{Type: TypeIP, Pattern: "cidr"}
	unit := Param{Type: TypeUnit}
	url := Param{Type: TypeURL}

	tests := []struct {
		name    string
		p       Param
		in      string
		want    string
		wantErr bool
	}{
		{name: "a plain string passes", p: str, in: "hello world", want: "hello world"},
		{name: "a string may hold shell syntax, which is never interpreted", p: str, in: "$(touch pwned)", want: "$(touch pwned)"},
		{name: "a string with a newline is refused", p: str, in: "a\nb", wantErr: true},
		{name: "a string with a NUL is refused", p: str, in: "a\x00b", wantErr: true},
		{name: "a string with an escape is refused", p: str, in: "a\x1b[31m", wantErr: true},
		{name: "a string with a C1 control is refused", p: str, in: "a\u0085b", wantErr: true},
		{name: "invalid UTF-8 is refused", p: str, in: "a\xffb", wantErr: true},
		{name: "a string over the bound is refused", p: str, in: strings.Repeat("a", MaxParamBytes+1), wantErr: true},
		{name: "a pattern string passes", p: name, in: "nginx", want: "nginx"},
		{name: "command substitution fails the pattern", p: name, in: "$(touch pwned)", wantErr: true},
		{name: "a semicolon fails the pattern", p: name, in: ";rm -rf /", wantErr: true},
		{name: "backticks fail the pattern", p: name, in: "`id`", wantErr: true},
		{name: "the pattern must match the whole value", p: name, in: "nginx;id", wantErr: true},
		{name: "an enum value passes", p: enum, in: "KILL", want: "KILL"},
		{name: "an enum is case-sensitive", p: enum, in: "kill", wantErr: true},
		{name: "an int is canonical", p: pid, in: "0042", want: "42"},
		{name: "an int below the minimum is refused", p: pid, in: "1", wantErr: true},
		{name: "a negative int is refused", p: pid, in: "-1", wantErr: true},
		{name: "an int with shell syntax is refused", p: pid, in: "1;reboot", wantErr: true},
		{name: "a hex int is refused", p: pid, in: "0x10", wantErr: true},
		{name: "a number is canonical", p: num, in: "12.50", want: "12.5"},
		{name: "NaN is refused", p: num, in: "NaN", wantErr: true},
		{name: "a number above the maximum is refused", p: num, in: "100.1", wantErr: true},
		{name: "a duration is canonical", p: dur, in: "90m", want: "1h30m"},
		{name: "a duration in days passes", p: dur, in: "7d", want: "1w"},
		{name: "a duration with milliseconds stays parseable", p: dur, in: "1500ms", want: "1s500ms"},
		{name: "a duration above the maximum is refused", p: dur, in: "8d", wantErr: true},
		{name: "a Go-only duration is refused", p: dur, in: "1.5h", wantErr: true},
		{name: "a path under the root passes", p: path, in: root + "/sub", want: root + "/sub"},
		{name: "a path is cleaned", p: path, in: root + "//sub/./", want: root + "/sub"},
		{name: "the root itself passes", p: path, in: root, want: root},
		{name: "a path that does not exist yet passes", p: path, in: root + "/sub/new/file", want: root + "/sub/new/file"},
		{name: "a relative path is refused", p: path, in: "sub", wantErr: true},
		{name: "dot-dot traversal out of the root is refused", p: path, in: root + "/../etc/passwd", wantErr: true},
		{name: "dot-dot traversal inside the root passes cleaned", p: path, in: root + "/sub/../sub", want: root + "/sub"},
		{name: "a symlinked folder out of the root is refused", p: path, in: root + "/escape/secret", wantErr: true},
		{name: "a symlink to a file out of the root is refused", p: path, in: root + "/secret-link", wantErr: true},
		{name: "a symlink that stays in the root passes", p: path, in: root + "/inside-link", want: root + "/inside-link"},
		{name: "a sibling with the root as prefix is refused", p: path, in: root + "x/file", wantErr: true},
		{name: "a path with a newline is refused", p: path, in: root + "/a\nb", wantErr: true},
		{name: "a path without roots is refused", p: Param{Type: TypePath}, in: root, wantErr: true},
		{name: "an IPv4 address passes", p: ip, in: "192.0.2.1", want: "192.0.2.1"},
		{name: "an IPv4-mapped address is unmapped", p: ip, in: "::ffff:192.0.2.1", want: "192.0.2.1"},
		{name: "an IPv6 address is canonical", p: ip, in: "2001:DB8:0::1", want: "2001:db8::1"},
		{name: "an address with a zone is refused", p: ip, in: "fe80::1%eth0", wantErr: true},
		{name: "a flag is not an address", p: ip, in: "-F", wantErr: true},
		{name: "a prefix is refused without cidr", p: ip, in: "192.0.2.0/24", wantErr: true},
		{name: "a prefix passes with cidr, masked", p: cidr, in: "192.0.2.7/24", want: "192.0.2.0/24"},
		{name: "an address passes with cidr", p: cidr, in: "192.0.2.7", want: "192.0.2.7"},
		{name: "an address with shell syntax is refused", p: cidr, in: "1.2.3.4;id", wantErr: true},
		{name: "a unit passes", p: unit, in: "nginx.service", want: "nginx.service"},
		{name: "a template unit passes", p: unit, in: "getty@tty1.service", want: "getty@tty1.service"},
		{name: "a unit without a type is refused", p: unit, in: "nginx", wantErr: true},
		{name: "a unit starting with a dash is refused", p: unit, in: "-H.service", wantErr: true},
		{name: "a unit with a slash is refused", p: unit, in: "../x.service", wantErr: true},
		{name: "a unit with shell syntax is refused", p: unit, in: "$(id).service", wantErr: true},
		{name: "an https URL passes", p: url, in: "https://hooks.example.com/x?a=1", want: "https://hooks.example.com/x?a=1"},
		{name: "a file URL is refused", p: url, in: "file:///etc/passwd", wantErr: true},
		{name: "a URL with a space is refused", p: url, in: "https://a.example/ b", wantErr: true},
		{name: "an unknown type is refused", p: Param{Type: "blob"}, in: "x", wantErr: true},
		{name: "a bad pattern in the schema is an error", p: Param{Type: TypeString, Pattern: "("}, in: "x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.p.Check(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Check(%q) = %q, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Check(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Check(%q) = %q, want %q", tt.in, got, tt.want)
			}
			// Actions check their parameters again: the canonical form
			// must pass unchanged.
			again, err := tt.p.Check(got)
			if err != nil || again != got {
				t.Errorf("Check(%q) = %q, %v, want %q unchanged", got, again, err, got)
			}
		})
	}
}

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	spec := Spec{Name: "x", Params: []Param{
		{Name: "pid", Type: TypeInt, Required: true},
		{Name: "signal", Type: TypeEnum, Enum: []string{"TERM", "KILL"}, Default: "TERM"},
	}}
	tests := []struct {
		name    string
		in      map[string]string
		want    map[string]string
		wantErr string
	}{
		{name: "defaults are filled in", in: map[string]string{"pid": "7"}, want: map[string]string{"pid": "7", "signal": "TERM"}},
		{name: "a missing required parameter is an error", in: map[string]string{}, wantErr: `param "pid": required`},
		{name: "an unknown parameter is an error", in: map[string]string{"pid": "7", "force": "1"}, wantErr: `param "force": x has no such parameter`},
		{name: "every problem is reported", in: map[string]string{"pid": "x", "signal": "STOP"}, wantErr: "param \"pid\": \"x\" is not an integer\nparam \"signal\": \"STOP\" is not one of TERM, KILL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := spec.Validate(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("got %s=%q, want %q", k, got[k], v)
				}
			}
		})
	}
}
