// Command nab runs the shipped anomaly alert over every NAB-format series in
// a folder (<dir>/<name>.csv with a timestamp,value header) with the real
// Prometheus rule engine, at each series' own step, and writes one CSV row
// file,timestamp for every evaluation at which the alert is firing. It reads
// nothing but the values: every series becomes the same signal series with
// the same labels, whatever its file is called.
package main

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/deus-ex-machina/deus/internal/backtest"
)

const tsLayout = "2006-01-02 15:04:05"

func main() {
	data := flag.String("data", "", "folder of NAB-format series (searched recursively for *.csv)")
	out := flag.String("out", "", "CSV file to write (file,timestamp rows)")
	rulesFlag := flag.String("rules", "rules/anomaly.rules.yml", "comma-separated rule files")
	alert := flag.String("alert", "SignalAnomalous", "alert to report")
	metric := flag.String("metric", "instance:deus_signal:value", "series name the values are loaded as")
	workers := flag.Int("workers", runtime.GOMAXPROCS(0), "series evaluated in parallel")
	flag.Parse()
	if *data == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: nab -data DIR -out FILE.csv [-rules a.yml,b.yml]")
		os.Exit(2)
	}
	if err := run(context.Background(), *data, *out, strings.Split(*rulesFlag, ","), *alert, *metric, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "nab:", err)
		os.Exit(1)
	}
}

type fileResult struct {
	name   string
	firing []time.Time
	err    error
}

func run(ctx context.Context, dataDir, outPath string, ruleFiles []string, alert, metric string, workers int) error {
	var files []string
	err := filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".csv") {
			rel, err := filepath.Rel(dataDir, path)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no .csv files under %s", dataDir)
	}
	slices.Sort(files)
	series := labels.FromStrings("__name__", metric, "instance", "series", "signal", "value")

	results := make([]fileResult, len(files))
	work := make(chan int)
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Go(func() {
			for i := range work {
				results[i] = evalFile(ctx, dataDir, files[i], ruleFiles, alert, series)
			}
		})
	}
	for i := range files {
		work <- i
	}
	close(work)
	wg.Wait()

	f, err := os.Create(outPath)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"file", "timestamp"})
	var errs []error
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.name, r.err))
			continue
		}
		for _, t := range r.firing {
			_ = w.Write([]string{r.name, t.UTC().Format(tsLayout)})
		}
	}
	w.Flush()
	errs = append(errs, w.Error(), f.Close())
	return errors.Join(errs...)
}

func evalFile(ctx context.Context, dataDir, name string, ruleFiles []string, alert string, series labels.Labels) fileResult {
	res := fileResult{name: name}
	samples, err := readSeries(filepath.Join(dataDir, filepath.FromSlash(name)))
	if err != nil {
		res.err = err
		return res
	}
	dir, err := os.MkdirTemp("", "nab-tsdb")
	if err != nil {
		res.err = err
		return res
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	r, err := backtest.Run(ctx, backtest.Options{RuleFiles: ruleFiles, Alert: alert, Series: series, Dir: dir}, samples)
	if err != nil {
		res.err = err
		return res
	}
	res.firing = r.Firing
	fmt.Fprintf(os.Stderr, "%s: %d samples, step %s, %d evaluations, %d firing, %d dropped (duplicate or out of order), %.1fs\n",
		name, len(samples), r.Step, r.Evals, len(r.Firing), r.Dropped, time.Since(start).Seconds())
	return res
}

// readSeries reads a timestamp,value CSV, timestamps in UTC, sorted by time
// (stably: of samples with the same timestamp the first in the file wins).
func readSeries(path string) ([]backtest.Sample, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 2
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	if header[0] != "timestamp" || header[1] != "value" {
		return nil, fmt.Errorf("%s: header %q, want timestamp,value", path, header)
	}
	var samples []backtest.Sample
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		t, err := time.Parse(tsLayout, rec[0])
		if err != nil {
			return nil, fmt.Errorf("%s line %d: timestamp: %w", path, line, err)
		}
		v, err := strconv.ParseFloat(rec[1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: value: %w", path, line, err)
		}
		samples = append(samples, backtest.Sample{T: t, V: v})
	}
	slices.SortStableFunc(samples, func(a, b backtest.Sample) int { return cmp.Compare(a.T.UnixMilli(), b.T.UnixMilli()) })
	return samples, nil
}
