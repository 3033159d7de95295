package action

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// recorder is a test server that records the requests it gets.
type recorder struct {
	mu   sync.Mutex
	reqs []string // "METHOD path content-type body"
}

func (r *recorder) add(req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req.Method+" "+req.URL.Path+" "+req.Header.Get("Content-Type")+" "+string(b))
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reqs...)
}

func newHookServer(t *testing.T) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	mux := http.NewServeMux()
	mux.HandleFunc("/hooks/ok", func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		_, _ = io.WriteString(w, "thanks")
	})
	mux.HandleFunc("/hooks/big", func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		_, _ = io.WriteString(w, strings.Repeat("y", maxResponseBytes*2))
	})
	mux.HandleFunc("/hooks/fail", func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("/hooks/busy", func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		http.Error(w, "slow down", http.StatusTooManyRequests)
	})
	mux.HandleFunc("/hooks/redirect", func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		http.Redirect(w, r, "/admin", http.StatusFound)
	})
	mux.HandleFunc("/hooks/redirect-ok", func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		http.Redirect(w, r, "/hooks/ok", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, rec
}

func TestHTTPRequest(t *testing.T) {
	t.Parallel()
	alert := json.RawMessage(`{"labels":{"alertname":"DiskFull"}}`)
	tests := []struct {
		name        string
		path        string
		method      string
		wantReqs    []string
		wantErr     string
		wantRetry   bool
		wantOutput  string
		wantSummary string
	}{
		{
			name: "a POST sends the alert as JSON", path: "/hooks/ok",
			wantReqs:    []string{"POST /hooks/ok application/json " + string(alert)},
			wantOutput:  "thanks",
			wantSummary: "POST {srv}/hooks/ok: 200 OK",
		},
		{
			name: "a GET sends no body", path: "/hooks/ok", method: "GET",
			wantReqs:   []string{"GET /hooks/ok  "},
			wantOutput: "thanks",
		},
		{
			name: "a PUT sends the alert", path: "/hooks/ok", method: "PUT",
			wantReqs:   []string{"PUT /hooks/ok application/json " + string(alert)},
			wantOutput: "thanks",
		},
		{
			name: "a 500 is an error that is not retryable", path: "/hooks/fail",
			wantReqs: []string{"POST /hooks/fail application/json " + string(alert)},
			wantErr:  "status 500 Internal Server Error",
		},
		{
			name: "a 429 is retryable", path: "/hooks/busy",
			wantReqs: []string{"POST /hooks/busy application/json " + string(alert)},
			wantErr:  "status 429", wantRetry: true,
		},
		{
			name: "a redirect out of the allow-list is not followed", path: "/hooks/redirect",
			wantReqs: []string{"POST /hooks/redirect application/json " + string(alert)},
			wantErr:  "not on the allow-list",
		},
		{
			name: "a redirect within the allow-list is followed", path: "/hooks/redirect-ok",
			wantReqs: []string{
				"POST /hooks/redirect-ok application/json " + string(alert),
				"POST /hooks/ok application/json " + string(alert),
			},
			wantOutput: "thanks",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, rec := newHookServer(t)
			h, err := NewHTTPRequest(srv.Client(), []string{srv.URL + "/hooks/"})
			if err != nil {
				t.Fatal(err)
			}
			params := map[string]string{"url": srv.URL + tt.path}
			if tt.method != "" {
				params["method"] = tt.method
			}
			res, err := h.Run(t.Context(), Request{RunID: "r1", Params: params, Alert: alert})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
				}
				if IsRetryable(err) != tt.wantRetry {
					t.Errorf("got retryable %v, want %v", IsRetryable(err), tt.wantRetry)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := rec.got(); strings.Join(got, "\n") != strings.Join(tt.wantReqs, "\n") {
				t.Errorf("got requests %q, want %q", got, tt.wantReqs)
			}
			if tt.wantOutput != "" && res.Output != tt.wantOutput {
				t.Errorf("got output %q, want %q", res.Output, tt.wantOutput)
			}
			if want := strings.ReplaceAll(tt.wantSummary, "{srv}", srv.URL); want != "" && res.Summary != want {
				t.Errorf("got summary %q, want %q", res.Summary, want)
			}
		})
	}
}

