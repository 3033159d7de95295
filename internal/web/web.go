// Package web is the healer's HTTP surface: the Alertmanager webhook, the
// JSON API, /metrics, health and reload. It maps errors to status codes and
// nothing else: storing, planning and acting are the healer's.
package web

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/forecast"
	"github.com/deus-ex-machina/deus/internal/healer"
	"github.com/deus-ex-machina/deus/internal/incident"
	"github.com/deus-ex-machina/deus/internal/store"
)

// Options configure the handler.
type Options struct {
	Healer   *healer.Healer
	Store    *store.Store
	Actions  *action.Registry
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
	// Reload re-reads the configuration; nil disables /-/reload.
	Reload func() error
	// Ready reports whether the healer is ready for work.
	Ready func() bool
	// Status is the status page at /; nil for none.
	Status http.Handler
	// Prometheus is the embedded Prometheus' query API, served under
	// /prometheus/ (for Grafana and promtool-style clients); nil for none.
	// Its POST queries are reads, so they need not be JSON.
	Prometheus http.Handler
}

// MaxBody returns the body limit in bytes; set by the caller.
type MaxBody func() int64

// Handler returns the healer's HTTP handler. access decides who each
// request is; every request that changes state must be JSON and, from a
// browser, same-origin.
func Handler(o Options, access *Access, maxBody MaxBody) http.Handler {
	mux := http.NewServeMux()
	s := &server{o: o, access: access, maxBody: maxBody}
	api := func(h http.Handler) http.Handler { return access.Protect(SurfaceAPI, h) }
	change := func(h http.Handler) http.Handler { return StateChange(api(h)) }
	mux.Handle("POST /webhook", StateChange(access.Protect(SurfaceWebhook, http.HandlerFunc(s.webhook))))
	if o.Status != nil {
		mux.Handle("GET /{$}", api(o.Status))
		mux.Handle("GET /static/", api(staticHandler()))
	}
	mux.Handle("GET /api/v1/alerts", api(s.api(s.alerts)))
	mux.Handle("GET /api/v1/runs", api(s.api(s.runs)))
	mux.Handle("GET /api/v1/runs/{id}", api(s.api(s.run)))
	mux.Handle("POST /api/v1/runs/{id}/approve", change(s.api(s.decide(true))))
	mux.Handle("POST /api/v1/runs/{id}/deny", change(s.api(s.decide(false))))
	mux.Handle("POST /api/v1/runs/{id}/rollback", change(s.api(s.rollback)))
	mux.Handle("GET /api/v1/approvals", api(s.api(s.approvals)))
	mux.Handle("GET /api/v1/actions", api(s.api(s.actions)))
	mux.Handle("GET /api/v1/forecast", api(s.api(s.forecast)))
	mux.Handle("GET /api/v1/analysis", api(s.api(s.analysis)))
	mux.Handle("GET /api/v1/incidents", api(s.api(s.incidents)))
	// A POST, since asking a model spends its budget.
	mux.Handle("POST /api/v1/assess", change(s.api(s.assess)))
	mux.Handle("GET /api/v1/incidents/{id}", api(s.api(s.incident)))
	mux.Handle("GET /api/v1/schedule", api(s.api(func(w http.ResponseWriter, r *http.Request) error {
		return writeJSON(w, s.o.Healer.Schedule(r.Context()))
	})))
	mux.Handle("POST /api/v1/actions/{name}/run", change(s.api(s.runAction)))
	if o.Prometheus != nil {
		mux.Handle("/prometheus/", api(http.StripPrefix("/prometheus", o.Prometheus)))
	}
	if o.Gatherer != nil {
		mux.Handle("GET /metrics", access.Open(promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{})))
	}
	mux.Handle("GET /-/healthy", access.Open(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Healthy.") })))
	mux.Handle("GET /-/ready", access.Open(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if o.Ready != nil && !o.Ready() {
			http.Error(w, "Not ready.", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "Ready.")
	})))
	mux.Handle("POST /-/reload", change(s.api(func(w http.ResponseWriter, _ *http.Request) error {
		if o.Reload == nil {
			return httpError{http.StatusNotFound, errors.New("reload is not available")}
		}
		if err := o.Reload(); err != nil {
			return httpError{http.StatusBadRequest, fmt.Errorf("the configuration was not reloaded, the old one stays in use: %w", err)}
		}
		return writeJSON(w, map[string]string{"status": "reloaded"})
	})))
	return Guard(mux)
}

type server struct {
	o       Options
	access  *Access
	maxBody MaxBody
}

type httpError struct {
	code int
	err  error
}

func (e httpError) Error() string { return e.err.Error() }

func fail(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "error": msg})
}

