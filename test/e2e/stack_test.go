package e2e_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/deus-ex-machina/deus/internal/store"
	"github.com/deus-ex-machina/deus/internal/testenv"
)

// Stack kinds: what evaluates the shipped rules and notifies the healer.
const (
	withPrometheus      = "prometheus"      // Prometheus and Alertmanager
	withVictoriaMetrics = "victoriametrics" // VictoriaMetrics, vmalert and Alertmanager
	standalone          = "standalone"      // the healer's embedded TSDB and rule manager
)

// stack is the running servers of one stack kind around one healer, and
// what the scenarios need to know about them.
type stack struct {
	t        testing.TB
	kind     string
	dir      string
	svc      dummyService
	svcProc  *proc // the service as the test started it
	tmp      string
	mounted  bool
	instance string // the instance label of this host's vitals
	// queryURL serves the Prometheus query API (Prometheus, VictoriaMetrics
	// or the healer's embedded TSDB), with queryToken when set.
	queryURL, queryToken string
	// rulesURL serves /api/v1/alerts of whatever evaluates the rules.
	rulesURL string
	amURL    string // "" for the standalone healer
	h        *healer
	// history is what the anomaly rules read an hour back, backfilled
	// before the stack started.
	history *signalHistory
	started time.Time // before its servers started
}

// dummyService is the watched service: the test binary run through a
// symbolic link, so that its command name (/proc/PID/comm) is name.
type dummyService struct {
	name    string // at most 15 bytes: comm is cut there
	exe     string
	pidfile string
}

func (d dummyService) unit() string { return d.name + ".service" }

