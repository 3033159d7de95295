package exporter

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deus-ex-machina/deus/internal/collector"
	"github.com/deus-ex-machina/deus/internal/testenv"
)

var update = flag.Bool("update", false, "update golden files")

// fixtureOptions point every collector at testdata/fixture, with a fixed
// clock, uname and statfs, so the output depends on nothing of the host.
func fixtureOptions(t *testing.T) Options {
	t.Helper()
	o := DefaultOptions()
	o.Paths = collector.Paths{Proc: "testdata/fixture/proc", Sys: "testdata/fixture/sys", Root: "testdata/fixture/root"}
	o.StateDir = t.TempDir()
	o.Services = []string{"sshd", "my-odd-app", "nginx.service"}
	o.PageSize = 4096
	// Long enough that a mount which answers at once is never taken for hung
	// on a loaded machine (50 ms was not, under -race on two busy cores);
	// the dead NFS mount below costs a scrape this second.
	o.FilesystemMountTimeout = time.Second
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	o.Now = func() time.Time { return now }
	o.Uname = func() (collector.UnameInfo, error) {
		return collector.UnameInfo{SysName: "Linux", Release: "6.1.0-27-amd64", Version: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1", Machine: "x86_64", NodeName: "web1", DomainName: "(none)"}, nil
	}
	hung := make(chan struct{})
	t.Cleanup(func() { close(hung) })
	o.StatFS = func(path string) (collector.FSStat, error) {
		switch strings.TrimPrefix(path, o.Paths.Root) {
		case "/srv/nfs":
			<-hung // a dead NFS server
			return collector.FSStat{}, syscall.EIO
		case "/boot":
			return collector.FSStat{Blocks: 1000, BlocksFree: 400, BlocksAvail: 300, BlockSize: 1024, Files: 100, FilesFree: 90}, nil
		case "/mnt/with space":
			return collector.FSStat{}, syscall.EACCES
		default:
			return collector.FSStat{Blocks: 66052048, BlocksFree: 62993530, BlocksAvail: 20815826, BlockSize: 4096, Files: 16777216, FilesFree: 16372741}, nil
		}
	}
	// Read the whole auth log, as if the exporter had been tailing it.
	authLog := filepath.Join(o.Paths.Root, "var/log/auth.log")
	st, err := os.Stat(authLog)
	if err != nil {
		t.Fatal(err)
	}
	pos := `{"path":"` + authLog + `","inode":` + strconv.FormatUint(st.Sys().(*syscall.Stat_t).Ino, 10) + `,"offset":0}`
	if err := os.WriteFile(filepath.Join(o.StateDir, "authlog.json"), []byte(pos), 0o600); err != nil {
		t.Fatal(err)
	}
	return o
}

func scrapeFixture(t *testing.T, o Options) []byte {
	t.Helper()
	entries, err := Collectors(o)
	if err != nil {
		t.Fatal(err)
	}
	s := collector.NewScraper(testenv.Logger(t), 5*time.Second, collector.BuildInfo{Version: "test"}, entries)
	var buf bytes.Buffer
	if err := s.Scrape(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// stable drops the lines that measure time.
func stable(b []byte) []byte {
	var out bytes.Buffer
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "deus_scrape_collector_duration_seconds{") {
			continue
		}
		if line != "" {
			out.WriteString(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

func TestFixtureMatchesGolden(t *testing.T) {
	got := stable(scrapeFixture(t, fixtureOptions(t)))
	golden := filepath.Join("testdata", "fixture.prom")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("exposition differs from %s (-want +got), run with -update if intended:\n%s", golden, diff)
	}
}

// TestGoldenPassesPromtool runs promtool check metrics on the golden file.
// The only findings allowed are node_exporter's own camelCase memory names
// (node_memory_MemTotal_bytes), which we keep for compatibility.
func TestGoldenPassesPromtool(t *testing.T) {
	promtool := testenv.Binary(t, "promtool")
	b, err := os.ReadFile(filepath.Join("testdata", "fixture.prom"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.CombinedOutput()
	var findings []string
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if line == "" || strings.HasPrefix(line, "node_memory_") && strings.HasSuffix(line, "should be written in 'snake_case' not 'camelCase'") {
			continue
		}
		findings = append(findings, line)
	}
	if len(findings) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, strings.Join(findings, "\n"))
	}
	if err != nil && len(findings) == 0 && cmd.ProcessState.ExitCode() != 3 {
		t.Errorf("promtool check metrics failed: %v\n%s", err, out)
	}
}
