package collector

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

type memField struct {
	name  string // the metric name's middle: MemTotal_bytes, Active_anon_bytes, HugePages_Total
	value float64
}

// parseMeminfo parses /proc/meminfo the way node_exporter names it: the key
// with "(x)" turned into "_x", "_bytes" appended to fields in kB, and kB
// converted to bytes. The kernel writes every value as an unsigned decimal
// (seq_put_decimal_ull_width), so a sign, a fraction or NaN is an error.
func parseMeminfo(r io.Reader) ([]memField, error) {
	var out []memField
	sc, done := newScanner(r)
	defer done()
	for sc.Scan() {
		line := sc.Text()
		key, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 || len(fields) > 2 {
			return nil, fmt.Errorf("meminfo line %q: want a value and an optional unit", line)
		}
		u, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("meminfo %s: %w", key, err)
		}
		v := float64(u)
		key = memKeyName(key)
		if !validMetricNamePart(key) {
			return nil, fmt.Errorf("meminfo key %q: not usable in a metric name", key)
		}
		if len(fields) == 2 {
			if fields[1] != "kB" {
				return nil, fmt.Errorf("meminfo %s: unknown unit %q", key, fields[1])
			}
			v *= 1024
			key += "_bytes"
		}
		out = append(out, memField{name: key, value: v})
	}
	return out, sc.Err()
}

// memKeyName turns "Active(anon)" into "Active_anon".
func memKeyName(key string) string {
	if !strings.ContainsAny(key, "()") {
		return key
	}
	b := make([]byte, 0, len(key))
	for i := 0; i < len(key); i++ {
		switch key[i] {
		case '(':
			b = append(b, '_')
		case ')':
		default:
			b = append(b, key[i])
		}
	}
	return string(b)
}

func validMetricNamePart(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Meminfo writes node_memory_*.
type Meminfo struct{ Paths Paths }

// Update implements Collector.
func (c *Meminfo) Update(_ context.Context, w *Writer) error {
	f, err := os.Open(c.Paths.proc("meminfo"))
	if err != nil {
		return err
	}
	defer f.Close()
	fields, err := parseMeminfo(f)
	if err != nil {
		return fmt.Errorf("parse %s: %w", f.Name(), err)
	}
	seen := make(map[string]bool, len(fields))
	for _, m := range fields {
		if seen[m.name] {
			continue
		}
		seen[m.name] = true
		name := "node_memory_" + m.name
		w.Single(name, Gauge, "Memory information field "+m.name+".", m.value)
	}
	return nil
}
