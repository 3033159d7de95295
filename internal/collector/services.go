package collector

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ServiceChecker tells whether named services are up.
type ServiceChecker interface {
	// Up returns, for each name, whether the service is up.
	Up(ctx context.Context, names []string) (map[string]bool, error)
}

// Services writes deus_service_up for each watched service.
//
// Cardinality: one series per configured name.
type Services struct {
	Names   []string
	Checker ServiceChecker
}

// Update implements Collector.
func (c *Services) Update(ctx context.Context, w *Writer) error {
	up, err := c.Checker.Up(ctx, c.Names)
	if err != nil {
		return err
	}
	w.Family("deus_service_up", Gauge, "Whether a watched service is up (1) or down (0).")
	for _, n := range c.Names {
		w.Sample("deus_service_up", b2f(up[n]), "service", n)
	}
	return nil
}

// ProcessChecker finds services by their processes: a service is up when a
// process runs whose command name (/proc/PID/comm) or executable base name
// (argv[0] of /proc/PID/cmdline) equals the service's name without a
// ".service" suffix. Zombies do not count.
type ProcessChecker struct {
	Paths Paths
}

// Up implements ServiceChecker.
func (p ProcessChecker) Up(_ context.Context, names []string) (map[string]bool, error) {
	want := make(map[string]string, len(names))
	up := make(map[string]bool, len(names))
	for _, n := range names {
		want[strings.TrimSuffix(n, ".service")] = n
		up[n] = false
	}
	dir, err := os.Open(p.Paths.Proc)
	if err != nil {
		return nil, err
	}
	pids, err := dir.Readdirnames(-1)
	dir.Close()
	if err != nil {
		return nil, err
	}
	// First by command name, which is cheap; then, for what is still
	// missing, by argv[0]: comm is cut at 15 bytes, and a process may
	// rename itself.
	var buf []byte
	var rest []string
	for _, pid := range pids {
		if _, err := strconv.Atoi(pid); err != nil {
			continue
		}
		buf, err = readInto(buf, p.Paths.proc(pid, "stat"))
		if err != nil {
			continue
		}
		st, err := parsePIDStat(buf)
		if err != nil || st.state == 'Z' {
			continue
		}
		if n, ok := want[st.comm]; ok {
			up[n] = true
			continue
		}
		rest = append(rest, pid)
	}
	missing := 0
	for _, n := range names {
		if !up[n] {
			missing++
		}
	}
	for _, pid := range rest {
		if missing == 0 {
			break
		}
		buf, err = readInto(buf, p.Paths.proc(pid, "cmdline"))
		if err != nil || len(buf) == 0 {
			continue
		}
		argv0, _, _ := strings.Cut(string(buf), "\x00")
		if n, ok := want[filepath.Base(argv0)]; ok && !up[n] {
			up[n] = true
			missing--
		}
	}
	return up, nil
}
