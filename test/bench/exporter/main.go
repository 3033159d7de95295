// Command exporter-bench runs our exporter and node_exporter side by side,
// restricted to the same vitals collectors and the same exclusions, scrapes
// each the same number of times the way Prometheus does (gzip), and prints
// CPU seconds per scrape, scrape latency, RSS, series and bytes per scrape,
// with the ratios ours/theirs.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

var vitals = []string{"cpu", "diskstats", "filesystem", "loadavg", "meminfo", "netdev", "pressure", "stat", "time", "uname"}

// Our collectors beyond the vitals, switched off for the comparison.
var extras = []string{"processes", "sockets", "authlog", "integrity", "services"}

const (
	mountPointsExclude = `^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`
	fsTypesExclude     = `^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$`
)

type result struct {
	name            string
	cpuPerScrape    float64 // seconds
	p50, p99        time.Duration
	rssBytes        float64
	series          int
	bytes, gzBytes  int
	scrapes         int
	cpuTotalSeconds float64
}

func main() {
	ours := flag.String("ours", "bin/exporter", "our exporter binary")
	theirs := flag.String("theirs", "prometheus-node-exporter", "node_exporter binary")
	n := flag.Int("scrapes", 1000, "scrapes per exporter")
	flag.Parse()
	if err := run(*ours, *theirs, *n); err != nil {
		fmt.Fprintln(os.Stderr, "exporter-bench:", err)
		os.Exit(1)
	}
}

func run(oursBin, theirsBin string, n int) error {
	state, err := os.MkdirTemp("", "exporter-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)

	oursAddr, theirsAddr := freeAddr(), freeAddr()
	oursArgs := []string{"--web.listen-address=" + oursAddr, "--state.directory=" + state, "--log.level=error"}
	for _, c := range extras {
		oursArgs = append(oursArgs, "--no-collector."+c)
	}
	theirsArgs := []string{
		"--web.listen-address=" + theirsAddr, "--log.level=error", "--collector.disable-defaults",
		"--collector.filesystem.mount-points-exclude=" + mountPointsExclude,
		"--collector.filesystem.fs-types-exclude=" + fsTypesExclude,
		"--collector.netdev.device-exclude=",
	}
	for _, c := range vitals {
		theirsArgs = append(theirsArgs, "--collector."+c)
	}

	var results []result
	for _, e := range []struct {
		name, bin, addr string
		args            []string
	}{
		{"node_exporter", theirsBin, theirsAddr, theirsArgs},
		{"deus exporter", oursBin, oursAddr, oursArgs},
	} {
		r, err := measure(e.name, e.bin, e.addr, e.args, n)
		if err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		results = append(results, r)
	}
	report(results[1], results[0])
	return nil
}

func measure(name, bin, addr string, args []string, n int) (result, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	url := "http://" + addr + "/metrics"
	if err := waitReady(url); err != nil {
		return result{}, err
	}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	var (
		last  []byte
		gzLen int
		err   error
	)
	for range 20 { // warm up
		if last, gzLen, err = scrape(client, url); err != nil {
			return result{}, err
		}
	}
	cpu0, err := cpuSeconds(cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	lat := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if last, gzLen, err = scrape(client, url); err != nil {
			return result{}, err
		}
		lat = append(lat, time.Since(start))
	}
	cpu1, err := cpuSeconds(cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	rss, err := rssBytes(cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	slices.Sort(lat)
	return result{
		name: name, scrapes: n, cpuTotalSeconds: cpu1 - cpu0, cpuPerScrape: (cpu1 - cpu0) / float64(n),
		p50: lat[n/2], p99: lat[n*99/100], rssBytes: rss,
		series: countSeries(last), bytes: len(last), gzBytes: gzLen,
	}, nil
}

func scrape(c *http.Client, url string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1")
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if resp.Header.Get("Content-Encoding") != "gzip" {
		return raw, len(raw), nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, 0, err
	}
	body, err := io.ReadAll(zr)
	return body, len(raw), err
}

func countSeries(b []byte) int {
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			n++
		}
	}
	return n
}

// cpuSeconds reads utime+stime of a process from /proc/PID/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short stat")
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	s, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return (u + s) / 100, nil
}

func rssBytes(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

func waitReady(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready: %w", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func report(ours, theirs result) {
	row := func(name string, o, t float64, format string) {
		ratio := "-"
		if t != 0 {
			ratio = fmt.Sprintf("%.2f", o/t)
		}
		fmt.Printf("%-26s %14s %14s %8s\n", name, fmt.Sprintf(format, o), fmt.Sprintf(format, t), ratio)
	}
	fmt.Printf("%d scrapes each, gzip, vitals collectors only\n", ours.scrapes)
	fmt.Printf("%-26s %14s %14s %8s\n", "", "ours", "node_exporter", "ratio")
	row("CPU ms per scrape", ours.cpuPerScrape*1e3, theirs.cpuPerScrape*1e3, "%.3f")
	row("p50 latency ms", ms(ours.p50), ms(theirs.p50), "%.3f")
	row("p99 latency ms", ms(ours.p99), ms(theirs.p99), "%.3f")
	row("RSS MB after scrapes", ours.rssBytes/1e6, theirs.rssBytes/1e6, "%.1f")
	row("series per scrape", float64(ours.series), float64(theirs.series), "%.0f")
	row("bytes per scrape", float64(ours.bytes), float64(theirs.bytes), "%.0f")
	row("gzip bytes per scrape", float64(ours.gzBytes), float64(theirs.gzBytes), "%.0f")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
