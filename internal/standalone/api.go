package standalone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
)

// Query runs an instant query: the healer's prechecks, verifications and
// gates in standalone mode (it implements query.Querier).
func (p *Prometheus) Query(ctx context.Context, expr string, ts time.Time) (model.Vector, error) {
	q, err := p.engine.NewInstantQuery(ctx, p.db, nil, expr, ts)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		out := make(model.Vector, 0, len(v))
		for _, s := range v {
			m := model.Metric{}
			s.Metric.Range(func(l labels.Label) { m[model.LabelName(l.Name)] = model.LabelValue(l.Value) })
			out = append(out, &model.Sample{Metric: m, Value: model.SampleValue(s.F), Timestamp: model.Time(s.T)})
		}
		return out, nil
	case promql.Scalar:
		return model.Vector{{Value: model.SampleValue(v.V), Timestamp: model.Time(v.T)}}, nil
	default:
		return nil, fmt.Errorf("query returned a %s, want a vector", res.Value.Type())
	}
}

// QueryRange runs a range query (it implements query.RangeQuerier).
func (p *Prometheus) QueryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) (model.Matrix, error) {
	q, err := p.engine.NewRangeQuery(ctx, p.db, nil, expr, start, end, step)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	m, ok := res.Value.(promql.Matrix)
	if !ok {
		return nil, fmt.Errorf("query_range returned a %s, want a matrix", res.Value.Type())
	}
	out := make(model.Matrix, 0, len(m))
	for _, s := range m {
		met := model.Metric{}
		s.Metric.Range(func(l labels.Label) { met[model.LabelName(l.Name)] = model.LabelValue(l.Value) })
		ss := &model.SampleStream{Metric: met, Values: make([]model.SamplePair, len(s.Floats))}
		for i, f := range s.Floats {
			ss.Values[i] = model.SamplePair{Timestamp: model.Time(f.T), Value: model.SampleValue(f.F)}
		}
		out = append(out, ss)
	}
	return out, nil
}

// Handler serves the subset of the Prometheus HTTP API that Grafana's
// Prometheus data source and promtool-style clients use: query,
// query_range, series, labels, label values, rules, alerts, targets and
// build info.
func (p *Prometheus) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/query", p.apiQuery)
	mux.HandleFunc("/api/v1/query_range", p.apiQueryRange)
	mux.HandleFunc("/api/v1/series", p.apiSeries)
	mux.HandleFunc("/api/v1/labels", p.apiLabels)
	mux.HandleFunc("GET /api/v1/label/{name}/values", p.apiLabelValues)
	mux.HandleFunc("GET /api/v1/rules", p.apiRules)
	mux.HandleFunc("GET /api/v1/alerts", p.apiAlerts)
	mux.HandleFunc("GET /api/v1/targets", p.apiTargets)
	mux.HandleFunc("GET /api/v1/status/buildinfo", func(w http.ResponseWriter, _ *http.Request) {
		ok(w, map[string]string{"version": "2.53.0", "application": "deus-healer standalone"})
	})
	return mux
}

type apiError struct {
	code int
	typ  string
	err  error
}

func ok(w http.ResponseWriter, data any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
}

func fail(w http.ResponseWriter, e apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.code)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "error", "errorType": e.typ, "error": e.err.Error()})
}

func badData(err error) apiError { return apiError{http.StatusBadRequest, "bad_data", err} }

// parseTime reads a time as Prometheus' API does: Unix seconds with a
// fraction, or RFC 3339.
func parseTime(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, fmt.Errorf("%q must be a positive duration", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := model.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
	}
	return time.Duration(d), nil
}

func (p *Prometheus) exec(w http.ResponseWriter, r *http.Request, q promql.Query, err error) {
	if err != nil {
		fail(w, badData(err))
		return
	}
	defer q.Close()
	res := q.Exec(r.Context())
	if res.Err != nil {
		var eqc promql.ErrQueryCanceled
		var eqt promql.ErrQueryTimeout
		switch {
		case errors.As(res.Err, &eqc):
			fail(w, apiError{http.StatusServiceUnavailable, "canceled", res.Err})
		case errors.As(res.Err, &eqt):
			fail(w, apiError{http.StatusServiceUnavailable, "timeout", res.Err})
		default:
			fail(w, apiError{http.StatusUnprocessableEntity, "execution", res.Err})
		}
		return
	}
	ok(w, map[string]any{"resultType": res.Value.Type(), "result": res.Value})
}

