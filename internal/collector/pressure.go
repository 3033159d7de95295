package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// psi holds the cumulative stall times of one resource, in seconds.
type psi struct {
	some, full       float64
	hasSome, hasFull bool
}

// psiFields are the fields of a pressure line after its kind.
var psiFields = [...]string{"avg10", "avg60", "avg300", "total"}

// parsePressure parses a /proc/pressure/* file ("some avg10=0.00 ...
// total=1234" and an optional "full" line; totals are in microseconds).
func parsePressure(r io.Reader) (psi, error) {
	var p psi
	sc, done := newScanner(r)
	defer done()
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		// avg10=, avg60=, avg300= and total=, each once: anything else is
		// not a line the kernel wrote (psi_show in kernel/sched/psi.c).
		var total string
		var seen [4]bool
		for _, f := range fields[1:] {
			k, v, ok := strings.Cut(f, "=")
			i := slices.Index(psiFields[:], k)
			if !ok || i < 0 || seen[i] {
				return p, fmt.Errorf("pressure line %q: unknown or repeated field %q", sc.Text(), f)
			}
			seen[i] = true
			if k == "total" {
				total = v
			} else if !isDecimalFraction(v) {
				return p, fmt.Errorf("pressure line %q: %s %q is not a decimal number", sc.Text(), k, v)
			}
		}
		if total == "" {
			return p, fmt.Errorf("pressure line %q: no total", sc.Text())
		}
		v, err := strconv.ParseUint(total, 10, 64)
		if err != nil {
			return p, fmt.Errorf("pressure %s total: %w", fields[0], err)
		}
		switch {
		case fields[0] == "some" && !p.hasSome:
			p.some, p.hasSome = float64(v)/1e6, true
		case fields[0] == "full" && !p.hasFull:
			p.full, p.hasFull = float64(v)/1e6, true
		default:
			return p, fmt.Errorf("pressure line %q: unknown or repeated kind %q", sc.Text(), fields[0])
		}
	}
	return p, sc.Err()
}

// Pressure writes node_pressure_* from the kernel's pressure stall
// information, where the kernel has it (4.20 and later, psi enabled).
type Pressure struct{ Paths Paths }

// Update implements Collector.
func (c *Pressure) Update(_ context.Context, w *Writer) error {
	read := func(resource string) (psi, error) {
		f, err := os.Open(c.Paths.proc("pressure", resource))
		if err != nil {
			return psi{}, err
		}
		defer f.Close()
		p, err := parsePressure(f)
		if err != nil {
			return p, fmt.Errorf("parse %s: %w", f.Name(), err)
		}
		return p, nil
	}
	wrote := false
	for _, res := range [...]struct{ name, waitHelp, stallHelp string }{
		{"cpu", "Total time in seconds that processes have waited for CPU time", "Total time in seconds no process could make progress due to CPU congestion"},
		{"io", "Total time in seconds that processes have waited due to IO congestion", "Total time in seconds no process could make progress due to IO congestion"},
		{"memory", "Total time in seconds that processes have waited for memory", "Total time in seconds no process could make progress due to memory congestion"},
	} {
		p, err := read(res.name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		wrote = true
		// The cpu "full" line (kernel 5.13+) is always zero at the system
		// level; node_exporter 1.x does not report it, nor do we.
		if p.hasFull && res.name != "cpu" {
			w.Single("node_pressure_"+res.name+"_stalled_seconds_total", Counter, res.stallHelp, p.full)
		}
		if p.hasSome {
			w.Single("node_pressure_"+res.name+"_waiting_seconds_total", Counter, res.waitHelp, p.some)
		}
	}
	if !wrote {
		return fmt.Errorf("%s: %w", c.Paths.proc("pressure"), ErrNoData)
	}
	return nil
}
