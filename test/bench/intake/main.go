// Command intake-bench measures the healer's webhook intake: alerts durably
// accepted per second and request latency, for 1 and for 50 alerts per
// request at a fixed concurrency, beside a no-op handler that only decodes
// the same JSON over the same HTTP stack and client, and the latency at a
// fixed offered rate (open loop).
//
// The healer is the real one, in-process: the store (SQLite, synchronous
// normal unless -storage.synchronous says full), the audit log, the planner running concurrently (no runbooks, so it
// records and closes every alert) and web.Handler, served over TCP on
// loopback to a keep-alive HTTP/1.1 client. Every alert is new (a unique
// fingerprint and startsAt), except in the duplicates scenario.
//
// After each healer scenario the store is closed, opened again and checked
// to hold exactly the alerts that were answered 200; a missing alert fails
// the program. That is the durability check; the figures are only reported.
package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/app"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/config"
	"github.com/deus-ex-machina/deus/internal/healer"
	"github.com/deus-ex-machina/deus/internal/store"
	"github.com/deus-ex-machina/deus/internal/web"
)

// webhookFiring was posted by a real Alertmanager 0.25; every payload is
// built from it.
//
//go:embed testdata/webhook-firing.json
var webhookFiring []byte

// The targets.
const (
	targetSingle  = 10000 // alerts/s durable, 1 alert per request
	targetBatch   = 50000 // alerts/s durable, 50 alerts per request
	targetP99     = 20 * time.Millisecond
	openLoopConns = 64 // enough for 1,000 req/s not to queue below 64 ms
	token         = "bench-token"
)

type kind int

const (
	noop kind = iota
	full
)

func (k kind) String() string {
	if k == noop {
		return "no-op"
	}
	return "healer"
}

type scenario struct {
	label    string
	kind     kind
	perReq   int
	dup      bool // every request repeats one alert
	rate     int  // offered alerts/s, open loop; 0 is closed loop
	target   float64
	baseline int // index of the no-op scenario to compare with; -1 for none
}

type options struct {
	duration, warmup time.Duration
	concurrency      int
	rate             int
	dir, sync        string
	cpuProfile       string
	memProfile       string
	only             *regexp.Regexp
	planner          bool
}

func main() {
	var o options
	only := flag.String("run", "", "run only the scenarios whose name matches this regular expression")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured time of each scenario")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "warm-up time of each scenario, not measured")
	flag.IntVar(&o.concurrency, "concurrency", 8, "concurrent requests in the closed-loop scenarios")
	flag.IntVar(&o.rate, "rate", 1000, "offered alerts/s in the open-loop scenario")
	flag.StringVar(&o.dir, "dir", "", "directory for the healer's state (a temporary one on the default disk when empty)")
	flag.StringVar(&o.sync, "storage.synchronous", "normal", "the store's synchronous setting: full or normal")
	flag.BoolVar(&o.planner, "planner", true, "run the planner during intake, as the healer does (false isolates the intake)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (client and servers share the process: focus on internal/ for the healer's side)")
	flag.StringVar(&o.memProfile, "memprofile", "", "write a heap profile (allocations included) at the end of the run to this file")
	flag.Parse()
	var err error
	if o.only, err = regexp.Compile(*only); err != nil {
		fmt.Fprintln(os.Stderr, "intake-bench: -run:", err)
		os.Exit(2)
	}
	if o.duration <= 0 || o.warmup < 0 || o.concurrency < 1 || o.rate < 1 {
		fmt.Fprintln(os.Stderr, "intake-bench: -duration, -concurrency and -rate must be positive, -warmup not negative")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "intake-bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	root := o.dir
	if root == "" {
		d, err := os.MkdirTemp("", "intake-bench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		root = d
	}
	c := o.concurrency
	scenarios := []scenario{
		{label: fmt.Sprintf("1 alert/request, c=%d", c), kind: noop, perReq: 1, baseline: -1},
		{label: fmt.Sprintf("1 alert/request, c=%d", c), kind: full, perReq: 1, target: targetSingle, baseline: 0},
		{label: fmt.Sprintf("50 alerts/request, c=%d", c), kind: noop, perReq: 50, baseline: -1},
		{label: fmt.Sprintf("50 alerts/request, c=%d", c), kind: full, perReq: 50, target: targetBatch, baseline: 2},
		{label: fmt.Sprintf("1 duplicate/request, c=%d", c), kind: full, perReq: 1, dup: true, baseline: 0},
		{label: fmt.Sprintf("%d alerts/s offered", o.rate), kind: noop, perReq: 1, rate: o.rate, baseline: -1},
		{label: fmt.Sprintf("%d alerts/s offered", o.rate), kind: full, perReq: 1, rate: o.rate, baseline: 5},
	}

	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.memProfile != "" {
		defer func() {
			if err := writeHeapProfile(o.memProfile); err != nil {
				fmt.Fprintln(os.Stderr, "intake-bench: -memprofile:", err)
			}
		}()
	}

	client := &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			MaxIdleConns:        4 * openLoopConns,
			MaxIdleConnsPerHost: 2 * openLoopConns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
	fmt.Printf("GOMAXPROCS %d, %s, storage.synchronous %s, planner %t, state in %s, %s per scenario after %s warm-up\n",
		runtime.GOMAXPROCS(0), runtime.Version(), o.sync, o.planner, root, o.duration, o.warmup)

	results := make([]*result, len(scenarios))
	var failed []error
	for i, sc := range scenarios {
		if !o.only.MatchString(sc.name()) {
			continue
		}
		r, err := measure(client, sc, o, filepath.Join(root, fmt.Sprintf("scenario%d", i)))
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name(), err)
		}
		if r.verifyErr != nil {
			failed = append(failed, fmt.Errorf("%s: %w", sc.name(), r.verifyErr))
		}
		results[i] = r
	}
	report(scenarios, results)
	return errors.Join(failed...)
}

