package testenv

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// Series is one series of a backfilled history.
type Series struct {
	Labels  labels.Labels
	Samples []Sample
}

// Sample is one point of a Series.
type Sample struct {
	T time.Time
	V float64
}

// WriteBlock writes series as one TSDB block into dir, the data directory
// of a Prometheus TSDB that has not been opened yet: a history a test's
// Prometheus (or standalone healer) starts with.
func WriteBlock(t testing.TB, dir string, series []Series) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	// The block spans the whole history: the writer's head accepts samples
	// within half a block of the newest, and series are appended one after
	// the other.
	var minT, maxT time.Time
	for _, s := range series {
		for _, p := range s.Samples {
			if minT.IsZero() || p.T.Before(minT) {
				minT = p.T
			}
			if p.T.After(maxT) {
				maxT = p.T
			}
		}
	}
	span := max(tsdb.DefaultBlockDuration, 2*maxT.Sub(minT).Milliseconds()+1)
	w, err := tsdb.NewBlockWriter(slog.New(slog.DiscardHandler), dir, span)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	}()
	ctx := context.Background()
	app := w.AppenderV2(ctx)
	for _, s := range series {
		var ref storage.SeriesRef
		// A series' samples go in in time order, whatever order the test
		// built them in.
		samples := slices.SortedFunc(slices.Values(s.Samples), func(a, b Sample) int { return a.T.Compare(b.T) })
		for _, p := range samples {
			ref, err = app.Append(ref, s.Labels, 0, p.T.UnixMilli(), p.V, nil, nil, storage.AppendV2Options{})
			if err != nil {
				t.Fatalf("append %s: %v", s.Labels, err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Flush(ctx); err != nil {
		t.Fatalf("write a block into %s: %v", dir, err)
	}
}
