// Package mask replaces what should not leave the host in text sent to a
// model: IP addresses (IPv4 and IPv6), configured identity fields (host and
// user names, by label or annotation key) and secrets. Addresses and
// identities become stable placeholders (<ip-1>, <host-1>, <user-1>): the
// same value gives the same placeholder within one Masker, and Unmask puts
// the value back for display. Secrets become <redacted> and are never put
// back: a Masker keeps no copy of them.
//
// Secrets are found by the audit log's rules (audit.DefaultRedactor: keys
// named like a password, token, key or secret; key=value pairs and
// credentials in text), and by the shape of a value: well-known token
// prefixes, JWTs and long random-looking strings. Masking errs on the side
// of hiding: a version number that reads as an IPv4 address is masked too.
//
// A Masker is meant for one request; it is not safe for concurrent use.
package mask

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/deus-ex-machina/deus/internal/audit"
)

// Redacted replaces a secret. It is never unmasked.
const Redacted = "<redacted>"

// DefaultFields are the identity fields masked when Options.Fields is nil:
// label or annotation keys, and the kind of placeholder their values get.
var DefaultFields = map[string]string{
	"instance": "host", "host": "host", "hostname": "host", "nodename": "host", "node": "host", "fqdn": "host",
	"user": "user", "username": "user", "owner": "user", "login": "user",
}

// Options configures a Masker.
type Options struct {
	// Fields maps a label or annotation key to the kind of placeholder its
	// value gets ("host" gives <host-1>). Nil means DefaultFields; an empty
	// map masks no field.
	Fields map[string]string
	// KeepIPs leaves IP addresses as they are; by default they are masked.
	KeepIPs bool
}

// Masker masks values and text, remembering the placeholders it gave.
type Masker struct {
	fields  map[string]string
	keepIPs bool
	forward map[string]string // value -> placeholder
	back    map[string]string // placeholder -> value
	counts  map[string]int    // kind -> placeholders given
	known   []string          // identity values, longest first
}

// New returns a Masker with no placeholders given yet.
func New(o Options) *Masker {
	fields := o.Fields
	if fields == nil {
		fields = DefaultFields
	}
	return &Masker{
		fields: fields, keepIPs: o.KeepIPs,
		forward: map[string]string{}, back: map[string]string{}, counts: map[string]int{},
	}
}

// Learn records the identity values among fields (a label or annotation
// map), so that Text replaces them wherever they appear. Call it with every
// map before masking any text, or a host name may leave in an annotation
// masked before its label was seen.
func (m *Masker) Learn(fields map[string]string) {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if kind, ok := m.fields[strings.ToLower(k)]; ok && fields[k] != "" && !isSecret(k, fields[k]) {
			m.identity(kind, fields[k])
		}
	}
}

// Field masks the value of the label or annotation key.
func (m *Masker) Field(key, value string) string {
	if isSecret(key, value) {
		return Redacted
	}
	if kind, ok := m.fields[strings.ToLower(key)]; ok && value != "" {
		return m.identity(kind, value)
	}
	return m.Text(value)
}

// Map returns fields with every value masked by Field.
func (m *Masker) Map(fields map[string]string) map[string]string {
	if fields == nil {
		return nil
	}
	out := make(map[string]string, len(fields))
	for k, v := range fields {
		out[k] = m.Field(k, v)
	}
	return out
}

// Text masks free text: secrets, the identity values learnt so far, and IP
// addresses.
func (m *Masker) Text(s string) string {
	s = redactText(s)
	for _, v := range m.known {
		s = replaceWord(s, v, m.forward[v])
	}
	if !m.keepIPs {
		s = m.maskIPs(s)
	}
	return s
}

// Unmask puts back the values of the placeholders this Masker gave in s.
// A <redacted> secret stays redacted.
func (m *Masker) Unmask(s string) string {
	if !strings.Contains(s, "<") {
		return s
	}
	return placeholderRE.ReplaceAllStringFunc(s, func(p string) string {
		if v, ok := m.back[p]; ok {
			return v
		}
		return p
	})
}

// identity returns the placeholder of an identity value of kind. A port
// after a host ("web-1:9100") is kept, so that the host alone is what Text
// finds elsewhere; a host that is an IP address gets an IP placeholder.
func (m *Masker) identity(kind, value string) string {
	host, port, err := net.SplitHostPort(value)
	if err != nil || host == "" || strings.Trim(port, "0123456789") != "" {
		host, port = value, ""
	}
	p := ""
	if a, err := netip.ParseAddr(host); err == nil && !m.keepIPs {
		p = m.placeholder("ip", a.String())
	} else {
		p = m.placeholder(kind, host)
	}
	if port != "" {
		return p + ":" + port
	}
	return p
}

// placeholder returns the placeholder of value, giving it the next of kind
// if it has none.
func (m *Masker) placeholder(kind, value string) string {
	if p, ok := m.forward[value]; ok {
		return p
	}
	m.counts[kind]++
	p := fmt.Sprintf("<%s-%d>", kind, m.counts[kind])
	m.forward[value], m.back[p] = p, value
	if kind != "ip" {
		m.known = append(m.known, value)
		slices.SortStableFunc(m.known, func(a, b string) int { return len(b) - len(a) })
	}
	return p
}

// redactText masks the secrets the audit log's rules find in text, with
// this package's marker.
func redactText(s string) string {
	s = audit.DefaultRedactor("", s)
	s = strings.ReplaceAll(s, audit.Redacted, Redacted)
	return tokenRE.ReplaceAllStringFunc(s, func(t string) string {
		if looksLikeToken(t) {
			return Redacted
		}
		return t
	})
}

// replaceWord replaces every occurrence of v in s that is a word of its
// own: not inside a longer name of letters, digits, "_" or "-".
func replaceWord(s, v, p string) string {
	if v == "" {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, v)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(v)
		if (i > 0 && nameByte(s[i-1])) || (end < len(s) && nameByte(s[end])) {
			b.WriteString(s[:i+1])
			s = s[i+1:]
			continue
		}
		b.WriteString(s[:i])
		b.WriteString(p)
		s = s[end:]
	}
}

func nameByte(c byte) bool {
	return c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
