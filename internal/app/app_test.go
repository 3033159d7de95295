package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/testenv"
)

// site is a healer's directory: its configuration file, token files and
// storage.
type site struct {
	dir, configFile, apiToken string
}

func newSite(t *testing.T) *site {
	t.Helper()
	dir := t.TempDir()
	s := &site{dir: dir, configFile: filepath.Join(dir, "healer.yml"), apiToken: "api-token"}
	writeFile(t, filepath.Join(dir, "webhook.token"), "webhook-token\n")
	writeFile(t, filepath.Join(dir, "api.token"), s.apiToken+"\n")
	return s
}

// write writes the configuration: integrated (a Prometheus that is never
// asked, as no alert comes), with tokens, extra appended as YAML.
func (s *site) write(t *testing.T, extra string) {
	t.Helper()
	writeFile(t, s.configFile, `
prometheus: {url: "http://127.0.0.1:1"}
storage: {path: `+filepath.Join(s.dir, "data")+`}
webhook: {bearer_token_file: `+filepath.Join(s.dir, "webhook.token")+`}
api: {bearer_token_file: `+filepath.Join(s.dir, "api.token")+`}
`+extra)
}

func (s *site) options(t *testing.T) Options {
	t.Helper()
	addrs := []string{testenv.FreeAddr(t)}
	systemd, webConfig := false, ""
	return Options{
		ConfigFile: s.configFile,
		WebFlags:   &web.FlagConfig{WebListenAddresses: &addrs, WebSystemdSocket: &systemd, WebConfigFile: &webConfig},
		Logger:     slog.New(slog.DiscardHandler),
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// newApp builds the app from the site and closes it at the end of the test.
func newApp(t *testing.T, s *site) *App {
	t.Helper()
	a, err := New(t.Context(), s.options(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return a
}

func TestRunAnswersEachReloadRequestUntilItsContextIsDone(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.write(t, "global: {dry_run: false}\n")
	a := newApp(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	reload := make(chan chan error)
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx, reload) }()
	ask := func() error {
		answer := make(chan error, 1)
		reload <- answer
		return <-answer
	}

	s.write(t, "global: {dry_run: true}\n")
	if err := ask(); err != nil {
		t.Fatalf("reload of a valid file: %v", err)
	}
	if !a.healer.Config().Global.DryRun {
		t.Errorf("after the reload dry_run is false; want the file's true")
	}
	for name, tc := range map[string]struct{ extra, want string }{
		"a file that does not parse": {"global: {dry_run: false\n", "line 5"},
		"a changed audit log":        {"audit: {max_size: 1MiB}\n", "changing audit needs a restart"},
	} {
		s.write(t, tc.extra)
		if err := ask(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("reload of %s: got %v, want an error saying %q", name, err, tc.want)
		}
		if !a.healer.Config().Global.DryRun {
			t.Errorf("reload of %s: the running configuration was replaced", name)
		}
	}

	cancel()
	if err := <-ran; err != nil {
		t.Errorf("Run after its context was cancelled: %v; want nil", err)
	}
}

func TestAPIReloadGoesThroughTheReloader(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.write(t, "")
	a := newApp(t, s)
	post := func() int {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/-/reload", nil)
		req.Header.Set("Authorization", "Bearer "+s.apiToken)
		w := httptest.NewRecorder()
		a.server.Handler.ServeHTTP(w, req)
		return w.Code
	}
	s.write(t, "storage: {}\n") // storage twice: does not load
	if code := post(); code != http.StatusBadRequest {
		t.Errorf("POST /-/reload of an invalid file: %d; want 400", code)
	}
	s.write(t, "global: {dry_run: true}\n")
	if code := post(); code != http.StatusOK {
		t.Errorf("POST /-/reload of a valid file: %d; want 200", code)
	}
	if !a.healer.Config().Global.DryRun {
		t.Errorf("after POST /-/reload dry_run is false; want the file's true")
	}
}

func TestNewClosesWhatItOpenedWhenItFails(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	// Standalone, with a file where the TSDB's directory goes: New fails
	// after opening the audit log and the store.
	writeFile(t, s.configFile, "storage: {path: "+filepath.Join(s.dir, "data")+"}\n")
	if err := os.MkdirAll(filepath.Join(s.dir, "data"), 0o750); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(s.dir, "data", "tsdb"), "")
	o := s.options(t)
	o.WebFlags = nil
	if _, err := New(t.Context(), o); err == nil {
		t.Fatal("New with a file for the TSDB's directory: nil error; want one")
	}
	l, err := audit.Open(filepath.Join(s.dir, "data", "audit"), audit.Options{})
	if errors.Is(err, audit.ErrLocked) {
		t.Fatal("after New failed the audit log is still locked; want it closed")
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAlertSinkRefusesAlertsBeforeTheHealerIsSet(t *testing.T) {
	t.Parallel()
	var s alertSink
	if err := s.accept(t.Context(), nil); !errors.Is(err, errNoHealer) {
		t.Errorf("accept before the healer is set: got %v, want %v", err, errNoHealer)
	}
}
