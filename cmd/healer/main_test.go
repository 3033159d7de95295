package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/store"
)

// healerData writes what a healer leaves in its storage.path: an audit log
// of n records (keyed with key when set) and a database whose stored head
// is the log's last record.
func healerData(t *testing.T, n int, key []byte) (storage, auditDir string) {
	t.Helper()
	storage = t.TempDir()
	auditDir = filepath.Join(storage, "audit")
	l, err := audit.Open(auditDir, audit.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := l.Append(context.Background(), audit.Record{Kind: audit.KindReceived, Fingerprint: "00000000000000a1"}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(storage, store.Options{AuditHead: func() (uint64, string, bool) {
		seq, hash := l.Head()
		return seq, hash, true
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Accept(context.Background(), "webhook", []alertmanager.Alert{{Status: alertmanager.StatusFiring, Fingerprint: "00000000000000a1"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return storage, auditDir
}

func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := run(args, &out, &out)
	return code, out.String()
}

// cutTail keeps the first n lines of audit.log, as head -n does.
func cutTail(t *testing.T, auditDir string, n int) {
	t.Helper()
	path := filepath.Join(auditDir, "audit.log")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	if err := os.WriteFile(path, []byte(strings.Join(lines[:n], "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAuditVerifyChecksTheStoredHead(t *testing.T) {
	t.Parallel()
	storage, dir := healerData(t, 15, nil)
	code, out := runCLI(t, "audit", "verify", dir, "--storage.path="+storage)
	if code != 0 || !strings.Contains(out, "head: seq 15") || !strings.Contains(out, "an unkeyed chain") {
		t.Fatalf("verify of an intact log: exit %d\n%s", code, out)
	}
	code, out = runCLI(t, "audit", "head", "--storage.path="+storage)
	if code != 0 || !strings.HasPrefix(out, "--head.seq=15 --head.hash=") {
		t.Fatalf("audit head: exit %d\n%s", code, out)
	}
	headFlags := strings.Fields(out)

	cutTail(t, dir, 13)
	if code, out := runCLI(t, "audit", "verify", dir); code != 0 || !strings.Contains(out, "head: none given") {
		t.Errorf("verify without a head of a cut log: exit %d; the log alone was expected to pass, saying it had no head\n%s", code, out)
	}
	for name, args := range map[string][]string{
		"the head from the database": {"--storage.path=" + storage},
		"the head from flags":        headFlags,
	} {
		code, out := runCLI(t, append([]string{"audit", "verify", dir}, args...)...)
		if code != 1 || !strings.Contains(out, string(audit.ProblemTailCut)) {
			t.Errorf("verify of a cut log with %s: exit %d, want 1 naming the cut\n%s", name, code, out)
		}
	}

	// A person looked into it and takes the log as it is.
	code, out = runCLI(t, "audit", "accept", dir, "--storage.path="+storage)
	if code != 0 || !strings.Contains(out, "head was seq 15") || !strings.Contains(out, "head is now seq 13") {
		t.Fatalf("audit accept: exit %d\n%s", code, out)
	}
	if code, out := runCLI(t, "audit", "verify", dir, "--storage.path="+storage); code != 0 {
		t.Errorf("verify after accept: exit %d\n%s", code, out)
	}
}

func TestAuditVerifyWithAKey(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	keyFile := filepath.Join(t.TempDir(), "audit.key")
	if err := os.WriteFile(keyFile, append(key, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	_, dir := healerData(t, 4, key)
	if code, out := runCLI(t, "audit", "verify", dir, "--key.file="+keyFile); code != 0 || !strings.Contains(out, "4 keyed records") {
		t.Errorf("verify with the key: exit %d\n%s", code, out)
	}
	if code, out := runCLI(t, "audit", "verify", dir); code != 1 || !strings.Contains(out, "give --key.file") {
		t.Errorf("verify of a keyed log without the key: exit %d, want 1 saying the MACs were not checked\n%s", code, out)
	}
	_, plain := healerData(t, 4, nil)
	if code, out := runCLI(t, "audit", "verify", plain, "--key.file="+keyFile); code != 1 || !strings.Contains(out, string(audit.ProblemNotKeyed)) {
		t.Errorf("verify of an unkeyed log with a key: exit %d, want 1\n%s", code, out)
	}
}

func TestAuditVerifyUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, args := range map[string][]string{
		"a head seq without its hash":      {"--head.seq=3"},
		"a head from flags and a database": {"--head.seq=3", "--head.hash=ab", "--storage.path=" + dir},
		"a key file that is missing":       {"--key.file=" + filepath.Join(dir, "missing")},
		"a database that is missing":       {"--storage.path=" + filepath.Join(dir, "missing")},
	} {
		if code, out := runCLI(t, append([]string{"audit", "verify", dir}, args...)...); code != 2 {
			t.Errorf("verify with %s: exit %d, want 2\n%s", name, code, out)
		}
	}
}

func TestEachHangupAsksForAReloadAndAFailedOneIsLogged(t *testing.T) {
	t.Parallel()
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	ctx, cancel := context.WithCancel(t.Context())
	hup := make(chan os.Signal, 1)
	reload := make(chan chan error)
	done := make(chan struct{})
	go func() {
		reloadOnHangup(ctx, hup, reload, logger)
		close(done)
	}()
	// reloadOnHangup logs an answer before it waits for the next signal,
	// so the second request comes after the first answer was logged.
	for _, answer := range []error{errors.New("changing storage needs a restart"), nil} {
		hup <- syscall.SIGHUP
		(<-reload) <- answer
	}
	cancel()
	<-done
	if got := strings.Count(log.String(), "msg=reload_failed"); got != 1 {
		t.Errorf("reload_failed logged %d times; want once, for the failed reload\n%s", got, log.String())
	}
	if !strings.Contains(log.String(), "changing storage needs a restart") {
		t.Errorf("the log does not say why the reload failed:\n%s", log.String())
	}
}

// --version and --help print and end: kingpin would otherwise go on to the
// default command and start a server.
func TestVersionAndHelpDoNotStartTheServer(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--version"}, {"--help"}, {"--help-long"}} {
		code, out := runCLI(t, args...)
		if code != 0 || strings.Contains(out, "healer_started") || strings.Contains(out, "retention.time") {
			t.Errorf("healer %s: exit %d, output %q; want 0 and no server", args[0], code, out)
		}
	}
}
