package collector

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// userHZ is the unit of the times in /proc/stat. Linux fixes it at 100 for
// user space on every architecture that Go supports.
const userHZ = 100

// cpuTimes are the times of one CPU, in seconds, in /proc/stat's order.
type cpuTimes struct {
	cpu                                                          string
	user, nice, system, idle, iowait, irq, softirq, steal, guest float64
	guestNice                                                    float64
}

// procStat is what /proc/stat says.
type procStat struct {
	cpus                                     []cpuTimes
	bootTime, contextSwitches, forks, intr   float64
	procsRunning, procsBlocked               float64
	hasBootTime, hasContextSwitches, hasIntr bool
}

// parseProcStat parses /proc/stat. Lines it does not know are skipped; a
// known line with a malformed number is an error. The kernel writes every
// number of it as an unsigned decimal, so a sign, a fraction, NaN or
// another base is malformed too.
func parseProcStat(r io.Reader) (procStat, error) {
	var st procStat
	sc, done := newScanner(r)
	defer done()
	for sc.Scan() {
		line := sc.Text()
		key, rest, _ := strings.Cut(line, " ")
		switch {
		case key == "cpu":
			// The aggregate line; node_exporter exposes only per-CPU lines.
		case strings.HasPrefix(key, "cpu"):
			ct, err := parseCPULine(key[3:], rest)
			if err != nil {
				return st, err
			}
			st.cpus = append(st.cpus, ct)
		case key == "intr":
			total, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
			v, err := strconv.ParseUint(total, 10, 64)
			if err != nil {
				return st, fmt.Errorf("intr: %w", err)
			}
			st.intr, st.hasIntr = float64(v), true
		case key == "ctxt", key == "btime", key == "processes", key == "procs_running", key == "procs_blocked":
			u, err := strconv.ParseUint(strings.TrimSpace(rest), 10, 64)
			if err != nil {
				return st, fmt.Errorf("%s: %w", key, err)
			}
			v := float64(u)
			switch key {
			case "ctxt":
				st.contextSwitches, st.hasContextSwitches = v, true
			case "btime":
				st.bootTime, st.hasBootTime = v, true
			case "processes":
				st.forks = v
			case "procs_running":
				st.procsRunning = v
			case "procs_blocked":
				st.procsBlocked = v
			}
		}
	}
	return st, sc.Err()
}

func parseCPULine(id, rest string) (cpuTimes, error) {
	// The number becomes the cpu label: "+1" or "01" would be a second
	// series for CPU 1.
	if !isDecimal(id) || len(id) > 1 && id[0] == '0' {
		return cpuTimes{}, fmt.Errorf("cpu line %q: bad cpu number", "cpu"+id)
	}
	ct := cpuTimes{cpu: id}
	fields := []*float64{&ct.user, &ct.nice, &ct.system, &ct.idle, &ct.iowait, &ct.irq, &ct.softirq, &ct.steal, &ct.guest, &ct.guestNice}
	i := 0
	for f := range strings.FieldsSeq(rest) {
		if i == len(fields) {
			break
		}
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return ct, fmt.Errorf("cpu%s field %d: %w", id, i+1, err)
		}
		*fields[i] = float64(v) / userHZ
		i++
	}
	if i < 4 {
		return ct, fmt.Errorf("cpu%s: %d fields, want at least 4", id, i)
	}
	return ct, nil
}

func readProcStat(p Paths) (procStat, error) {
	f, err := os.Open(p.proc("stat"))
	if err != nil {
		return procStat{}, err
	}
	defer f.Close()
	st, err := parseProcStat(f)
	if err != nil {
		return st, fmt.Errorf("parse %s: %w", f.Name(), err)
	}
	return st, nil
}

// CPU writes node_cpu_seconds_total and node_cpu_guest_seconds_total.
type CPU struct{ Paths Paths }

// Update implements Collector.
func (c *CPU) Update(_ context.Context, w *Writer) error {
	st, err := readProcStat(c.Paths)
	if err != nil {
		return err
	}
	w.Family("node_cpu_guest_seconds_total", Counter, "Seconds the CPUs spent in guests (VMs) for each mode.")
	for _, ct := range st.cpus {
		w.Sample("node_cpu_guest_seconds_total", ct.guestNice, "cpu", ct.cpu, "mode", "nice")
		w.Sample("node_cpu_guest_seconds_total", ct.guest, "cpu", ct.cpu, "mode", "user")
	}
	w.Family("node_cpu_seconds_total", Counter, "Seconds the CPUs spent in each mode.")
	for _, ct := range st.cpus {
		for _, m := range [...]struct {
			mode string
			v    float64
		}{
			{"idle", ct.idle},
			{"iowait", ct.iowait},
			{"irq", ct.irq},
			{"nice", ct.nice},
			{"softirq", ct.softirq},
			{"steal", ct.steal},
			{"system", ct.system},
			{"user", ct.user},
		} {
			w.Sample("node_cpu_seconds_total", m.v, "cpu", ct.cpu, "mode", m.mode)
		}
	}
	return nil
}

// Stat writes the kernel-wide counters of /proc/stat: boot time, context
// switches, forks, interrupts and runnable and blocked processes.
type Stat struct{ Paths Paths }

// Update implements Collector.
func (c *Stat) Update(_ context.Context, w *Writer) error {
	st, err := readProcStat(c.Paths)
	if err != nil {
		return err
	}
	if st.hasBootTime {
		w.Single("node_boot_time_seconds", Gauge, "Node boot time, in unixtime.", st.bootTime)
	}
	if st.hasContextSwitches {
		w.Single("node_context_switches_total", Counter, "Total number of context switches.", st.contextSwitches)
	}
	w.Single("node_forks_total", Counter, "Total number of forks.", st.forks)
	if st.hasIntr {
		w.Single("node_intr_total", Counter, "Total number of interrupts serviced.", st.intr)
	}
	w.Single("node_procs_blocked", Gauge, "Number of processes blocked waiting for I/O to complete.", st.procsBlocked)
	w.Single("node_procs_running", Gauge, "Number of processes in runnable state.", st.procsRunning)
	return nil
}
