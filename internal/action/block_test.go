package action

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
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
			params:       map[string]string{"address": "203.0.113.9", "ttl": "1h"},
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
			params:       map[string]string{"address": "2001:db8::9", "ttl": "1h"},
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

// hostAddrs is the fake host of the refusal tests: one IPv4 and one IPv6
// address.
func hostAddrs() ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("192.0.2.50"), netip.MustParseAddr("2001:db8:ffff::5")}, nil
}

func TestBlockIPRefusals(t *testing.T) {
	t.Parallel()
	r := &fakeRunner{}
	peers := NewPeers(24*time.Hour, 16, fixedClock(testNow))
	peers.AddRemote("198.51.100.20:41000")     // healer approve, from an operator's desk
	peers.AddRemote("[2001:db8:cafe::9]:9093") // Alertmanager posting the webhook
	b, err := NewBlockIP(BlockOptions{
		Backend: FirewallIptables, Runner: r, NeverBlock: []string{"10.0.0.0/8", "192.0.2.10", "2001:db8:aaaa::/48"},
		HostAddrs: hostAddrs, Peers: peers.List, Now: fixedClock(testNow),
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		params map[string]string
		want   string
	}{
		{name: "loopback is refused", params: map[string]string{"address": "127.0.0.1"}, want: "never blocked"},
		{name: "another loopback address is refused", params: map[string]string{"address": "127.8.9.10"}, want: "never blocked"},
		{name: "IPv6 loopback is refused", params: map[string]string{"address": "::1"}, want: "never blocked"},
		{name: "IPv4-mapped loopback is refused", params: map[string]string{"address": "::ffff:127.0.0.1"}, want: "never blocked"},
		{name: "the unspecified address is refused", params: map[string]string{"address": "0.0.0.0"}, want: "never blocked"},
		{name: "the IPv6 unspecified address is refused", params: map[string]string{"address": "::"}, want: "never blocked"},
		{name: "everything is refused", params: map[string]string{"address": "0.0.0.0/0"}, want: "broader than"},
		{name: "half of IPv4 is refused", params: map[string]string{"address": "128.0.0.0/1"}, want: "broader than"},
		{name: "a broad IPv6 prefix is refused", params: map[string]string{"address": "2001::/16"}, want: "broader than"},
		{name: "an address in a never-block prefix is refused", params: map[string]string{"address": "10.1.2.3"}, want: "overlaps 10.0.0.0/8"},
		{name: "a prefix overlapping a never-block prefix is refused", params: map[string]string{"address": "2001:db8:aaa0::/44"}, want: "overlaps 2001:db8:aaaa::/48"},
		{name: "a prefix that holds a never-block address is refused", params: map[string]string{"address": "192.0.2.0/24"}, want: "overlaps 192.0.2.10/32"},
		{name: "an IPv6 address in a never-block prefix is refused", params: map[string]string{"address": "2001:db8:aaaa::5"}, want: "overlaps 2001:db8:aaaa::/48"},
		{name: "an address of this host is refused", params: map[string]string{"address": "192.0.2.50"}, want: "an address of this host"},
		{name: "an IPv6 address of this host is refused", params: map[string]string{"address": "2001:db8:ffff::5"}, want: "an address of this host"},
		{name: "a prefix holding an address of this host is refused", params: map[string]string{"address": "192.0.2.48/29"}, want: "192.0.2.48/29 holds 192.0.2.50, an address of this host"},
		{name: "the address the API was used from is refused", params: map[string]string{"address": "198.51.100.20"}, want: "healer's API or webhook was used from"},
		{name: "a prefix holding the address the webhook came from is refused", params: map[string]string{"address": "2001:db8:cafe::/64"}, want: "holds 2001:db8:cafe::9"},
		{name: "a flag is refused", params: map[string]string{"address": "-F"}, want: "not an IP address"},
		{name: "a flag after an address is refused", params: map[string]string{"address": "1.2.3.4 -j ACCEPT"}, want: "not an IP address"},
		{name: "a missing TTL is refused", params: map[string]string{"address": "203.0.113.1", "ttl": ""}, want: `param "ttl": required`},
		{name: "a TTL over 7 days is refused", params: map[string]string{"address": "203.0.113.1", "ttl": "8d"}, want: "above the maximum"},
		{name: "a zero TTL is refused", params: map[string]string{"address": "203.0.113.1", "ttl": "0s"}, want: "below the minimum"},
		{name: "no address and nowhere to find one is refused", params: map[string]string{}, want: "give address, or from"},
		{name: "an address and where to find one is refused", params: map[string]string{"address": "203.0.113.1", "from": "sockets"}, want: "not both"},
		{name: "the auth log without a service is refused", params: map[string]string{"from": "auth_log"}, want: "needs service"},
		{name: "a service for the socket table is refused", params: map[string]string{"from": "sockets", "service": "sshd"}, want: "service is for from: auth_log"},
		{name: "an unknown source is refused", params: map[string]string{"from": "alert"}, want: "not one of auth_log, sockets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			params := map[string]string{"ttl": "1h"}
			for k, v := range tt.params {
				params[k] = v
			}
			_, err := b.Run(t.Context(), Request{RunID: "r1", Params: params})
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tt.want) || IsRetryable(err) {
				t.Errorf("got %v, want a refusal containing %q that is not retryable", err, tt.want)
			}
		})
	}
	if calls := r.Calls(); len(calls) != 0 {
		t.Errorf("got calls %q, want none", calls)
	}
}

