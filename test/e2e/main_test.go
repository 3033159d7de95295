// Package e2e_test runs the whole self-healing loop with real servers: a
// watched service is killed, or a watched temp file system fills up; the
// shipped rules fire; the alert reaches the healer; the healer prechecks,
// acts, verifies with PromQL and writes its audit log; the alert resolves.
// It does so on three stacks: Debian's Prometheus with Alertmanager,
// VictoriaMetrics with vmalert and Alertmanager, and the standalone healer
// (its embedded TSDB and rule manager). Every configuration is derived from
// deploy/ and rules/, with only what a test must change rewritten.
//
// TestMain builds cmd/exporter and cmd/healer once (with -race when the
// tests run with it, so that a child's data race fails the test too). The
// test binary doubles as the watched service: run through a symbolic link
// whose name starts with "e2e-svc-", it writes its pid to a pidfile and
// waits for a signal (see serveDummy).
package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deus-ex-machina/deus/internal/testenv"
)

// The binaries built by TestMain.
var exporterBin, healerBin string

// dummyPrefix starts the base name under which the test binary runs as
// the watched service.
const dummyPrefix = "e2e-svc-"

func TestMain(m *testing.M) {
	if strings.HasPrefix(filepath.Base(os.Args[0]), dummyPrefix) {
		os.Exit(serveDummy(os.Args[1:]))
	}
	os.Exit(buildAndRun(m))
}

// serveDummy is the watched service: it writes its pid to the pidfile
// named by its only argument (as a daemon does, since the healer's process
// backend does not write it: see the package's report) and runs until
// SIGTERM or SIGINT.
func serveDummy(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: e2e-svc-NAME PIDFILE")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	tmp := args[0] + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.Rename(tmp, args[0]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	<-ctx.Done()
	return 0
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "deus-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bins, err := testenv.BuildCommands(dir, "./cmd/exporter", "./cmd/healer")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	exporterBin, healerBin = bins["./cmd/exporter"], bins["./cmd/healer"]
	return m.Run()
}

// proc is a child process of a test.
type proc = testenv.Proc

// startProc starts bin in dir, named name in logs; see testenv.StartProc.
func startProc(t testing.TB, dir, name, bin string, args ...string) *proc {
	t.Helper()
	return testenv.StartProc(t, dir, name, bin, args...)
}

// eventually polls cond until it holds or within passes. cond says whether
// it holds and, when not, what is missing (for the failure message).
func eventually(t testing.TB, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	testenv.Eventually(t, within, 100*time.Millisecond, what, cond)
}

var httpClient = &http.Client{Timeout: 20 * time.Second}

// getJSON reads url (with a bearer token unless empty) into v. It returns
// an error for anything but 200, so that callers can poll with it.
func getJSON(url, token string, v any) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %.300s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// apiData reads a Prometheus-style {"status": ..., "data": ...} answer
// and decodes its data into v.
func apiData(url, token string, v any) error {
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := getJSON(url, token, &env); err != nil {
		return err
	}
	if env.Status != "success" {
		return fmt.Errorf("GET %s: status %q: %s", url, env.Status, env.Error)
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		return fmt.Errorf("GET %s: data: %w", url, err)
	}
	return nil
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
