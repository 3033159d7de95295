package collector

import (
	"io"
	"net/netip"
	"strings"
	"time"
)

// The exporter's security families count (deus_auth_failures_total by
// service, deus_tcp_inbound_remote_max_connections) and never name a remote
// address: an address label is unbounded, and the attacker chooses it. The
// address an alert is about is read where the counts came from, when the
// healer acts: AuthOffenders reads the auth log's lines, InboundConnections
// the socket table.

// AuthOffenders counts, by remote address, the authentication failures of
// service (one of AuthServices) in an auth log's lines logged at or after
// since, as the exporter counts them (a line rsyslog reduced to "message
// repeated N times" counts N). now dates RFC 3164 lines, which carry no
// year or zone: they are read in now's location, in the year that puts them
// at most a day after now. A failure whose line names no address (sudo, a
// local login) is not counted.
//
// The address is sshd's last " from ADDR port N" (the user name before it
// is the client's to choose, and may itself say "from") or PAM's first
// rhost= field, and it must parse as an IP address.
func AuthOffenders(r io.Reader, service string, since, now time.Time) (map[netip.Addr]int, error) {
	out := map[netip.Addr]int{}
	sc, done := newScanner(r)
	defer done()
	for sc.Scan() {
		line := sc.Text()
		t, ok := syslogTime(line, now)
		if !ok || t.Before(since) {
			continue
		}
		svc, n := authFailures(line)
		if svc != service || n == 0 {
			continue
		}
		if a, ok := authRemote(line); ok {
			out[a] += n
		}
	}
	return out, sc.Err()
}

// authRemote is the remote address of an auth log failure line.
func authRemote(line string) (netip.Addr, bool) {
	if i := strings.LastIndex(line, " from "); i >= 0 {
		f := strings.Fields(line[i+len(" from "):])
		if len(f) >= 3 && f[1] == "port" {
			if a, err := netip.ParseAddr(f[0]); err == nil && a.Zone() == "" {
				return a.Unmap(), true
			}
		}
	}
	if i := strings.Index(line, ":auth): authentication failure;"); i >= 0 {
		for _, kv := range strings.Fields(line[i:]) {
			if v, ok := strings.CutPrefix(kv, "rhost="); ok {
				a, err := netip.ParseAddr(strings.TrimSuffix(v, "]"))
				if err != nil || a.Zone() != "" {
					return netip.Addr{}, false
				}
				return a.Unmap(), true
			}
		}
	}
	return netip.Addr{}, false
}

// syslogTime is the time of a syslog line (see cutSyslogTime for the
// formats).
func syslogTime(line string, now time.Time) (time.Time, bool) {
	if len(line) > 0 && line[0] >= 'A' && line[0] <= 'Z' {
		n := len(time.Stamp)
		if len(line) <= n {
			return time.Time{}, false
		}
		t, err := time.ParseInLocation(time.Stamp, line[:n], now.Location())
		if err != nil {
			return time.Time{}, false
		}
		t = t.AddDate(now.Year()-t.Year(), 0, 0)
		if t.After(now.Add(24 * time.Hour)) {
			t = t.AddDate(-1, 0, 0)
		}
		return t, true
	}
	ts, _, ok := strings.Cut(line, " ")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	return t, err == nil
}

// InboundConnections adds, to perRemote, the inbound TCP connections
// (established, to a port this host listens on: a half-open one's source
// may be forged, and names nobody to block) of one
// socket table (/proc/net/tcp or tcp6) by non-loopback remote address, for
// block_ip.
func InboundConnections(r io.Reader, perRemote map[netip.Addr]int) error {
	socks, err := parseNetSockets(r)
	if err != nil {
		return err
	}
	countInbound(socks, perRemote, true)
	return nil
}

// countInbound adds the inbound connections of one TCP socket table to
// perRemote: established ones only with established (a half-open
// connection's source address may be forged, so it names nobody to
// block), half-open ones too otherwise (a SYN flood is a flood).
func countInbound(socks []netSocket, perRemote map[netip.Addr]int, established bool) {
	listenPorts := map[uint16]bool{}
	for _, s := range socks {
		if s.state == tcpListen {
			listenPorts[s.local.Port()] = true
		}
	}
	for _, s := range socks {
		if (s.state == tcpEstablished || !established && (s.state == tcpSynRecv || s.state == tcpNewSynRecv)) &&
			!s.remote.Addr().IsLoopback() && listenPorts[s.local.Port()] {
			perRemote[s.remote.Addr()]++
		}
	}
}