func (p *Prometheus) apiQuery(w http.ResponseWriter, r *http.Request) {
	ts, err := parseTime(r.FormValue("time"), time.Now())
	if err != nil {
		fail(w, badData(err))
		return
	}
	ctx := r.Context()
	if t := r.FormValue("timeout"); t != "" {
		d, err := parseDuration(t)
		if err != nil {
			fail(w, badData(err))
			return
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	q, err := p.engine.NewInstantQuery(ctx, p.db, nil, r.FormValue("query"), ts)
	p.exec(w, r.WithContext(ctx), q, err)
}

func (p *Prometheus) apiQueryRange(w http.ResponseWriter, r *http.Request) {
	start, err := parseTime(r.FormValue("start"), time.Time{})
	if err != nil || start.IsZero() {
		fail(w, badData(fmt.Errorf("start: %w", errors.Join(err, errors.New("required")))))
		return
	}
	end, err := parseTime(r.FormValue("end"), time.Time{})
	if err != nil || end.IsZero() {
		fail(w, badData(fmt.Errorf("end: %w", errors.Join(err, errors.New("required")))))
		return
	}
	if end.Before(start) {
		fail(w, badData(errors.New("end timestamp must not be before start time")))
		return
	}
	step, err := parseDuration(r.FormValue("step"))
	if err != nil {
		fail(w, badData(fmt.Errorf("step: %w", err)))
		return
	}
	if end.Sub(start)/step > 11000 {
		fail(w, badData(errors.New("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")))
		return
	}
	q, err := p.engine.NewRangeQuery(r.Context(), p.db, nil, r.FormValue("query"), start, end, step)
	p.exec(w, r, q, err)
}

// selection reads match[], start and end.
func (p *Prometheus) selection(r *http.Request) ([][]*labels.Matcher, time.Time, time.Time, error) {
	if err := r.ParseForm(); err != nil {
		return nil, time.Time{}, time.Time{}, err
	}
	var sets [][]*labels.Matcher
	for _, m := range r.Form["match[]"] {
		ms, err := parser.NewParser(parser.Options{}).ParseMetricSelector(m)
		if err != nil {
			return nil, time.Time{}, time.Time{}, err
		}
		sets = append(sets, ms)
	}
	start, err := parseTime(r.FormValue("start"), time.Unix(0, 0))
	if err != nil {
		return nil, time.Time{}, time.Time{}, err
	}
	end, err := parseTime(r.FormValue("end"), time.Now().Add(time.Minute))
	if err != nil {
		return nil, time.Time{}, time.Time{}, err
	}
	return sets, start, end, nil
}

func (p *Prometheus) apiSeries(w http.ResponseWriter, r *http.Request) {
	sets, start, end, err := p.selection(r)
	if err != nil {
		fail(w, badData(err))
		return
	}
	if len(sets) == 0 {
		fail(w, badData(errors.New("no match[] parameter provided")))
		return
	}
	q, err := p.db.Querier(start.UnixMilli(), end.UnixMilli())
	if err != nil {
		fail(w, apiError{http.StatusInternalServerError, "internal", err})
		return
	}
	defer q.Close() //nolint:errcheck // a read-only querier: closing loses nothing
	seen := map[uint64]bool{}
	out := []labels.Labels{}
	for _, ms := range sets {
		ss := q.Select(r.Context(), false, &storage.SelectHints{Start: start.UnixMilli(), End: end.UnixMilli(), Func: "series"}, ms...)
		for ss.Next() {
			ls := ss.At().Labels()
			if h := ls.Hash(); !seen[h] {
				seen[h] = true
				out = append(out, ls)
			}
		}
		if err := ss.Err(); err != nil {
			fail(w, apiError{http.StatusUnprocessableEntity, "execution", err})
			return
		}
	}
	ok(w, out)
}

func (p *Prometheus) apiLabels(w http.ResponseWriter, r *http.Request) {
	p.labelAPI(w, r, func(ctx context.Context, q storage.Querier, ms []*labels.Matcher) ([]string, error) {
		names, _, err := q.LabelNames(ctx, nil, ms...)
		return names, err
	})
}

func (p *Prometheus) apiLabelValues(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !model.UTF8Validation.IsValidLabelName(name) {
		fail(w, badData(fmt.Errorf("invalid label name: %q", name)))
		return
	}
	p.labelAPI(w, r, func(ctx context.Context, q storage.Querier, ms []*labels.Matcher) ([]string, error) {
		values, _, err := q.LabelValues(ctx, name, nil, ms...)
		return values, err
	})
}

// labelAPI answers /labels and /label/NAME/values: the distinct strings
// that list returns for each match[] set (or for every series), sorted.
func (p *Prometheus) labelAPI(w http.ResponseWriter, r *http.Request, list func(context.Context, storage.Querier, []*labels.Matcher) ([]string, error)) {
	sets, start, end, err := p.selection(r)
	if err != nil {
		fail(w, badData(err))
		return
	}
	q, err := p.db.Querier(start.UnixMilli(), end.UnixMilli())
	if err != nil {
		fail(w, apiError{http.StatusInternalServerError, "internal", err})
		return
	}
	defer q.Close() //nolint:errcheck // a read-only querier: closing loses nothing
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	found := map[string]bool{}
	for _, ms := range sets {
		vs, err := list(r.Context(), q, ms)
		if err != nil {
			fail(w, apiError{http.StatusUnprocessableEntity, "execution", err})
			return
		}
		for _, v := range vs {
			found[v] = true
		}
	}
	ok(w, sorted(found))
}

func sorted(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type apiAlert struct {
	Labels      labels.Labels `json:"labels"`
	Annotations labels.Labels `json:"annotations"`
	State       string        `json:"state"`
	ActiveAt    *time.Time    `json:"activeAt,omitempty"`
	Value       string        `json:"value"`
}

func alertsOf(r *rules.AlertingRule) []apiAlert {
	out := []apiAlert{}
	for _, a := range r.ActiveAlerts() {
		at := a.ActiveAt
		out = append(out, apiAlert{
			Labels: a.Labels, Annotations: a.Annotations, State: a.State.String(), ActiveAt: &at,
			Value: strconv.FormatFloat(a.Value, 'e', -1, 64),
		})
	}
	return out
}

func (p *Prometheus) apiRules(w http.ResponseWriter, r *http.Request) {
	typ := r.FormValue("type")
	groups := []map[string]any{}
	for _, g := range p.mgr.RuleGroups() {
		rs := []map[string]any{}
		for _, rule := range g.Rules() {
			lastErr := ""
			switch rule := rule.(type) {
			case *rules.AlertingRule:
				if typ == "record" {
					continue
				}
				if err := rule.LastError(); err != nil {
					lastErr = err.Error()
				}
				rs = append(rs, map[string]any{
					"type": "alerting", "name": rule.Name(), "query": rule.Query().String(),
					"duration": rule.HoldDuration().Seconds(), "labels": rule.Labels(), "annotations": rule.Annotations(),
					"alerts": alertsOf(rule), "health": rule.Health(), "lastError": lastErr, "state": rule.State().String(),
					"lastEvaluation": rule.GetEvaluationTimestamp(), "evaluationTime": rule.GetEvaluationDuration().Seconds(),
				})
			case *rules.RecordingRule:
				if typ == "alert" {
					continue
				}
				if err := rule.LastError(); err != nil {
					lastErr = err.Error()
				}
				rs = append(rs, map[string]any{
					"type": "recording", "name": rule.Name(), "query": rule.Query().String(), "labels": rule.Labels(),
					"health": rule.Health(), "lastError": lastErr,
					"lastEvaluation": rule.GetEvaluationTimestamp(), "evaluationTime": rule.GetEvaluationDuration().Seconds(),
				})
			}
		}
		groups = append(groups, map[string]any{
			"name": g.Name(), "file": g.File(), "interval": g.Interval().Seconds(), "rules": rs,
			"lastEvaluation": g.GetLastEvaluation(), "evaluationTime": g.GetEvaluationTime().Seconds(),
		})
	}
	ok(w, map[string]any{"groups": groups})
}

func (p *Prometheus) apiAlerts(w http.ResponseWriter, _ *http.Request) {
	out := []apiAlert{}
	for _, r := range p.mgr.AlertingRules() {
		out = append(out, alertsOf(r)...)
	}
	ok(w, map[string]any{"alerts": out})
}

func (p *Prometheus) apiTargets(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	active := []map[string]any{}
	for _, t := range p.opts.Targets {
		st := p.targets[t.Job+"/"+t.Instance]
		health, lastErr, last, dur := "unknown", "", time.Time{}, 0.0
		if st != nil {
			health, last, dur = "up", st.lastScrape, st.duration.Seconds()
			if st.lastErr != nil {
				health, lastErr = "down", st.lastErr.Error()
			}
		}
		active = append(active, map[string]any{
			"labels": map[string]string{"job": t.Job, "instance": t.Instance}, "scrapePool": t.Job,
			"health": health, "lastError": lastErr, "lastScrape": last, "lastScrapeDuration": dur,
			"scrapeInterval": p.opts.ScrapeInterval.String(),
		})
	}
	ok(w, map[string]any{"activeTargets": active, "droppedTargets": []any{}})
}
