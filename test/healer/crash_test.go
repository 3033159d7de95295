package healer_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
)

// crashSeed fixes the storm: the alerts, how they are grouped into
// notifications, the order they are posted in and after how many answers
// the healer is killed. HEALER_CRASH_SEED replays another.
func crashSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(20261202)
	if s := os.Getenv("HEALER_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("HEALER_CRASH_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with HEALER_CRASH_SEED=%d)", seed, seed)
	return seed
}

// storm is a set of webhook requests, each notification posted twice as
// an HA pair of Alertmanagers would.
type storm struct {
	alerts   []template.Alert
	requests []stormRequest
}

type stormRequest struct {
	body   []byte
	alerts []int // indexes into storm.alerts
}

// newStorm makes n distinct firing alerts, groups them into notifications
// of one to four alerts, and posts each notification from two
// Alertmanagers, in an order shuffled by rng.
func newStorm(t *testing.T, rng *rand.Rand, n int) *storm {
	t.Helper()
	s := &storm{}
	seen := map[string]bool{}
	startsAt := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	for len(s.alerts) < n {
		fp := fmt.Sprintf("%016x", rng.Uint64())
		if seen[fp] {
			continue
		}
		seen[fp] = true
		i := len(s.alerts)
		s.alerts = append(s.alerts, firing(fp, startsAt.Add(time.Duration(i)*time.Millisecond), template.KV{
			"alertname": "CrashStorm", "instance": "testhost", "fp": fp, "idx": strconv.Itoa(i),
		}))
	}
	for i := 0; i < n; {
		k := min(1+rng.IntN(4), n-i)
		idx := make([]int, k)
		group := make([]template.Alert, k)
		for j := range k {
			idx[j], group[j] = i+j, s.alerts[i+j]
		}
		for _, am := range []string{"http://am-a.invalid:9093", "http://am-b.invalid:9093"} {
			s.requests = append(s.requests, stormRequest{body: message(t, am, group...), alerts: idx})
		}
		i += k
	}
	rng.Shuffle(len(s.requests), func(i, j int) { s.requests[i], s.requests[j] = s.requests[j], s.requests[i] })
	return s
}

// stormResult is what the healer answered.
type stormResult struct {
	acked  []bool // per alert: a request carrying it was answered 200
	ok     int    // requests answered 200
	failed int    // requests answered otherwise, or not at all
	unsent int    // requests not sent because the healer was killed
}

// post sends every request from workers goroutines. When killAfter > 0, the
// healer is killed with SIGKILL as soon as that many requests have been
// answered 200; requests not yet sent are then not sent.
func (s *storm) post(h *healer, workers, killAfter int) stormResult {
	var (
		mu      sync.Mutex
		res     = stormResult{acked: make([]bool, len(s.alerts))}
		oks     atomic.Int64
		killed  atomic.Bool
		killNow = make(chan struct{})
		once    sync.Once
		jobs    = make(chan int)
		wg      sync.WaitGroup
	)
	stormDone := make(chan struct{})
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		select {
		case <-killNow:
			h.proc.Kill()
		case <-stormDone:
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				if killed.Load() {
					mu.Lock()
					res.unsent++
					mu.Unlock()
					continue
				}
				code, err := h.post(ctx, "/webhook", h.hookToken, s.requests[i].body)
				mu.Lock()
				if err == nil && code == http.StatusOK {
					res.ok++
					for _, a := range s.requests[i].alerts {
						res.acked[a] = true
					}
				} else {
					res.failed++
				}
				mu.Unlock()
				if err == nil && code == http.StatusOK && killAfter > 0 && oks.Add(1) == int64(killAfter) {
					killed.Store(true)
					once.Do(func() { close(killNow) })
				}
			}
		})
	}
	for i := range s.requests {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(stormDone)
	<-killerDone
	return res
}

