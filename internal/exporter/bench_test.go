package exporter

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/deus-ex-machina/deus/internal/collector"
	"github.com/deus-ex-machina/deus/internal/testenv"
)

// BenchmarkScrapeVitals scrapes this host's vitals in process, as the
// exporter does for each request, without HTTP.
func BenchmarkScrapeVitals(b *testing.B) {
	o := DefaultOptions()
	o.StateDir = b.TempDir()
	for name := range o.Enabled {
		o.Enabled[name] = slices.Contains(vitals, name)
	}
	entries, err := Collectors(o)
	if err != nil {
		b.Fatal(err)
	}
	s := collector.NewScraper(testenv.Logger(b), 10*time.Second, collector.BuildInfo{}, entries)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Scrape(b.Context(), io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandlerGzip serves /metrics with gzip as Prometheus asks for it.
func BenchmarkHandlerGzip(b *testing.B) {
	o := DefaultOptions()
	o.StateDir = b.TempDir()
	for name := range o.Enabled {
		o.Enabled[name] = slices.Contains(vitals, name)
	}
	entries, err := Collectors(o)
	if err != nil {
		b.Fatal(err)
	}
	h := NewHandler(testenv.Logger(b), collector.NewScraper(testenv.Logger(b), 10*time.Second, collector.BuildInfo{}, entries), 10*time.Second, 0)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}
