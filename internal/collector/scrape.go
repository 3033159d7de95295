package collector

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Entry names a collector for the Scraper.
type Entry struct {
	Name      string
	Collector Collector
}

// BuildInfo labels deus_exporter_build_info.
type BuildInfo struct {
	Version, Revision, Branch, GoVersion, GoOS, GoArch string
}

// Scraper runs collectors in parallel, each under the scrape's deadline, and
// writes what they produced. A collector that does not finish in time is
// reported as failed and its output dropped; its goroutine keeps the
// collector's slot until it returns, so a collector stuck in the kernel (a
// hung NFS statfs) is never started a second time and cannot pile up
// goroutines: later scrapes report it failed at once.
type Scraper struct {
	logger  *slog.Logger
	slots   []*slot
	timeout time.Duration
	build   BuildInfo
	pool    sync.Pool
}

type slot struct {
	name string
	c    Collector
	sem  chan struct{}
}

type result struct {
	idx      int
	w        *Writer
	err      error
	duration time.Duration
}

// NewScraper returns a Scraper over entries. timeout bounds every collector
// of a scrape; a shorter deadline on the scrape's context wins.
func NewScraper(logger *slog.Logger, timeout time.Duration, build BuildInfo, entries []Entry) *Scraper {
	s := &Scraper{logger: logger, timeout: timeout, build: build}
	s.pool.New = func() any { return new(Writer) }
	for _, e := range entries {
		s.slots = append(s.slots, &slot{name: e.Name, c: e.Collector, sem: make(chan struct{}, 1)})
	}
	return s
}

// Names returns the names of the collectors, in order.
func (s *Scraper) Names() []string {
	names := make([]string, len(s.slots))
	for i, sl := range s.slots {
		names[i] = sl.name
	}
	return names
}

// Scrape writes one exposition to out. It returns once every collector has
// finished or the deadline has passed, whichever is first.
func (s *Scraper) Scrape(ctx context.Context, out io.Writer) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	results := make(chan result, len(s.slots))
	for i, sl := range s.slots {
		go s.run(ctx, i, sl, results)
	}

	got := make([]*result, len(s.slots))
	pending := len(s.slots)
wait:
	for pending > 0 {
		select {
		case r := <-results:
			got[r.idx] = &r
			pending--
		case <-ctx.Done():
			break wait
		}
	}

	self := s.pool.Get().(*Writer)
	defer s.put(self)
	durations := make([]float64, len(s.slots))
	success := make([]float64, len(s.slots))
	var werr error
	for i, sl := range s.slots {
		r := got[i]
		switch {
		case r == nil:
			durations[i] = time.Since(start).Seconds()
			s.logger.Warn("collector_timeout", "collector", sl.name, "duration_seconds", durations[i])
			continue
		case r.err == nil:
			success[i] = 1
		case errors.Is(r.err, ErrNoData):
			success[i] = 1
			s.logger.Debug("collector_no_data", "collector", sl.name, "err", r.err)
		default:
			s.logger.Error("collector_failed", "collector", sl.name, "err", r.err)
		}
		durations[i] = r.duration.Seconds()
		if r.w != nil {
			if _, err := out.Write(r.w.Bytes()); err != nil && werr == nil {
				werr = err
			}
			s.put(r.w)
		}
	}

	self.Family("deus_scrape_collector_duration_seconds", Gauge, "Duration of a collector's part of the scrape.")
	for i, sl := range s.slots {
		self.Sample("deus_scrape_collector_duration_seconds", durations[i], "collector", sl.name)
	}
	self.Family("deus_scrape_collector_success", Gauge, "Whether a collector succeeded within its timeout.")
	for i, sl := range s.slots {
		self.Sample("deus_scrape_collector_success", success[i], "collector", sl.name)
	}
	self.Family("deus_exporter_build_info", Gauge, "A metric with a constant '1' value labeled by version, revision, branch, goversion, goos and goarch of the build.")
	b := s.build
	self.Sample("deus_exporter_build_info", 1, "branch", b.Branch, "goarch", b.GoArch, "goos", b.GoOS, "goversion", b.GoVersion, "revision", b.Revision, "version", b.Version)
	if _, err := out.Write(self.Bytes()); err != nil && werr == nil {
		werr = err
	}
	return werr
}

func (s *Scraper) run(ctx context.Context, idx int, sl *slot, results chan<- result) {
	select {
	case sl.sem <- struct{}{}:
	case <-ctx.Done():
		// The previous run is still going (stuck); don't start another.
		return
	}
	defer func() { <-sl.sem }()
	w := s.pool.Get().(*Writer)
	start := time.Now()
	err := sl.c.Update(ctx, w)
	results <- result{idx: idx, w: w, err: err, duration: time.Since(start)}
}

func (s *Scraper) put(w *Writer) {
	if w.buf.Cap() > 4<<20 {
		return // don't keep an outsized buffer alive
	}
	w.Reset()
	s.pool.Put(w)
}
