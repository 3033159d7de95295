package collector

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// parseLoadavg parses the first three fields of /proc/loadavg. The kernel
// writes each as a decimal with two places ("%lu.%02lu"), so a sign, an
// exponent, NaN or Inf is an error.
func parseLoadavg(s string) ([3]float64, error) {
	var loads [3]float64
	fields := strings.Fields(s)
	if len(fields) < 3 {
		return loads, fmt.Errorf("loadavg %q: want at least 3 fields", s)
	}
	for i := range loads {
		if !isDecimalFraction(fields[i]) {
			return loads, fmt.Errorf("loadavg field %d: %q is not a decimal number", i+1, fields[i])
		}
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return loads, fmt.Errorf("loadavg field %d: %w", i+1, err)
		}
		loads[i] = v
	}
	return loads, nil
}

// isDecimalFraction reports whether s is digits with an optional dot and
// more digits ("0.27", "12"), the way the kernel writes a load or a pressure
// average: no sign, exponent, NaN or Inf.
func isDecimalFraction(s string) bool {
	whole, frac, dot := strings.Cut(s, ".")
	return isDecimal(whole) && (!dot || isDecimal(frac))
}

// Loadavg writes node_load1, node_load5 and node_load15.
type Loadavg struct{ Paths Paths }

// Update implements Collector.
func (c *Loadavg) Update(_ context.Context, w *Writer) error {
	s, err := readSmall(c.Paths.proc("loadavg"))
	if err != nil {
		return err
	}
	loads, err := parseLoadavg(s)
	if err != nil {
		return err
	}
	w.Single("node_load1", Gauge, "1m load average.", loads[0])
	w.Single("node_load15", Gauge, "15m load average.", loads[2])
	w.Single("node_load5", Gauge, "5m load average.", loads[1])
	return nil
}
