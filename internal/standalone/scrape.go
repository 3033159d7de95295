package standalone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
)

// scrapeAll scrapes every target once, at ts.
func (p *Prometheus) scrapeAll(ctx context.Context, ts time.Time) {
	for _, t := range p.opts.Targets {
		key := t.Job + "/" + t.Instance
		p.mu.Lock()
		prev := p.targets[key]
		p.mu.Unlock()
		var before map[uint64]labels.Labels
		if prev != nil {
			before = prev.seen
		}
		start := time.Now()
		seen, err := p.scrape(ctx, t, ts, before)
		n := len(seen)
		dur := time.Since(start)
		if err != nil {
			p.logger.Warn("scrape_failed", "job", t.Job, "instance", t.Instance, "err", err)
			seen = before
		}
		p.mu.Lock()
		p.targets[key] = &targetState{lastScrape: ts, lastErr: err, duration: dur, samples: n, seen: seen}
		p.mu.Unlock()
		if err := p.reportScrape(ctx, t, ts, err == nil, dur, n); err != nil {
			p.logger.Error("append_failed", "job", t.Job, "err", err)
		}
	}
}

// scrape appends one target's exposition, as Prometheus' scrape loop does:
// each series gets the target's job and instance labels (a label of the
// same name from the target is kept as exported_<name>), at the scrape's
// time. Series of the previous scrape (before) that are gone get a stale
// marker, so that queries and alerts stop seeing them at once. It returns
// the series it appended.
func (p *Prometheus) scrape(ctx context.Context, t Target, ts time.Time, before map[uint64]labels.Labels) (map[uint64]labels.Labels, error) {
	var buf bytes.Buffer
	if err := t.Scrape(ctx, &buf); err != nil {
		return nil, err
	}
	parser, err := textparse.New(buf.Bytes(), "text/plain; version=0.0.4", labels.NewSymbolTable(), textparse.ParserOptions{})
	if err != nil {
		return nil, err
	}
	app := p.db.AppenderV2(ctx)
	seen := make(map[uint64]labels.Labels, len(before))
	var lset labels.Labels
	b := labels.NewScratchBuilder(16)
	for {
		et, err := parser.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("parse: %w", err), app.Rollback())
		}
		if et != textparse.EntrySeries {
			continue
		}
		_, _, v := parser.Series()
		parser.Labels(&lset)
		b.Reset()
		lset.Range(func(l labels.Label) {
			switch l.Name {
			case "job", "instance":
				b.Add("exported_"+l.Name, l.Value)
			default:
				b.Add(l.Name, l.Value)
			}
		})
		b.Add("job", t.Job)
		b.Add("instance", t.Instance)
		b.Sort()
		ls := b.Labels()
		if _, err := app.Append(0, ls, 0, ts.UnixMilli(), v, nil, nil, storage.AOptions{}); err != nil {
			// One bad sample (a duplicate series) does not lose the scrape.
			continue
		}
		seen[ls.Hash()] = ls
	}
	for h, ls := range before {
		if _, ok := seen[h]; !ok {
			if _, err := app.Append(0, ls, 0, ts.UnixMilli(), staleNaN, nil, nil, storage.AOptions{}); err != nil {
				continue
			}
		}
	}
	return seen, app.Commit()
}

// reportScrape appends up, scrape_duration_seconds and
// scrape_samples_scraped for a target, as Prometheus does.
func (p *Prometheus) reportScrape(ctx context.Context, t Target, ts time.Time, ok bool, dur time.Duration, n int) error {
	app := p.db.AppenderV2(ctx)
	up := 0.0
	if ok {
		up = 1
	}
	for _, s := range []struct {
		name string
		v    float64
	}{{"up", up}, {"scrape_duration_seconds", dur.Seconds()}, {"scrape_samples_scraped", float64(n)}} {
		ls := labels.FromStrings("__name__", s.name, "instance", t.Instance, "job", t.Job)
		if _, err := app.Append(0, ls, 0, ts.UnixMilli(), s.v, nil, nil, storage.AOptions{}); err != nil {
			return errors.Join(err, app.Rollback())
		}
	}
	return app.Commit()
}

// staleNaN marks a series gone, as Prometheus does when a target stops
// exposing it.
var staleNaN = math.Float64frombits(value.StaleNaN)
