package exporter

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deus-ex-machina/deus/internal/collector"
	"github.com/deus-ex-machina/deus/internal/testenv"
)

func fixtureHandler(t *testing.T, maxRequests int) *Handler {
	t.Helper()
	entries, err := Collectors(fixtureOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	s := collector.NewScraper(testenv.Logger(t), 5*time.Second, collector.BuildInfo{Version: "test"}, entries)
	return NewHandler(testenv.Logger(t), s, 5*time.Second, maxRequests)
}

func TestHandlerServesGzipWhenAsked(t *testing.T) {
	t.Parallel()
	h := fixtureHandler(t, 0)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got := rec.Header().Get("Content-Encoding"); got != "gzip" {
		t.Fatalf("Content-Encoding = %q; want gzip", got)
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(body, []byte("node_load1 0.1\n")) {
		t.Errorf("gzip body lacks node_load1:\n%s", body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type = %q; want the text exposition format", ct)
	}
}

func TestHandlerHonoursPrometheusScrapeTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stuck := collectorFunc(func(ctx context.Context, _ *collector.Writer) error {
		<-release
		return nil
	})
	s := collector.NewScraper(testenv.Logger(t), time.Hour, collector.BuildInfo{}, []collector.Entry{{Name: "stuck", Collector: stuck}})
	h := NewHandler(testenv.Logger(t), s, time.Hour, 0)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "0.5")
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		done <- rec
	}()
	select {
	case rec := <-done:
		if !strings.Contains(rec.Body.String(), `deus_scrape_collector_success{collector="stuck"} 0`) {
			t.Errorf("stuck collector not reported as failed:\n%s", rec.Body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("scrape ignored X-Prometheus-Scrape-Timeout-Seconds and the one-hour collector timeout held it")
	}
}

func TestHandlerRefusesScrapesBeyondTheLimit(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{})
	var once sync.Once
	slow := collectorFunc(func(context.Context, *collector.Writer) error {
		once.Do(func() { close(started) })
		<-release
		return nil
	})
	s := collector.NewScraper(testenv.Logger(t), time.Hour, collector.BuildInfo{}, []collector.Entry{{Name: "slow", Collector: slow}})
	h := NewHandler(testenv.Logger(t), s, time.Hour, 1)
	first := make(chan int, 1)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		first <- rec.Code
	}()
	<-started
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("second concurrent scrape: status %d; want 503", rec.Code)
	}
	close(release)
	if code := <-first; code != http.StatusOK {
		t.Errorf("first scrape: status %d; want 200", code)
	}
}

// TestConcurrentScrapesAgree scrapes the fixture from many goroutines at
// once (run with -race): every answer is complete and the same.
func TestConcurrentScrapesAgree(t *testing.T) {
	t.Parallel()
	h := fixtureHandler(t, 0)
	const n = 16
	bodies := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			bodies[i] = string(stable(rec.Body.Bytes()))
		})
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if bodies[i] != bodies[0] {
			t.Fatalf("scrape %d differs from scrape 0 (-0 +%d):\n%s", i, i, cmp.Diff(bodies[0], bodies[i]))
		}
	}
	if !strings.Contains(bodies[0], `deus_scrape_collector_success{collector="processes"} 1`) {
		t.Errorf("concurrent scrape incomplete:\n%s", bodies[0])
	}
}

type collectorFunc func(context.Context, *collector.Writer) error

func (f collectorFunc) Update(ctx context.Context, w *collector.Writer) error { return f(ctx, w) }
