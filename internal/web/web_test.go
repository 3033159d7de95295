package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/config"
	"github.com/deus-ex-machina/deus/internal/healer"
	"github.com/deus-ex-machina/deus/internal/store"
	"github.com/deus-ex-machina/deus/internal/testenv"
)

type fixture struct {
	srv *httptest.Server
	st  *store.Store
}

func setup(t *testing.T, maxBody int64) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "db"), store.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	alog, err := audit.Open(filepath.Join(dir, "audit"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := action.NewRegistry()
	cfg := config.Default()
	h := healer.New(healer.Options{Store: st, Audit: alog, Actions: reg, Logger: testenv.Logger(t)}, cfg)
	for name, tok := range map[string]string{"webhook": "s3cret-webhook", "api": "s3cret-api"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tokens, err := LoadTokens(filepath.Join(dir, "webhook"), filepath.Join(dir, "api"))
	if err != nil {
		t.Fatal(err)
	}
	access, err := NewAccess(tokens, nil, nil, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	reg2 := prometheus.NewRegistry()
	srv := httptest.NewServer(Handler(Options{Healer: h, Store: st, Actions: reg, Gatherer: reg2, Logger: testenv.Logger(t)},
		access, func() int64 { return maxBody }))
	t.Cleanup(func() {
		srv.Close()
		_ = st.Close() // closed already by one test
		if err := alog.Close(); err != nil {
			t.Error(err)
		}
	})
	return &fixture{srv: srv, st: st}
}

func (f *fixture) post(t *testing.T, path, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, f.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	msg, _ := v["error"].(string)
	return resp.StatusCode, msg
}

func TestWebhook(t *testing.T) {
	t.Parallel()
	firing, err := os.ReadFile(filepath.Join("..", "alertmanager", "testdata", "webhook-firing.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := setup(t, 4096)
	for name, tc := range map[string]struct {
		token, body string
		code        int
		msg         string
	}{
		"a real payload with the token":     {token: "s3cret-webhook", body: string(firing), code: 200},
		"no token":                          {body: string(firing), code: 401, msg: "bearer token"},
		"the API's token is not the hook's": {token: "s3cret-api", body: string(firing), code: 401},
		"not JSON":                          {token: "s3cret-webhook", body: "{", code: 400},
		"the wrong version":                 {token: "s3cret-webhook", body: strings.Replace(string(firing), `"version": "4"`, `"version": "3"`, 1), code: 400, msg: `version: must be "4"`},
		"too large":                         {token: "s3cret-webhook", body: `{"x":"` + strings.Repeat("a", 5000) + `"}`, code: 413, msg: "larger than 4096"},
	} {
		t.Run(name, func(t *testing.T) {
			code, msg := f.post(t, "/webhook", tc.token, tc.body)
			if code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Errorf("POST /webhook: got %d %q, want %d containing %q", code, msg, tc.code, tc.msg)
			}
		})
	}
}

func TestWebhookUnavailableWhenStoreIsDown(t *testing.T) {
	t.Parallel()
	firing, err := os.ReadFile(filepath.Join("..", "alertmanager", "testdata", "webhook-firing.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := setup(t, 1<<20)
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	if code, msg := f.post(t, "/webhook", "s3cret-webhook", string(firing)); code != http.StatusServiceUnavailable {
		t.Errorf("POST /webhook with the store closed: got %d %q, want 503 so Alertmanager retries", code, msg)
	}
}

func TestAPIAuth(t *testing.T) {
	t.Parallel()
	f := setup(t, 1<<20)
	for _, tc := range []struct {
		method, path, token string
		code                int
	}{
		{"GET", "/api/v1/runs", "", 401},
		{"GET", "/api/v1/runs", "s3cret-webhook", 401},
		{"GET", "/api/v1/runs", "s3cret-api", 200},
		{"GET", "/api/v1/runs/nope", "s3cret-api", 404},
		{"POST", "/api/v1/runs/nope/approve", "s3cret-api", 404},
		{"POST", "/api/v1/actions/nope/run", "s3cret-api", 400},
		{"GET", "/-/healthy", "", 200},
	} {
		req, _ := http.NewRequestWithContext(context.Background(), tc.method, f.srv.URL+tc.path, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s with token %q: got %d, want %d", tc.method, tc.path, tc.token, resp.StatusCode, tc.code)
		}
	}
}