// pid reads the service's pidfile; 0 when there is none.
func (d dummyService) pid() int {
	b, err := os.ReadFile(d.pidfile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// running reports whether pid is a live process with the service's name.
func (d dummyService) running(pid int) bool {
	if pid <= 1 {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...
	s := string(stat)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open || end+2 >= len(s) {
		return false
	}
	return s[open+1:end] == d.name && s[end+2] != 'Z'
}

// newDummyService makes the service's executable in dir and starts it; at
// cleanup it also kills the instance the healer started, found by its
// pidfile.
func newDummyService(t testing.TB, dir, name string) (dummyService, *proc) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d := dummyService{name: name, exe: filepath.Join(dir, name), pidfile: filepath.Join(dir, name+".pid")}
	if err := os.Symlink(self, d.exe); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The healer starts it in a session of its own: it outlives the
		// healer, so it is ended here, by its pid, once checked.
		if pid := d.pid(); d.running(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	p := startProc(t, dir, name, d.exe, d.pidfile)
	eventually(t, 10*time.Second, name+" writes its pidfile", func() (bool, string) {
		return d.pid() == p.Pid(), fmt.Sprintf("pidfile holds %d, want %d", d.pid(), p.Pid())
	})
	return d, p
}

// mountTmpfs mounts a 16 MiB tmpfs on dir and unmounts it at cleanup. It
// needs root: without it the test fails under CI and the caller skips
// elsewhere (mounted false).
func mountTmpfs(t testing.TB, dir string) bool {
	t.Helper()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=16m,mode=0755"); err != nil {
		if testenv.CI() {
			t.Fatalf("mount a tmpfs on %s: %v (CI=true, so this fails instead of skipping)", dir, err)
		}
		t.Logf("mount a tmpfs on %s: %v: the temp scenario will be skipped", dir, err)
		return false
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return true
}

// startStack starts the servers of kind around a healer configured from
// deploy/, with the dummy service and the tmpfs in place.
func startStack(t testing.TB, kind, short string) *stack {
	t.Helper()
	var bins map[string]string
	switch kind {
	case withPrometheus:
		bins = map[string]string{
			"prometheus": testenv.Binary(t, "prometheus"), "promtool": testenv.Binary(t, "promtool"),
			"alertmanager": testenv.Binary(t, "prometheus-alertmanager"), "amtool": testenv.Binary(t, "amtool"),
		}
	case withVictoriaMetrics:
		bins = map[string]string{
			"victoria-metrics": testenv.Binary(t, "victoria-metrics"), "vmalert": testenv.Binary(t, "vmalert"),
			"alertmanager": testenv.Binary(t, "prometheus-alertmanager"), "amtool": testenv.Binary(t, "amtool"),
		}
	}
	root := testenv.RepoRoot(t)
	s := &stack{t: t, kind: kind, dir: t.TempDir(), started: time.Now()}
	s.svc, s.svcProc = newDummyService(t, s.dir, dummyPrefix+short)
	s.tmp = filepath.Join(s.dir, "tmp")
	if err := os.Mkdir(s.tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	s.mounted = mountTmpfs(t, s.tmp)
	rulesDir := filepath.Join(s.dir, "rules")
	copyRules(t, root, rulesDir)

	h := &healer{
		t: t, dir: s.dir, addr: testenv.FreeAddr(t), dataDir: filepath.Join(s.dir, "data"),
		config: filepath.Join(s.dir, "healer.yml"), apiToken: "api-" + rand.Text(),
		apiTokenFile: filepath.Join(s.dir, "api.token"), hookTokenFile: filepath.Join(s.dir, "webhook.token"),
	}
	h.url = "http://" + h.addr
	writeFile(t, h.apiTokenFile, h.apiToken+"\n")
	writeFile(t, h.hookTokenFile, "webhook-"+rand.Text()+"\n")
	s.h = h

	exporterAddr, amAddr, tsdbAddr, vmalertAddr := testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	hs := healerSettings{
		webhookTokenFile: h.hookTokenFile, apiTokenFile: h.apiTokenFile, dataDir: h.dataDir,
		quarantineDir: filepath.Join(s.dir, "quarantine"), tempRoot: s.tmp, service: s.svc,
	}
	if kind == standalone {
		host, err := os.Hostname()
		if err != nil {
			t.Fatal(err)
		}
		// The embedded Prometheus labels this host's vitals with the host
		// name.
		s.instance = host
		s.queryURL, s.queryToken = h.url+"/prometheus", h.apiToken
		s.rulesURL = s.queryURL
	} else {
		// The instance label Prometheus and VictoriaMetrics give the
		// exporter's target: its address, host:port.
		s.instance = exporterAddr
		s.queryURL = "http://" + tsdbAddr
		s.amURL = "http://" + amAddr
		hs.prometheus, hs.am = s.queryURL, s.amURL
		s.rulesURL = s.queryURL
		if kind == withVictoriaMetrics {
			s.rulesURL = "http://" + vmalertAddr
		}
	}
	hs.identity = s.instance
	s.history = newSignalHistory(t, root, s.instance, time.Now().Add(-historyGap))
	if kind == standalone {
		// The embedded TSDB lives in the data directory's tsdb/ and opens
		// the blocks it finds there.
		s.history.writeBlock(t, filepath.Join(h.dataDir, "tsdb"))
	}
	writeYAML(t, h.config, healerConfig(t, root, hs))
	if out, err := exec.Command(healerBin, "check-config", h.config).CombinedOutput(); err != nil {
		t.Fatalf("healer check-config %s: %v\n%s", h.config, err, out)
	}

	args := []string{"serve", "--config.file=" + h.config, "--web.listen-address=" + h.addr, "--log.level=debug"}
	if kind == standalone {
		args = append(args, "--standalone.scrape-interval=1s", "--rules.dir="+rulesDir,
			"--collector.services.name="+s.svc.name, "--collector.services.backend=process")
	}
	h.proc = startProc(t, s.dir, "healer", healerBin, args...)
	testenv.WaitHTTP(t, h.url+"/-/ready", 30*time.Second)
	if kind == standalone {
		return s
	}

	startProc(t, s.dir, "exporter", exporterBin, "--web.listen-address="+exporterAddr,
		"--state.directory="+filepath.Join(s.dir, "exporter"),
		"--collector.services.name="+s.svc.name, "--collector.services.backend=process")
	testenv.WaitHTTP(t, "http://"+exporterAddr+"/-/healthy", 20*time.Second)

	amFile := filepath.Join(s.dir, "alertmanager.yml")
	writeYAML(t, amFile, alertmanagerConfig(t, root, h.url, h.hookTokenFile))
	if out, err := exec.Command(bins["amtool"], "check-config", amFile).CombinedOutput(); err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
	// --cluster.listen-address="" turns gossip off (else it binds
	// 0.0.0.0:9094).
	startProc(t, s.dir, "alertmanager", bins["alertmanager"], "--config.file="+amFile,
		"--storage.path="+filepath.Join(s.dir, "am-data"), "--web.listen-address="+amAddr,
		"--cluster.listen-address=", "--log.level=debug")
	testenv.WaitHTTP(t, s.amURL+"/-/ready", 30*time.Second)

	prom := prometheusConfig(t, root, promAddrs{exporter: exporterAddr, healer: h.addr, alertmanager: amAddr})
	switch kind {
	case withPrometheus:
		file := filepath.Join(s.dir, "prometheus.yml") // rule_files: rules/*.rules.yml, beside it
		writeYAML(t, file, prom)
		if out, err := exec.Command(bins["promtool"], "check", "config", file).CombinedOutput(); err != nil {
			t.Fatalf("promtool check config: %v\n%s", err, out)
		}
		data := filepath.Join(s.dir, "prom-data")
		s.history.writeBlock(t, data)
		startProc(t, s.dir, "prometheus", bins["prometheus"], "--config.file="+file,
			"--storage.tsdb.path="+data, "--web.listen-address="+tsdbAddr)
		testenv.WaitHTTP(t, s.queryURL+"/-/ready", 30*time.Second)
	case withVictoriaMetrics:
		file := filepath.Join(s.dir, "scrape.yml")
		writeYAML(t, file, scrapeOnly(t, prom))
		// -search.latencyOffset: VictoriaMetrics hides the newest 30s of
		// data by default.
		startProc(t, s.dir, "victoria-metrics", bins["victoria-metrics"], "-httpListenAddr="+tsdbAddr,
			"-storageDataPath="+filepath.Join(s.dir, "vm-data"), "-retentionPeriod=1d",
			"-promscrape.config="+file, "-search.latencyOffset=1s", "-search.disableCache")
		testenv.WaitHTTP(t, s.queryURL+"/health", 30*time.Second)
		// Before vmalert starts, so that its first evaluations have it.
		s.history.importVM(t, s.queryURL)
		startProc(t, s.dir, "vmalert", bins["vmalert"], "-rule="+filepath.Join(rulesDir, "*.rules.yml"),
			"-datasource.url="+s.queryURL, "-notifier.url="+s.amURL, "-remoteWrite.url="+s.queryURL,
			"-remoteWrite.flushInterval=1s", "-httpListenAddr="+vmalertAddr, "-evaluationInterval=1s")
		testenv.WaitHTTP(t, s.rulesURL+"/health", 30*time.Second)
	}
	return s
}

// healer is the healer server of a stack.
type healer struct {
	t             testing.TB
	dir           string
	addr, url     string
	config        string
	dataDir       string
	apiToken      string
	apiTokenFile  string
	hookTokenFile string
	proc          *proc
}

// storedAlert is an alert as GET /api/v1/alerts shows it.
type storedAlert = store.StoredAlert

// run is a run as GET /api/v1/runs shows it.
type run = store.Run

func (h *healer) alerts() []storedAlert {
	h.t.Helper()
	var a []storedAlert
	if err := apiData(h.url+"/api/v1/alerts?limit=10000", h.apiToken, &a); err != nil {
		h.t.Fatal(err)
	}
	return a
}

func (h *healer) runs() []run {
	h.t.Helper()
	var r []run
	if err := apiData(h.url+"/api/v1/runs?limit=10000", h.apiToken, &r); err != nil {
		h.t.Fatal(err)
	}
	return r
}

// cli runs the healer CLI against the server and returns its exit code and
// output.
func (h *healer) cli(args ...string) (int, string) {
	h.t.Helper()
	return testenv.RunCommand(h.t, healerBin, append(args, "--healer.url="+h.url, "--api.token-file="+h.apiTokenFile, "--by=e2e")...)
}

// auditRecord is the part of an audit line the tests read.
type auditRecord struct {
	Seq         uint64            `json:"seq"`
	Time        time.Time         `json:"time"`
	Kind        string            `json:"kind"`
	RunID       string            `json:"run_id"`
	Incident    string            `json:"incident"`
	Fingerprint string            `json:"fingerprint"`
	Runbook     string            `json:"runbook"`
	Action      string            `json:"action"`
	Result      string            `json:"result"`
	Reason      string            `json:"reason"`
	Fields      map[string]string `json:"fields"`
}

// auditRecords reads the audit log's complete lines (the server may be
// appending to the last one).
func (h *healer) auditRecords() []auditRecord {
	h.t.Helper()
	files, err := filepath.Glob(filepath.Join(h.dataDir, "audit", "audit*.log"))
	if err != nil {
		h.t.Fatal(err)
	}
	var recs []auditRecord
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			h.t.Fatal(err)
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			b = b[:i]
		} else {
			continue
		}
		for i, line := range bytes.Split(b, []byte("\n")) {
			var r auditRecord
			if err := json.Unmarshal(line, &r); err != nil {
				h.t.Fatalf("%s:%d: %v", f, i+1, err)
			}
			recs = append(recs, r)
		}
	}
	return recs
}

// stop ends the healer with SIGTERM, requires a clean exit without data
// races, and requires `healer audit verify` to pass on its log.
func (h *healer) stopAndVerify() {
	h.t.Helper()
	if err := h.proc.Stop(30 * time.Second); err != nil {
		h.t.Errorf("healer exited with %v after SIGTERM", err)
	}
	h.proc.CheckNoRace()
	testenv.VerifyAudit(h.t, healerBin, filepath.Join(h.dataDir, "audit"))
}

// sample is one point of a series.
type sample struct {
	t time.Time
	v float64
}

// series is a query result: its labels and samples (one for a vector).
type series struct {
	labels  map[string]string
	samples []sample
}

// query runs an instant query on the stack's query API at now.
func (s *stack) query(expr string) ([]series, error) {
	return s.queryAt(expr, time.Time{})
}

// queryAt runs an instant query on the stack's query API at the time at
// (now when zero).
func (s *stack) queryAt(expr string, at time.Time) ([]series, error) {
	var d struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
			Values [][]any           `json:"values"`
		} `json:"result"`
	}
	q := url.Values{"query": {expr}}
	if !at.IsZero() {
		q.Set("time", strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64))
	}
	if err := apiData(s.queryURL+"/api/v1/query?"+q.Encode(), s.queryToken, &d); err != nil {
		return nil, err
	}
	var out []series
	for _, r := range d.Result {
		sr := series{labels: r.Metric}
		points := r.Values
		if r.Value != nil {
			points = append(points, r.Value)
		}
		for _, p := range points {
			sm, err := parsePoint(p)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", expr, err)
			}
			sr.samples = append(sr.samples, sm)
		}
		out = append(out, sr)
	}
	return out, nil
}

