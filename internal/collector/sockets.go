package collector

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// tcpStates are the kernel's TCP states (include/net/tcp_states.h), by number.
var tcpStates = [...]string{
	1: "established", 2: "syn_sent", 3: "syn_recv", 4: "fin_wait1", 5: "fin_wait2",
	6: "time_wait", 7: "close", 8: "close_wait", 9: "last_ack", 10: "listen",
	11: "closing", 12: "new_syn_recv",
}

const (
	tcpEstablished = 1
	tcpSynRecv     = 3
	tcpClose       = 7
	tcpListen      = 10
	tcpNewSynRecv  = 12
)

// netSocket is one line of /proc/net/{tcp,tcp6,udp,udp6}.
type netSocket struct {
	local, remote netip.AddrPort
	state         int
	inode         uint64
}

// parseNetSockets parses /proc/net/tcp and its siblings.
func parseNetSockets(r io.Reader) ([]netSocket, error) {
	var out []netSocket
	sc, done := newScanner(r)
	defer done()
	for n := 0; sc.Scan(); n++ {
		if n == 0 {
			continue // header
		}
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 10 {
			return nil, fmt.Errorf("socket line %q: %d fields, want at least 10", sc.Text(), len(fields))
		}
		// The slot number and its colon come first: without them every
		// column is one off.
		if sl, ok := strings.CutSuffix(fields[0], ":"); !ok || !isDecimal(sl) {
			return nil, fmt.Errorf("socket line %q: no slot number", sc.Text())
		}
		local, err := parseHexAddrPort(fields[1])
		if err != nil {
			return nil, fmt.Errorf("local address %q: %w", fields[1], err)
		}
		remote, err := parseHexAddrPort(fields[2])
		if err != nil {
			return nil, fmt.Errorf("remote address %q: %w", fields[2], err)
		}
		state, err := strconv.ParseUint(fields[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("state %q: %w", fields[3], err)
		}
		inode, err := strconv.ParseUint(fields[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("inode %q: %w", fields[9], err)
		}
		out = append(out, netSocket{local: local, remote: remote, state: int(state), inode: inode})
	}
	return out, sc.Err()
}

// parseHexAddrPort parses "0100007F:0CEA": the address as the kernel's
// 32-bit words in host byte order (little-endian here), the port big-endian.
func parseHexAddrPort(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, errors.New("no port")
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port: %w", err)
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, errors.New("address: want 8 or 32 hex digits")
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

// Sockets writes socket counts by protocol and state, the listening sockets
// with the command name of the process that holds them, and how concentrated
// inbound TCP connections are per remote address.
//
// Cardinality: states are a fixed set; listening sockets are capped at
// MaxListening series (the rest counted in deus_socket_listening_dropped);
// remote addresses never appear as labels, only the number of distinct
// remotes and the largest count held by one.
type Sockets struct {
	Paths        Paths
	MaxListening int

	owners map[uint64]string // socket inode -> command name, for listening sockets
}

type listenKey struct {
	proto   string
	port    uint16
	process string
}

// Update implements Collector.
func (c *Sockets) Update(_ context.Context, w *Writer) error {
	type protoFile struct {
		proto string
		tcp   bool
	}
	counts := map[string][]float64{}
	listeners := map[uint64]listenKey{}
	// Inbound connections (accepted on a listening port of this host) per
	// remote address.
	perRemote := map[netip.Addr]int{}
	var errs []error
	for _, pf := range [...]protoFile{{"tcp", true}, {"tcp6", true}, {"udp", false}, {"udp6", false}} {
		socks, err := c.read(pf.proto)
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6, say
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		states := make([]float64, len(tcpStates))
		for _, s := range socks {
			if s.state > 0 && s.state < len(tcpStates) {
				states[s.state]++
			}
			// An unconnected UDP socket (state close) receives from anyone.
			listening := pf.tcp && s.state == tcpListen || !pf.tcp && s.state == tcpClose
			if listening && s.inode != 0 {
				listeners[s.inode] = listenKey{proto: pf.proto, port: s.local.Port()}
			}
		}
		if pf.tcp {
			countInbound(socks, perRemote, false)
		}
		counts[pf.proto] = states
	}

	w.Family("deus_sockets", Gauge, "Number of sockets by protocol and state (UDP sockets report close for unconnected and established for connected).")
	for _, proto := range [...]string{"tcp", "tcp6", "udp", "udp6"} {
		states, ok := counts[proto]
		if !ok {
			continue
		}
		for i, name := range tcpStates {
			if name == "" || (!strings.HasPrefix(proto, "tcp") && i != tcpEstablished && i != tcpClose) {
				continue
			}
			w.Sample("deus_sockets", states[i], "proto", proto, "state", name)
		}
	}

	c.resolveOwners(listeners)
	byKey := map[listenKey]float64{}
	for inode, k := range listeners {
		k.process = c.owners[inode]
		if k.process == "" {
			k.process = "unknown"
		}
		byKey[k]++
	}
	keys := make([]listenKey, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b listenKey) int {
		return cmp.Or(cmp.Compare(a.proto, b.proto), cmp.Compare(a.port, b.port), cmp.Compare(a.process, b.process))
	})
	dropped := 0
	if c.MaxListening >= 0 && len(keys) > c.MaxListening {
		dropped = len(keys) - c.MaxListening
		keys = keys[:c.MaxListening]
	}
	w.Family("deus_socket_listening", Gauge, "Number of listening sockets by protocol, port and the command name of the process holding them.")
	for _, k := range keys {
		w.Sample("deus_socket_listening", byKey[k], "port", strconv.Itoa(int(k.port)), "process", k.process, "proto", k.proto)
	}
	w.Single("deus_socket_listening_dropped", Gauge, "Listening socket series left out because of the configured maximum.", float64(dropped))

	maxConns := 0
	for _, n := range perRemote {
		maxConns = max(maxConns, n)
	}
	w.Single("deus_tcp_inbound_remote_addresses", Gauge, "Number of distinct non-loopback remote addresses holding inbound TCP connections (established or being set up).", float64(len(perRemote)))
	w.Single("deus_tcp_inbound_remote_max_connections", Gauge, "The most inbound TCP connections (established or being set up) held by any one non-loopback remote address.", float64(maxConns))
	return errors.Join(errs...)
}

func (c *Sockets) read(proto string) ([]netSocket, error) {
	f, err := os.Open(c.Paths.proc("net", proto))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	socks, err := parseNetSockets(f)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", f.Name(), err)
	}
	return socks, nil
}

// resolveOwners finds the command name holding each listening socket inode.
// Walking every process's file descriptors is the costly part of this
// collector, so it happens only when a listening inode is not yet known.
func (c *Sockets) resolveOwners(listeners map[uint64]listenKey) {
	if c.owners == nil {
		c.owners = map[uint64]string{}
	}
	missing := false
	for inode := range listeners {
		if _, ok := c.owners[inode]; !ok {
			missing = true
		}
	}
	for inode := range c.owners {
		if _, ok := listeners[inode]; !ok {
			delete(c.owners, inode)
		}
	}
	if !missing {
		return
	}
	for inode := range listeners {
		c.owners[inode] = "" // known to be unknown until found below
	}
	pids, err := os.ReadDir(c.Paths.Proc)
	if err != nil {
		return
	}
	var buf []byte
	for _, p := range pids {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		fds, err := os.ReadDir(c.Paths.proc(p.Name(), "fd"))
		if err != nil {
			continue
		}
		var comm string
		for _, fd := range fds {
			link, err := os.Readlink(c.Paths.proc(p.Name(), "fd", fd.Name()))
			if err != nil {
				continue
			}
			rest, ok := strings.CutPrefix(link, "socket:[")
			if !ok {
				continue
			}
			inode, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
			if err != nil {
				continue
			}
			if _, want := listeners[inode]; !want || c.owners[inode] != "" {
				continue
			}
			if comm == "" {
				buf, err = readInto(buf, c.Paths.proc(p.Name(), "comm"))
				if err != nil {
					break
				}
				comm = strings.TrimSpace(string(buf))
			}
			c.owners[inode] = comm
		}
	}
}
