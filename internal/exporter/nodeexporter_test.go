package exporter

import (
	"bytes"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/deus-ex-machina/deus/internal/collector"
	"github.com/deus-ex-machina/deus/internal/testenv"
)

// vitals are the collectors both exporters have, under the same names.
var vitals = []string{"cpu", "diskstats", "filesystem", "loadavg", "meminfo", "netdev", "pressure", "stat", "time", "uname"}

// mustShare are families that both exporters must expose on any Linux host.
var mustShare = []string{
	"node_boot_time_seconds", "node_context_switches_total", "node_cpu_seconds_total", "node_cpu_guest_seconds_total",
	"node_filesystem_avail_bytes", "node_filesystem_device_error", "node_filesystem_files", "node_filesystem_files_free",
	"node_filesystem_free_bytes", "node_filesystem_readonly", "node_filesystem_size_bytes", "node_forks_total",
	"node_intr_total", "node_load1", "node_load15", "node_load5", "node_memory_Buffers_bytes", "node_memory_Cached_bytes",
	"node_memory_MemAvailable_bytes", "node_memory_MemFree_bytes", "node_memory_MemTotal_bytes",
	"node_memory_SwapFree_bytes", "node_memory_SwapTotal_bytes", "node_network_receive_bytes_total",
	"node_network_transmit_bytes_total", "node_procs_blocked", "node_procs_running", "node_time_seconds",
	"node_time_zone_offset_seconds", "node_uname_info",
}

func parseExposition(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return mfs
}

func scrapeURL(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return parseExposition(t, resp.Body)
}

