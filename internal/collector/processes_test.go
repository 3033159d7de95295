package collector

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fakeProc is a /proc tree holding only what the processes collector reads.
type fakeProc struct{ dir string }

// fakeProcess is one process as /proc/PID/stat shows it.
type fakeProcess struct {
	pid       int
	comm      string
	state     byte
	utime     uint64 // clock ticks
	stime     uint64
	startTime uint64
	rssPages  int64
}

func newFakeProc(t *testing.T) fakeProc {
	t.Helper()
	p := fakeProc{dir: t.TempDir()}
	// Entries that are not processes are skipped.
	if err := os.MkdirAll(filepath.Join(p.dir, "sys", "kernel"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "meminfo"), []byte("MemTotal: 1 kB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// set writes the stat file of each process, replacing an earlier one.
func (p fakeProc) set(t *testing.T, procs ...fakeProcess) {
	t.Helper()
	for _, pr := range procs {
		dir := filepath.Join(p.dir, strconv.Itoa(pr.pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		stat := fmt.Sprintf("%d (%s) %c 1 %d %d 0 -1 4194560 120 0 0 0 %d %d 0 0 20 0 1 0 %d 12345678 %d 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
			pr.pid, pr.comm, pr.state, pr.pid, pr.pid, pr.utime, pr.stime, pr.startTime, pr.rssPages)
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// exit removes processes from the tree.
func (p fakeProc) exit(t *testing.T, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		if err := os.RemoveAll(filepath.Join(p.dir, strconv.Itoa(pid))); err != nil {
			t.Fatal(err)
		}
	}
}

func (p fakeProc) collector(topN int) *Processes {
	return &Processes{Paths: Paths{Proc: p.dir}, TopN: topN, PageSize: 4096}
}

// groupNames lists the groups of one family, sorted.
func groupNames(samples map[string]float64, name string) []string {
	var got []string
	for series := range samplesOf(samples, name) {
		got = append(got, series[len(name+`{groupname="`):len(series)-len(`"}`)])
	}
	slices.Sort(got)
	return got
}

// groupFamilies are the families with a groupname label.
var groupFamilies = []string{
	"deus_process_group_cpu_seconds_total",
	"deus_process_group_resident_memory_bytes",
	"deus_process_group_processes",
}

// cpuApprox compares CPU seconds, which are sums of tick/100 fractions.
var cpuApprox = cmpopts.EquateApprox(0, 1e-9)

func TestProcesses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(t *testing.T, p fakeProc)
	}{
		{
			name: "TopN reports the union of the top groups by CPU since the last scrape and by memory",
			run: func(t *testing.T, p fakeProc) {
				p.set(t,
					fakeProcess{pid: 10, comm: "old", state: 'S', utime: 90000, startTime: 5, rssPages: 100},
					fakeProcess{pid: 20, comm: "burner", state: 'R', utime: 100, startTime: 50, rssPages: 10},
					fakeProcess{pid: 30, comm: "hog", state: 'S', utime: 10, startTime: 60, rssPages: 100000},
					fakeProcess{pid: 31, comm: "hog", state: 'S', utime: 10, startTime: 61, rssPages: 100000},
					fakeProcess{pid: 40, comm: "idle", state: 'S', utime: 1, startTime: 70, rssPages: 50},
				)
				c := p.collector(1)
				got := mustUpdate(t, c)
				// On the first scrape the CPU ranking goes by all the CPU
				// time the processes have used.
				if diff := cmp.Diff([]string{"hog", "old"}, groupNames(got, "deus_process_group_cpu_seconds_total")); diff != "" {
					t.Errorf("groups on the first scrape mismatch (-want +got):\n%s", diff)
				}

				// From then on by what they used since the previous scrape:
				// "old" used nothing and drops out.
				p.set(t, fakeProcess{pid: 20, comm: "burner", state: 'R', utime: 400, stime: 100, startTime: 50, rssPages: 10})
				got = mustUpdate(t, c)
				want := map[string]float64{
					`deus_process_group_cpu_seconds_total{groupname="burner"}`:     5,
					`deus_process_group_cpu_seconds_total{groupname="hog"}`:        0.2,
					`deus_process_group_resident_memory_bytes{groupname="burner"}`: 10 * 4096,
					`deus_process_group_resident_memory_bytes{groupname="hog"}`:    200000 * 4096,
					`deus_process_group_processes{groupname="burner"}`:             1,
					`deus_process_group_processes{groupname="hog"}`:                2,
				}
				got = mergeFamilies(got, groupFamilies...)
				if diff := cmp.Diff(want, got, cpuApprox); diff != "" {
					t.Errorf("groups on the second scrape mismatch (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "TopN above the number of groups reports them all",
			run: func(t *testing.T, p fakeProc) {
				p.set(t,
					fakeProcess{pid: 1, comm: "systemd", state: 'S', utime: 300, startTime: 1, rssPages: 3000},
					fakeProcess{pid: 2, comm: "kthreadd", state: 'S', startTime: 1},
					fakeProcess{pid: 400, comm: "tmux: server", state: 'S', utime: 5, startTime: 900, rssPages: 900},
				)
				got := mustUpdate(t, p.collector(5))
				want := []string{"kthreadd", "systemd", "tmux: server"}
				for _, name := range groupFamilies {
					if diff := cmp.Diff(want, groupNames(got, name)); diff != "" {
						t.Errorf("%s groups mismatch (-want +got):\n%s", name, diff)
					}
				}
			},
		},
		{
			name: "a group's CPU counter stays monotonic as processes exit and PIDs are reused",
			run: func(t *testing.T, p fakeProc) {
				const series = `deus_process_group_cpu_seconds_total{groupname="worker"}`
				p.set(t,
					fakeProcess{pid: 100, comm: "worker", state: 'S', utime: 40, stime: 10, startTime: 1000, rssPages: 1},
					fakeProcess{pid: 101, comm: "worker", state: 'S', utime: 30, startTime: 1001, rssPages: 1},
				)
				c := p.collector(3)
				steps := []struct {
					change func()
					want   float64
				}{
					{func() {}, 0.8},
					// 101 runs on, 100 exits and a new worker gets its PID:
					// all of the new process's 70 ticks are new, not 70-50.
					{func() {
						p.exit(t, 100)
						p.set(t,
							fakeProcess{pid: 100, comm: "worker", state: 'R', utime: 70, startTime: 5000, rssPages: 1},
							fakeProcess{pid: 101, comm: "worker", state: 'S', utime: 40, startTime: 1001, rssPages: 1},
						)
					}, 0.8 + 0.1 + 0.7},
					// The busiest worker exits: the counter does not drop.
					{func() { p.exit(t, 100) }, 1.6},
					{func() {
						p.set(t, fakeProcess{pid: 101, comm: "worker", state: 'S', utime: 45, startTime: 1001, rssPages: 1})
					}, 1.65},
				}
				for i, s := range steps {
					s.change()
					got := seriesValue(t, mustUpdate(t, c), series)
					if !cmp.Equal(got, s.want, cpuApprox) {
						t.Errorf("scrape %d: %s = %g; want %g", i+1, series, got, s.want)
					}
				}
			},
		},
		{
			name: "a group with no process left disappears",
			run: func(t *testing.T, p fakeProc) {
				p.set(t,
					fakeProcess{pid: 1, comm: "systemd", state: 'S', utime: 300, startTime: 1, rssPages: 3000},
					fakeProcess{pid: 700, comm: "cron", state: 'S', utime: 20, startTime: 100, rssPages: 200},
				)
				c := p.collector(5)
				got := mustUpdate(t, c)
				if diff := cmp.Diff([]string{"cron", "systemd"}, groupNames(got, "deus_process_group_processes")); diff != "" {
					t.Errorf("groups before the exit mismatch (-want +got):\n%s", diff)
				}
				p.exit(t, 700)
				got = mustUpdate(t, c)
				for _, name := range groupFamilies {
					if diff := cmp.Diff([]string{"systemd"}, groupNames(got, name)); diff != "" {
						t.Errorf("%s groups after the exit mismatch (-want +got):\n%s", name, diff)
					}
				}

				// A new cron starts a new counter.
				p.set(t, fakeProcess{pid: 701, comm: "cron", state: 'S', utime: 3, startTime: 5000, rssPages: 200})
				got = mustUpdate(t, c)
				if v := seriesValue(t, got, `deus_process_group_cpu_seconds_total{groupname="cron"}`); !cmp.Equal(v, 0.03, cpuApprox) {
					t.Errorf(`cron CPU after its return = %g; want 0.03`, v)
				}
			},
		},
		{
			name: "process states always include D, I, R, S, T and Z",
			run: func(t *testing.T, p fakeProc) {
				c := p.collector(5)
				wantStates := func(want map[string]float64) {
					t.Helper()
					w := map[string]float64{}
					for s, v := range want {
						w[`deus_processes{state="`+s+`"}`] = v
					}
					if diff := cmp.Diff(w, samplesOf(mustUpdate(t, c), "deus_processes")); diff != "" {
						t.Errorf("deus_processes mismatch (-want +got):\n%s", diff)
					}
				}
				wantStates(map[string]float64{"D": 0, "I": 0, "R": 0, "S": 0, "T": 0, "Z": 0})
				p.set(t,
					fakeProcess{pid: 1, comm: "systemd", state: 'S', startTime: 1},
					fakeProcess{pid: 2, comm: "kworker/0:1", state: 'I', startTime: 2},
					fakeProcess{pid: 3, comm: "sshd", state: 'S', startTime: 3},
					fakeProcess{pid: 4, comm: "make", state: 'R', startTime: 4},
					fakeProcess{pid: 5, comm: "defunct) (x", state: 'Z', startTime: 5},
					fakeProcess{pid: 6, comm: "gdb", state: 't', startTime: 6},
				)
				wantStates(map[string]float64{"D": 0, "I": 1, "R": 1, "S": 2, "T": 0, "Z": 1, "t": 1})
			},
		},
		{
			name: "a stat that cannot be parsed does not count the CPU of other processes twice",
			run: func(t *testing.T, p fakeProc) {
				const series = `deus_process_group_cpu_seconds_total{groupname="worker"}`
				// Enough processes that the broken one is unlikely to be
				// listed first, before any of the workers.
				for pid := 100; pid < 110; pid++ {
					p.set(t, fakeProcess{pid: pid, comm: "worker", state: 'S', utime: 100, startTime: uint64(pid)})
				}
				c := p.collector(3)
				if got := seriesValue(t, mustUpdate(t, c), series); !cmp.Equal(got, 10.0, cpuApprox) {
					t.Fatalf("first scrape: %s = %g; want 10", series, got)
				}

				for pid := 100; pid < 110; pid++ {
					p.set(t, fakeProcess{pid: pid, comm: "worker", state: 'S', utime: 200, startTime: uint64(pid)})
				}
				if err := os.MkdirAll(filepath.Join(p.dir, "999"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(p.dir, "999", "stat"), []byte("999 (broken) S 1\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				got, err := updateSamples(t, c)
				if err == nil {
					t.Errorf("Update() with a truncated stat = nil; want an error")
				}
				if v := seriesValue(t, got, series); !cmp.Equal(v, 20.0, cpuApprox) {
					t.Errorf("second scrape: %s = %g; want 20", series, v)
				}

				p.exit(t, 999)
				for pid := 100; pid < 110; pid++ {
					p.set(t, fakeProcess{pid: pid, comm: "worker", state: 'S', utime: 300, startTime: uint64(pid)})
				}
				if got := seriesValue(t, mustUpdate(t, c), series); !cmp.Equal(got, 30.0, cpuApprox) {
					t.Errorf("third scrape: %s = %g; want 30", series, got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newFakeProc(t))
		})
	}
}

// mergeFamilies keeps the samples of the named families.
func mergeFamilies(samples map[string]float64, names ...string) map[string]float64 {
	got := map[string]float64{}
	for _, name := range names {
		for series, v := range samplesOf(samples, name) {
			got[series] = v
		}
	}
	return got
}