// webhook receives an Alertmanager notification, stores its alerts and
// answers once they are committed: 200, or 400 (malformed), 401, 413 (too
// large), 503 (not stored: Alertmanager retries).
func (s *server) webhook(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.maxBody())
	msg, err := alertmanager.Decode(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", tooBig.Limit))
			return
		}
		var ve *alertmanager.ValidationError
		if errors.As(err, &ve) {
			s.o.Logger.Warn("webhook_rejected", "remote", r.RemoteAddr, "err", err)
			fail(w, http.StatusBadRequest, err.Error())
			return
		}
		fail(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	alerts := alertmanager.Split(msg)
	res, err := s.o.Healer.Accept(r.Context(), "webhook", alerts)
	if err != nil {
		s.o.Logger.Error("webhook_store_failed", "alerts", len(alerts), "err", err)
		fail(w, http.StatusServiceUnavailable, "the alerts could not be stored; retry")
		return
	}
	n := 0
	for _, isNew := range res {
		if isNew {
			n++
		}
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"status":"success","alerts":%d,"new":%d}`+"\n", len(alerts), n)
}

func (s *server) api(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			code := http.StatusInternalServerError
			var he httpError
			switch {
			case errors.As(err, &he):
				code = he.code
			case errors.Is(err, store.ErrNotFound):
				code = http.StatusNotFound
			case errors.Is(err, healer.ErrNotAllowed), errors.Is(err, store.ErrConflict):
				code = http.StatusConflict
			case errors.Is(err, healer.ErrInvalidActor):
				code = http.StatusBadRequest
			}
			fail(w, code, err.Error())
		}
	}
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": v})
}

func limit(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || n <= 0 || n > 10000 {
		return 100
	}
	return n
}

func (s *server) alerts(w http.ResponseWriter, r *http.Request) error {
	a, err := s.o.Store.Alerts(r.Context(), r.URL.Query().Get("fingerprint"), limit(r))
	if err != nil {
		return err
	}
	return writeJSON(w, nonNil(a))
}

func (s *server) runs(w http.ResponseWriter, r *http.Request) error {
	f := store.RunFilter{Fingerprint: r.URL.Query().Get("fingerprint"), Limit: limit(r)}
	if st := r.URL.Query().Get("state"); st != "" {
		for _, v := range strings.Split(st, ",") {
			s := store.RunState(v)
			if !s.Valid() {
				return httpError{http.StatusBadRequest, fmt.Errorf("state: %q is not a run state (want one of %v)", v, store.RunStates)}
			}
			f.States = append(f.States, s)
		}
	}
	runs, err := s.o.Store.Runs(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, nonNil(runs))
}

// incidents answers GET /api/v1/incidents[?state=open|resolved], newest
// first.
func (s *server) incidents(w http.ResponseWriter, r *http.Request) error {
	f := store.IncidentFilter{State: incident.State(r.URL.Query().Get("state")), Limit: limit(r)}
	if f.State != "" && f.State != incident.Open && f.State != incident.Resolved {
		return httpError{http.StatusBadRequest, fmt.Errorf("state: %q, want open or resolved", f.State)}
	}
	ins, err := s.o.Store.Incidents(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, nonNil(ins))
}

// assess answers POST /api/v1/assess {"alert": KEY or FINGERPRINT,
// "dry_run": bool}: what the brain is given for the alert and what it
// answers, or, for a dry run, the request a model would be sent.
func (s *server) assess(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Alert  string `json:"alert"`
		DryRun bool   `json:"dry_run"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return httpError{http.StatusBadRequest, fmt.Errorf("body: %w", err)}
	}
	if req.Alert == "" {
		return httpError{http.StatusBadRequest, errors.New("alert: an alert's key or fingerprint is required")}
	}
	v, err := s.o.Healer.Assess(r.Context(), req.Alert, req.DryRun)
	if errors.Is(err, healer.ErrNothingToAssess) {
		return httpError{http.StatusBadRequest, err}
	}
	if err != nil {
		return err
	}
	return writeJSON(w, v)
}

// incidentView is an incident with the runs it made.
type incidentView struct {
	incident.Incident
	Runs []store.Run `json:"runs"`
}

func (s *server) incident(w http.ResponseWriter, r *http.Request) error {
	in, err := s.o.Store.Incident(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	runs, err := s.o.Store.Runs(r.Context(), store.RunFilter{IncidentID: in.ID})
	if err != nil {
		return err
	}
	return writeJSON(w, incidentView{in, nonNil(runs)})
}

func (s *server) approvals(w http.ResponseWriter, r *http.Request) error {
	runs, err := s.o.Store.Runs(r.Context(), store.RunFilter{States: []store.RunState{store.RunWaiting}, Limit: limit(r)})
	if err != nil {
		return err
	}
	return writeJSON(w, nonNil(runs))
}

func (s *server) run(w http.ResponseWriter, r *http.Request) error {
	run, err := s.o.Store.Run(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, run)
}

type decision struct {
	By string `json:"by"`
}

// readDecision reads who the client says decides ({"by": NAME}, optional)
// and returns it beside who the request authenticated as.
func readDecision(r *http.Request) (healer.Actor, error) {
	var d decision
	if r.ContentLength != 0 {
		dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			return healer.Actor{}, httpError{http.StatusBadRequest, fmt.Errorf("body: %w", err)}
		}
	}
	a := Actor(r, d.By)
	if err := a.Validate(); err != nil {
		return a, httpError{http.StatusBadRequest, err}
	}
	return a, nil
}

