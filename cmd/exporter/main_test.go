package main

import (
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/deus-ex-machina/deus/internal/testenv"
)

// buildExporter compiles this command into a temporary directory.
func buildExporter(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "exporter")
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func get(t *testing.T, url, user, pass string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestExporterServesBehindBasicAuth(t *testing.T) {
	t.Parallel()
	bin := buildExporter(t)
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webConfig, []byte("basic_auth_users:\n  prometheus: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	testenv.Start(t, bin, "--web.listen-address="+addr, "--web.config.file="+webConfig,
		"--state.directory="+filepath.Join(dir, "state"), "--collector.services.name=exporter")
	base := "http://" + addr
	testenv.WaitListening(t, addr, 30*time.Second)

	if code, _ := get(t, base+"/metrics", "", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics without credentials: %d; want 401", code)
	}
	if code, _ := get(t, base+"/metrics", "prometheus", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics with a wrong password: %d; want 401", code)
	}
	code, body := get(t, base+"/metrics", "prometheus", "s3cret")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics with credentials: %d; want 200", code)
	}
	for _, want := range []string{"node_cpu_seconds_total{", `deus_service_up{service="exporter"} 1`, "deus_exporter_build_info{"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, body := get(t, base+"/", "prometheus", "s3cret"); code != http.StatusOK || !strings.Contains(body, `href="/metrics"`) {
		t.Errorf("landing page: %d, links to /metrics: %v", code, strings.Contains(body, `href="/metrics"`))
	}
	if code, body := get(t, base+"/-/healthy", "prometheus", "s3cret"); code != http.StatusOK || body != "Healthy\n" {
		t.Errorf("/-/healthy: %d %q; want 200 \"Healthy\\n\"", code, body)
	}
}

func TestExporterRejectsBadFlags(t *testing.T) {
	t.Parallel()
	bin := buildExporter(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"an invalid exclusion regexp names its flag", []string{"--collector.filesystem.fs-types-exclude=(["}, "--collector.filesystem.fs-types-exclude"},
		{"an unknown flag is named", []string{"--collector.nonsense"}, "collector.nonsense"},
		{"a top-N below one is refused", []string{"--collector.processes.top=0"}, "--collector.processes.top"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := exec.CommandContext(t.Context(), bin, append(tt.args, "--web.listen-address=127.0.0.1:0")...).CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exporter %v: err %v; want exit status 2\n%s", tt.args, err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("exporter %v said %q; want it to name %q", tt.args, out, tt.want)
			}
		})
	}
}

func TestExporterKeepsToLoopbackUnlessRequestsAuthenticate(t *testing.T) {
	t.Parallel()
	bin := buildExporter(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.yml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"every interface, no web config":   {"--web.listen-address=:0"},
		"0.0.0.0 with an empty web config": {"--web.listen-address=0.0.0.0:0", "--web.config.file=" + empty},
		"a public address, no web config":  {"--web.listen-address=192.0.2.1:9110"},
	} {
		code, out := testenv.RunCommand(t, bin, append(args, "--state.directory="+filepath.Join(dir, "state"))...)
		if code != 2 || !strings.Contains(out, "not loopback") || !strings.Contains(out, "basic_auth_users") {
			t.Errorf("%s: exit %d, output %q; want 2 and a refusal saying what would authenticate", name, code, out)
		}
	}

	// On loopback and unauthenticated, it answers only to loopback names:
	// a page that rebinds its own name to 127.0.0.1 cannot read it.
	addr := testenv.FreeAddr(t)
	testenv.Start(t, bin, "--web.listen-address="+addr, "--state.directory="+filepath.Join(dir, "state"))
	testenv.WaitListening(t, addr, 30*time.Second)
	_, port, _ := strings.Cut(addr, ":")
	for host, want := range map[string]int{"evil.example:" + port: http.StatusMisdirectedRequest, "localhost:" + port: 200, addr: 200} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/metrics", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET /metrics with Host %s: got %d, want %d", host, resp.StatusCode, want)
		}
	}
}

func TestExporterRefusesSystemdSocketsUnlessRequestsAuthenticate(t *testing.T) {
	t.Parallel()
	bin := buildExporter(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.yml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"no web config":    {"--web.systemd-socket"},
		"empty web config": {"--web.systemd-socket", "--web.config.file=" + empty},
	} {
		code, out := testenv.RunCommand(t, bin, append(args, "--state.directory="+filepath.Join(dir, "state"))...)
		if code != 2 || !strings.Contains(out, "--web.systemd-socket") || !strings.Contains(out, "basic_auth_users") {
			t.Errorf("%s: exit %d, output %q; want 2 and a refusal naming --web.systemd-socket and what would authenticate", name, code, out)
		}
	}

	// With basic auth the flag passes the check (and, without sockets
	// from systemd, the toolkit has nothing to serve).
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(users, []byte("basic_auth_users:\n  alice: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := testenv.RunCommand(t, bin, "--web.systemd-socket", "--web.config.file="+users, "--state.directory="+filepath.Join(dir, "state"))
	if code == 2 || strings.Contains(out, "--web.systemd-socket serves") {
		t.Errorf("with basic auth: exit %d, output %q; want the flag accepted", code, out)
	}
}
