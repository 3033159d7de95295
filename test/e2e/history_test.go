package e2e_test

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/deus-ex-machina/deus/internal/testenv"
)

// The anomaly rules (rules/anomaly.rules.yml) judge a signal against the
// three days that end an hour ago, which a run of a minute does not have.
// So each stack gets two hours of history before it starts: the recorded
// series those rules read an hour back, for every signal of
// rules/signals.rules.yml, with the job and instance labels the live
// series of the stack will have, so that the live rules join them. Prometheus
// and the standalone healer get it as a TSDB block in their data directory,
// VictoriaMetrics over its import API.

// nodeJob is the job of this host's vitals: deploy/'s scrape job of the
// exporter, and the standalone healer's in-process target.
const nodeJob = "node"

const (
	// signalSeries is what signals.rules.yml records and anomaly.rules.yml
	// reads.
	signalSeries = "instance:deus_signal:value"
	// historyLength and historyStep shape the backfill: two hours of a
	// sample a minute, ending historyGap before the stack starts (so that
	// the block does not overlap what the server appends).
	historyLength = 2 * time.Hour
	historyStep   = time.Minute
	historyGap    = 5 * time.Minute
	// noise is the amplitude of each signal's wobble around its level.
	noise = 0.02
)

// historySeries is one backfilled series.
type historySeries struct {
	labels  labels.Labels
	samples []sample
}

// signalHistory is the backfill of one stack.
type signalHistory struct {
	end    time.Time
	level  map[string]float64 // by signal: the level each one wobbles around
	series []historySeries
}

