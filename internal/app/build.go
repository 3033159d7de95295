package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/amapi"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/config"
	"github.com/deus-ex-machina/deus/internal/healer"
	"github.com/deus-ex-machina/deus/internal/listener"
	"github.com/deus-ex-machina/deus/internal/query"
	"github.com/deus-ex-machina/deus/internal/store"
	dweb "github.com/deus-ex-machina/deus/internal/web"
)

// build builds the server from cfg, each part after what it uses: the
// embedded Prometheus before the healer that queries it (its alerts reach
// the healer through a sink set once the healer exists), the healer before
// the state metrics, the reloader and the HTTP handler that use it.
func (a *App) build(ctx context.Context, o Options, cfg *config.Config) error {
	wa, err := newWebAccess(cfg, o)
	if err != nil {
		return err
	}
	am, querier, err := clients(cfg)
	if err != nil {
		return err
	}
	// The addresses the API and webhook were served to in the last day,
	// which block_ip refuses.
	wa.access.Peers = action.NewPeers(24*time.Hour, 1024, nil)
	if a.actions, err = actions(cfg, am, wa.access.Peers, a.logger); err != nil {
		return fmt.Errorf("actions: %w", err)
	}
	if err := a.openState(ctx, cfg); err != nil {
		return err
	}
	reg, metrics := a.newRegistry()
	sink := &alertSink{}
	if cfg.Prometheus == nil {
		// Without a Prometheus to ask, the healer is its own:
		// collectors, TSDB and rules in this process.
		if a.tsdb, err = openStandalone(ctx, o, cfg, reg, sink.accept); err != nil {
			return err
		}
		querier = a.tsdb
	}
	brain, err := newBrain(cfg.Brain, reg, a.logger)
	if err != nil {
		return fmt.Errorf("brain: %w", err)
	}
	a.healer = healer.New(healer.Options{
		Store: a.store, Audit: a.audit, Actions: a.actions, Querier: querier, Alertmanager: am, Metrics: metrics, Logger: a.logger,
		AuditChain: func() error { return a.chain.err }, Brain: brain.assessor, BrainRequest: brain.request,
	}, cfg)
	sink.h = a.healer
	reg.MustRegister(healer.StateCollector{Store: a.store, Audit: a.audit, ChainOK: a.chainOK})
	a.reloader = &reloader{
		file: o.ConfigFile, webFlags: o.WebFlags, webConfig: wa.config,
		tokens: wa.tokens, access: wa.access, healer: a.healer, logger: a.logger,
	}
	a.server = newServer(a.handler(reg, querier, wa.access))
	return nil
}

// webAccess is who may use the HTTP surface: the bearer tokens, the web
// configuration's users and certificates, and the allowed host names.
type webAccess struct {
	tokens *dweb.Tokens
	config *listener.WebConfig
	access *dweb.Access
}

// newWebAccess reads the token files and the web configuration, and
// refuses to serve beyond loopback without authentication.
func newWebAccess(cfg *config.Config, o Options) (webAccess, error) {
	var wa webAccess
	var err error
	if wa.tokens, err = dweb.LoadTokens(cfg.Webhook.BearerTokenFile, cfg.API.BearerTokenFile); err != nil {
		return wa, err
	}
	if wa.config, err = listener.NewWebConfig(webConfigFile(o.WebFlags)); err != nil {
		return wa, err
	}
	if err := checkAuth(cfg, wa.config, o.WebFlags); err != nil {
		return wa, err
	}
	wa.access, err = dweb.NewAccess(wa.tokens, wa.config, cfg.API.AllowedHosts, o.Logger)
	return wa, err
}

// clients returns the Alertmanager and Prometheus clients cfg names; each
// is nil when it names none.
func clients(cfg *config.Config) (healer.Alertmanager, query.Querier, error) {
	var (
		am      healer.Alertmanager
		querier query.Querier
	)
	if c := cfg.Alertmanager; c != nil {
		client, err := amapi.New(c.URL, c.HTTPConfig, time.Duration(c.Timeout))
		if err != nil {
			return nil, nil, err
		}
		am = client
	}
	if c := cfg.Prometheus; c != nil {
		client, err := query.NewClient(c.URL, c.HTTPConfig, time.Duration(c.Timeout))
		if err != nil {
			return nil, nil, err
		}
		querier = client
	}
	return am, querier, nil
}

// openState opens the audit log, then the store that commits the log's
// head with every state change, and checks the log against the head the
// store held.
func (a *App) openState(ctx context.Context, cfg *config.Config) error {
	var key []byte
	if cfg.Audit.KeyFile != "" {
		k, err := audit.ReadKeyFile(cfg.Audit.KeyFile)
		if err != nil {
			return err
		}
		key = k
	}
	alog, err := audit.Open(cfg.Audit.Path, audit.Options{MaxBytes: int64(cfg.Audit.MaxSize), MaxAge: time.Duration(cfg.Audit.MaxAge), Key: key})
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	a.audit = alog
	a.chain = &chain{log: alog}
	st, err := store.Open(cfg.Storage.Path, store.Options{Synchronous: cfg.Storage.Synchronous, Logger: a.logger, AuditHead: a.chain.head})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	a.store = st
	a.chain.check(ctx, st, cfg.Audit.Path, key, a.logger)
	return nil
}

// chainOK is deus_healer_audit_chain_ok: the log matched the stored head
// at start and no append failed since.
func (a *App) chainOK() bool { return a.chain.ok.Load() && !a.healer.AuditFailed() }

// newRegistry returns the healer's own registry, with the Go, process
// and build metrics, and the healer's metrics registered on it.
func (a *App) newRegistry() (*prometheus.Registry, *healer.Metrics) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("deus_healer"))
	metrics := healer.NewMetrics(reg)
	names := []string{}
	for _, s := range a.actions.Specs() {
		names = append(names, s.Name)
	}
	metrics.InitActions(names)
	return reg, metrics
}

// handler is the HTTP surface: the webhook, the API, /-/reload through
// the reloader, the status page and, standalone, the embedded
// Prometheus's query API.
func (a *App) handler(reg *prometheus.Registry, querier query.Querier, access *dweb.Access) http.Handler {
	opts := dweb.Options{
		Healer: a.healer, Store: a.store, Actions: a.actions, Gatherer: reg, Logger: a.logger,
		Reload: a.reloader.reloadFromAPI, Ready: a.ready.Load, Status: a.status(querier),
	}
	if a.tsdb != nil {
		opts.Prometheus = a.tsdb.Handler()
	}
	h := a.healer
	return dweb.Handler(opts, access, func() int64 { return int64(h.Config().Webhook.MaxBodySize) })
}

// status is the status page.
func (a *App) status(querier query.Querier) http.Handler {
	host, _ := os.Hostname()
	mode := "integrated"
	if a.tsdb != nil {
		mode = "standalone"
	}
	ver := version.Version
	if ver == "" {
		ver = "dev"
	}
	h := a.healer
	return dweb.StatusHandler(dweb.Status{
		Store: a.store, Querier: querier, Mode: mode, Host: host, Version: ver, Logger: a.logger,
		DryRun: func() bool { return h.Config().Global.DryRun },
	})
}

// newServer is the HTTP server with its timeouts.
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      10 * time.Minute, // a run by hand waits for its action
		IdleTimeout:       2 * time.Minute,
	}
}
