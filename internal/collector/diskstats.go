package collector

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// DefaultDiskstatsDeviceExclude is node_exporter's default: partitions,
// ramdisks, loop and floppy devices.
const DefaultDiskstatsDeviceExclude = `^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`

// diskSectorSize is the unit of /proc/diskstats' sector counts: always 512
// bytes, whatever the device's real sector size.
const diskSectorSize = 512

type diskStats struct {
	device string
	// values are /proc/diskstats' fields after the device name; kernels
	// before 4.18 have 11, before 5.5 have 15, newer ones 17.
	values []float64
}

// parseDiskstats parses /proc/diskstats.
func parseDiskstats(r io.Reader) ([]diskStats, error) {
	var out []diskStats
	sc, done := newScanner(r)
	defer done()
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 14 {
			return nil, fmt.Errorf("diskstats line %q: %d fields, want at least 14", sc.Text(), len(fields))
		}
		// Major and minor come first: without them the name and counters
		// are not where the kernel puts them.
		if !isDecimal(fields[0]) || !isDecimal(fields[1]) {
			return nil, fmt.Errorf("diskstats line %q: major and minor must be decimal numbers", sc.Text())
		}
		d := diskStats{device: fields[2], values: make([]float64, 0, len(fields)-3)}
		for i, f := range fields[3:] {
			v, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("diskstats %s field %d: %w", d.device, i+1, err)
			}
			d.values = append(d.values, float64(v))
		}
		out = append(out, d)
	}
	return out, sc.Err()
}

// diskMetrics maps /proc/diskstats' fields to node_exporter's names, in the
// kernel's order (Documentation/admin-guide/iostats.rst).
var diskMetrics = [...]struct {
	name, typ, help string
	scale           float64
}{
	{"node_disk_reads_completed_total", Counter, "The total number of reads completed successfully.", 1},
	{"node_disk_reads_merged_total", Counter, "The total number of reads merged.", 1},
	{"node_disk_read_bytes_total", Counter, "The total number of bytes read successfully.", diskSectorSize},
	{"node_disk_read_time_seconds_total", Counter, "The total number of seconds spent by all reads.", 0.001},
	{"node_disk_writes_completed_total", Counter, "The total number of writes completed successfully.", 1},
	{"node_disk_writes_merged_total", Counter, "The number of writes merged.", 1},
	{"node_disk_written_bytes_total", Counter, "The total number of bytes written successfully.", diskSectorSize},
	{"node_disk_write_time_seconds_total", Counter, "This is the total number of seconds spent by all writes.", 0.001},
	{"node_disk_io_now", Gauge, "The number of I/Os currently in progress.", 1},
	{"node_disk_io_time_seconds_total", Counter, "Total seconds spent doing I/Os.", 0.001},
	{"node_disk_io_time_weighted_seconds_total", Counter, "The weighted # of seconds spent doing I/Os.", 0.001},
	{"node_disk_discards_completed_total", Counter, "The total number of discards completed successfully.", 1},
	{"node_disk_discards_merged_total", Counter, "The total number of discards merged.", 1},
	{"node_disk_discarded_sectors_total", Counter, "The total number of sectors discarded successfully.", 1},
	{"node_disk_discard_time_seconds_total", Counter, "This is the total number of seconds spent by all discards.", 0.001},
	{"node_disk_flush_requests_total", Counter, "The total number of flush requests completed successfully", 1},
	{"node_disk_flush_requests_time_seconds_total", Counter, "This is the total number of seconds spent by all flush requests.", 0.001},
}

// Diskstats writes node_disk_* from /proc/diskstats.
type Diskstats struct {
	Paths         Paths
	DeviceExclude *regexp.Regexp
	DeviceInclude *regexp.Regexp
}

// Update implements Collector.
func (c *Diskstats) Update(_ context.Context, w *Writer) error {
	f, err := os.Open(c.Paths.proc("diskstats"))
	if err != nil {
		return err
	}
	defer f.Close()
	all, err := parseDiskstats(f)
	if err != nil {
		return fmt.Errorf("parse %s: %w", f.Name(), err)
	}
	disks := all[:0]
	for _, d := range all {
		if c.DeviceInclude != nil && !c.DeviceInclude.MatchString(d.device) {
			continue
		}
		if c.DeviceExclude != nil && c.DeviceExclude.MatchString(d.device) {
			continue
		}
		disks = append(disks, d)
	}
	for i, m := range diskMetrics {
		started := false
		for _, d := range disks {
			if i >= len(d.values) {
				continue
			}
			if !started {
				w.Family(m.name, m.typ, m.help)
				started = true
			}
			w.Sample(m.name, d.values[i]*m.scale, "device", d.device)
		}
	}
	return nil
}