// labelKey identifies a series within a family by its labels.
func labelKey(m *dto.Metric) string {
	var parts []string
	for _, lp := range m.GetLabel() {
		parts = append(parts, lp.GetName()+"="+lp.GetValue())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func labelNames(mf *dto.MetricFamily) []string {
	set := map[string]bool{}
	for _, m := range mf.GetMetric() {
		for _, lp := range m.GetLabel() {
			set[lp.GetName()] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

func value(mf *dto.MetricFamily, m *dto.Metric) float64 {
	if mf.GetType() == dto.MetricType_COUNTER {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

func series(mf *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	if mf == nil {
		return out
	}
	for _, m := range mf.GetMetric() {
		out[labelKey(m)] = value(mf, m)
	}
	return out
}

// TestSideBySideWithNodeExporter runs the real node_exporter next to our
// collectors on this machine, both restricted to the vitals, and compares:
// every shared family has the same type and label names; stable values
// (memory size, file system sizes, boot time, CPU count, uname) are equal;
// counters read by node_exporter lie between two reads of ours taken
// before and after it, with a tolerance of one jiffy (0.01 s) for CPU
// times, which both round to USER_HZ, and of 1e-12 relative for unit
// conversions (microseconds to seconds) that round in another order.
func TestSideBySideWithNodeExporter(t *testing.T) {
	bin := testenv.Binary(t, "prometheus-node-exporter")
	addr := testenv.FreeAddr(t)
	args := []string{
		"--web.listen-address=" + addr,
		"--collector.disable-defaults",
		"--collector.filesystem.mount-points-exclude=" + collector.DefaultMountPointsExclude,
		"--collector.filesystem.fs-types-exclude=" + collector.DefaultFSTypesExclude,
		"--collector.diskstats.device-exclude=" + collector.DefaultDiskstatsDeviceExclude,
		"--collector.netdev.device-exclude=",
		"--no-collector.netdev.netlink", // read /proc/net/dev, as we do
	}
	for _, c := range vitals {
		args = append(args, "--collector."+c)
	}
	testenv.Start(t, bin, args...)
	testenv.WaitHTTP(t, "http://"+addr+"/metrics", 30*time.Second)

	o := DefaultOptions()
	o.StateDir = t.TempDir()
	for name := range o.Enabled {
		o.Enabled[name] = slices.Contains(vitals, name)
	}
	entries, err := Collectors(o)
	if err != nil {
		t.Fatal(err)
	}
	s := collector.NewScraper(testenv.Logger(t), 10*time.Second, collector.BuildInfo{}, entries)
	ours := func() map[string]*dto.MetricFamily {
		var buf bytes.Buffer
		if err := s.Scrape(t.Context(), &buf); err != nil {
			t.Fatal(err)
		}
		return parseExposition(t, &buf)
	}

	before := ours()
	theirs := scrapeURL(t, "http://"+addr+"/metrics")
	after := ours()

	shared := 0
	for name, tf := range theirs {
		of, ok := after[name]
		if !ok {
			continue
		}
		shared++
		if of.GetType() != tf.GetType() {
			t.Errorf("%s: type %s, node_exporter has %s", name, of.GetType(), tf.GetType())
		}
		if o, n := labelNames(of), labelNames(tf); !slices.Equal(o, n) {
			t.Errorf("%s: label names %v, node_exporter has %v", name, o, n)
		}
	}
	for _, name := range mustShare {
		if theirs[name] == nil || after[name] == nil {
			t.Errorf("%s: ours has it: %v, node_exporter has it: %v; both must", name, after[name] != nil, theirs[name] != nil)
		}
	}
	if _, err := os.Stat("/proc/pressure/cpu"); err == nil {
		for _, name := range []string{"node_pressure_cpu_waiting_seconds_total", "node_pressure_io_waiting_seconds_total", "node_pressure_memory_waiting_seconds_total"} {
			if theirs[name] == nil || after[name] == nil {
				t.Errorf("%s: missing on a kernel with PSI (ours: %v, node_exporter: %v)", name, after[name] != nil, theirs[name] != nil)
			}
		}
	}
	t.Logf("%d families shared with node_exporter", shared)

	// Stable values must be equal.
	for _, name := range []string{
		"node_memory_MemTotal_bytes", "node_memory_SwapTotal_bytes", "node_boot_time_seconds",
		"node_filesystem_size_bytes", "node_filesystem_files", "node_filesystem_readonly", "node_uname_info", "node_time_zone_offset_seconds",
	} {
		o, n := series(after[name]), series(theirs[name])
		if len(n) == 0 {
			t.Errorf("%s: node_exporter reports no series", name)
		}
		for k, nv := range n {
			ov, ok := o[k]
			if !ok {
				t.Errorf("%s{%s}: missing from ours", name, k)
				continue
			}
			if ov != nv {
				t.Errorf("%s{%s} = %v; node_exporter says %v", name, k, ov, nv)
			}
		}
		for k := range o {
			if _, ok := n[k]; !ok {
				t.Errorf("%s{%s}: ours has it, node_exporter does not", name, k)
			}
		}
	}
	cpus := func(mfs map[string]*dto.MetricFamily) int {
		set := map[string]bool{}
		for _, m := range mfs["node_cpu_seconds_total"].GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "cpu" {
					set[lp.GetValue()] = true
				}
			}
		}
		return len(set)
	}
	if o, n := cpus(after), cpus(theirs); o != n || o == 0 {
		t.Errorf("CPU count %d; node_exporter says %d", o, n)
	}

	// Counters lie between our reads before and after theirs.
	checked := 0
	for name, tf := range theirs {
		if tf.GetType() != dto.MetricType_COUNTER || after[name] == nil {
			continue
		}
		tol := 0.0
		if strings.HasPrefix(name, "node_cpu_") {
			tol = 0.01
		}
		lo, hi := series(before[name]), series(after[name])
		for k, nv := range series(tf) {
			l, ok1 := lo[k]
			h, ok2 := hi[k]
			if !ok1 || !ok2 {
				t.Errorf("%s{%s}: missing from ours", name, k)
				continue
			}
			checked++
			tol := max(tol, 1e-12*math.Abs(h)) // unit conversions round differently
			if nv < l-tol || nv > h+tol || math.IsNaN(nv) {
				t.Errorf("%s{%s} = %v from node_exporter; ours read %v before and %v after (tolerance %v)", name, k, nv, l, h, tol)
			}
		}
	}
	if checked == 0 {
		t.Error("no counter compared")
	}
	t.Logf("%d counter series agree within tolerance", checked)
}
