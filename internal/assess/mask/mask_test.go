package mask

import (
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		in, want string
	}{
		"an IPv4 address":               {in: "eth0 got 10.1.2.3 from dhcp", want: "eth0 got <ip-1> from dhcp"},
		"an IPv4 address with a port":   {in: "dial 10.1.2.3:5432 refused.", want: "dial <ip-1>:5432 refused."},
		"an IPv6 address":               {in: "from 2001:db8::7 and [2001:DB8::7]:443", want: "from <ip-1> and [<ip-1>]:443"},
		"two addresses get two numbers": {in: "10.0.0.1 -> 10.0.0.2 -> 10.0.0.1", want: "<ip-1> -> <ip-2> -> <ip-1>"},
		"loopback and times stay":       {in: "127.0.0.1 at 12:30:45 on ::", want: "127.0.0.1 at 12:30:45 on ::"},
		"hex words stay":                {in: "a dead cafe face", want: "a dead cafe face"},
		"a password assignment":         {in: "login with password=hunter2 failed", want: "login with password=<redacted> failed"},
		"a bearer credential":           {in: "Authorization: Bearer abc.def", want: "Authorization: Bearer <redacted>"},
		"a well-known token prefix":     {in: "leaked ghp_abcdefghijklmnopqrstuvwxyz0123", want: "leaked <redacted>"},
		"a long random-looking string":  {in: "key Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LmNb", want: "key <redacted>"},
		"a long lower-case word stays":  {in: "systemd-journald-audit-socket-service", want: "systemd-journald-audit-socket-service"},
		"a URL's password":              {in: "postgres://app:s3cret@db/x", want: "postgres://app:<redacted>@db/x"},
		"plain text is left as it is":   {in: "disk /var is 93% full", want: "disk /var is 93% full"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := New(Options{}).Text(tc.in); got != tc.want {
				t.Fatalf("Text(%q) = %q; want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestKeepIPs(t *testing.T) {
	t.Parallel()
	if got := New(Options{KeepIPs: true}).Text("at 10.1.2.3"); got != "at 10.1.2.3" {
		t.Fatalf("Text = %q; want the address kept", got)
	}
}

func TestFieldsAndUnmask(t *testing.T) {
	t.Parallel()
	labels := map[string]string{
		"instance": "web-1:9100", "user": "alice", "job": "node",
		"api_token": "t0k3n", "db_password": "hunter2", "source": "192.0.2.10",
	}
	annotations := map[string]string{
		"description": "web-1 disk full; alice's job from 192.0.2.10; web-10 is fine",
	}
	m := New(Options{})
	m.Learn(labels)
	m.Learn(annotations)
	gotL, gotA := m.Map(labels), m.Map(annotations)
	for k, want := range map[string]string{
		"instance": "<host-1>:9100", "user": "<user-1>", "job": "node",
		"api_token": Redacted, "db_password": Redacted, "source": "<ip-1>",
	} {
		if gotL[k] != want {
			t.Errorf("label %s: got %q, want %q", k, gotL[k], want)
		}
	}
	wantDesc := "<host-1> disk full; <user-1>'s job from <ip-1>; web-10 is fine"
	if gotA["description"] != wantDesc {
		t.Errorf("description: got %q, want %q", gotA["description"], wantDesc)
	}
	if got, want := m.Unmask(gotA["description"]), annotations["description"]; got != want {
		t.Errorf("Unmask: got %q, want %q", got, want)
	}
	if got := m.Unmask("token " + Redacted + " and <host-9>"); got != "token "+Redacted+" and <host-9>" {
		t.Errorf("Unmask put back a secret or an unknown placeholder: %q", got)
	}
}

func TestConfiguredFields(t *testing.T) {
	t.Parallel()
	m := New(Options{Fields: map[string]string{"pod": "pod"}})
	if got := m.Field("pod", "api-7d9f"); got != "<pod-1>" {
		t.Errorf("Field(pod) = %q; want <pod-1>", got)
	}
	if got := m.Field("instance", "web-1"); got != "web-1" {
		t.Errorf("Field(instance) = %q; want web-1 (not configured)", got)
	}
}

func FuzzText(f *testing.F) {
	for _, s := range []string{"10.0.0.1:80", "[fe80::1%eth0]:9", "password=x", "web-1 ghp_aaaaaaaaaaaaaaaaaaaaaaaaa", "1.2.3.4.5", "::ffff:10.0.0.1"} {
		f.Add("instance", "web-1", s)
	}
	f.Fuzz(func(t *testing.T, key, value, text string) {
		m := New(Options{})
		m.Learn(map[string]string{key: value})
		out := m.Text(text)
		_ = m.Unmask(out)
		if strings.Contains(out, "password=hunter2") {
			t.Fatalf("Text(%q) = %q kept a password", text, out)
		}
		again := New(Options{})
		again.Text(out)
		if again.counts["ip"] != 0 {
			t.Fatalf("Text(%q) = %q still holds an IP address", text, out)
		}
	})
}