func (sc scenario) name() string { return sc.label + " (" + sc.kind.String() + ")" }

// result is what one scenario measured.
type result struct {
	requests         int // answered 200, in the measured phase
	failures         int // answered otherwise or not at all, in both phases
	firstFailure     error
	offered, dropped int // open loop: ticks sent, and ticks not sent as every worker was busy
	elapsed          time.Duration
	p50, p99         time.Duration
	stored           int // alerts in the store afterwards
	verifyErr        error
}

func measure(client *http.Client, sc scenario, o options, dir string) (*result, error) {
	tgt, err := start(sc.kind, dir, o)
	if err != nil {
		return nil, err
	}
	p, err := newPayload(webhookFiring, sc.perReq)
	if err != nil {
		return nil, errors.Join(err, tgt.stop())
	}
	ld := &load{client: client, url: tgt.url, p: p, dup: sc.dup}
	if sc.dup {
		ld.dupSeq = seq.Add(1)
	}
	workers := o.concurrency
	if sc.rate > 0 {
		workers = openLoopConns
	}
	drive := func(d time.Duration) *phase {
		if sc.rate > 0 {
			return ld.openLoop(d, workers, sc.rate/sc.perReq)
		}
		return ld.closedLoop(d, workers)
	}
	warm := drive(o.warmup)
	ph := drive(o.duration)
	if err := tgt.stop(); err != nil {
		return nil, err
	}
	r := ph.result()
	r.failures += warm.failures
	if r.firstFailure == nil {
		r.firstFailure = warm.firstFailure
	}
	if sc.kind == full {
		accepted := append(warm.accepted, ph.accepted...)
		r.stored, r.verifyErr = verify(dir, o.sync, accepted, sc.perReq, sc.dup)
	}
	return r, nil
}

// target is a server under test.
type target struct {
	url  string
	stop func() error
}

func start(k kind, dir string, o options) (*target, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	url := "http://" + ln.Addr().String() + "/webhook"
	maxBody := int64(config.Default().Webhook.MaxBodySize)
	if k == noop {
		srv := newServer(decodeOnly(maxBody))
		go func() { _ = srv.Serve(ln) }()
		return &target{url: url, stop: func() error { return srv.Shutdown(context.Background()) }}, nil
	}
	stack, err := startHealer(dir, o.sync, o.planner)
	if err != nil {
		ln.Close()
		return nil, err
	}
	srv := newServer(stack.handler)
	go func() { _ = srv.Serve(ln) }()
	return &target{url: url, stop: func() error {
		return errors.Join(srv.Shutdown(context.Background()), stack.stop())
	}}, nil
}

// newServer has the healer server's timeouts (internal/app).
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      10 * time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
}

