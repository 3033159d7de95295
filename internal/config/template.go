package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Template is a step parameter: literal text with references to the alert,
// {{ $labels.NAME }}, {{ $annotations.NAME }} (also written with index:
// {{ index $labels "NAME" }}). It is not text/template: there are no
// functions, pipelines or conditionals, so a configuration cannot run code
// and a value substituted from an alert is only ever text, which the
// action's parameter schema then validates.
type Template struct {
	parts []part
}

type part struct {
	lit  string
	kind string // "", "labels" or "annotations"
	name string
}

var refRE = regexp.MustCompile(`^\{\{-?\s*(?:\$(labels|annotations)\.([A-Za-z_][A-Za-z0-9_]*)|index\s+\$(labels|annotations)\s+"([^"\\]+)")\s*-?\}\}`)

// ParseTemplate parses s.
func ParseTemplate(s string) (*Template, error) {
	t := &Template{}
	for s != "" {
		i := strings.Index(s, "{{")
		if i < 0 {
			t.parts = append(t.parts, part{lit: s})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, part{lit: s[:i]})
		}
		m := refRE.FindStringSubmatch(s[i:])
		if m == nil {
			end := strings.Index(s[i:], "}}")
			ref := s[i:]
			if end >= 0 {
				ref = s[i : i+end+2]
			}
			return nil, fmt.Errorf("%s: only {{ $labels.NAME }} and {{ $annotations.NAME }} may be used", ref)
		}
		if m[1] != "" {
			t.parts = append(t.parts, part{kind: m[1], name: m[2]})
		} else {
			t.parts = append(t.parts, part{kind: m[3], name: m[4]})
		}
		s = s[i+len(m[0]):]
	}
	return t, nil
}

// Static reports whether the template has no references.
func (t *Template) Static() bool {
	for _, p := range t.parts {
		if p.kind != "" {
			return false
		}
	}
	return true
}

// ErrMissing is returned by Execute when a referenced label or annotation is
// not set on the alert.
var ErrMissing = errors.New("not set on the alert")

// Execute renders the template with an alert's labels and annotations.
func (t *Template) Execute(labels, annotations map[string]string) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		switch p.kind {
		case "":
			b.WriteString(p.lit)
		case "labels":
			v, ok := labels[p.name]
			if !ok {
				return "", fmt.Errorf("label %q: %w", p.name, ErrMissing)
			}
			b.WriteString(v)
		case "annotations":
			v, ok := annotations[p.name]
			if !ok {
				return "", fmt.Errorf("annotation %q: %w", p.name, ErrMissing)
			}
			b.WriteString(v)
		}
	}
	return b.String(), nil
}
