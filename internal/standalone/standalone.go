// Package standalone is the healer on its own on one host: the exporter's
// collectors scraped in-process into an embedded Prometheus TSDB, the shipped
// rules evaluated by Prometheus' own rule manager, firing and resolved alerts
// handed to the healer's pipeline exactly as a webhook's would be, and the
// stored series answered through a Prometheus-compatible query API (and to
// the healer's prechecks and verifications).
package standalone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/deus-ex-machina/deus/internal/alertmanager"
)

// Target is something scraped in-process: it writes a Prometheus text
// exposition of its metrics.
type Target struct {
	Job, Instance string
	Scrape        func(ctx context.Context, w io.Writer) error
}

// Sink receives the alerts the rules send, as Alertmanager would receive
// them (the healer's Accept, with source "rules").
type Sink func(ctx context.Context, alerts []alertmanager.Alert) error

// Options configure the embedded Prometheus.
type Options struct {
	// Dir holds the TSDB.
	Dir string
	// Retention is how long samples are kept.
	Retention time.Duration
	// ScrapeInterval is how often targets are scraped; EvalInterval how
	// often the rules are evaluated.
	ScrapeInterval, EvalInterval time.Duration
	Targets                      []Target
	// Rules holds the rule files (*.rules.yml at its root): the shipped
	// rules embedded in the binary, or a directory (os.DirFS).
	Rules fs.FS
	Sink  Sink
	// ExternalURL is where alerts' generator URLs point.
	ExternalURL string
	Logger      *slog.Logger
}

// Prometheus is the embedded TSDB, query engine and rule manager.
type Prometheus struct {
	opts   Options
	db     *tsdb.DB
	engine *promql.Engine
	mgr    *rules.Manager
	logger *slog.Logger

	mu      sync.Mutex
	targets map[string]*targetState
}

type targetState struct {
	lastScrape time.Time
	lastErr    error
	duration   time.Duration
	samples    int
	// seen holds the series of the last scrape, to mark the ones that go
	// away as stale.
	seen map[uint64]labels.Labels
}

// Open opens (or creates) the TSDB in o.Dir and loads the rules.
func Open(ctx context.Context, o Options) (*Prometheus, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = 15 * time.Second
	}
	if o.EvalInterval <= 0 {
		o.EvalInterval = o.ScrapeInterval
	}
	if o.Retention <= 0 {
		o.Retention = 15 * 24 * time.Hour
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, err
	}
	topts := tsdb.DefaultOptions()
	topts.RetentionDuration = o.Retention.Milliseconds()
	db, err := tsdb.Open(o.Dir, o.Logger.With("component", "tsdb"), nil, topts, nil)
	if err != nil {
		return nil, fmt.Errorf("open tsdb %s: %w", o.Dir, err)
	}
	engine := promql.NewEngine(promql.EngineOpts{
		Logger:                   o.Logger.With("component", "promql"),
		MaxSamples:               50_000_000,
		Timeout:                  2 * time.Minute,
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
		LookbackDelta:            5 * time.Minute,
		NoStepSubqueryIntervalFn: func(int64) int64 { return o.EvalInterval.Milliseconds() },
	})
	p := &Prometheus{opts: o, db: db, engine: engine, logger: o.Logger, targets: map[string]*targetState{}}
	p.mgr = rules.NewManager(&rules.ManagerOptions{
		QueryFunc:       rules.EngineQueryFunc(engine, db),
		AppendableV2:    db,
		Queryable:       db,
		Context:         ctx,
		NotifyFunc:      p.notify,
		Logger:          o.Logger.With("component", "rules"),
		GroupLoader:     fsLoader{fsys: o.Rules, logger: o.Logger},
		ResendDelay:     time.Minute,
		OutageTolerance: time.Hour,
		ForGracePeriod:  10 * time.Minute,
	})
	files, err := fs.Glob(o.Rules, "*.rules.yml")
	if err == nil && len(files) == 0 {
		err = errors.New("no *.rules.yml")
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("rules: %w", err), db.Close())
	}
	if err := p.mgr.Update(o.EvalInterval, files, labels.EmptyLabels(), o.ExternalURL, nil); err != nil {
		return nil, errors.Join(fmt.Errorf("load rules: %w", err), db.Close())
	}
	return p, nil
}

// Run scrapes and evaluates until ctx is done, then closes the TSDB.
func (p *Prometheus) Run(ctx context.Context) error {
	go p.mgr.Run()
	defer p.mgr.Stop()
	t := time.NewTicker(p.opts.ScrapeInterval)
	defer t.Stop()
	for {
		p.scrapeAll(ctx, time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Close closes the TSDB; call it after Run returned.
func (p *Prometheus) Close() error { return p.db.Close() }

// notify hands the alerts the rules send to the sink, as Prometheus hands
// them to Alertmanager: firing with the time they fired, resolved with the
// time they resolved.
func (p *Prometheus) notify(ctx context.Context, _ string, alerts ...*rules.Alert) {
	if p.opts.Sink == nil || len(alerts) == 0 {
		return
	}
	out := make([]alertmanager.Alert, 0, len(alerts))
	for _, a := range alerts {
		ls := model.LabelSet{}
		a.Labels.Range(func(l labels.Label) { ls[model.LabelName(l.Name)] = model.LabelValue(l.Value) })
		ann := model.LabelSet{}
		a.Annotations.Range(func(l labels.Label) { ann[model.LabelName(l.Name)] = model.LabelValue(l.Value) })
		am := alertmanager.Alert{
			Status:      alertmanager.StatusFiring,
			Labels:      ls,
			Annotations: ann,
			// ActiveAt, not FiredAt: the rule manager restores ActiveAt
			// after a restart (FiredAt starts again), and the start is
			// part of the alert's identity at the healer.
			StartsAt:    a.ActiveAt.UTC(),
			Fingerprint: ls.Fingerprint().String(),
			Receiver:    "standalone",
		}
		if am.StartsAt.IsZero() {
			am.StartsAt = a.FiredAt.UTC()
		}
		if !a.ResolvedAt.IsZero() {
			am.Status, am.EndsAt = alertmanager.StatusResolved, a.ResolvedAt.UTC()
		}
		out = append(out, am)
	}
	if err := p.opts.Sink(ctx, out); err != nil {
		// The rule manager sends them again after ResendDelay.
		p.logger.Error("alerts_not_stored", "alerts", len(out), "err", err)
	}
}

// fsLoader loads rule files from an fs.FS, so the rules embedded in the
// binary load exactly as files would.
type fsLoader struct {
	fsys   fs.FS
	logger *slog.Logger
}

func (l fsLoader) Load(name string, ignoreUnknownFields bool, scheme model.ValidationScheme) (*rulefmt.RuleGroups, []error) {
	b, err := fs.ReadFile(l.fsys, filepath.ToSlash(name))
	if err != nil {
		return nil, []error{err}
	}
	groups, errs := rulefmt.Parse(b, ignoreUnknownFields, scheme, parser.NewParser(parser.Options{}), l.logger)
	for i, e := range errs {
		errs[i] = fmt.Errorf("%s: %w", name, e)
	}
	return groups, errs
}

func (fsLoader) Parse(q string) (parser.Expr, error) {
	return parser.NewParser(parser.Options{}).ParseExpr(q)
}
