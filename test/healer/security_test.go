package healer_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deus-ex-machina/deus/internal/testenv"
)

// The healer as `make run` starts it (no configuration: standalone, dry
// run, no token, on loopback) is driven and read by a browser only from its
// own pages, never from another site's or under another host name.
func TestMakeRunRefusesCrossSiteAndRebinding(t *testing.T) {
	t.Parallel()
	url, p := startStandalone(t, "--storage.tsdb.retention.time=1h")
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(url, "http://"))

	do := func(method, path, body string, header map[string]string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			if k == "Host" {
				req.Host = v
			} else {
				req.Header.Set(k, v)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	runs := func() int {
		var rs []run
		if code := (&healer{t: t, url: url, client: http.DefaultClient}).get("/api/v1/runs", "", &rs); code != 200 {
			t.Fatalf("GET /api/v1/runs: %d", code)
		}
		return len(rs)
	}

	const body = `{"params":{"path":"/tmp"},"dry_run":true,"by":"mallory"}`
	for name, tc := range map[string]struct {
		path, body string
		header     map[string]string
	}{
		"a text/plain run":             {"/api/v1/actions/clean_temp_files/run", body, map[string]string{"Content-Type": "text/plain"}},
		"a JSON run from another site": {"/api/v1/actions/clean_temp_files/run", body, map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}},
		"a text/plain reload":          {"/-/reload", "", map[string]string{"Content-Type": "text/plain"}},
		"a rebinding page's run":       {"/api/v1/actions/clean_temp_files/run", body, map[string]string{"Content-Type": "application/json", "Host": "evil.example:" + port}},
	} {
		if code, msg := do(http.MethodPost, tc.path, tc.body, tc.header); code < 400 {
			t.Errorf("%s: got %d %s, want it refused", name, code, msg)
		}
	}
	if n := runs(); n != 0 {
		t.Fatalf("%d runs created by requests a browser sent from another site", n)
	}
	for _, path := range []string{"/", "/prometheus/api/v1/query?query=up", "/api/v1/runs"} {
		if code, _ := do(http.MethodGet, path, "", map[string]string{"Host": "evil.example:" + port}); code != http.StatusMisdirectedRequest {
			t.Errorf("GET %s under Host evil.example: got %d, want 421", path, code)
		}
		if code, _ := do(http.MethodGet, path, "", map[string]string{"Host": "localhost:" + port}); code != 200 {
			t.Errorf("GET %s under Host localhost: got %d, want 200", path, code)
		}
	}
	// What a script on this host sends still works.
	if code, msg := do(http.MethodPost, "/api/v1/actions/clean_temp_files/run", body, map[string]string{"Content-Type": "application/json"}); code != 200 {
		t.Fatalf("a dry run by a local client: got %d %s", code, msg)
	}
	if n := runs(); n != 1 {
		t.Errorf("after a local dry run: %d runs, want 1", n)
	}
	if err := p.Stop(20 * time.Second); err != nil {
		t.Errorf("healer exited with %v after SIGTERM", err)
	}
}

// A web configuration is authentication only when it makes every request
// prove something; with TLS alone or an empty file the healer keeps to
// loopback.
func TestWebConfigWithoutAuthenticationKeepsToLoopback(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.yml")
	writeFile(t, empty, "")
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, cert, key)
	tlsOnly := filepath.Join(dir, "tls.yml")
	writeFile(t, tlsOnly, "tls_server_config:\n  cert_file: "+cert+"\n  key_file: "+key+"\n")
	basic := filepath.Join(dir, "basic.yml")
	writeFile(t, basic, "basic_auth_users:\n  alice: $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n")

	cfg := filepath.Join(dir, "healer.yml")
	writeFile(t, cfg, "storage: {path: "+filepath.Join(dir, "data")+"}\nprometheus: {url: http://127.0.0.1:1}\n")
	_, port, _ := net.SplitHostPort(testenv.FreeAddr(t))
	for name, wc := range map[string]string{"an empty web config": empty, "a web config with TLS only": tlsOnly} {
		code, out := testenv.RunCommand(t, healerBin, "serve", "--config.file="+cfg, "--web.listen-address=0.0.0.0:"+port, "--web.config.file="+wc)
		if code == 0 || !strings.Contains(out, "0.0.0.0:"+port) || !strings.Contains(out, "not loopback") {
			t.Errorf("%s on 0.0.0.0: exit %d, output %q; want a refusal naming the address", name, code, out)
		}
	}
	// The same healer with basic auth serves every interface.
	p := startProc(t, dir, healerBin, "serve", "--config.file="+cfg, "--web.listen-address=0.0.0.0:"+port, "--web.config.file="+basic)
	testenv.WaitListening(t, "127.0.0.1:"+port, 20*time.Second)
	resp, err := http.Get("http://127.0.0.1:" + port + "/api/v1/runs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/runs without credentials under basic auth: got %d, want 401", resp.StatusCode)
	}
	if err := p.Stop(20 * time.Second); err != nil {
		t.Errorf("healer exited with %v after SIGTERM", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err != nil {
		t.Errorf("data directory: %v", err)
	}
}

// writeSelfSigned writes a self-signed certificate for localhost and its
// key.
func writeSelfSigned(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
}
