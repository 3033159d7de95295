package collector

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
)

// pidStat is the part of /proc/PID/stat the processes collector uses.
type pidStat struct {
	comm      string
	state     byte
	cpuTicks  uint64 // utime + stime
	startTime uint64 // in clock ticks after boot: tells a reused PID apart
	rssPages  int64
}

// parsePIDStat parses /proc/PID/stat ("%d (%s) %c ..."). The command name
// is between the first '(' and the last ')', since it may itself hold spaces
// and parentheses; the PID and one space come before it.
func parsePIDStat(b []byte) (pidStat, error) {
	var st pidStat
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return st, errors.New("stat: no command name in parentheses")
	}
	if pid, ok := bytes.CutSuffix(b[:open], []byte(" ")); !ok || !isDecimal(string(pid)) {
		return st, errors.New("stat: no PID before the command name")
	}
	st.comm = string(b[open+1 : end])
	fields := bytes.Fields(b[end+1:])
	// After the name: state(0) ... utime(11) stime(12) ... starttime(19) vsize(20) rss(21).
	if len(fields) < 22 || len(fields[0]) != 1 {
		return st, fmt.Errorf("stat: %d fields after the command name, want at least 22", len(fields))
	}
	st.state = fields[0][0]
	utime, err1 := strconv.ParseUint(string(fields[11]), 10, 64)
	stime, err2 := strconv.ParseUint(string(fields[12]), 10, 64)
	start, err3 := strconv.ParseUint(string(fields[19]), 10, 64)
	rss, err4 := strconv.ParseInt(string(fields[21]), 10, 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return st, fmt.Errorf("stat: %w", err)
	}
	st.cpuTicks, st.startTime, st.rssPages = utime+stime, start, rss
	return st, nil
}

// processStates are the states of /proc/PID/stat that are always reported,
// so that a state with no process reads 0 rather than absent.
var processStates = [...]string{"D", "I", "R", "S", "T", "Z"}

type pidKey struct {
	pid       int
	startTime uint64
}

type procGroup struct {
	cpuSeconds float64 // accumulated since the exporter started: a counter
	rssBytes   float64
	count      int
	cpuDelta   float64 // CPU seconds since the previous scrape, for ranking
	lastSeen   uint64  // scrape number
}

// Processes writes the top process groups by CPU and by memory, grouped by
// command name as process-exporter does, and the count of processes by state.
//
// Cardinality: at most 2*TopN group names a scrape (the union of the two
// top lists) and a fixed set of states. Each group's CPU counter is kept for
// as long as the group has processes, so it stays monotonic while the group
// drifts in and out of the top lists.
type Processes struct {
	Paths Paths
	TopN  int
	// PageSize defaults to os.Getpagesize(); tests set it.
	PageSize int

	scrape uint64
	prev   map[pidKey]uint64 // cpu ticks at the previous scrape
	groups map[string]*procGroup
}

// Update implements Collector.
func (c *Processes) Update(_ context.Context, w *Writer) error {
	dir, err := os.Open(c.Paths.Proc)
	if err != nil {
		return err
	}
	names, err := dir.Readdirnames(-1)
	dir.Close()
	if err != nil {
		return fmt.Errorf("list %s: %w", c.Paths.Proc, err)
	}
	pageSize := c.PageSize
	if pageSize == 0 {
		pageSize = os.Getpagesize()
	}
	if c.groups == nil {
		c.groups = make(map[string]*procGroup)
		c.prev = make(map[pidKey]uint64)
	}
	c.scrape++
	for _, g := range c.groups {
		g.rssBytes, g.count, g.cpuDelta = 0, 0, 0
	}
	states := make(map[string]float64, len(processStates))
	for _, s := range processStates {
		states[s] = 0
	}
	cur := make(map[pidKey]uint64, len(c.prev))
	var buf []byte
	var errs []error
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		buf, err = readInto(buf, c.Paths.proc(name, "stat"))
		if err != nil {
			continue // the process exited between the listing and the read
		}
		st, err := parsePIDStat(buf)
		if err != nil {
			// Skip the process but finish the scrape: returning here would
			// leave c.prev behind the CPU already added to the groups, and
			// the next scrape would add it again.
			errs = append(errs, fmt.Errorf("parse %s: %w", c.Paths.proc(name, "stat"), err))
			continue
		}
		state := "other"
		if c := st.state; c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' {
			state = string(c)
		}
		states[state]++
		k := pidKey{pid, st.startTime}
		cur[k] = st.cpuTicks
		delta := st.cpuTicks
		if p, ok := c.prev[k]; ok && p <= st.cpuTicks {
			delta = st.cpuTicks - p
		}
		g := c.groups[st.comm]
		if g == nil {
			g = &procGroup{}
			c.groups[st.comm] = g
		}
		g.cpuSeconds += float64(delta) / userHZ
		g.cpuDelta += float64(delta) / userHZ
		g.rssBytes += float64(st.rssPages) * float64(pageSize)
		g.count++
		g.lastSeen = c.scrape
	}
	c.prev = cur

	type ranked struct {
		name string
		g    *procGroup
	}
	var live []ranked
	for name, g := range c.groups {
		if g.lastSeen != c.scrape {
			delete(c.groups, name) // no process left: a later one starts a new counter
			continue
		}
		live = append(live, ranked{name, g})
	}
	top := make(map[string]bool, 2*c.TopN)
	byName := func(a, b ranked) int { return cmp.Compare(a.name, b.name) }
	slices.SortFunc(live, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(b.g.cpuDelta, a.g.cpuDelta), byName(a, b))
	})
	for _, r := range live[:min(c.TopN, len(live))] {
		top[r.name] = true
	}
	slices.SortFunc(live, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(b.g.rssBytes, a.g.rssBytes), byName(a, b))
	})
	for _, r := range live[:min(c.TopN, len(live))] {
		top[r.name] = true
	}
	slices.SortFunc(live, byName)

	w.Family("deus_processes", Gauge, "Number of processes by state letter of /proc/PID/stat.")
	stateNames := make([]string, 0, len(states))
	for s := range states {
		stateNames = append(stateNames, s)
	}
	slices.Sort(stateNames)
	for _, s := range stateNames {
		w.Sample("deus_processes", states[s], "state", s)
	}
	groupFamily := func(name, typ, help string, v func(*procGroup) float64) {
		w.Family(name, typ, help)
		for _, r := range live {
			if top[r.name] {
				w.Sample(name, v(r.g), "groupname", r.name)
			}
		}
	}
	groupFamily("deus_process_group_cpu_seconds_total", Counter,
		"CPU time used by the processes of a top group (by CPU or memory) since the exporter first saw the group.",
		func(g *procGroup) float64 { return g.cpuSeconds })
	groupFamily("deus_process_group_resident_memory_bytes", Gauge,
		"Resident memory of the processes of a top group.",
		func(g *procGroup) float64 { return g.rssBytes })
	groupFamily("deus_process_group_processes", Gauge,
		"Number of processes in a top group.",
		func(g *procGroup) float64 { return float64(g.count) })
	return errors.Join(errs...)
}

// readInto reads a small file into buf, reusing its storage.
func readInto(buf []byte, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf, err
	}
	defer f.Close()
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				return buf, nil
			}
			return buf, err
		}
	}
}