// parsePoint reads [unix seconds, "value"].
func parsePoint(p []any) (sample, error) {
	if len(p) != 2 {
		return sample{}, fmt.Errorf("point %v: want [time, value]", p)
	}
	ts, ok := p[0].(float64)
	str, ok2 := p[1].(string)
	if !ok || !ok2 {
		return sample{}, fmt.Errorf("point %v: want [number, string]", p)
	}
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return sample{}, fmt.Errorf("point %v: %w", p, err)
	}
	return sample{t: time.UnixMilli(int64(ts * 1000)), v: v}, nil
}

// ruleAlert is an alert as the rule evaluator's /api/v1/alerts lists it
// (Prometheus, vmalert and the embedded one answer alike).
type ruleAlert struct {
	Name     string            `json:"name"` // vmalert's
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
	ActiveAt time.Time         `json:"activeAt"`
}

// ruleAlerts lists the alerts the rule evaluator holds pending or firing.
func (s *stack) ruleAlerts() ([]ruleAlert, error) {
	var d struct {
		Alerts []ruleAlert `json:"alerts"`
	}
	if err := apiData(s.rulesURL+"/api/v1/alerts", s.queryToken, &d); err != nil {
		return nil, err
	}
	return d.Alerts, nil
}

// amAlerts lists Alertmanager's active alerts with labels matching
// filter (Alertmanager matchers).
func (s *stack) amAlerts(filter ...string) ([]map[string]any, error) {
	q := url.Values{}
	for _, f := range filter {
		q.Add("filter", f)
	}
	var a []map[string]any
	err := getJSON(s.amURL+"/api/v2/alerts?"+q.Encode(), "", &a)
	return a, err
}
