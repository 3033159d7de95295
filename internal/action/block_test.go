package action

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestBlockIPArgv(t *testing.T) {
	t.Parallel()
	const ensure = "add table inet deus; " +
		"add set inet deus blocked4 { type ipv4_addr; flags interval, timeout; }; " +
		"add set inet deus blocked6 { type ipv6_addr; flags interval, timeout; }; " +
		"add chain inet deus input { type filter hook input priority -10; policy accept; }; " +
		"flush chain inet deus input; " +
		"add rule inet deus input ip saddr @blocked4 drop; " +
		"add rule inet deus input ip6 saddr @blocked6 drop; "
	tests := []struct {
		name         string
		backend      string
		params       map[string]string
		want         []string
		wantRollback []string
	}{
		{
			name: "nftables adds an IPv4 address to blocked4 with its timeout", backend: FirewallNftables,
			params:       map[string]string{"address": "203.0.113.9"},
			want:         []string{"nft", ensure + "add element inet deus blocked4 { 203.0.113.9 timeout 3600s }"},
			wantRollback: []string{"nft", "delete element inet deus blocked4 { 203.0.113.9 }"},
		},
		{
			name: "nftables adds an IPv6 prefix to blocked6", backend: FirewallNftables,
			params:       map[string]string{"address": "2001:DB8:1::7/48", "ttl": "90m"},
			want:         []string{"nft", ensure + "add element inet deus blocked6 { 2001:db8:1::/48 timeout 5400s }"},
			wantRollback: []string{"nft", "delete element inet deus blocked6 { 2001:db8:1::/48 }"},
		},
		{
			name: "iptables inserts a commented DROP rule", backend: FirewallIptables,
			params:       map[string]string{"address": "198.51.100.0/24", "ttl": "2h"},
			want:         []string{"iptables", "-w", "-I", "INPUT", "-s", "198.51.100.0/24", "-j", "DROP", "-m", "comment", "--comment", "deus:run-7@2026-03-01T14:00:00Z"},
			wantRollback: []string{"iptables", "-w", "-D", "INPUT", "-s", "198.51.100.0/24", "-j", "DROP", "-m", "comment", "--comment", "deus:run-7@2026-03-01T14:00:00Z"},
		},
		{
			name: "ip6tables blocks an IPv6 address", backend: FirewallIptables,
			params:       map[string]string{"address": "2001:db8::9"},
			want:         []string{"ip6tables", "-w", "-I", "INPUT", "-s", "2001:db8::9", "-j", "DROP", "-m", "comment", "--comment", "deus:run-7@2026-03-01T13:00:00Z"},
			wantRollback: []string{"ip6tables", "-w", "-D", "INPUT", "-s", "2001:db8::9", "-j", "DROP", "-m", "comment", "--comment", "deus:run-7@2026-03-01T13:00:00Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &fakeRunner{}
			b, err := NewBlockIP(BlockOptions{Backend: tt.backend, Runner: r, Now: fixedClock(testNow)})
			if err != nil {
				t.Fatal(err)
			}
			dry, err := b.Run(t.Context(), Request{RunID: "run-7", DryRun: true, Params: tt.params})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Calls()) != 0 {
				t.Fatalf("got calls %q in a dry run, want none", r.Calls())
			}
			if !slices.Equal(dry.Argv, tt.want) {
				t.Errorf("got dry-run argv %q, want %q", dry.Argv, tt.want)
			}
			res, err := b.Run(t.Context(), Request{RunID: "run-7", Params: tt.params})
			if err != nil {
				t.Fatal(err)
			}
			if calls := r.Calls(); len(calls) != 1 || !slices.Equal(calls[0], tt.want) {
				t.Fatalf("got calls %q, want [%q]", calls, tt.want)
			}
			if _, err := b.Rollback(t.Context(), "run-7", res.Undo); err != nil {
				t.Fatal(err)
			}
			if calls := r.Calls(); len(calls) != 2 || !slices.Equal(calls[1], tt.wantRollback) {
				t.Errorf("got rollback calls %q, want %q", calls[1:], tt.wantRollback)
			}
		})
	}
}

