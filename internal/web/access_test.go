package web

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/crypto/bcrypt"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/config"
	"github.com/deus-ex-machina/deus/internal/healer"
	"github.com/deus-ex-machina/deus/internal/listener"
	"github.com/deus-ex-machina/deus/internal/store"
	"github.com/deus-ex-machina/deus/internal/testenv"
)

// countingAction counts its runs: a request that must be refused must not
// reach it.
type countingAction struct{ runs atomic.Int32 }

func (*countingAction) Spec() action.Spec {
	return action.Spec{Name: "clean_temp_files", Tier: action.TierLow, Timeout: time.Second}
}

func (c *countingAction) Run(context.Context, action.Request) (action.Result, error) {
	c.runs.Add(1)
	return action.Result{Summary: "moved 0 files"}, nil
}

// open is a healer HTTP surface as `make run` starts it: no token, on
// loopback. webConfig, when not empty, is served through exporter-toolkit
// as --web.config.file would be.
type open struct {
	url      string
	act      *countingAction
	st       *store.Store
	reloads  atomic.Int32
	auditDir string
}

func serveOpen(t *testing.T, webConfig string) *open {
	t.Helper()
	dir := t.TempDir()
	o := &open{act: &countingAction{}, auditDir: filepath.Join(dir, "audit")}
	st, err := store.Open(filepath.Join(dir, "db"), store.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	o.st = st
	alog, err := audit.Open(o.auditDir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := action.NewRegistry(o.act)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Global.MaxTier = config.Tier{Tier: action.TierLow}
	h := healer.New(healer.Options{Store: st, Audit: alog, Actions: reg, Logger: testenv.Logger(t)}, cfg)
	tokens, err := LoadTokens("", "")
	if err != nil {
		t.Fatal(err)
	}
	wcPath := ""
	if webConfig != "" {
		wcPath = filepath.Join(dir, "web.yml")
		if err := os.WriteFile(wcPath, []byte(webConfig), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	wc, err := listener.NewWebConfig(wcPath)
	if err != nil {
		t.Fatal(err)
	}
	access, err := NewAccess(tokens, wc, nil, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	handler := Handler(Options{
		Healer: h, Store: st, Actions: reg, Logger: testenv.Logger(t),
		Reload: func() error { o.reloads.Add(1); return nil },
		Status: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "status page") }),
		Prometheus: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
		}),
	}, access, func() int64 { return 1 << 20 })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() {
		fc := &web.FlagConfig{WebConfigFile: &wcPath}
		done <- web.Serve(ln, srv, fc, testenv.Logger(t))
	}()
	o.url = "http://" + ln.Addr().String()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Error(err)
		}
		if err := alog.Close(); err != nil {
			t.Error(err)
		}
	})
	return o
}

type req struct {
	method, path, body string
	header             map[string]string
}