// decodeOnly is the no-op receiver: it reads, decodes and splits the body
// as the webhook does, and stores nothing.
func decodeOnly(maxBody int64) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhook", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		msg, err := alertmanager.Decode(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		alerts := alertmanager.Split(msg)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","alerts":%d,"new":%d}`+"\n", len(alerts), len(alerts))
	})
	return mux
}

// healerStack is the healer as internal/app wires it, with the planner
// running and no runbooks: every alert is stored, then planned (two audit
// records and an update) while more arrive.
type healerStack struct {
	handler http.Handler
	st      *store.Store
	alog    *audit.Log
	cancel  context.CancelFunc
	ran     chan error
}

// sink is where the healer's JSON log goes, so that the bench pays for
// encoding every record at info level but not for a terminal.
type sink struct{}

func (sink) Write(p []byte) (int, error) { return len(p), nil }

func startHealer(dir, sync string, planner bool) (*healerStack, error) {
	logger := slog.New(slog.NewJSONHandler(sink{}, nil))
	cfg := config.Default()
	cfg.Storage.Path, cfg.Storage.Synchronous = dir, sync
	cfg.Audit.Path = filepath.Join(dir, "audit")
	tokenFile := filepath.Join(dir, "token")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return nil, err
	}
	cfg.Webhook.BearerTokenFile = tokenFile
	tokens, err := web.LoadTokens(cfg.Webhook.BearerTokenFile, "")
	if err != nil {
		return nil, err
	}
	access, err := web.NewAccess(tokens, nil, nil, logger)
	if err != nil {
		return nil, err
	}
	reg, err := app.Actions(cfg, nil, logger)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(cfg.Storage.Path, store.Options{Synchronous: sync, Logger: logger})
	if err != nil {
		return nil, err
	}
	alog, err := audit.Open(cfg.Audit.Path, audit.Options{MaxBytes: int64(cfg.Audit.MaxSize), MaxAge: time.Duration(cfg.Audit.MaxAge)})
	if err != nil {
		return nil, errors.Join(err, st.Close())
	}
	promReg := prometheus.NewPedanticRegistry()
	h := healer.New(healer.Options{Store: st, Audit: alog, Actions: reg, Metrics: healer.NewMetrics(promReg), Logger: logger}, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	s := &healerStack{st: st, alog: alog, cancel: cancel, ran: make(chan error, 1)}
	if planner {
		go func() { s.ran <- h.Run(ctx) }()
	} else {
		s.ran <- nil
	}
	s.handler = web.Handler(web.Options{
		Healer: h, Store: st, Actions: reg, Gatherer: promReg, Logger: logger, Ready: func() bool { return true },
	}, access, func() int64 { return int64(h.Config().Webhook.MaxBodySize) })
	return s, nil
}

func (s *healerStack) stop() error {
	s.cancel()
	err := <-s.ran
	return errors.Join(err, s.alog.Close(), s.st.Close())
}

// verify opens the store again and checks that it holds every alert that
// was answered 200, and nothing else: accepted are the first sequence
// numbers of the accepted requests of perReq alerts each.
func verify(dir, sync string, accepted []uint64, perReq int, dup bool) (n int, err error) {
	st, err := store.Open(dir, store.Options{Synchronous: sync})
	if err != nil {
		return 0, err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	want := map[string]bool{}
	for _, first := range accepted {
		for j := range uint64(perReq) {
			want[fingerprint(first+j)] = true
		}
	}
	got, err := st.Alerts(context.Background(), "", len(accepted)*perReq+1)
	if err != nil {
		return 0, err
	}
	if dup {
		if len(got) != 1 || got[0].Deliveries != len(accepted) {
			deliveries := 0
			for _, a := range got {
				deliveries += a.Deliveries
			}
			return len(got), fmt.Errorf("store holds %d alerts with %d deliveries, want 1 alert with %d", len(got), deliveries, len(accepted))
		}
		return len(got), nil
	}
	for _, a := range got {
		delete(want, a.Fingerprint)
	}
	if len(want) > 0 || len(got) != len(accepted)*perReq {
		return len(got), fmt.Errorf("store holds %d alerts, want the %d answered 200; %d of those are missing", len(got), len(accepted)*perReq, len(want))
	}
	return len(got), nil
}

// payload builds request bodies from the fixture: perReq copies of its
// alert, each with its own fingerprint and startsAt written in place.
type payload struct {
	tmpl   []byte
	perReq int
	fp, ts []int // offsets of each alert's fingerprint and startsAt
}

const tsLayout = "2006-01-02T15:04:05.000Z07:00" // milliseconds, as Prometheus sends

var (
	fpMark = strings.Repeat("@", 16)
	tsMark = strings.Repeat("#", len("2026-11-23T18:19:19.694Z"))
	// base is the startsAt of sequence number 0; each next one is 1 ms later.
	base = time.Date(2026, 11, 23, 18, 19, 19, 694e6, time.UTC)
	// seq numbers the alerts of the whole run, so that no two are equal.
	seq atomic.Uint64
)

func newPayload(fixture []byte, perReq int) (*payload, error) {
	var doc map[string]any
	if err := json.Unmarshal(fixture, &doc); err != nil {
		return nil, fmt.Errorf("fixture: %w", err)
	}
	alerts, ok := doc["alerts"].([]any)
	if !ok || len(alerts) == 0 {
		return nil, errors.New("fixture: no alerts")
	}
	first, ok := alerts[0].(map[string]any)
	if !ok {
		return nil, errors.New("fixture: alerts[0] is not an object")
	}
	list := make([]any, perReq)
	for i := range list {
		a := maps.Clone(first)
		a["fingerprint"], a["startsAt"] = fpMark, tsMark
		list[i] = a
	}
	doc["alerts"] = list
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	p := &payload{tmpl: b, perReq: perReq}
	for off := 0; ; {
		i := bytes.Index(b[off:], []byte(fpMark))
		if i < 0 {
			break
		}
		p.fp, off = append(p.fp, off+i), off+i+len(fpMark)
	}
	for off := 0; ; {
		i := bytes.Index(b[off:], []byte(tsMark))
		if i < 0 {
			break
		}
		p.ts, off = append(p.ts, off+i), off+i+len(tsMark)
	}
	if len(p.fp) != perReq || len(p.ts) != perReq {
		return nil, fmt.Errorf("template: %d fingerprints and %d startsAt, want %d", len(p.fp), len(p.ts), perReq)
	}
	return p, nil
}

// fill writes the body whose alerts have the sequence numbers first,
// first+1, ... into dst.
func (p *payload) fill(dst []byte, first uint64, dup bool) []byte {
	dst = append(dst[:0], p.tmpl...)
	var ts [32]byte
	for j := range p.perReq {
		n := first
		if !dup {
			n += uint64(j)
		}
		copy(dst[p.fp[j]:], fingerprint(n))
		copy(dst[p.ts[j]:], base.Add(time.Duration(n)*time.Millisecond).AppendFormat(ts[:0], tsLayout))
	}
	return dst
}

// fingerprint is 16 hex digits, scattered as real fingerprints are (the
// multiplication by an odd constant is a bijection), so inserts land all
// over the store's index.
func fingerprint(n uint64) string {
	return fmt.Sprintf("%016x", n*0x9e3779b97f4a7c15)
}

// load drives one target.
type load struct {
	client *http.Client
	url    string
	p      *payload
	dup    bool
	dupSeq uint64
}

// phase is what a stretch of load observed.
type phase struct {
	mu           sync.Mutex
	lat          []time.Duration
	accepted     []uint64 // first sequence number of each request answered 200
	failures     int
	firstFailure error
	offered      int
	dropped      int
	elapsed      time.Duration
}

func (ph *phase) add(lat []time.Duration, accepted []uint64, failures int, firstFailure error) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	ph.lat = append(ph.lat, lat...)
	ph.accepted = append(ph.accepted, accepted...)
	ph.failures += failures
	if ph.firstFailure == nil {
		ph.firstFailure = firstFailure
	}
}

func (ph *phase) result() *result {
	r := &result{
		requests: len(ph.accepted), failures: ph.failures, firstFailure: ph.firstFailure,
		offered: ph.offered, dropped: ph.dropped, elapsed: ph.elapsed,
	}
	if len(ph.lat) > 0 {
		slices.Sort(ph.lat)
		r.p50, r.p99 = ph.lat[len(ph.lat)/2], ph.lat[len(ph.lat)*99/100]
	}
	return r
}

// worker sends one request per job and records its latency from the job's
// time (the scheduled send in an open loop, so waiting counts).
func (ld *load) worker(ph *phase, jobs func() (time.Time, bool)) {
	var (
		buf          = make([]byte, 0, len(ld.p.tmpl))
		lat          []time.Duration
		accepted     []uint64
		failures     int
		firstFailure error
	)
	for {
		at, ok := jobs()
		if !ok {
			break
		}
		first := ld.dupSeq
		if !ld.dup {
			first = seq.Add(uint64(ld.p.perReq)) - uint64(ld.p.perReq)
		}
		buf = ld.p.fill(buf, first, ld.dup)
		if err := ld.post(buf); err != nil {
			failures++
			if firstFailure == nil {
				firstFailure = err
			}
			continue
		}
		lat = append(lat, time.Since(at))
		accepted = append(accepted, first)
	}
	ph.add(lat, accepted, failures, firstFailure)
}

func (ld *load) post(body []byte) error {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, ld.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Alertmanager/0.25.0")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := ld.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// closedLoop keeps workers requests in flight for d.
func (ld *load) closedLoop(d time.Duration, workers int) *phase {
	ph := &phase{}
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			ld.worker(ph, func() (time.Time, bool) {
				now := time.Now()
				return now, now.Before(deadline)
			})
		})
	}
	wg.Wait()
	ph.elapsed = time.Since(start)
	return ph
}

// openLoop offers reqPerSec requests a second for d over workers
// connections, whatever the answers take. A ticker paces it; when ticks
// come late (the CPUs are busy) the requests that fell due meanwhile are
// sent at once, so the offered rate holds. Latency counts from when each
// request fell due.
func (ld *load) openLoop(d time.Duration, workers, reqPerSec int) *phase {
	ph := &phase{}
	jobs := make(chan time.Time, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			ld.worker(ph, func() (time.Time, bool) {
				at, ok := <-jobs
				return at, ok
			})
		})
	}
	interval := time.Second / time.Duration(reqPerSec)
	total := int(d / interval)
	t := time.NewTicker(interval)
	start := time.Now()
	for sent := 0; sent < total; {
		now := <-t.C
		for ; sent < total; sent++ {
			due := start.Add(time.Duration(sent+1) * interval)
			if due.After(now) {
				break
			}
			select {
			case jobs <- due:
				ph.offered++
			default:
				ph.dropped++
			}
		}
	}
	t.Stop()
	close(jobs)
	wg.Wait()
	ph.elapsed = d
	return ph
}

func report(scenarios []scenario, results []*result) {
	fmt.Printf("%-40s %9s %10s %7s %7s %9s  %s\n", "scenario", "req/s", "alerts/s", "p50 ms", "p99 ms", "vs no-op", "target")
	for i, sc := range scenarios {
		r := results[i]
		if r == nil {
			continue
		}
		secs := r.elapsed.Seconds()
		reqs, alerts := float64(r.requests)/secs, float64(r.requests*sc.perReq)/secs
		vs, tgt := "", ""
		if b := sc.baseline; b >= 0 && results[b] != nil {
			base := results[b]
			if sc.rate > 0 {
				vs = fmt.Sprintf("p99 %.1fx", float64(r.p99)/float64(base.p99))
			} else {
				vs = fmt.Sprintf("%.3f", alerts/(float64(base.requests*scenarios[b].perReq)/base.elapsed.Seconds()))
			}
		}
		switch {
		case sc.kind == full && sc.rate > 0:
			tgt = verdict(r.p99 < targetP99, fmt.Sprintf("p99 < %d ms", targetP99.Milliseconds()))
		case sc.target > 0:
			tgt = verdict(alerts >= sc.target, fmt.Sprintf(">= %.0f alerts/s", sc.target))
		}
		fmt.Printf("%-40s %9.0f %10.0f %7.2f %7.2f %9s  %s\n", sc.name(), reqs, alerts, ms(r.p50), ms(r.p99), vs, tgt)
	}
	for i, sc := range scenarios {
		r := results[i]
		if r == nil {
			continue
		}
		if r.dropped > 0 {
			fmt.Printf("%s: %d of %d ticks found every connection busy and were not sent\n", sc.name(), r.dropped, r.dropped+r.offered)
		}
		if r.failures > 0 {
			fmt.Printf("%s: %d requests failed, the first with: %v\n", sc.name(), r.failures, r.firstFailure)
		}
		if sc.kind == full {
			status := "ok"
			if r.verifyErr != nil {
				status = "FAILED: " + r.verifyErr.Error()
			}
			fmt.Printf("%s: durability %s (%d alerts in the store after reopening it)\n", sc.name(), status, r.stored)
		}
	}
}

func verdict(ok bool, what string) string {
	if ok {
		return "met (" + what + ")"
	}
	return "MISSED (" + what + ")"
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC() // the heap as of the end, not of the last collection
	return errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
}
