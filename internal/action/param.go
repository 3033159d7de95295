package action

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
)

// ParamType is the kind of value a parameter takes.
type ParamType string

// The parameter types. Every value is a string on the way in (labels,
// annotations and command lines are strings); Check turns it into its
// canonical form or refuses it.
const (
	// TypeString is any text without control characters (NUL, newline,
	// ...), at most MaxParamBytes, matching Pattern when one is set.
	TypeString ParamType = "string"
	// TypeEnum is one of Enum.
	TypeEnum ParamType = "enum"
	// TypeInt is a base-10 integer within [Min, Max].
	TypeInt ParamType = "int"
	// TypeNumber is a decimal number within [Min, Max].
	TypeNumber ParamType = "number"
	// TypeDuration is a Prometheus-style duration (90s, 5m, 1h30m, 7d).
	TypeDuration ParamType = "duration"
	// TypePath is an absolute path that, cleaned and with its symbolic
	// links resolved as far as they exist, lies under one of Roots.
	TypePath ParamType = "path"
	// TypeIP is an IPv4 or IPv6 address (no zone), or a CIDR prefix when
	// Pattern is "cidr".
	TypeIP ParamType = "ip"
	// TypeUnit is a systemd unit name (nginx.service, getty@tty1.service).
	TypeUnit ParamType = "unit"
	// TypeURL is an http or https URL.
	TypeURL ParamType = "url"
)

// MaxParamBytes bounds every parameter value.
const MaxParamBytes = 4096

// Param is one parameter of an action's schema.
type Param struct {
	Name     string    `json:"name"`
	Type     ParamType `json:"type"`
	Doc      string    `json:"doc,omitempty"`
	Required bool      `json:"required,omitempty"`
	Default  string    `json:"default,omitempty"`
	// Enum lists the values of a TypeEnum.
	Enum []string `json:"enum,omitempty"`
	// Pattern, for TypeString, is a regular expression the whole value
	// must match.
	Pattern string `json:"pattern,omitempty"`
	// Min and Max bound a TypeInt or TypeNumber (both inclusive), when set.
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// Roots are the folders a TypePath must lie under. A path parameter
	// without roots accepts nothing.
	Roots []string `json:"roots,omitempty"`
}

// Bound returns a pointer to v, for Param.Min and Param.Max.
func Bound(v float64) *float64 { return &v }

var unitRE = regexp.MustCompile(`^[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]*)?\.(service|socket|timer|target|mount|path|slice|scope)$`)

// Check validates v and returns it in canonical form.
func (p Param) Check(v string) (string, error) {
	if len(v) > MaxParamBytes {
		return "", fmt.Errorf("longer than %d bytes", MaxParamBytes)
	}
	if !utf8.ValidString(v) {
		return "", errors.New("not valid UTF-8")
	}
	if i := strings.IndexFunc(v, isControl); i >= 0 {
		return "", fmt.Errorf("control character %q at byte %d", v[i:i+1], i)
	}
	switch p.Type {
	case TypeString, "":
		if p.Pattern != "" {
			re, err := regexp.Compile(`^(?:` + p.Pattern + `)$`)
			if err != nil {
				return "", fmt.Errorf("bad pattern in schema: %w", err)
			}
			if !re.MatchString(v) {
				return "", fmt.Errorf("%q does not match %s", v, p.Pattern)
			}
		}
		return v, nil
	case TypeEnum:
		for _, e := range p.Enum {
			if v == e {
				return v, nil
			}
		}
		return "", fmt.Errorf("%q is not one of %s", v, strings.Join(p.Enum, ", "))
	case TypeInt:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%q is not an integer", v)
		}
		if err := p.inRange(float64(n)); err != nil {
			return "", err
		}
		return strconv.FormatInt(n, 10), nil
	case TypeNumber:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f != f {
			return "", fmt.Errorf("%q is not a number", v)
		}
		if err := p.inRange(f); err != nil {
			return "", err
		}
		return strconv.FormatFloat(f, 'g', -1, 64), nil
	case TypeDuration:
		d, err := ParseDuration(v)
		if err != nil {
			return "", err
		}
		if err := p.inRange(d.Seconds()); err != nil {
			return "", err
		}
		// Prometheus' form, so that Check accepts its own output
		// (time.Duration writes 1.5s, which ParseDuration refuses).
		return model.Duration(d).String(), nil
	case TypePath:
		return CheckPath(v, p.Roots)
	case TypeIP:
		if p.Pattern == "cidr" {
			if pfx, err := netip.ParsePrefix(v); err == nil {
				return pfx.Masked().String(), nil
			}
		}
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return "", fmt.Errorf("%q is not an IP address", v)
		}
		return a.Unmap().String(), nil
	case TypeUnit:
		if !unitRE.MatchString(v) || strings.HasPrefix(v, "-") {
			return "", fmt.Errorf("%q is not a systemd unit name", v)
		}
		return v, nil
	case TypeURL:
		if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") || strings.ContainsAny(v, " \t") {
			return "", fmt.Errorf("%q is not an http or https URL", v)
		}
		return v, nil
	default:
		return "", fmt.Errorf("unknown parameter type %q in schema", p.Type)
	}
}

func (p Param) inRange(f float64) error {
	if p.Min != nil && f < *p.Min {
		return fmt.Errorf("%g is below the minimum %g", f, *p.Min)
	}
	if p.Max != nil && f > *p.Max {
		return fmt.Errorf("%g is above the maximum %g", f, *p.Max)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// CheckPath returns v cleaned if it is an absolute path under one of roots,
// following the symbolic links of the part of it that exists, so that a link
// planted under a root cannot lead out of it. The check is made at
// validation; an action that opens the path must still not follow links it
// did not check (see the built-ins, which use O_NOFOLLOW or Lstat).
func CheckPath(v string, roots []string) (string, error) {
	if !filepath.IsAbs(v) {
		return "", fmt.Errorf("%q is not an absolute path", v)
	}
	clean := filepath.Clean(v)
	resolved := resolveExisting(clean)
	for _, r := range roots {
		r = filepath.Clean(r)
		rr := resolveExisting(r)
		if within(clean, r) && within(resolved, rr) {
			return clean, nil
		}
	}
	if len(roots) == 0 {
		return "", fmt.Errorf("%q: no allowed roots are configured", v)
	}
	return "", fmt.Errorf("%q is not under %s", v, strings.Join(roots, ", "))
}

// within reports whether p is root or below it.
func within(p, root string) bool {
	if root == "/" {
		return true
	}
	return p == root || strings.HasPrefix(p, root+"/")
}

// resolveExisting resolves the symbolic links of the longest existing prefix
// of p and appends the rest.
func resolveExisting(p string) string {
	rest := ""
	for cur := p; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// ParseDuration parses a Prometheus-style duration (90s, 1h30m, 7d, 2w).
func ParseDuration(s string) (time.Duration, error) {
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (units: ms, s, m, h, d, w, y)", s)
	}
	return time.Duration(d), nil
}