func (o *open) do(t *testing.T, r req) (int, string) {
	t.Helper()
	hr, err := http.NewRequestWithContext(t.Context(), r.method, o.url+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.header {
		if k == "Host" {
			hr.Host = v
			continue
		}
		hr.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// runs is how many runs the store holds.
func (o *open) runs(t *testing.T) int {
	t.Helper()
	runs, err := o.st.Runs(t.Context(), store.RunFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return len(runs)
}

const runBody = `{"params":{},"by":"mallory"}`

// A page on another site can POST to the healer with the user's browser:
// only text/plain, form and multipart bodies go without a preflight, and
// the browser says where the request comes from (Sec-Fetch-Site, Origin).
// Each of these must change nothing.
func crossSite(o *open) []struct {
	name string
	r    req
} {
	host := strings.TrimPrefix(o.url, "http://")
	return []struct {
		name string
		r    req
	}{
		{"a text/plain body", req{"POST", "/api/v1/actions/clean_temp_files/run", runBody, map[string]string{"Content-Type": "text/plain"}}},
		{"a form", req{"POST", "/api/v1/actions/clean_temp_files/run", "params=x", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}},
		{"a JSON body from another site (Sec-Fetch-Site)", req{"POST", "/api/v1/actions/clean_temp_files/run", runBody, map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}}},
		{"a JSON body from another origin (Origin)", req{"POST", "/api/v1/actions/clean_temp_files/run", runBody, map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example"}}},
		{"a reload as text/plain", req{"POST", "/-/reload", "x", map[string]string{"Content-Type": "text/plain"}}},
		{"a reload with no body from another site", req{"POST", "/-/reload", "", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}}},
		{"a rebinding page posting JSON under its own name", req{"POST", "/api/v1/actions/clean_temp_files/run", runBody, map[string]string{"Content-Type": "application/json", "Host": "evil.example:" + host[strings.LastIndexByte(host, ':')+1:], "Origin": "http://evil.example:" + host[strings.LastIndexByte(host, ':')+1:]}}},
	}
}

func TestCrossSiteRequestsChangeNothing(t *testing.T) {
	t.Parallel()
	o := serveOpen(t, "")
	for _, tc := range crossSite(o) {
		code, body := o.do(t, tc.r)
		if code < 400 {
			t.Errorf("%s: got %d %s, want it refused", tc.name, code, body)
		}
	}
	if n := o.runs(t); n != 0 || o.act.runs.Load() != 0 || o.reloads.Load() != 0 {
		t.Fatalf("after cross-site requests: %d runs, %d action runs, %d reloads; want none", n, o.act.runs.Load(), o.reloads.Load())
	}
	// The same requests as a script on this machine sends them do act, so
	// the refusals above are not the endpoints failing for another reason.
	if code, body := o.do(t, req{"POST", "/api/v1/actions/clean_temp_files/run", runBody, map[string]string{"Content-Type": "application/json"}}); code != 200 {
		t.Fatalf("run by a local client: got %d %s, want 200", code, body)
	}
	if code, body := o.do(t, req{"POST", "/-/reload", "", nil}); code != 200 {
		t.Fatalf("curl -X POST /-/reload: got %d %s, want 200", code, body)
	}
	same := "http://" + strings.TrimPrefix(o.url, "http://")
	if code, body := o.do(t, req{"POST", "/-/reload", "", map[string]string{"Origin": same, "Sec-Fetch-Site": "same-origin"}}); code != 200 {
		t.Fatalf("reload from the healer's own page: got %d %s, want 200", code, body)
	}
	if n := o.runs(t); n != 1 || o.act.runs.Load() != 1 || o.reloads.Load() != 2 {
		t.Errorf("after local requests: %d runs, %d action runs, %d reloads; want 1, 1, 2", n, o.act.runs.Load(), o.reloads.Load())
	}
}

func TestRebindingPagesCannotReadAnUnauthenticatedHealer(t *testing.T) {
	t.Parallel()
	o := serveOpen(t, "")
	port := o.url[strings.LastIndexByte(o.url, ':')+1:]
	for _, path := range []string{"/", "/api/v1/runs", "/prometheus/api/v1/query?query=up", "/static/status.css"} {
		code, body := o.do(t, req{"GET", path, "", map[string]string{"Host": "evil.example:" + port}})
		if code != http.StatusMisdirectedRequest || !strings.Contains(body, "evil.example") {
			t.Errorf("GET %s with Host evil.example: got %d %q, want 421 naming the host", path, code, body)
		}
		for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "LOCALHOST:" + port, "grafana.localhost:" + port} {
			if code, body := o.do(t, req{"GET", path, "", map[string]string{"Host": host}}); code != 200 {
				t.Errorf("GET %s with Host %s: got %d %q, want 200", path, host, code, body)
			}
		}
	}
}

func TestPagesHaveAContentSecurityPolicy(t *testing.T) {
	t.Parallel()
	o := serveOpen(t, "")
	resp, err := http.Get(o.url + "/api/v1/runs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("X-Frame-Options: got %q, want DENY", got)
	}
	css, err := http.Get(o.url + "/static/status.css")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(css.Body)
	css.Body.Close()
	if css.StatusCode != 200 || !strings.Contains(string(b), "body {") {
		t.Errorf("GET /static/status.css: got %d %q", css.StatusCode, b)
	}
	if strings.Contains(pageCSP, "unsafe-inline") || !strings.Contains(pageCSP, "frame-ancestors 'none'") {
		t.Errorf("content security policy %q: want no unsafe-inline, no framing", pageCSP)
	}
}

func basicAuthConfig(t *testing.T, users map[string]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("basic_auth_users:\n")
	for u, p := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("  " + u + ": " + string(h) + "\n")
	}
	return b.String()
}

// With basic auth a browser re-sends the user's cached credentials to the
// healer with every request a page on another site makes: credentials do
// not make a request same-origin.
func TestBasicAuthDoesNotLetOtherSitesAct(t *testing.T) {
	t.Parallel()
	o := serveOpen(t, basicAuthConfig(t, map[string]string{"alice": "wonderland"}))
	for _, tc := range crossSite(o) {
		if tc.r.header["Host"] != "" {
			continue // the browser keeps alice's credentials for the healer's origin, not the rebinding page's
		}
		tc.r.header["Authorization"] = "Basic YWxpY2U6d29uZGVybGFuZA==" // alice:wonderland
		if code, body := o.do(t, tc.r); code < 400 {
			t.Errorf("%s with alice's credentials: got %d %s, want it refused", tc.name, code, body)
		}
	}
	if n := o.runs(t); n != 0 {
		t.Fatalf("%d runs created by cross-site requests", n)
	}
	code, body := o.do(t, req{"POST", "/api/v1/actions/clean_temp_files/run", `{"params":{},"by":"root"}`, map[string]string{
		"Content-Type": "application/json", "Authorization": "Basic YWxpY2U6d29uZGVybGFuZA==",
	}})
	if code != 200 {
		t.Fatalf("run as alice: got %d %s", code, body)
	}
	var res struct {
		Data store.Run `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	if got := res.Data.Labels["requested_principal"]; got != "user:alice" {
		t.Errorf("requested by: got %q, want the authenticated user:alice, not the claimed root", got)
	}
	// A rebinding page cannot use alice's credentials (the browser keeps
	// them for the healer's origin, not the page's), but with them a
	// request under any Host name is hers, and served.
	if code, _ := o.do(t, req{"GET", "/api/v1/runs", "", map[string]string{"Host": "healer.example.com", "Authorization": "Basic YWxpY2U6d29uZGVybGFuZA=="}}); code != 200 {
		t.Errorf("GET /api/v1/runs as alice under another host name: got %d, want 200", code)
	}
	if code, _ := o.do(t, req{"GET", "/api/v1/runs", "", nil}); code != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/runs without credentials: got %d, want 401 from the web config", code)
	}
	recs := auditFields(t, o.auditDir, "requested")
	if len(recs) != 1 || recs[0]["principal"] != "user:alice" || recs[0]["by"] != "root" {
		t.Errorf("requested records: got %v, want one with principal user:alice and by root", recs)
	}
}

// auditFields returns the fields of the audit records of kind.
func auditFields(t *testing.T, dir, kind string) []map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for line := range strings.Lines(string(b)) {
		var r struct {
			Kind   string            `json:"kind"`
			Fields map[string]string `json:"fields"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if r.Kind == kind {
			out = append(out, r.Fields)
		}
	}
	return out
}

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	t.Parallel()
	f := setup(t, 1<<20)
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		hr, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+"/api/v1/runs", nil)
		hr.Header.Set("Authorization", scheme+" s3cret-api")
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("Authorization: %s <token>: got %d, want 200 (RFC 7235: the scheme is case-insensitive)", scheme, resp.StatusCode)
		}
	}
	hr, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+"/api/v1/runs", nil)
	hr.Header.Set("Authorization", "Basic s3cret-api")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the token under the Basic scheme: got %d, want 401", resp.StatusCode)
	}
}