func TestBlockIPRefusals(t *testing.T) {
	t.Parallel()
	r := &fakeRunner{}
	b, err := NewBlockIP(BlockOptions{Backend: FirewallIptables, Runner: r, NeverBlock: []string{"10.0.0.0/8", "192.0.2.10", "2001:db8:aaaa::/48"}, Now: fixedClock(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		address string
		ttl     string
		want    string
	}{
		{name: "loopback is refused", address: "127.0.0.1", want: "never blocked"},
		{name: "another loopback address is refused", address: "127.8.9.10", want: "never blocked"},
		{name: "IPv6 loopback is refused", address: "::1", want: "never blocked"},
		{name: "IPv4-mapped loopback is refused", address: "::ffff:127.0.0.1", want: "never blocked"},
		{name: "the unspecified address is refused", address: "0.0.0.0", want: "never blocked"},
		{name: "the IPv6 unspecified address is refused", address: "::", want: "never blocked"},
		{name: "everything is refused", address: "0.0.0.0/0", want: "broader than"},
		{name: "half of IPv4 is refused", address: "128.0.0.0/1", want: "broader than"},
		{name: "a broad IPv6 prefix is refused", address: "2001::/16", want: "broader than"},
		{name: "an address in a never-block prefix is refused", address: "10.1.2.3", want: "overlaps 10.0.0.0/8"},
		{name: "a prefix that holds a never-block address is refused", address: "192.0.2.0/24", want: "overlaps 192.0.2.10/32"},
		{name: "an IPv6 address in a never-block prefix is refused", address: "2001:db8:aaaa::5", want: "overlaps 2001:db8:aaaa::/48"},
		{name: "a flag is refused", address: "-F", want: "not an IP address"},
		{name: "a flag after an address is refused", address: "1.2.3.4 -j ACCEPT", want: "not an IP address"},
		{name: "a TTL over 7 days is refused", address: "203.0.113.1", ttl: "8d", want: "above the maximum"},
		{name: "a zero TTL is refused", address: "203.0.113.1", ttl: "0s", want: "below the minimum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			params := map[string]string{"address": tt.address}
			if tt.ttl != "" {
				params["ttl"] = tt.ttl
			}
			_, err := b.Run(t.Context(), Request{RunID: "r1", Params: params})
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want a refusal containing %q", err, tt.want)
			}
		})
	}
	if calls := r.Calls(); len(calls) != 0 {
		t.Errorf("got calls %q, want none", calls)
	}
}

func TestNewBlockIPRefusesBadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    BlockOptions
	}{
		{name: "an unknown backend is refused", o: BlockOptions{Backend: "pf", Runner: &fakeRunner{}}},
		{name: "a bad never-block entry is refused", o: BlockOptions{Backend: FirewallNftables, Runner: &fakeRunner{}, NeverBlock: []string{"10.0.0.0/33"}}},
		{name: "no runner is refused", o: BlockOptions{Backend: FirewallNftables}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewBlockIP(tt.o); err == nil {
				t.Error("got no error, want one")
			}
		})
	}
}

