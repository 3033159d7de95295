package action

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Peers is the set of addresses the healer's own authenticated clients (the
// Alertmanager posting webhooks, the people approving runs) came from
// recently. block_ip refuses them: a block that cuts the healer off from its
// Alertmanager or its operators cannot be undone through the healer. Only
// requests that proved who they are may be added, so that an attacker cannot
// make itself unblockable by talking to the healer. The set lives in memory;
// after a restart it fills again with the first requests.
type Peers struct {
	mu   sync.Mutex
	seen map[netip.Addr]time.Time
	keep time.Duration
	max  int
	now  func() time.Time
}

// NewPeers returns a set that keeps an address for keep after it was last
// seen, and at most max addresses (the least recently seen go first); now
// nil means time.Now.
func NewPeers(keep time.Duration, max int, now func() time.Time) *Peers {
	if now == nil {
		now = time.Now
	}
	return &Peers{seen: map[netip.Addr]time.Time{}, keep: keep, max: max, now: now}
}

// AddRemote adds the address of an http.Request's RemoteAddr (host:port).
// A nil set, or a RemoteAddr that is not an IP address and port, is
// ignored.
func (p *Peers) AddRemote(remoteAddr string) {
	if p == nil {
		return
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return
	}
	p.Add(a.WithZone("").Unmap())
}

// Add adds a.
func (p *Peers) Add(a netip.Addr) {
	if p == nil || !a.IsValid() {
		return
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.seen[a]; !ok && len(p.seen) >= p.max {
		p.expire(now)
		for len(p.seen) >= p.max {
			oldest, at := netip.Addr{}, now
			for b, t := range p.seen {
				if !t.After(at) {
					oldest, at = b, t
				}
			}
			delete(p.seen, oldest)
		}
	}
	p.seen[a] = now
}

// expire drops the addresses not seen within keep.
func (p *Peers) expire(now time.Time) {
	for a, t := range p.seen {
		if now.Sub(t) > p.keep {
			delete(p.seen, a)
		}
	}
}

// List returns the addresses seen within keep, sorted. A nil set has none.
func (p *Peers) List() []netip.Addr {
	if p == nil {
		return nil
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(now)
	out := make([]netip.Addr, 0, len(p.seen))
	for a := range p.seen {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