// TestCrashMidStorm kills the healer with SIGKILL in the middle of a storm
// of webhooks, restarts it on the same data directory, and posts every
// notification again, as Alertmanager retries what was not answered 2xx.
// Nothing answered 200 before the kill is lost, no alert's action runs
// twice (each run appends the alert to a file named after it), a run that
// was acting at the kill is marked interrupted and not repeated, every
// action is preceded by its audit record, and the audit chain verifies.
func TestCrashMidStorm(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(crashSeed(t), 0x5eed))
	dir := t.TempDir()
	ranDir := filepath.Join(dir, "ran")
	if err := os.Mkdir(ranDir, 0o750); err != nil {
		t.Fatal(err)
	}
	h := newHealer(t, dir, map[string]any{
		"global": map[string]any{"identity": []string{"testhost"}, "max_tier": "low"},
		"actions": map[string]any{"commands": []any{map[string]any{
			"name": "record", "tier": "low", "doc": "append the alert to a file named after it",
			"argv":   []string{"/usr/bin/tee", "-a", ranDir + "/ran-{{fp}}"},
			"params": []any{map[string]any{"name": "fp", "type": "string", "required": true, "pattern": "[0-9a-f]{16}"}},
		}}},
		"runbooks": []any{map[string]any{
			"name": "crash-record", "match": []string{`alertname="CrashStorm"`},
			"steps": []any{map[string]any{"action": "record", "params": map[string]string{"fp": "{{ $labels.fp }}"}}},
		}},
	})
	h.start()

	t.Run("the webhook and the API refuse requests without their own token", func(t *testing.T) {
		body := message(t, "http://am-a.invalid:9093", firing("00000000000000aa", time.Now(), template.KV{"alertname": "CrashStorm", "instance": "testhost", "fp": "00000000000000aa"}))
		for _, c := range []struct {
			name, token string
		}{
			{"no token", ""},
			{"a wrong token", "not-the-token"},
			{"the API's token", h.apiToken},
		} {
			code, err := h.post(context.Background(), "/webhook", c.token, body)
			if err != nil || code != http.StatusUnauthorized {
				t.Errorf("POST /webhook with %s: %d, %v; want 401", c.name, code, err)
			}
		}
		for _, tok := range []string{"", h.hookToken} {
			if code := h.get("/api/v1/runs", tok, nil); code != http.StatusUnauthorized {
				t.Errorf("GET /api/v1/runs with token %q: %d; want 401", tok, code)
			}
		}
		if got := h.alerts(""); len(got) != 0 {
			t.Errorf("after refused requests the store holds %d alerts; want 0", len(got))
		}
	})

	const n = 400
	s := newStorm(t, rng, n)
	killAfter := len(s.requests)/4 + rng.IntN(len(s.requests)/2)
	t0 := time.Now()
	res := s.post(h, 32, killAfter)
	acked := 0
	for _, a := range res.acked {
		if a {
			acked++
		}
	}
	t.Logf("storm: %d alerts in %d requests; killed after %d answers of 200 (%s); %d answered 200, %d failed, %d not sent; %d alerts acknowledged",
		n, len(s.requests), killAfter, time.Since(t0).Round(time.Millisecond), res.ok, res.failed, res.unsent, acked)
	if res.ok < killAfter {
		t.Fatalf("only %d requests were answered 200; the kill was to come after %d", res.ok, killAfter)
	}

	killed := h.proc
	killed.CheckNoRace()
	h.start()

	// Before anything is posted again: what was acknowledged is stored.
	stored := map[string]storedAlert{}
	for _, a := range h.alerts("") {
		stored[a.Fingerprint] = a
	}
	var lost []string
	for i, a := range s.alerts {
		if res.acked[i] {
			if st, ok := stored[a.Fingerprint]; !ok || st.Status != "firing" {
				lost = append(lost, a.Fingerprint)
			}
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d alerts answered 200 before the kill are not in the store after the restart: %v", len(lost), lost)
	}
	t.Logf("after the restart the store holds %d alerts (%d acknowledged before the kill)", len(stored), acked)

	// Alertmanager retries: everything again, both copies.
	again := s.post(h, 32, 0)
	if again.ok != len(s.requests) {
		t.Fatalf("after the restart %d of %d requests were answered 200; want all", again.ok, len(s.requests))
	}

	var runs []run
	// A bound on something that must happen, not a speed: a few hundred
	// runs, each fsync'd, on a CI machine busy with every other package.
	eventually(t, 2*time.Minute, "every alert planned and every run ended", func() (bool, string) {
		alerts := h.alerts("")
		if len(alerts) != n {
			return false, fmt.Sprintf("%d alerts stored, want %d", len(alerts), n)
		}
		for _, a := range alerts {
			if a.State == "new" {
				return false, "alert " + a.Key + " is still new"
			}
		}
		runs = h.runs("")
		for _, r := range runs {
			switch r.State {
			case "pending", "waiting", "approved", "running":
				return false, "run " + r.ID + " is " + string(r.State)
			}
		}
		return true, ""
	})

	byFP := map[string][]run{}
	states := map[string]int{}
	for _, r := range runs {
		byFP[r.Fingerprint] = append(byFP[r.Fingerprint], r)
		states[string(r.State)]++
	}
	interruptedRan := 0
	for _, a := range s.alerts {
		fp := a.Fingerprint
		ran := executions(t, filepath.Join(ranDir, "ran-"+fp))
		if len(ran) > 1 {
			t.Errorf("alert %s: the action ran %d times (runs %v); want at most once", fp, len(ran), ran)
		}
		rs := byFP[fp]
		if len(rs) != 1 {
			t.Errorf("alert %s has %d runs; want 1", fp, len(rs))
			continue
		}
		r := rs[0]
		switch r.State {
		case "succeeded":
			if len(ran) != 1 || ran[0] != r.ID {
				t.Errorf("alert %s: run %s succeeded, and the action ran for runs %v; want exactly [%s]", fp, r.ID, ran, r.ID)
			}
		case "interrupted":
			if len(ran) > 1 || len(ran) == 1 && ran[0] != r.ID {
				t.Errorf("alert %s: run %s was interrupted, and the action ran for runs %v; want at most [%s]", fp, r.ID, ran, r.ID)
			}
			interruptedRan += len(ran)
		default:
			t.Errorf("alert %s: run %s is %s (%s); want succeeded, or interrupted by the kill", fp, r.ID, r.State, r.Reason)
		}
	}
	t.Logf("runs by state: %v; %d of the interrupted runs had acted before the kill", states, interruptedRan)

	// A crash during an audit append is recovered at start; see
	// TestRestartAfterATornAuditRecord for what the metric then says.
	t.Logf("after the restart: deus_healer_audit_chain_ok %s", metricValue(t, h, "deus_healer_audit_chain_ok"))

	h.stop()
	h.verifyAudit()

	// The audit log says what ran, and said it before it ran.
	started := map[string][]string{} // fingerprint -> run IDs with a started record
	interrupted := 0
	for _, rec := range h.auditRecords() {
		switch rec.Kind {
		case "started":
			started[rec.Fingerprint] = append(started[rec.Fingerprint], rec.RunID)
		case "interrupted":
			interrupted++
		}
	}
	if interrupted != states["interrupted"] {
		t.Errorf("the audit log has %d interrupted records; want one for each of the %d interrupted runs", interrupted, states["interrupted"])
	}
	for _, a := range s.alerts {
		fp := a.Fingerprint
		if len(started[fp]) > 1 {
			t.Errorf("alert %s: the audit log has %d started records (runs %v); want at most 1", fp, len(started[fp]), started[fp])
		}
		for _, id := range executions(t, filepath.Join(ranDir, "ran-"+fp)) {
			if !slices.Contains(started[fp], id) {
				t.Errorf("alert %s: run %s acted without a started record in the audit log before it", fp, id)
			}
		}
	}
}