func TestBlockIPRollback(t *testing.T) {
	t.Parallel()
	undo := func(u blockUndo) json.RawMessage {
		b, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name        string
		undo        json.RawMessage
		wantCalls   int
		wantRefuse  bool
		wantSummary string
	}{
		{
			name:        "an expired nftables block needs nothing",
			undo:        undo(blockUndo{Backend: FirewallNftables, Address: "203.0.113.9", Expires: testNow.Add(-time.Second)}),
			wantSummary: "block of 203.0.113.9 expired at 2026-03-01T11:59:59Z: nothing to undo",
		},
		{
			name:       "an iptables comment of another run is refused",
			undo:       undo(blockUndo{Backend: FirewallIptables, Address: "203.0.113.9", Comment: "deus:other@2026-03-01T13:00:00Z", Expires: testNow.Add(time.Hour)}),
			wantRefuse: true,
		},
		{
			name:       "an address that is a flag is refused",
			undo:       undo(blockUndo{Backend: FirewallNftables, Address: "-F", Expires: testNow.Add(time.Hour)}),
			wantRefuse: true,
		},
		{
			name:       "an unknown backend is refused",
			undo:       undo(blockUndo{Backend: "pf", Address: "203.0.113.9", Expires: testNow.Add(time.Hour)}),
			wantRefuse: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &fakeRunner{}
			b, err := NewBlockIP(BlockOptions{Backend: FirewallNftables, Runner: r, Now: fixedClock(testNow)})
			if err != nil {
				t.Fatal(err)
			}
			res, err := b.Rollback(t.Context(), "r1", tt.undo)
			if tt.wantRefuse {
				if !errors.Is(err, ErrRefused) {
					t.Errorf("got %v, want a refusal", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := len(r.Calls()); got != tt.wantCalls {
				t.Errorf("got %d calls, want %d", got, tt.wantCalls)
			}
			if res.Summary != tt.wantSummary {
				t.Errorf("got summary %q, want %q", res.Summary, tt.wantSummary)
			}
		})
	}
}

func TestBlockIPPassesRunnerErrorsOn(t *testing.T) {
	t.Parallel()
	r := &fakeRunner{reply: func([]string) (Output, error) {
		return Output{ExitCode: -1}, retryable(errors.New("command not found"))
	}}
	b, err := NewBlockIP(BlockOptions{Backend: FirewallNftables, Runner: r})
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.Run(t.Context(), Request{RunID: "r1", Params: map[string]string{"address": "203.0.113.9"}})
	if !IsRetryable(err) {
		t.Errorf("got %v, want a retryable error", err)
	}
	if res.Undo != nil {
		t.Errorf("got undo %s after a failure, want none", res.Undo)
	}
}

func TestExpireBlocks(t *testing.T) {
	t.Parallel()
	listing := map[string]string{
		"iptables": `-P INPUT ACCEPT
-A INPUT -s 203.0.113.9/32 -m comment --comment "deus:run-1@2026-03-01T11:00:00Z" -j DROP
-A INPUT -s 203.0.113.10/32 -m comment --comment "deus:run-2@2026-03-01T13:00:00Z" -j DROP
-A INPUT -s 198.51.100.0/24 -m comment --comment "admin: keep out" -j DROP
-A INPUT -i lo -j ACCEPT
`,
		"ip6tables": `-P INPUT ACCEPT
-A INPUT -s 2001:db8::9/128 -m comment --comment deus:run-3@2026-03-01T12:00:00Z -j DROP
`,
	}
	r := &fakeRunner{reply: func(argv []string) (Output, error) {
		if slices.Contains(argv, "-S") {
			return Output{Text: listing[argv[0]]}, nil
		}
		return Output{}, nil
	}}
	b, err := NewBlockIP(BlockOptions{Backend: FirewallIptables, Runner: r, Now: fixedClock(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.ExpireBlocks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"deus:run-1@2026-03-01T11:00:00Z", "deus:run-3@2026-03-01T12:00:00Z"}; !slices.Equal(got, want) {
		t.Errorf("got expired %q, want %q", got, want)
	}
	want := [][]string{
		{"iptables", "-w", "-S", "INPUT"},
		{"iptables", "-w", "-D", "INPUT", "-s", "203.0.113.9/32", "-m", "comment", "--comment", "deus:run-1@2026-03-01T11:00:00Z", "-j", "DROP"},
		{"ip6tables", "-w", "-S", "INPUT"},
		{"ip6tables", "-w", "-D", "INPUT", "-s", "2001:db8::9/128", "-m", "comment", "--comment", "deus:run-3@2026-03-01T12:00:00Z", "-j", "DROP"},
	}
	calls := r.Calls()
	if len(calls) != len(want) {
		t.Fatalf("got calls %q, want %q", calls, want)
	}
	for i := range want {
		if !slices.Equal(calls[i], want[i]) {
			t.Errorf("got call %d %q, want %q", i, calls[i], want[i])
		}
	}

	nft, err := NewBlockIP(BlockOptions{Backend: FirewallNftables, Runner: r})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := nft.ExpireBlocks(t.Context()); err != nil || got != nil {
		t.Errorf("nftables: got %q, %v, want nothing to do", got, err)
	}
}

func TestSplitSaved(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{name: "plain words split on spaces", in: "-A INPUT  -j DROP", want: []string{"-A", "INPUT", "-j", "DROP"}},
		{name: "a quoted comment is one word", in: `-m comment --comment "a b" -j DROP`, want: []string{"-m", "comment", "--comment", "a b", "-j", "DROP"}},
		{name: "escapes in quotes are undone", in: `--comment "say \"hi\" \\o/"`, want: []string{"--comment", `say "hi" \o/`}},
		{name: "an empty quoted word is kept", in: `--comment ""`, want: []string{"--comment", ""}},
		{name: "an unbalanced quote is an error", in: `--comment "x`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := splitSaved(tt.in)
			if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
				t.Errorf("splitSaved(%q) = %q, %v, want %q (error %v)", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestNftScriptParses(t *testing.T) {
	t.Parallel()
	if _, err := lookPath("nft"); err != nil {
		t.Skip("nft is not installed")
	}
	r := &fakeRunner{}
	b, err := NewBlockIP(BlockOptions{Backend: FirewallNftables, Runner: r})
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"203.0.113.9", "2001:db8::/48"} {
		res, err := b.Run(t.Context(), Request{DryRun: true, Params: map[string]string{"address": addr}})
		if err != nil {
			t.Fatal(err)
		}
		// nft -c checks a script without applying it; it needs
		// CAP_NET_ADMIN.
		out, err := (&Exec{}).Run(t.Context(), []string{"nft", "-c", res.Argv[1]}, nil)
		if err != nil && strings.Contains(out.Text, "Operation not permitted") {
			t.Skip("nft -c needs CAP_NET_ADMIN")
		}
		if err != nil {
			t.Errorf("nft -c %q: %v: %s", res.Argv[1], err, out.Text)
		}
	}
}

func TestBlockIPLooksForItsFirewallOnlyWhenItActs(t *testing.T) {
	t.Parallel()
	b, err := NewBlockIP(BlockOptions{Runner: &fakeRunner{}})
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Spec()
	if b.fw != "" {
		t.Fatalf("after building and listing block_ip its firewall is %q; want it not looked up yet (check-config must not search PATH)", b.fw)
	}
	if fw := b.firewall(); fw != FirewallNftables && fw != FirewallIptables {
		t.Errorf("firewall(): got %q, want nftables or iptables", fw)
	}
}
