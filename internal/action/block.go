package action

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deus-ex-machina/deus/internal/collector"
)

// Firewall backends of block_ip.
const (
	FirewallAuto     = "auto"
	FirewallNftables = "nftables"
	FirewallIptables = "iptables"
)

// BlockOptions configure block_ip.
type BlockOptions struct {
	// Backend is FirewallNftables, FirewallIptables or FirewallAuto (or
	// ""): nftables when nft is on Path, else iptables.
	Backend string
	// Runner runs nft or iptables.
	Runner Runner
	// NeverBlock lists addresses and prefixes (the admin network, the
	// monitoring hosts) that block_ip refuses, with anything overlapping
	// them. Loopback and the unspecified addresses are always refused.
	NeverBlock []string
	// HostAddrs returns this host's addresses, asked on every run (they
	// change); nil means the addresses of every interface
	// (net.InterfaceAddrs). A prefix holding one is refused.
	HostAddrs func() ([]netip.Addr, error)
	// Peers returns the addresses the healer's own API and webhook
	// clients came from recently (Peers.List); a prefix holding one is
	// refused. Nil means none are known.
	Peers func() []netip.Addr
	// AuthLogs are the auth logs from: auth_log reads, the first that
	// exists; nil means collector.DefaultAuthLogs.
	AuthLogs []string
	// ProcRoot is where /proc is mounted, for from: sockets; "" means
	// /proc.
	ProcRoot string
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// BlockIP is block_ip: drop incoming packets from an address or prefix for
// a while. With nftables the address goes into a set with a timeout
// (table inet deus, sets blocked4 and blocked6, a drop rule in chain
// input), and the kernel expires it. With iptables a DROP rule is inserted
// at the top of INPUT with the comment deus:<run id>@<expiry>, and
// ExpireBlocks deletes the rules whose time has passed: the healer calls it
// periodically. Blocking an address already in the nftables set sets its
// timeout again on kernels that support it (older ones keep the first).
// Rolling back one run unblocks the address even if a later run blocked it
// too.
type BlockIP struct {
	backend    string // as configured: auto, nftables or iptables
	detect     sync.Once
	fw         string // what firewall() found
	runner     Runner
	neverBlock []netip.Prefix
	hostAddrs  func() ([]netip.Addr, error)
	peers      func() []netip.Addr
	authLogs   []string
	procRoot   string
	now        func() time.Time
	logger     *slog.Logger
}

// Where block_ip's from: finds the address to block.
const (
	FromAuthLog = "auth_log"
	FromSockets = "sockets"
)

// Offender search bounds: from: auth_log reads failures logged in the last
// offenderWindow, in at most the last authTailBytes of the log.
const (
	offenderWindow   = 15 * time.Minute
	authTailBytes    = 4 << 20
	defaultMinCount  = 10
	maxBlockTTLHours = 7 * 24
)

// alwaysProtected are never blocked: blocking them cuts the host off from
// itself.
var alwaysProtected = []string{"127.0.0.0/8", "::1/128", "0.0.0.0/8", "::/128"}

// NewBlockIP returns block_ip.
func NewBlockIP(o BlockOptions) (*BlockIP, error) {
	b := &BlockIP{
		backend: o.Backend, runner: o.Runner, hostAddrs: o.HostAddrs, peers: o.Peers,
		authLogs: o.AuthLogs, procRoot: cmp.Or(o.ProcRoot, "/proc"), now: o.Now, logger: o.Logger,
	}
	if b.hostAddrs == nil {
		b.hostAddrs = interfaceAddrs
	}
	if b.peers == nil {
		b.peers = func() []netip.Addr { return nil }
	}
	if b.authLogs == nil {
		b.authLogs = collector.DefaultAuthLogs
	}
	if b.runner == nil {
		return nil, errors.New("block_ip: no runner")
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	switch b.backend {
	case FirewallNftables, FirewallIptables:
	case "":
		b.backend = FirewallAuto
	case FirewallAuto:
	default:
		return nil, fmt.Errorf("block_ip: unknown firewall %q (want auto, nftables or iptables)", b.backend)
	}
	var errs []error
	for _, s := range append(alwaysProtected, o.NeverBlock...) {
		p, err := parsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("block_ip: never-block %q: %w", s, err))
			continue
		}
		b.neverBlock = append(b.neverBlock, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return b, nil
}

// firewall is the backend block_ip uses. With auto it looks on PATH the
// first time it is asked (not when the action is built, so that checking a
// configuration looks nothing up): nftables unless only iptables is there.
func (b *BlockIP) firewall() string {
	b.detect.Do(func() {
		b.fw = b.backend
		if b.backend != FirewallAuto {
			return
		}
		b.fw = FirewallNftables
		if _, err := lookPath("nft"); err != nil {
			if _, err := lookPath("iptables"); err == nil {
				b.fw = FirewallIptables
			}
		}
	})
	return b.fw
}

// parsePrefix parses an address or a prefix, unmapping IPv4-in-IPv6.
func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or a prefix", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// Spec implements Action.
func (b *BlockIP) Spec() Spec {
	return Spec{
		Name:       "block_ip",
		Doc:        "Drop incoming packets from an address or prefix for ttl (nftables or iptables, firewall: " + b.backend + "). The address is given, or found when the run starts (from: auth_log, the remote with the most recent failures of service; from: sockets, the remote holding the most inbound connections). Refuses loopback, the unspecified address, prefixes broader than /8 (IPv4) or /32 (IPv6), the never-block list, this host's addresses and the addresses the healer's API and webhook were used from.",
		Tier:       TierHigh,
		Timeout:    30 * time.Second,
		Reversible: true,
		Params: []Param{
			{Name: "address", Type: TypeIP, Pattern: "cidr", Doc: "Address or prefix to block; or set from instead."},
			{Name: "from", Type: TypeEnum, Enum: []string{FromAuthLog, FromSockets}, Doc: "Find the address when the run starts: auth_log (failures of service in the last 15m) or sockets (inbound TCP connections now)."},
			{Name: "service", Type: TypeEnum, Enum: collector.AuthServices[:], Doc: "With from: auth_log, whose failures count (the AuthBruteForce alert's service label)."},
			{Name: "min_count", Type: TypeInt, Min: Bound(1), Max: Bound(1e9), Doc: "With from, the fewest failures or connections the remote found must have; default 10."},
			{Name: "ttl", Type: TypeDuration, Required: true, Min: Bound(1), Max: Bound(maxBlockTTLHours * 3600), Doc: "How long the block lasts, at most 7d; required, so every block ends."},
		},
	}
}

// blockUndo is block_ip's Undo.
type blockUndo struct {
	Backend string    `json:"backend"`
	Address string    `json:"address"`
	Comment string    `json:"comment,omitempty"`
	Expires time.Time `json:"expires"`
}

// interfaceAddrs returns the addresses of this host's interfaces.
func interfaceAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}

// Check implements Checker: the parameters name an address, or where to
// find one, but not both, and a given address may be blocked now.
func (b *BlockIP) Check(params map[string]string) error {
	addr, from := params["address"], params["from"]
	switch {
	case addr != "" && from != "":
		return refusef("block_ip: give address or from, not both")
	case addr == "" && from == "":
		return refusef("block_ip: give address, or from: auth_log or sockets")
	case from == FromAuthLog && params["service"] == "":
		return refusef("block_ip: from: auth_log needs service, whose failures count")
	case from != FromAuthLog && params["service"] != "":
		return refusef("block_ip: service is for from: auth_log")
	case from == "" && params["min_count"] != "":
		return refusef("block_ip: min_count is for from")
	}
	if addr != "" {
		_, err := b.check(addr)
		return err
	}
	return nil
}

// check refuses what may not be blocked.
func (b *BlockIP) check(addr string) (netip.Prefix, error) {
	p, err := parsePrefix(addr)
	if err != nil {
		return p, refusef("block_ip: %v", err)
	}
	switch {
	case strings.HasPrefix(addr, "-"):
		return p, refusef("block_ip: %q looks like an option", addr)
	case p.Addr().Is4In6():
		return p, refusef("block_ip: %s is an IPv4-mapped prefix; give the IPv4 prefix", p)
	case p.Addr().Is4() && p.Bits() < 8, p.Addr().Is6() && p.Bits() < 32:
		return p, refusef("block_ip: %s is broader than /8 (IPv4) or /32 (IPv6)", p)
	}
	for _, q := range b.neverBlock {
		if p.Overlaps(q) {
			return p, refusef("block_ip: %s overlaps %s, which is never blocked", p, q)
		}
	}
	host, err := b.hostAddrs()
	if err != nil {
		return p, refusef("block_ip: cannot read this host's addresses, so cannot tell %s is not one: %v", p, err)
	}
	for _, a := range host {
		if p.Contains(a.Unmap()) {
			return p, refusef("block_ip: %s holds %s, an address of this host", p, a)
		}
	}
	for _, a := range b.peers() {
		if p.Contains(a.Unmap()) {
			return p, refusef("block_ip: %s holds %s, which the healer's API or webhook was used from recently", p, a)
		}
	}
	return p, nil
}

// offender finds the address from names: the remote with the most
// failures of service in the auth log's last offenderWindow, or holding
// the most inbound TCP connections now, with at least min of them. Ties go
// to the lower address, so the same table gives the same answer.
func (b *BlockIP) offender(from, service string, min int) (netip.Addr, int, error) {
	counts := map[netip.Addr]int{}
	what := ""
	switch from {
	case FromAuthLog:
		what = service + " authentication failures in the last " + offenderWindow.String()
		if err := b.authOffenders(service, counts); err != nil {
			return netip.Addr{}, 0, retryable(fmt.Errorf("block_ip: from auth_log: %w", err))
		}
	case FromSockets:
		what = "inbound TCP connections"
		if err := b.socketOffenders(counts); err != nil {
			return netip.Addr{}, 0, retryable(fmt.Errorf("block_ip: from sockets: %w", err))
		}
	}
	var top netip.Addr
	n := 0
	for a, c := range counts {
		if c > n || c == n && a.Less(top) {
			top, n = a, c
		}
	}
	if n < min {
		return netip.Addr{}, n, refusef("block_ip: no remote has %d or more %s (the most is %d)", min, what, n)
	}
	return top, n, nil
}

// authOffenders counts the failures of service in the first auth log that
// exists, reading at most its last authTailBytes.
func (b *BlockIP) authOffenders(service string, counts map[netip.Addr]int) error {
	for _, path := range b.authLogs {
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		defer f.Close()
		var r io.Reader = f
		if st, err := f.Stat(); err == nil && st.Size() > authTailBytes {
			r = io.NewSectionReader(f, st.Size()-authTailBytes, authTailBytes)
		}
		now := b.now()
		got, err := collector.AuthOffenders(r, service, now.Add(-offenderWindow), now)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		for a, n := range got {
			counts[a] += n
		}
		return nil
	}
	return fmt.Errorf("none of %s exists", strings.Join(b.authLogs, ", "))
}

// socketOffenders counts the inbound TCP connections of /proc/net/tcp and
// tcp6.
func (b *BlockIP) socketOffenders(counts map[netip.Addr]int) error {
	read := 0
	for _, name := range []string{"tcp", "tcp6"} {
		path := filepath.Join(b.procRoot, "net", name)
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		err = collector.InboundConnections(f, counts)
		f.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		read++
	}
	if read == 0 {
		return fmt.Errorf("no socket table under %s", filepath.Join(b.procRoot, "net"))
	}
	return nil
}

// Run implements Action.
func (b *BlockIP) Run(ctx context.Context, req Request) (Result, error) {
	params, err := validate(b.Spec(), req)
	if err != nil {
		return Result{}, err
	}
	if err := b.Check(params); err != nil {
		return Result{}, err
	}
	addr, found := params["address"], ""
	if from := params["from"]; from != "" {
		min := defaultMinCount
		if v := params["min_count"]; v != "" {
			min, _ = strconv.Atoi(v) // validated
		}
		a, n, err := b.offender(from, params["service"], min)
		if err != nil {
			return Result{Target: from}, err
		}
		addr = a.String()
		found = fmt.Sprintf(" (found in %s: %d)", from, n)
		b.logger.Info("block_offender_found", "from", from, "service", params["service"], "address", addr, "count", n)
	}
	p, err := b.check(addr)
	if err != nil {
		return Result{Target: addr}, err
	}
	ttl, err := ParseDuration(params["ttl"])
	if err != nil {
		return Result{}, refusef("block_ip: ttl: %v", err)
	}
	ttl = ttl.Truncate(time.Second)
	expires := b.now().Add(ttl).UTC().Truncate(time.Second)
	fw := b.firewall()
	u := blockUndo{Backend: fw, Address: addr, Expires: expires}
	var argv []string
	if fw == FirewallNftables {
		argv = []string{"nft", nftBlockScript(p, addr, ttl)}
	} else {
		u.Comment = "deus:" + req.RunID + "@" + expires.Format(time.RFC3339)
		argv = []string{iptablesFor(p), "-w", "-I", "INPUT", "-s", addr, "-j", "DROP", "-m", "comment", "--comment", u.Comment}
	}
	res := Result{Target: addr, Argv: argv}
	if req.DryRun {
		res.Summary = fmt.Sprintf("would block %s%s for %s with %s", addr, found, params["ttl"], fw)
		return res, nil
	}
	out, err := b.runner.Run(ctx, argv, nil)
	res.Output = out.Text
	if err != nil {
		return res, fmt.Errorf("block_ip: %w", err)
	}
	res.Undo, err = json.Marshal(u)
	if err != nil {
		return res, final(fmt.Errorf("block_ip: encode undo: %w", err))
	}
	res.Summary = fmt.Sprintf("blocked %s%s until %s with %s", addr, found, expires.Format(time.RFC3339), fw)
	return res, nil
}

// Rollback implements Reverser: it deletes the set element or the rule.
func (b *BlockIP) Rollback(ctx context.Context, runID string, undo json.RawMessage) (Result, error) {
	var u blockUndo
	if err := json.Unmarshal(undo, &u); err != nil {
		return Result{}, &Error{Err: fmt.Errorf("block_ip: rollback: decode undo: %w", err)}
	}
	p, err := parsePrefix(u.Address)
	if err != nil || strings.HasPrefix(u.Address, "-") {
		return Result{}, refusef("block_ip: rollback: address %q is not an address or a prefix", u.Address)
	}
	res := Result{Target: u.Address}
	var argv []string
	switch u.Backend {
	case FirewallNftables:
		if !b.now().Before(u.Expires) {
			res.Summary = fmt.Sprintf("block of %s expired at %s: nothing to undo", u.Address, u.Expires.Format(time.RFC3339))
			return res, nil
		}
		argv = []string{"nft", fmt.Sprintf("delete element inet deus %s { %s }", nftSet(p), u.Address)}
	case FirewallIptables:
		want := "deus:" + runID + "@" + u.Expires.UTC().Format(time.RFC3339)
		if u.Comment != want {
			return res, refusef("block_ip: rollback: comment %q is not %q", u.Comment, want)
		}
		argv = []string{iptablesFor(p), "-w", "-D", "INPUT", "-s", u.Address, "-j", "DROP", "-m", "comment", "--comment", u.Comment}
	default:
		return res, refusef("block_ip: rollback: unknown backend %q", u.Backend)
	}
	res.Argv = argv
	out, err := b.runner.Run(ctx, argv, nil)
	res.Output = out.Text
	if err != nil {
		return res, fmt.Errorf("block_ip: rollback: %w", err)
	}
	res.Summary = fmt.Sprintf("unblocked %s (%s)", u.Address, u.Backend)
	return res, nil
}

// ExpireBlocks deletes the iptables rules block_ip inserted whose time has
// passed, and returns their comments. With nftables the kernel expires
// blocks itself and ExpireBlocks does nothing. The healer calls it
// periodically (a minute is fine): until then an expired rule stays.
func (b *BlockIP) ExpireBlocks(ctx context.Context) ([]string, error) {
	if b.firewall() != FirewallIptables {
		return nil, nil
	}
	now := b.now()
	var expired []string
	var errs []error
	for _, bin := range []string{"iptables", "ip6tables"} {
		out, err := b.runner.Run(ctx, []string{bin, "-w", "-S", "INPUT"}, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("block_ip: list %s rules: %w", bin, err))
			continue
		}
		for _, line := range strings.Split(out.Text, "\n") {
			spec, comment, ok := expiredRule(line, now)
			if !ok {
				continue
			}
			argv := append([]string{bin, "-w", "-D", "INPUT"}, spec...)
			if _, err := b.runner.Run(ctx, argv, nil); err != nil {
				errs = append(errs, fmt.Errorf("block_ip: delete %s: %w", comment, err))
				continue
			}
			b.logger.Info("block_expired", "comment", comment)
			expired = append(expired, comment)
		}
	}
	return expired, errors.Join(errs...)
}