func TestHTTPRequestBoundsTheResponse(t *testing.T) {
	t.Parallel()
	srv, _ := newHookServer(t)
	h, err := NewHTTPRequest(srv.Client(), []string{srv.URL + "/hooks"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Run(t.Context(), Request{RunID: "r1", Params: map[string]string{"url": srv.URL + "/hooks/big"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("y", maxResponseBytes) + "\n[response cut]"; res.Output != want {
		t.Errorf("got output of %d bytes, want %d", len(res.Output), len(want))
	}
}

func TestHTTPRequestAllowList(t *testing.T) {
	t.Parallel()
	srv, rec := newHookServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	h, err := NewHTTPRequest(srv.Client(), []string{srv.URL + "/hooks", "https://chat.example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		url  string
	}{
		{name: "a path that only shares the prefix's letters is refused", url: srv.URL + "/hooksx/ok"},
		{name: "a path above the prefix is refused", url: srv.URL + "/admin"},
		{name: "a dot-dot segment is refused", url: srv.URL + "/hooks/../admin"},
		{name: "an encoded dot-dot segment is refused", url: srv.URL + "/hooks/%2e%2e/admin"},
		{name: "a user name before the host is refused", url: "http://" + host + "@evil.example/hooks/ok"},
		{name: "a user name with the right host is refused", url: "http://me:pw@" + host + "/hooks/ok"},
		{name: "another scheme for the host is refused", url: "https://" + host + "/hooks/ok"},
		{name: "a host that extends the allowed host is refused", url: "https://chat.example.com.evil.example/x"},
		{name: "another port is refused", url: "https://chat.example.com:8443/x"},
		{name: "a non-HTTP URL is refused", url: "file:///etc/passwd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := h.Run(t.Context(), Request{RunID: "r1", Params: map[string]string{"url": tt.url}})
			if !errors.Is(err, ErrRefused) {
				t.Errorf("got %v, want a refusal", err)
			}
		})
	}
	if got := rec.got(); len(got) != 0 {
		t.Errorf("got requests %q, want none", got)
	}
}

func TestHTTPRequestDryRunAndRedaction(t *testing.T) {
	t.Parallel()
	srv, rec := newHookServer(t)
	h, err := NewHTTPRequest(srv.Client(), []string{srv.URL + "/hooks"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Run(t.Context(), Request{DryRun: true, Params: map[string]string{"url": srv.URL + "/hooks/ok?token=s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "would POST the alert to " + srv.URL + "/hooks/ok"; res.Summary != want {
		t.Errorf("got summary %q, want %q", res.Summary, want)
	}
	if strings.Contains(res.Target+res.Summary, "s3cret") {
		t.Error("got the query's secret in the result, want it left out")
	}
	if got := rec.got(); len(got) != 0 {
		t.Errorf("got requests %q in a dry run, want none", got)
	}
}

func TestHTTPRequestConnectionRefusedIsRetryable(t *testing.T) {
	t.Parallel()
	// A socket bound but not listening holds the port, so no other test
	// can take it, and refuses connections.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*unix.SockaddrInet4).Port))
	h, err := NewHTTPRequest(nil, []string{"http://" + addr + "/"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Run(t.Context(), Request{RunID: "r1", Params: map[string]string{"url": "http://" + addr + "/x"}})
	if err == nil || !IsRetryable(err) {
		t.Errorf("got %v, want a retryable error", err)
	}
}

func TestNewHTTPRequestRefusesBadPrefixes(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"ftp://x/", "https://", "https://u:p@x/", "https://x/?q=1", "not a url", "/relative"} {
		if _, err := NewHTTPRequest(nil, []string{p}); err == nil {
			t.Errorf("NewHTTPRequest(%q): got no error, want one", p)
		}
	}
}