func TestClaimedNameIsValidatedAndThePrincipalRecorded(t *testing.T) {
	t.Parallel()
	o := serveOpen(t, "")
	huge, _ := json.Marshal(map[string]any{"params": map[string]string{}, "by": strings.Repeat("x", 900<<10) + "\n\x00"})
	for name, body := range map[string]string{
		"900 KB with a newline and a NUL": string(huge),
		"a newline":                       `{"params":{},"by":"ops\nkind: approved"}`,
	} {
		code, msg := o.do(t, req{"POST", "/api/v1/actions/clean_temp_files/run", body, map[string]string{"Content-Type": "application/json"}})
		if code != http.StatusBadRequest || !strings.Contains(msg, "by:") {
			t.Errorf("run by a name with %s: got %d %.200s, want 400 naming by", name, code, msg)
		}
	}
	if n := o.runs(t); n != 0 {
		t.Fatalf("%d runs created by requests with invalid names", n)
	}
	if code, msg := o.do(t, req{"POST", "/api/v1/actions/clean_temp_files/run", `{"params":{},"by":"ops"}`, map[string]string{"Content-Type": "application/json"}}); code != 200 {
		t.Fatalf("run by ops: got %d %s", code, msg)
	}
	recs := auditFields(t, o.auditDir, "requested")
	if len(recs) != 1 || recs[0]["principal"] != healer.Anonymous || recs[0]["by"] != "ops" {
		t.Errorf("requested records: got %v, want one by ops with principal %q", recs, healer.Anonymous)
	}
}

