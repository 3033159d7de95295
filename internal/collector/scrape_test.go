package collector

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deus-ex-machina/deus/internal/testenv"
)

type funcCollector func(ctx context.Context, w *Writer) error

func (f funcCollector) Update(ctx context.Context, w *Writer) error { return f(ctx, w) }

func constant(name string, v float64) Collector {
	return funcCollector(func(_ context.Context, w *Writer) error {
		w.Single(name, Gauge, "A test value.", v)
		return nil
	})
}

// scrapeWithin runs one scrape and fails the test if it has not returned
// within limit: the scraper's own timeout must have ended it long before.
func scrapeWithin(t *testing.T, s *Scraper, limit time.Duration) string {
	t.Helper()
	var buf bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- s.Scrape(t.Context(), &buf) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Scrape: %v", err)
		}
	case <-time.After(limit):
		t.Fatalf("Scrape did not return within %s", limit)
	}
	return buf.String()
}

func TestStuckCollectorDoesNotStallTheScrape(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var calls atomic.Int32
	stuck := funcCollector(func(_ context.Context, w *Writer) error {
		calls.Add(1)
		w.Single("stuck_metric", Gauge, "Never delivered.", 1)
		<-release // ignores its context, like a statfs on a dead NFS server
		return nil
	})
	s := NewScraper(testenv.Logger(t), time.Second, BuildInfo{}, []Entry{
		{Name: "ok", Collector: constant("ok_metric", 42)},
		{Name: "stuck", Collector: stuck},
	})

	for i := range 3 {
		out := scrapeWithin(t, s, 10*time.Second)
		for _, want := range []string{
			"ok_metric 42\n",
			`deus_scrape_collector_success{collector="ok"} 1` + "\n",
			`deus_scrape_collector_success{collector="stuck"} 0` + "\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("scrape %d: output lacks %q:\n%s", i, want, out)
			}
		}
		if strings.Contains(out, "stuck_metric") {
			t.Errorf("scrape %d: output has the stuck collector's partial output:\n%s", i, out)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("stuck collector started %d times; want 1 (no pile-up while it hangs)", n)
	}
}

func TestFailingCollectorKeepsOthers(t *testing.T) {
	t.Parallel()
	failing := funcCollector(func(context.Context, *Writer) error { return errors.New("boom") })
	noData := funcCollector(func(context.Context, *Writer) error { return ErrNoData })
	s := NewScraper(testenv.Logger(t), time.Second, BuildInfo{Version: "1.2.3"}, []Entry{
		{Name: "failing", Collector: failing},
		{Name: "nodata", Collector: noData},
		{Name: "ok", Collector: constant("ok_metric", 1)},
	})
	out := scrapeWithin(t, s, 10*time.Second)
	for _, want := range []string{
		`deus_scrape_collector_success{collector="failing"} 0`,
		`deus_scrape_collector_success{collector="nodata"} 1`,
		`deus_scrape_collector_success{collector="ok"} 1`,
		"ok_metric 1",
		`version="1.2.3"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestWriterEscapesLabelValuesAndHelp(t *testing.T) {
	t.Parallel()
	var w Writer
	w.Family("x", Gauge, "Help with \\ and\nnewline and \"quotes\".")
	w.Sample("x", 1.5, "a", "q\"uote", "b", "back\\slash", "c", "new\nline")
	want := "# HELP x Help with \\\\ and\\nnewline and \"quotes\".\n# TYPE x gauge\n" +
		`x{a="q\"uote",b="back\\slash",c="new\nline"} 1.5` + "\n"
	if got := string(w.Bytes()); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