// TestRestartAfterATornAuditRecord restarts the healer on an audit log
// whose last line a crash cut in the middle of an append. The log is
// recovered (the torn bytes are cut off and a recovered record says so), it
// verifies, and the healer goes on appending to it.
func TestRestartAfterATornAuditRecord(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := newHealer(t, dir, map[string]any{
		"global": map[string]any{"identity": []string{"testhost"}},
	})
	h.start()
	fp := "00000000000000e1"
	h.webhook(message(t, "http://am-a.invalid:9093", firing(fp, time.Now().UTC(), template.KV{"alertname": "Unmatched", "instance": "testhost"})))
	eventually(t, 10*time.Second, "the alert is planned", func() (bool, string) {
		a := h.alerts("")
		return len(a) == 1 && a[0].State == "done", fmt.Sprintf("%+v", a)
	})
	h.stop()

	// A crash in the middle of an append leaves half a line.
	logFile := filepath.Join(h.dataDir, "audit", "audit.log")
	f, err := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"seq":4,"time":"2026-12-02T02:2`); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	h.start()
	h.webhook(message(t, "http://am-a.invalid:9093", firing("00000000000000e2", time.Now().UTC(), template.KV{"alertname": "Unmatched", "instance": "testhost"})))
	eventually(t, 10*time.Second, "the second alert is planned", func() (bool, string) {
		a := h.alerts("")
		return len(a) == 2 && a[0].State == "done" && a[1].State == "done", fmt.Sprintf("%+v", a)
	})
	chainOK := metricValue(t, h, "deus_healer_audit_chain_ok")
	h.stop()
	h.verifyAudit()
	recovered := 0
	for _, rec := range h.auditRecords() {
		if rec.Kind == "recovered" {
			recovered++
		}
	}
	if recovered != 1 {
		t.Errorf("the audit log has %d recovered records; want 1", recovered)
	}
	// A record torn by a crash is recovered, not a broken chain: the
	// healer verifies after audit.Open has cut it off.
	if chainOK != "1" {
		t.Errorf("deus_healer_audit_chain_ok = %s after a recovered torn record; want 1", chainOK)
	}
}

// metricValue returns the value of an unlabelled metric from /metrics.
func metricValue(t *testing.T, h *healer, name string) string {
	t.Helper()
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return ""
}