// A request whose client certificate was verified is its subject's; one
// whose certificate nothing verified is nobody's.
func TestVerifiedClientCertificateIsThePrincipal(t *testing.T) {
	t.Parallel()
	a, err := NewAccess(&Tokens{}, nil, nil, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{Subject: pkix.Name{CommonName: "ops", Organization: []string{"Example"}}}
	r := httptest.NewRequest(http.MethodGet, "https://healer.example/api/v1/runs", nil)
	if p := a.proven(r); p != "" {
		t.Errorf("a request without TLS is %q, want nobody", p)
	}
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
	if p := a.proven(r); p != "" {
		t.Errorf("a request with an unverified certificate is %q, want nobody", p)
	}
	r.TLS.VerifiedChains = [][]*x509.Certificate{{leaf}}
	if p, want := a.proven(r), "cert:CN=ops,O=Example"; p != want {
		t.Errorf("a request with a verified certificate is %q, want %q", p, want)
	}
}

// /metrics and health ask for no token: while nothing on the listener
// authenticates they are served only to loopback clients naming this
// machine, as every other endpoint is, so that a rebinding page cannot read
// them; while anything authenticates, a remote Prometheus scrapes them by
// the listener's address.
func TestMetricsAndHealthKeepToLoopbackWhileNothingAuthenticates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(users, []byte(basicAuthConfig(t, map[string]string{"alice": "wonderland"})), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name         string
		webhook, api string
		webConfig    string
		host, remote string
		want         int
	}{
		{"unauthenticated, a loopback client naming localhost is served", "", "", "", "localhost:9112", "127.0.0.1:5000", 200},
		{"unauthenticated, a rebinding page's name is refused", "", "", "", "evil.example:9112", "127.0.0.1:5000", http.StatusMisdirectedRequest},
		{"unauthenticated, a client beyond loopback is refused", "", "", "", "localhost:9112", "192.0.2.7:5000", http.StatusForbidden},
		{"with a webhook token, any name from anywhere is served", tokenFile, "", "", "healer.example:9112", "192.0.2.7:5000", 200},
		{"with an API token, any name from anywhere is served", "", tokenFile, "", "healer.example:9112", "192.0.2.7:5000", 200},
		{"with basic-auth users, any name from anywhere is served", "", "", users, "healer.example:9112", "192.0.2.7:5000", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tokens, err := LoadTokens(tt.webhook, tt.api)
			if err != nil {
				t.Fatal(err)
			}
			wc, err := listener.NewWebConfig(tt.webConfig)
			if err != nil {
				t.Fatal(err)
			}
			access, err := NewAccess(tokens, wc, nil, testenv.Logger(t))
			if err != nil {
				t.Fatal(err)
			}
			h := Handler(Options{Gatherer: prometheus.NewRegistry(), Logger: testenv.Logger(t)}, access, func() int64 { return 1 << 20 })
			for _, path := range []string{"/metrics", "/-/healthy", "/-/ready"} {
				r := httptest.NewRequest(http.MethodGet, path, nil)
				r.Host, r.RemoteAddr = tt.host, tt.remote
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != tt.want {
					t.Errorf("GET %s with Host %s from %s: got %d %q, want %d", path, tt.host, tt.remote, w.Code, w.Body, tt.want)
				}
			}
		})
	}
}

