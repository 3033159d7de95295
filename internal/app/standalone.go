package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/version"

	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/collector"
	"github.com/deus-ex-machina/deus/internal/config"
	"github.com/deus-ex-machina/deus/internal/exporter"
	"github.com/deus-ex-machina/deus/internal/healer"
	"github.com/deus-ex-machina/deus/internal/standalone"
	shipped "github.com/deus-ex-machina/deus/rules"
)

// alertSink hands the embedded Prometheus's alerts to the healer. The
// healer is built after the embedded Prometheus (it queries it), so New
// sets h once the healer exists, before anything runs; the rules send
// alerts only from Run.
type alertSink struct {
	h *healer.Healer
}

// errNoHealer is what an alert sent before the healer was set meets.
var errNoHealer = errors.New("the healer is not built yet")

func (s *alertSink) accept(ctx context.Context, alerts []alertmanager.Alert) error {
	if s.h == nil {
		return errNoHealer
	}
	_, err := s.h.Accept(ctx, "rules", alerts)
	return err
}

// openStandalone opens the embedded Prometheus: the exporter's collectors
// and the healer's own metrics as its targets, the shipped rules (or those
// of o.RulesDir), alerts to sink.
func openStandalone(ctx context.Context, o Options, cfg *config.Config, self prometheus.Gatherer, sink standalone.Sink) (*standalone.Prometheus, error) {
	scraper, err := nodeScraper(o, cfg)
	if err != nil {
		return nil, err
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	var rulesFS fs.FS = shipped.Files
	if o.RulesDir != "" {
		rulesFS = os.DirFS(o.RulesDir)
	}
	return standalone.Open(ctx, standalone.Options{
		Dir:            filepath.Join(cfg.Storage.Path, "tsdb"),
		Retention:      o.Retention,
		ScrapeInterval: o.ScrapeInterval,
		Targets: []standalone.Target{
			{Job: "node", Instance: host, Scrape: scraper.Scrape},
			{Job: "deus-healer", Instance: host, Scrape: scrapeGatherer(self)},
		},
		Rules:  rulesFS,
		Sink:   sink,
		Logger: o.Logger.With("component", "standalone"),
	})
}

// nodeScraper is the exporter's collectors in this process, as o.Exporter
// configures them (the exporter's defaults when the flags were not
// parsed), keeping their state under the storage path.
func nodeScraper(o Options, cfg *config.Config) (*collector.Scraper, error) {
	eo := o.Exporter
	if eo.Enabled == nil {
		eo = exporter.DefaultOptions()
		eo.StateDir = ""
	}
	if eo.StateDir == "" {
		eo.StateDir = filepath.Join(cfg.Storage.Path, "exporter")
	}
	entries, err := exporter.Collectors(eo)
	if err != nil {
		return nil, fmt.Errorf("collectors: %w", err)
	}
	return collector.NewScraper(o.Logger, 10*time.Second, collector.BuildInfo{
		Version: version.Version, Revision: version.GetRevision(), Branch: version.Branch,
		GoVersion: runtime.Version(), GoOS: runtime.GOOS, GoArch: runtime.GOARCH,
	}, entries), nil
}

// scrapeGatherer scrapes g in the text format, for the embedded
// Prometheus to read the healer's own metrics.
func scrapeGatherer(g prometheus.Gatherer) func(context.Context, io.Writer) error {
	return func(_ context.Context, w io.Writer) error {
		mfs, err := g.Gather()
		if err != nil {
			return err
		}
		enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				return err
			}
		}
		return nil
	}
}