func TestBlockIPCheckRefusesBeforeARunIsPlanned(t *testing.T) {
	t.Parallel()
	peers := NewPeers(24*time.Hour, 16, fixedClock(testNow))
	peers.AddRemote("198.51.100.20:41000")
	b, err := NewBlockIP(BlockOptions{Backend: FirewallNftables, Runner: &fakeRunner{}, HostAddrs: hostAddrs, Peers: peers.List})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"127.0.0.1":     "never blocked",
		"192.0.2.50":    "an address of this host",
		"198.51.100.20": "was used from recently",
	} {
		params, err := b.Spec().Validate(map[string]string{"address": addr, "ttl": "1h"})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Check(params); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%s) = %v; want a refusal containing %q", addr, err, want)
		}
	}
	params, err := b.Spec().Validate(map[string]string{"address": "203.0.113.9", "ttl": "1h"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Check(params); err != nil {
		t.Errorf("Check(203.0.113.9) = %v; want nil", err)
	}
}

func TestBlockIPRefusesWhenItCannotReadTheHostsAddresses(t *testing.T) {
	t.Parallel()
	r := &fakeRunner{}
	b, err := NewBlockIP(BlockOptions{Backend: FirewallNftables, Runner: r, HostAddrs: func() ([]netip.Addr, error) {
		return nil, errors.New("netlink: permission denied")
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Run(t.Context(), Request{RunID: "r1", Params: map[string]string{"address": "203.0.113.9", "ttl": "1h"}})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "cannot read this host's addresses") {
		t.Errorf("got %v, want a refusal saying the host's addresses could not be read", err)
	}
	if len(r.Calls()) != 0 {
		t.Errorf("got calls %q, want none", r.Calls())
	}
}

func TestBlockIPRefusesThisHostsRealAddresses(t *testing.T) {
	t.Parallel()
	addrs, err := interfaceAddrs()
	if err != nil {
		t.Skipf("no interface addresses here: %v", err)
	}
	b, err := NewBlockIP(BlockOptions{Backend: FirewallNftables, Runner: &fakeRunner{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.IsLoopback() || a.IsLinkLocalUnicast() {
			continue
		}
		_, err := b.Run(t.Context(), Request{RunID: "r1", DryRun: true, Params: map[string]string{"address": a.String(), "ttl": "1h"}})
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "an address of this host") {
			t.Errorf("blocking %s, an address of an interface here: got %v, want a refusal", a, err)
		}
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
	res, err := b.Run(t.Context(), Request{RunID: "r1", Params: map[string]string{"address": "203.0.113.9", "ttl": "1h"}})
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
		res, err := b.Run(t.Context(), Request{DryRun: true, Params: map[string]string{"address": addr, "ttl": "1h"}})
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

func TestBlockIPFindsTheOffenderWhenTheRunStarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	authLog := filepath.Join(dir, "auth.log")
	var log strings.Builder
	for range 12 {
		log.WriteString("Mar  1 11:58:01 web1 sshd[101]: Failed password for root from 203.0.113.9 port 51000 ssh2\n")
	}
	for range 3 {
		log.WriteString("Mar  1 11:58:02 web1 sshd[102]: Invalid user admin from 198.51.100.4 port 40000\n")
	}
	for range 40 { // an hour ago: outside the window
		log.WriteString("Mar  1 11:00:00 web1 sshd[103]: Failed password for root from 198.51.100.4 port 40000 ssh2\n")
	}
	if err := os.WriteFile(authLog, []byte(log.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	proc := filepath.Join(dir, "proc")
	if err := os.MkdirAll(filepath.Join(proc, "net"), 0o750); err != nil {
		t.Fatal(err)
	}
	// 203.0.113.9 (097100CB) holds 11 connections to port 443 (01BB).
	table := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 00000000:01BB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1 0 100 0 0 10 0\n"
	for i := range 11 {
		table += fmt.Sprintf("   %d: 0100000A:01BB 097100CB:%04X 01 00000000:00000000 00:00000000 00000000     0        0 %d 1 0 100 0 0 10 0\n", i+1, 50000+i, 200+i)
	}
	if err := os.WriteFile(filepath.Join(proc, "net", "tcp"), []byte(table), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		params     map[string]string
		peers      []string
		wantTarget string
		wantRefuse string
	}{
		{name: "the auth log's top remote for the service is blocked", params: map[string]string{"from": "auth_log", "service": "sshd"}, wantTarget: "203.0.113.9"},
		{name: "the socket table's top inbound remote is blocked", params: map[string]string{"from": "sockets"}, wantTarget: "203.0.113.9"},
		{name: "too few failures block nobody", params: map[string]string{"from": "auth_log", "service": "sshd", "min_count": "13"}, wantTarget: "auth_log", wantRefuse: "no remote has 13 or more sshd authentication failures in the last 15m0s (the most is 12)"},
		{name: "a service without failures blocks nobody", params: map[string]string{"from": "auth_log", "service": "sudo"}, wantTarget: "auth_log", wantRefuse: "the most is 0"},
		{name: "a top remote that is the healer's own client is refused, not passed over", params: map[string]string{"from": "auth_log", "service": "sshd", "min_count": "1"}, peers: []string{"203.0.113.9:5000"}, wantTarget: "203.0.113.9", wantRefuse: "was used from recently"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &fakeRunner{}
			peers := NewPeers(time.Hour, 8, fixedClock(testNow))
			for _, p := range tt.peers {
				peers.AddRemote(p)
			}
			b, err := NewBlockIP(BlockOptions{
				Backend: FirewallNftables, Runner: r, HostAddrs: hostAddrs, Peers: peers.List,
				AuthLogs: []string{filepath.Join(dir, "missing.log"), authLog}, ProcRoot: proc, Now: fixedClock(testNow),
			})
			if err != nil {
				t.Fatal(err)
			}
			params := map[string]string{"ttl": "1h"}
			for k, v := range tt.params {
				params[k] = v
			}
			res, err := b.Run(t.Context(), Request{RunID: "r1", Params: params})
			if res.Target != tt.wantTarget {
				t.Errorf("got target %q, want %q", res.Target, tt.wantTarget)
			}
			if tt.wantRefuse != "" {
				if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tt.wantRefuse) {
					t.Errorf("got %v, want a refusal containing %q", err, tt.wantRefuse)
				}
				if len(r.Calls()) != 0 {
					t.Errorf("got calls %q, want none", r.Calls())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := "add element inet deus blocked4 { " + tt.wantTarget + " timeout 3600s }"
			if calls := r.Calls(); len(calls) != 1 || !strings.HasSuffix(calls[0][1], want) {
				t.Errorf("got calls %q, want one ending %q", calls, want)
			}
			if !strings.Contains(res.Summary, "blocked "+tt.wantTarget+" (found in "+tt.params["from"]+": ") {
				t.Errorf("got summary %q, want it to say where the address was found", res.Summary)
			}
		})
	}
}

func TestBlockIPWithoutAnAuthLogIsRetryable(t *testing.T) {
	t.Parallel()
	b, err := NewBlockIP(BlockOptions{Backend: FirewallNftables, Runner: &fakeRunner{}, HostAddrs: hostAddrs, AuthLogs: []string{filepath.Join(t.TempDir(), "auth.log")}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Run(t.Context(), Request{RunID: "r1", Params: map[string]string{"from": "auth_log", "service": "sshd", "ttl": "1h"}})
	if !IsRetryable(err) || !strings.Contains(err.Error(), "none of") {
		t.Errorf("got %v, want a retryable error saying no auth log exists", err)
	}
}

func TestPeersKeepsRecentAuthenticatedClients(t *testing.T) {
	t.Parallel()
	now := testNow
	p := NewPeers(time.Hour, 2, func() time.Time { return now })
	p.AddRemote("198.51.100.1:1000")
	p.AddRemote("[::ffff:198.51.100.2]:1000")
	p.AddRemote("not an address")
	p.AddRemote("@:1")
	if got, want := p.List(), []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v (IPv4-mapped unmapped, junk ignored)", got, want)
	}
	now = now.Add(time.Minute)
	p.AddRemote("198.51.100.1:1001") // seen again
	p.AddRemote("198.51.100.3:1000") // full: the least recently seen goes
	if got, want := p.List(), []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.3")}; !slices.Equal(got, want) {
		t.Errorf("at the maximum: got %v, want %v", got, want)
	}
	now = now.Add(time.Hour + time.Second)
	if got := p.List(); len(got) != 0 {
		t.Errorf("after an hour: got %v, want none", got)
	}
	var none *Peers
	none.AddRemote("198.51.100.1:1")
	if got := none.List(); got != nil {
		t.Errorf("nil set: got %v, want nil", got)
	}
}