// A request is every identity it proved, so that alice is the same
// principal whether she asks with her user and approves with her
// certificate too, or the other way round.
func TestEveryProvenIdentityIsThePrincipal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	users := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(users, []byte(basicAuthConfig(t, map[string]string{"alice": "wonderland"})), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "api.token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	alice := &x509.Certificate{Subject: pkix.Name{CommonName: "alice"}}
	for _, tt := range []struct {
		name      string
		webConfig string
		api       string
		cert      bool
		user      bool
		want      string
	}{
		{"a certificate and a basic-auth user are both recorded", users, "", true, true, "cert:CN=alice+user:alice"},
		{"a basic-auth user alone is the user", users, "", false, true, "user:alice"},
		{"a certificate beside the API token records both", "", tokenFile, true, false, "cert:CN=alice+token:" + tokenFile},
		{"the API token alone is the token", "", tokenFile, false, false, "token:" + tokenFile},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tokens, err := LoadTokens("", tt.api)
			if err != nil {
				t.Fatal(err)
			}
			wc, err := listener.NewWebConfig(tt.webConfig)
			if err != nil {
				t.Fatal(err)
			}
			a, err := NewAccess(tokens, wc, nil, testenv.Logger(t))
			if err != nil {
				t.Fatal(err)
			}
			var got healer.Actor
			h := a.Protect(SurfaceAPI, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = Actor(r, "") }))
			r := httptest.NewRequest(http.MethodGet, "https://healer.example/api/v1/runs", nil)
			if tt.cert {
				r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{alice}, VerifiedChains: [][]*x509.Certificate{{alice}}}
			}
			if tt.user {
				r.SetBasicAuth("alice", "wonderland")
			}
			if tt.api != "" {
				r.Header.Set("Authorization", "Bearer s3cret")
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 || got.Principal != tt.want {
				t.Errorf("got %d as %q, want 200 as %q", w.Code, got.Principal, tt.want)
			}
		})
	}
}

func TestProtectRecordsThePeersItServesAndNoOthers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hook, api := filepath.Join(dir, "webhook.token"), filepath.Join(dir, "api.token")
	for f, v := range map[string]string{hook: "hook-secret\n", api: "api-secret\n"} {
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tokens, err := LoadTokens(hook, api)
	if err != nil {
		t.Fatal(err)
	}
	wc, err := listener.NewWebConfig("")
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAccess(tokens, wc, nil, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	a.Peers = action.NewPeers(time.Hour, 16, nil)
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, c := range []struct {
		s      Surface
		remote string
		token  string
		open   bool
	}{
		{s: SurfaceWebhook, remote: "192.0.2.9:40000", token: "hook-secret"},           // Alertmanager
		{s: SurfaceAPI, remote: "[2001:db8::7]:50000", token: "api-secret"},            // healer approve
		{s: SurfaceAPI, remote: "203.0.113.66:1234", token: "wrong"},                   // a guess
		{s: SurfaceWebhook, remote: "203.0.113.67:1234", token: "api-secret"},          // the other surface's token
		{s: SurfaceAPI, remote: "203.0.113.68:1234", open: true},                       // /metrics
		{s: SurfaceAPI, remote: "203.0.113.69:1234", token: "api-secret", open: false}, // served
	} {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/runs", nil)
		r.RemoteAddr = c.remote
		if c.token != "" {
			r.Header.Set("Authorization", "Bearer "+c.token)
		}
		h := a.Protect(c.s, ok)
		if c.open {
			h = a.Open(ok)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	var got []string
	for _, p := range a.Peers.List() {
		got = append(got, p.String())
	}
	want := []string{"192.0.2.9", "203.0.113.69", "2001:db8::7"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got peers %q, want %q", got, want)
	}
}