// signalNames lists the signal label of every instance:deus_signal:value
// rule in rules/signals.rules.yml.
func signalNames(t testing.TB, root string) []string {
	t.Helper()
	path := filepath.Join(root, "rules", "signals.rules.yml")
	doc := loadYAML(t, path)
	var names []string
	for _, g := range items(t, doc, path, "groups") {
		for _, r := range items(t, g, path, "rules") {
			if r["record"] != signalSeries {
				continue
			}
			name, ok := child(t, r, path, "labels")["signal"].(string)
			if !ok || name == "" {
				t.Fatalf("%s: a %s rule without a signal label", path, signalSeries)
			}
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		t.Fatalf("%s: no %s rules", path, signalSeries)
	}
	return names
}

// historyInputs lists the series that rules/anomaly.rules.yml reads in a
// range that ends an hour or more ago: its baselines, which a fresh server
// has no samples of. (The alert's look back at its own recent flags, a
// minute back, needs none: no flag is what a new host has.)
func historyInputs(t testing.TB, root string) []string {
	t.Helper()
	path := filepath.Join(root, "rules", "anomaly.rules.yml")
	doc := loadYAML(t, path)
	seen := map[string]bool{}
	for _, g := range items(t, doc, path, "groups") {
		for _, r := range items(t, g, path, "rules") {
			src, _ := r["expr"].(string)
			expr, err := parser.NewParser(parser.Options{}).ParseExpr(src)
			if err != nil {
				t.Fatalf("%s: %v: %v", path, r["record"], err)
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				if m, ok := n.(*parser.MatrixSelector); ok {
					if vs, ok := m.VectorSelector.(*parser.VectorSelector); ok && vs.OriginalOffset >= time.Hour {
						seen[vs.Name] = true
					}
				}
				return nil
			})
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// newSignalHistory builds the history of every signal for one instance,
// ending at end: each signal wobbles by ±noise around a level of its own
// (0.1, 0.2, ...: apart by more than the noise, so that the baseline of
// one signal cannot pass for another's), and each input of the anomaly
// rules is derived from those values as the rules would have recorded it.
func newSignalHistory(t testing.TB, root, instance string, end time.Time) *signalHistory {
	t.Helper()
	end = end.Truncate(time.Second)
	h := &signalHistory{end: end, level: map[string]float64{}}
	n := int(historyLength / historyStep)
	inputs := historyInputs(t, root)
	for i, signal := range signalNames(t, root) {
		level := 0.1 * float64(i+1)
		h.level[signal] = level
		times := make([]time.Time, n)
		values := make([]float64, n)
		for k := range n {
			times[k] = end.Add(-time.Duration(n-1-k) * historyStep)
			// A wobble that is not periodic over the window: the noise of
			// a steady signal, the same on every run.
			values[k] = level + noise*math.Sin(float64(k)*1.7+float64(i))*math.Cos(float64(k)*0.31)
		}
		for _, name := range inputs {
			hs := historySeries{labels: labels.FromStrings(
				"__name__", name, "instance", instance, "job", nodeJob, "signal", signal)}
			for k := range n {
				var v float64
				switch name {
				case signalSeries:
					v = values[k]
				case "instance:deus_signal:median_15m":
					v = median(values[max(0, k-14) : k+1])
				case "instance:deus_signal:abs_deviation_3d":
					// Against the level: the median of the days before.
					v = math.Abs(values[k] - level)
				default:
					t.Fatalf("rules/anomaly.rules.yml reads %s an hour back: it is new to this test, give it a history", name)
				}
				hs.samples = append(hs.samples, sample{t: times[k], v: v})
			}
			h.series = append(h.series, hs)
		}
	}
	return h
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// writeBlock writes the history as one TSDB block into dir, the data
// directory of a Prometheus TSDB that has not been opened yet.
func (h *signalHistory) writeBlock(t testing.TB, dir string) {
	t.Helper()
	series := make([]testenv.Series, len(h.series))
	for i, s := range h.series {
		series[i].Labels = s.labels
		for _, p := range s.samples {
			series[i].Samples = append(series[i].Samples, testenv.Sample{T: p.t, V: p.v})
		}
	}
	testenv.WriteBlock(t, dir, series)
}

// importVM posts the history to VictoriaMetrics' import API (the text
// exposition format with millisecond timestamps) and flushes it to
// storage, so that queries see it.
func (h *signalHistory) importVM(t testing.TB, vmURL string) {
	t.Helper()
	var b bytes.Buffer
	for _, s := range h.series {
		var sel strings.Builder
		s.labels.Range(func(l labels.Label) {
			if l.Name == "__name__" {
				return
			}
			if sel.Len() > 0 {
				sel.WriteByte(',')
			}
			fmt.Fprintf(&sel, "%s=%q", l.Name, l.Value)
		})
		for _, p := range s.samples {
			fmt.Fprintf(&b, "%s{%s} %s %d\n", s.labels.Get("__name__"), sel.String(),
				strconv.FormatFloat(p.v, 'g', -1, 64), p.t.UnixMilli())
		}
	}
	post(t, vmURL+"/api/v1/import/prometheus", "text/plain", &b)
	post(t, vmURL+"/internal/force_flush", "", nil)
}

func post(t testing.TB, url, contentType string, body io.Reader) {
	t.Helper()
	resp, err := httpClient.Post(url, contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %s: %s", url, resp.Status, msg)
	}
}

// checkHistory requires the stack's query API to hold every backfilled
// series with all of its samples: what the anomaly rules read is there.
func (h *signalHistory) checkHistory(t testing.TB, s *stack) {
	t.Helper()
	at := h.end.Add(time.Second)
	window := fmt.Sprintf("[%ds]", int((historyLength + time.Minute).Seconds()))
	eventually(t, 30*time.Second, "the backfilled history is queryable", func() (bool, string) {
		for _, hs := range h.series {
			sel := fmt.Sprintf(`%s{job=%q,instance=%q,signal=%q}`, hs.labels.Get("__name__"), nodeJob,
				hs.labels.Get("instance"), hs.labels.Get("signal"))
			r, err := s.queryAt("count_over_time("+sel+window+")", at)
			if err != nil {
				return false, err.Error()
			}
			if len(r) != 1 || len(r[0].samples) != 1 || int(r[0].samples[0].v) != len(hs.samples) {
				return false, fmt.Sprintf("count_over_time(%s%s) at %s: %v; want one series of %d",
					sel, window, at.Format(time.RFC3339), r, len(hs.samples))
			}
		}
		return true, ""
	})
}

// checkBaselines requires that the anomaly rules judge every live signal
// of the stack's host against its backfilled baseline: the 3-day median
// lies within the noise of the signal's level, the MAD is positive and
// finite, and the anomaly score and range excess are numbers.
func (h *signalHistory) checkBaselines(t testing.TB, s *stack) {
	t.Helper()
	sel := fmt.Sprintf(`{job=%q,instance=%q}`, nodeJob, s.instance)
	eventually(t, 30*time.Second, "every signal is judged against its backfilled baseline", func() (bool, string) {
		live, err := s.query(signalSeries + sel)
		if err != nil {
			return false, err.Error()
		}
		if len(live) == 0 {
			return false, "no live " + signalSeries + sel
		}
		got := map[string]map[string]float64{}
		for _, name := range []string{"median_3d", "mad_3d", "anomaly_score", "range_excess_3d"} {
			r, err := s.query("instance:deus_signal:" + name + sel)
			if err != nil {
				return false, err.Error()
			}
			for _, x := range r {
				if got[x.labels["signal"]] == nil {
					got[x.labels["signal"]] = map[string]float64{}
				}
				got[x.labels["signal"]][name] = x.samples[0].v
			}
		}
		var bad []string
		for _, l := range live {
			signal := l.labels["signal"]
			level, ok := h.level[signal]
			if !ok {
				t.Fatalf("live signal %q is not in rules/signals.rules.yml", signal)
			}
			g := got[signal]
			med, okMed := g["median_3d"]
			mad, okMAD := g["mad_3d"]
			score, okScore := g["anomaly_score"]
			excess, okExcess := g["range_excess_3d"]
			switch {
			case !okMed || !okMAD || !okScore || !okExcess:
				bad = append(bad, fmt.Sprintf("%s: recorded %v; want median_3d, mad_3d, anomaly_score and range_excess_3d", signal, g))
			case math.Abs(med-level) > noise:
				bad = append(bad, fmt.Sprintf("%s: median_3d %g; want %g ± %g (the backfilled level)", signal, med, level, noise))
			case !(mad > 0) || math.IsInf(mad, 0):
				bad = append(bad, fmt.Sprintf("%s: mad_3d %g; want > 0 and finite", signal, mad))
			case math.IsNaN(score) || math.IsInf(score, 0) || math.IsNaN(excess):
				bad = append(bad, fmt.Sprintf("%s: anomaly_score %g, range_excess_3d %g; want numbers", signal, score, excess))
			}
		}
		return len(bad) == 0, strings.Join(bad, "; ")
	})
}