func (s *server) decide(approve bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		by, err := readDecision(r)
		if err != nil {
			return err
		}
		id := r.PathValue("id")
		if approve {
			err = s.o.Healer.Approve(r.Context(), id, by)
		} else {
			err = s.o.Healer.Deny(r.Context(), id, by)
		}
		if err != nil {
			return err
		}
		run, err := s.o.Store.Run(r.Context(), id)
		if err != nil {
			return err
		}
		return writeJSON(w, run)
	}
}

func (s *server) rollback(w http.ResponseWriter, r *http.Request) error {
	by, err := readDecision(r)
	if err != nil {
		return err
	}
	run, err := s.o.Healer.Rollback(r.Context(), r.PathValue("id"), by)
	if err != nil {
		return err
	}
	return writeJSON(w, run)
}

func (s *server) actions(w http.ResponseWriter, _ *http.Request) error {
	return writeJSON(w, s.o.Actions.Specs())
}

type runRequest struct {
	Params map[string]string `json:"params"`
	DryRun bool              `json:"dry_run"`
	By     string            `json:"by"`
}

func (s *server) runAction(w http.ResponseWriter, r *http.Request) error {
	var req runRequest
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return httpError{http.StatusBadRequest, fmt.Errorf("body: %w", err)}
	}
	by := Actor(r, req.By)
	if err := by.Validate(); err != nil {
		return httpError{http.StatusBadRequest, err}
	}
	run, err := s.o.Healer.RunAction(r.Context(), r.PathValue("name"), req.Params, req.DryRun, by)
	if err != nil {
		if run.ID == "" {
			return httpError{http.StatusBadRequest, err}
		}
		return err
	}
	return writeJSON(w, run)
}

// forecast answers GET /api/v1/forecast?expr=&instance=&horizon=24h
// [&threshold=V&direction=below|above][&history=14d].
func (s *server) forecast(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	req := healer.ForecastRequest{Expr: q.Get("expr"), Instance: q.Get("instance")}
	if req.Expr == "" {
		return httpError{http.StatusBadRequest, errors.New("expr: a PromQL expression or metric name is required")}
	}
	h, err := model.ParseDuration(cmp.Or(q.Get("horizon"), "24h"))
	if err != nil {
		return httpError{http.StatusBadRequest, fmt.Errorf("horizon: %w", err)}
	}
	req.Horizon = time.Duration(h)
	if v := q.Get("history"); v != "" {
		d, err := model.ParseDuration(v)
		if err != nil {
			return httpError{http.StatusBadRequest, fmt.Errorf("history: %w", err)}
		}
		req.History = time.Duration(d)
	}
	if v := q.Get("threshold"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return httpError{http.StatusBadRequest, fmt.Errorf("threshold: %w", err)}
		}
		dir := forecast.Direction(cmp.Or(q.Get("direction"), string(forecast.Below)))
		if dir != forecast.Below && dir != forecast.Above {
			return httpError{http.StatusBadRequest, fmt.Errorf("direction: %q, want below or above", dir)}
		}
		req.Threshold = &forecast.Threshold{Value: f, Direction: dir}
	}
	res, err := s.o.Healer.Forecast(r.Context(), req)
	if err != nil {
		return httpError{http.StatusBadRequest, err}
	}
	return writeJSON(w, nonNil(res))
}

// analysis answers GET /api/v1/analysis[?since=30d][&step=1m].
func (s *server) analysis(w http.ResponseWriter, r *http.Request) error {
	var req healer.AnalysisRequest
	for name, d := range map[string]*time.Duration{"since": &req.Since, "step": &req.Step} {
		v := r.URL.Query().Get(name)
		if v == "" {
			continue
		}
		md, err := model.ParseDuration(v)
		if err != nil || md <= 0 {
			return httpError{http.StatusBadRequest, fmt.Errorf("%s: %q is not a positive duration (30d, 12h, 1m)", name, v)}
		}
		*d = time.Duration(md)
	}
	if req.Step > req.Since && req.Since > 0 {
		return httpError{http.StatusBadRequest, errors.New("step: must not be longer than since")}
	}
	res, err := s.o.Healer.Analyze(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, res)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
