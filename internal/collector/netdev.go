package collector

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// netDevFields are /proc/net/dev's columns as node_exporter names them.
var netDevFields = [...]string{
	"receive_bytes", "receive_packets", "receive_errs", "receive_drop",
	"receive_fifo", "receive_frame", "receive_compressed", "receive_multicast",
	"transmit_bytes", "transmit_packets", "transmit_errs", "transmit_drop",
	"transmit_fifo", "transmit_colls", "transmit_carrier", "transmit_compressed",
}

type netDev struct {
	device string
	values [len(netDevFields)]float64
}

// parseNetDev parses /proc/net/dev.
func parseNetDev(r io.Reader) ([]netDev, error) {
	var out []netDev
	sc, done := newScanner(r)
	defer done()
	for n := 0; sc.Scan(); n++ {
		if n < 2 {
			continue // two header lines
		}
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			return nil, fmt.Errorf("net/dev line %q: no colon", sc.Text())
		}
		d := netDev{device: strings.TrimSpace(name)}
		if d.device == "" {
			return nil, fmt.Errorf("net/dev line %q: no device name", sc.Text())
		}
		// The kernel refuses such names (dev_valid_name in net/core/dev.c).
		if strings.ContainsFunc(d.device, unicode.IsSpace) || strings.Contains(d.device, "/") || d.device == "." || d.device == ".." {
			return nil, fmt.Errorf("net/dev line %q: %q is not a device name", sc.Text(), d.device)
		}
		i := 0
		for f := range strings.FieldsSeq(rest) {
			if i == len(d.values) {
				break
			}
			v, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("net/dev %s %s: %w", d.device, netDevFields[i], err)
			}
			d.values[i] = float64(v)
			i++
		}
		if i != len(d.values) {
			return nil, fmt.Errorf("net/dev %s: %d fields, want %d", d.device, i, len(d.values))
		}
		out = append(out, d)
	}
	return out, sc.Err()
}

// Netdev writes node_network_{receive,transmit}_*_total from /proc/net/dev.
type Netdev struct {
	Paths         Paths
	DeviceExclude *regexp.Regexp
	DeviceInclude *regexp.Regexp
}

// Update implements Collector.
func (c *Netdev) Update(_ context.Context, w *Writer) error {
	f, err := os.Open(c.Paths.proc("net", "dev"))
	if err != nil {
		return err
	}
	defer f.Close()
	all, err := parseNetDev(f)
	if err != nil {
		return fmt.Errorf("parse %s: %w", f.Name(), err)
	}
	devs := all[:0]
	for _, d := range all {
		if c.DeviceInclude != nil && !c.DeviceInclude.MatchString(d.device) {
			continue
		}
		if c.DeviceExclude != nil && c.DeviceExclude.MatchString(d.device) {
			continue
		}
		devs = append(devs, d)
	}
	if len(devs) == 0 {
		return nil
	}
	for i, field := range netDevFields {
		name := "node_network_" + field + "_total"
		w.Family(name, Counter, "Network device statistic "+field+".")
		for _, d := range devs {
			w.Sample(name, d.values[i], "device", d.device)
		}
	}
	return nil
}