// expiredRule reads a line of iptables -S INPUT and returns its rule
// specification when it is a block_ip rule whose expiry has passed.
func expiredRule(line string, now time.Time) (spec []string, comment string, ok bool) {
	f, err := splitSaved(line)
	if err != nil || len(f) < 4 || f[0] != "-A" || f[1] != "INPUT" {
		return nil, "", false
	}
	for i := 2; i+1 < len(f); i++ {
		if f[i] != "--comment" || !strings.HasPrefix(f[i+1], "deus:") {
			continue
		}
		at := strings.LastIndexByte(f[i+1], '@')
		if at < 0 {
			return nil, "", false
		}
		exp, err := time.Parse(time.RFC3339, f[i+1][at+1:])
		if err != nil || now.Before(exp) {
			return nil, "", false
		}
		return f[2:], f[i+1], true
	}
	return nil, "", false
}

// splitSaved splits a line of iptables -S into words: iptables puts
// comments in double quotes, with \" and \\ escaped.
func splitSaved(line string) ([]string, error) {
	var words []string
	var w strings.Builder
	in, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line):
			i++
			w.WriteByte(line[i])
		case c == '"':
			quoted = !quoted
			in = true
		case !quoted && (c == ' ' || c == '\t'):
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteByte(c)
			in = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unbalanced quote in %q", line)
	}
	if in {
		words = append(words, w.String())
	}
	return words, nil
}

// nftSet names the set that holds p.
func nftSet(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "blocked4"
	}
	return "blocked6"
}

// nftBlockScript is one nft transaction that makes sure the table, sets,
// chain and rules exist (flushing and re-adding the chain's two rules keeps
// it idempotent) and adds the element.
func nftBlockScript(p netip.Prefix, addr string, ttl time.Duration) string {
	return strings.Join([]string{
		"add table inet deus",
		"add set inet deus blocked4 { type ipv4_addr; flags interval, timeout; }",
		"add set inet deus blocked6 { type ipv6_addr; flags interval, timeout; }",
		"add chain inet deus input { type filter hook input priority -10; policy accept; }",
		"flush chain inet deus input",
		"add rule inet deus input ip saddr @blocked4 drop",
		"add rule inet deus input ip6 saddr @blocked6 drop",
		fmt.Sprintf("add element inet deus %s { %s timeout %ds }", nftSet(p), addr, int64(ttl/time.Second)),
	}, "; ")
}

// iptablesFor returns iptables or ip6tables.
func iptablesFor(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "iptables"
	}
	return "ip6tables"
}
