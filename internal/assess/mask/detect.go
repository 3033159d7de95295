package mask

import (
	"net/netip"
	"regexp"
	"strings"

	"github.com/deus-ex-machina/deus/internal/audit"
)

var (
	// placeholderRE finds the placeholders a Masker gives.
	placeholderRE = regexp.MustCompile(`<[a-z]+-[0-9]+>`)
	// ipCandidateRE finds what may be an IP address, with a port: runs of
	// hex digits, dots and colons. netip decides.
	ipCandidateRE = regexp.MustCompile(`[0-9A-Fa-f:.]*[0-9A-Fa-f][0-9A-Fa-f:.]*`)
	// tokenRE finds words that may be tokens: long runs of the characters
	// of API keys, base64 and JWTs.
	tokenRE = regexp.MustCompile(`[A-Za-z0-9_\-+=.]{20,}`)
	// tokenPrefixRE finds the prefixes of well-known credentials: OpenAI
	// and Anthropic keys, GitHub, GitLab and Slack tokens, AWS access keys,
	// Google API keys and JWTs.
	tokenPrefixRE = regexp.MustCompile(`^(sk-|ghp_|gho_|ghu_|ghs_|ghr_|github_pat_|glpat-|xox[abposr]-|AKIA[0-9A-Z]{12}|AIza|eyJ[A-Za-z0-9_-]+\.eyJ)`)
)

// isSecret reports whether the value of key is a secret: by the key's name
// (the audit log's rule) or by the value's shape.
func isSecret(key, value string) bool {
	if value == "" {
		return false
	}
	if audit.DefaultRedactor(key, value) == audit.Redacted {
		return true
	}
	return !strings.ContainsAny(value, " \t\n") && looksLikeToken(value)
}

// looksLikeToken reports whether a word has a credential's shape: a
// well-known prefix, or 32 characters or more mixing upper case, lower case
// and digits with no dot (a host name or a version has dots).
func looksLikeToken(w string) bool {
	if tokenPrefixRE.MatchString(w) && len(w) >= 20 {
		return true
	}
	if len(w) < 32 || strings.Contains(w, ".") {
		return false
	}
	var upper, lower, digit bool
	for _, r := range w {
		switch {
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= '0' && r <= '9':
			digit = true
		}
	}
	return upper && lower && digit
}

// maskIPs replaces every IP address in s, keeping a port after it.
func (m *Masker) maskIPs(s string) string {
	return ipCandidateRE.ReplaceAllStringFunc(s, func(c string) string {
		core := strings.TrimRight(c, ".:")
		tail := c[len(core):]
		if a, err := netip.ParseAddr(core); err == nil && ipWorthMasking(a, core) {
			return m.placeholder("ip", a.String()) + tail
		}
		if ap, err := netip.ParseAddrPort(core); err == nil && ipWorthMasking(ap.Addr(), core) {
			return m.placeholder("ip", ap.Addr().String()) + core[strings.LastIndexByte(core, ':'):] + tail
		}
		return c
	})
}

// ipWorthMasking leaves out what is no host's address: "::" and other
// unspecified or loopback addresses, which say nothing about the host.
func ipWorthMasking(a netip.Addr, text string) bool {
	return !a.IsUnspecified() && !a.IsLoopback() && len(text) > 2
}
