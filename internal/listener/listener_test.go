package listener

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate and key into dir and returns their
// paths.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "healer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestWebConfigCountsOnlyWhatAuthenticates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	tlsOnly := "tls_server_config:\n  cert_file: " + cert + "\n  key_file: " + key + "\n"
	const hash = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"
	for name, tc := range map[string]struct {
		yml  string
		want Auth
	}{
		"an empty file":                          {"", Auth{}},
		"TLS only":                               {tlsOnly, Auth{TLS: true}},
		"client certs if given":                  {tlsOnly + "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: " + cert + "\n", Auth{TLS: true}},
		"client certs required but not verified": {tlsOnly + "  client_auth_type: RequireAnyClientCert\n", Auth{TLS: true}},
		"client certs required and verified":     {tlsOnly + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: " + cert + "\n", Auth{TLS: true, ClientCerts: true}},
		"basic auth users":                       {"basic_auth_users:\n  alice: " + hash + "\n", Auth{BasicAuth: true}},
		"basic auth over TLS":                    {tlsOnly + "basic_auth_users:\n  alice: " + hash + "\n", Auth{BasicAuth: true, TLS: true}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "web.yml")
			if err := os.WriteFile(p, []byte(tc.yml), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadWebConfig(p)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("ReadWebConfig: got %+v, want %+v", got, tc.want)
			}
			if got.Authenticates() != (tc.want.BasicAuth || tc.want.ClientCerts) {
				t.Errorf("Authenticates: got %v", got.Authenticates())
			}
		})
	}
}

func TestWebConfigErrorsNameTheFile(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(p, []byte("basic_auth_user:\n  alice: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadWebConfig(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "basic_auth_user") {
		t.Errorf("a misspelt key: got %v, want an error naming the file and the key", err)
	}
	if _, err := ReadWebConfig(filepath.Join(t.TempDir(), "missing.yml")); err == nil {
		t.Error("a missing file: got no error")
	}
}

func TestWebConfigFollowsTheFile(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(p, []byte("basic_auth_users:\n  alice: $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := NewWebConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := w.Current(); !a.BasicAuth {
		t.Fatalf("Current: got %+v, want basic auth", a)
	}
	// Users removed while running: nothing may be believed about a
	// basic-auth header from now on.
	if err := os.WriteFile(p, []byte("# no users\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if a, _ := w.Current(); a.BasicAuth {
		t.Errorf("after the users were removed: got %+v, want none", a)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if a, err := w.Current(); err == nil || a.Authenticates() {
		t.Errorf("after the file was removed: got %+v, %v; want an error and nothing", a, err)
	}
}

func TestUnauthenticatedListenersStayOnLoopback(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"127.0.0.1:9111", "[::1]:9111", "localhost:9111", "127.0.0.2:9111"} {
		if err := CheckAddresses([]string{addr}, false, "nothing authenticates"); err != nil {
			t.Errorf("%s: got %v, want it allowed", addr, err)
		}
	}
	for _, addr := range []string{
		":9111", "0.0.0.0:9111", "[::]:9111", "192.0.2.1:9111", "healer.example:9111",
		// Names the resolver answers for when the listener binds: a
		// browser keeps *.localhost on loopback, DNS need not.
		"foo.localhost:9111", "localhost.:9111", "LOCALHOST.:9111", "localhost.localdomain:9111", "127.0.0.1.nip.io:9111",
	} {
		err := CheckAddresses([]string{"127.0.0.1:1", addr}, false, "nothing authenticates")
		if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "nothing authenticates") {
			t.Errorf("%s unauthenticated: got %v, want ErrUnauthenticated naming it and why", addr, err)
		}
		if err := CheckAddresses([]string{addr}, true, ""); err != nil {
			t.Errorf("%s authenticated: got %v", addr, err)
		}
	}
}

func TestHostsAreLoopbackNamesAndThoseConfigured(t *testing.T) {
	t.Parallel()
	h, err := NewHosts([]string{"Healer.Local"})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"localhost": true, "localhost:9111": true, "LOCALHOST.:9111": true, "grafana.localhost:3000": true,
		"127.0.0.1:9111": true, "127.9.9.9": true, "[::1]:9111": true, "healer.local:9111": true,
		"evil.example": false, "evil.example:9111": false, "localhost.evil.example": false, "": false,
		"192.168.1.5:9111": false, "0.0.0.0:9111": false, "[::]:9111": false, "127.0.0.1.nip.io": false,
	} {
		if got := h.Allowed(host); got != want {
			t.Errorf("Allowed(%q) = %v, want %v", host, got, want)
		}
	}
	for _, bad := range []string{"", "http://x", "x:80", "a/b"} {
		if _, err := NewHosts([]string{bad}); err == nil {
			t.Errorf("NewHosts(%q): got no error", bad)
		}
	}
}

func TestUnauthenticatedAnswersOnlyLoopbackNames(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	wc, err := NewWebConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	hosts, _ := NewHosts(nil)
	h := Unauthenticated(wc, hosts, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	for _, tc := range []struct {
		host, remote string
		want         int
	}{
		{"localhost:9110", "127.0.0.1:5000", 200},
		{"evil.example:9110", "127.0.0.1:5000", http.StatusMisdirectedRequest},
		{"localhost:9110", "192.0.2.7:5000", http.StatusForbidden},
	} {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		r.Host, r.RemoteAddr = tc.host, tc.remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("Host %s from %s: got %d, want %d", tc.host, tc.remote, w.Code, tc.want)
		}
	}
	// Once the file has users, the toolkit checks every request: any name
	// and any client.
	if err := os.WriteFile(p, []byte("basic_auth_users:\n  alice: $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	r.Host, r.RemoteAddr = "exporter.example:9110", "192.0.2.7:5000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("with basic auth configured: got %d, want 200", w.Code)
	}
}
