// Package app owns the healer server's lifecycle: it builds the actions
// from the configuration, opens the store and the audit log, wires the
// pipeline to the HTTP surface, reloads on SIGHUP and /-/reload, prunes by
// retention, and shuts down in order.
package app

import (
	"context"
	_ "embed" // the built-in configuration
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/alertmanager"
	"github.com/deus-ex-machina/deus/internal/amapi"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/collector"
	"github.com/deus-ex-machina/deus/internal/config"
	"github.com/deus-ex-machina/deus/internal/exporter"
	"github.com/deus-ex-machina/deus/internal/healer"
	"github.com/deus-ex-machina/deus/internal/listener"
	"github.com/deus-ex-machina/deus/internal/query"
	"github.com/deus-ex-machina/deus/internal/standalone"
	"github.com/deus-ex-machina/deus/internal/store"
	dweb "github.com/deus-ex-machina/deus/internal/web"
	shipped "github.com/deus-ex-machina/deus/rules"
)

// Actions builds the registry of every action cfg makes available: the
// built-ins, the site's commands and the Alertmanager actions.
func Actions(cfg *config.Config, am healer.Alertmanager, logger *slog.Logger) (*action.Registry, error) {
	o := action.BuiltinOptions{
		TempRoots:      cfg.Actions.TempRoots,
		QuarantineDir:  cfg.Actions.QuarantineDir,
		LogRoots:       cfg.Actions.LogRoots,
		ServiceBackend: cfg.Actions.ServiceBackend,
		NeverKill:      cfg.Actions.NeverKill,
		NeverBlock:     cfg.Actions.NeverBlock,
		Firewall:       cfg.Actions.Firewall,
		HTTPAllow:      cfg.Actions.HTTPAllow,
		Logger:         logger,
	}
	for _, s := range cfg.Actions.Services {
		stop, err := config.StopSignal(s.Stop)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", s.Name, err)
		}
		o.Services = append(o.Services, action.ProcessService{
			Name: s.Name, Pidfile: s.Pidfile, Start: s.Start, WritePidfile: s.WritePidfile,
			Comm: s.Comm, Stop: stop, LogFile: s.LogFile, Env: s.Env,
		})
	}
	for _, c := range cfg.Actions.Commands {
		o.Commands = append(o.Commands, action.CommandConfig{
			Spec: action.Spec{Name: c.Name, Doc: c.Doc, Tier: c.Tier.Tier, Params: c.Params, Timeout: time.Duration(c.Timeout)},
			Argv: c.Argv,
		})
	}
	acts, err := action.Builtins(o)
	if err != nil {
		return nil, err
	}
	acts = append(acts, healer.AlertmanagerActions(am, nil)...)
	return action.NewRegistry(acts...)
}

// specsOf returns the specs of the built-in actions as cfg configures them
// (its commands are checked by config itself).
func specsOf(cfg *config.Config) ([]action.Spec, error) {
	c := *cfg
	c.Actions.Commands = nil
	reg, err := Actions(&c, nil, nil)
	if err != nil {
		return nil, err
	}
	return reg.Specs(), nil
}

// defaultConfig is the configuration without a file: standalone, dry run.
//
//go:embed standalone.yml
var defaultConfig []byte

// LoadConfig loads and validates the configuration at path; an empty path
// gives the built-in one (standalone, dry run).
func LoadConfig(path string) (*config.Config, error) {
	if path == "" {
		c, err := config.Load(defaultConfig, specsOf)
		if err != nil {
			return nil, fmt.Errorf("built-in configuration: %w", err)
		}
		return c, nil
	}
	return config.LoadFile(path, specsOf)
}

// Options are the server's process-level settings (flags).
type Options struct {
	ConfigFile string
	WebFlags   *web.FlagConfig
	Logger     *slog.Logger
	// Standalone settings, used when the configuration names no
	// Prometheus: the embedded one's retention and intervals, and a
	// directory of rule files to use instead of the shipped ones.
	Retention      time.Duration
	ScrapeInterval time.Duration
	RulesDir       string
	// Exporter configures the in-process collectors.
	Exporter exporter.Options
}

// Serve runs the healer server until ctx is done or SIGTERM.
func Serve(ctx context.Context, o Options) error {
	logger := o.Logger
	cfg, err := LoadConfig(o.ConfigFile)
	if err != nil {
		return fmt.Errorf("load configuration: %w", err)
	}
	tokens, err := dweb.LoadTokens(cfg.Webhook.BearerTokenFile, cfg.API.BearerTokenFile)
	if err != nil {
		return err
	}
	webConfig, err := listener.NewWebConfig(webConfigFile(o.WebFlags))
	if err != nil {
		return err
	}
	if err := checkAuth(cfg, webConfig, o.WebFlags); err != nil {
		return err
	}
	access, err := dweb.NewAccess(tokens, webConfig, cfg.API.AllowedHosts, logger)
	if err != nil {
		return err
	}

	var am healer.Alertmanager
	if cfg.Alertmanager != nil {
		c, err := amapi.New(cfg.Alertmanager.URL, cfg.Alertmanager.HTTPConfig, time.Duration(cfg.Alertmanager.Timeout))
		if err != nil {
			return err
		}
		am = c
	}
	var querier query.Querier
	if cfg.Prometheus != nil {
		c, err := query.NewClient(cfg.Prometheus.URL, cfg.Prometheus.HTTPConfig, time.Duration(cfg.Prometheus.Timeout))
		if err != nil {
			return err
		}
		querier = c
	}
	reg, err := Actions(cfg, am, logger)
	if err != nil {
		return fmt.Errorf("actions: %w", err)
	}

	var auditKey []byte
	if cfg.Audit.KeyFile != "" {
		if auditKey, err = audit.ReadKeyFile(cfg.Audit.KeyFile); err != nil {
			return err
		}
	}
	// The audit chain's head is committed with every state change (see
	// store.Options.AuditHead), once the log was found to match the head
	// stored before; while it does not, the stored head stays as it was.
	var (
		chainOK  atomic.Bool
		headFrom atomic.Pointer[audit.Log]
	)
	auditHead := func() (uint64, string, bool) {
		l := headFrom.Load()
		if l == nil || !chainOK.Load() {
			return 0, "", false
		}
		seq, hash := l.Head()
		return seq, hash, true
	}
	st, err := store.Open(cfg.Storage.Path, store.Options{Synchronous: cfg.Storage.Synchronous, Logger: logger, AuditHead: auditHead})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			logger.Error("store_close_failed", "err", err)
		}
	}()

	alog, err := audit.Open(cfg.Audit.Path, audit.Options{MaxBytes: int64(cfg.Audit.MaxSize), MaxAge: time.Duration(cfg.Audit.MaxAge), Key: auditKey})
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	defer func() {
		if err := alog.Close(); err != nil {
			logger.Error("audit_close_failed", "err", err)
		}
	}()

	chainErr := checkAuditChain(ctx, st, cfg.Audit.Path, auditKey, logger)
	chainOK.Store(chainErr == nil)
	headFrom.Store(alog)

	promReg := prometheus.NewPedanticRegistry()
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("deus_healer"))
	metrics := healer.NewMetrics(promReg)
	names := []string{}
	for _, s := range reg.Specs() {
		names = append(names, s.Name)
	}
	metrics.InitActions(names)
	var h *healer.Healer
	promReg.MustRegister(healer.StateCollector{Store: st, Audit: alog, ChainOK: func() bool {
		return chainOK.Load() && (h == nil || !h.AuditFailed())
	}})

	// Without a Prometheus to ask, the healer is its own: collectors,
	// TSDB and rules in this process.
	var embedded *standalone.Prometheus
	if cfg.Prometheus == nil {
		embedded, err = openStandalone(ctx, o, cfg, promReg, func(ctx context.Context, alerts []alertmanager.Alert) error {
			_, err := h.Accept(ctx, "rules", alerts)
			return err
		})
		if err != nil {
			return err
		}
		defer func() {
			if err := embedded.Close(); err != nil {
				logger.Error("tsdb_close_failed", "err", err)
			}
		}()
		querier = embedded
	}

	h = healer.New(healer.Options{
		Store: st, Audit: alog, Actions: reg, Querier: querier, Alertmanager: am, Metrics: metrics, Logger: logger,
		AuditChain: func() error { return chainErr },
	}, cfg)

	var reloadMu sync.Mutex
	reload := func() error {
		reloadMu.Lock()
		defer reloadMu.Unlock()
		ncfg, err := LoadConfig(o.ConfigFile)
		if err == nil {
			err = checkAuth(ncfg, webConfig, o.WebFlags)
		}
		if err == nil {
			err = needsRestart(h.Config(), ncfg)
		}
		if err != nil {
			logger.Error("reload_failed", "err", err)
			return err
		}
		if err := tokens.Load(ncfg.Webhook.BearerTokenFile, ncfg.API.BearerTokenFile); err != nil {
			logger.Error("reload_failed", "err", err)
			return err
		}
		if err := access.SetHosts(ncfg.API.AllowedHosts); err != nil {
			logger.Error("reload_failed", "err", err)
			return err
		}
		h.SetConfig(ncfg)
		logger.Info("configuration_reloaded", "file", o.ConfigFile, "runbooks", len(ncfg.Runbooks))
		return nil
	}

	ready := atomic.Bool{}
	host, _ := os.Hostname()
	mode := "integrated"
	if embedded != nil {
		mode = "standalone"
	}
	ver := version.Version
	if ver == "" {
		ver = "dev"
	}
	status := dweb.StatusHandler(dweb.Status{
		Store: st, Querier: querier, Mode: mode, Host: host, Version: ver, Logger: logger,
		DryRun: func() bool { return h.Config().Global.DryRun },
	})
	opts := dweb.Options{
		Healer: h, Store: st, Actions: reg, Gatherer: promReg, Logger: logger, Reload: reload, Ready: ready.Load,
		Status: status,
	}
	if embedded != nil {
		opts.Prometheus = embedded.Handler()
	}
	handler := dweb.Handler(opts, access, func() int64 { return int64(h.Config().Webhook.MaxBodySize) })
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      10 * time.Minute, // a run by hand waits for its action
		IdleTimeout:       2 * time.Minute,
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()

	errc := make(chan error, 4)
	var wg sync.WaitGroup
	wg.Go(func() { errc <- h.Run(runCtx) })
	wg.Go(func() { prune(runCtx, cfgFunc(h), st, alog, logger) })
	wg.Go(func() { expireBlocks(runCtx, reg, logger) })
	if embedded != nil {
		wg.Go(func() {
			if err := embedded.Run(runCtx); err != nil {
				errc <- err
			}
		})
	}
	go func() { errc <- web.ListenAndServe(srv, o.WebFlags, logger) }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ready.Store(true)
	logger.Info("healer_started", "version", version.Version, "go", runtime.Version(), "runbooks", len(cfg.Runbooks),
		"standalone", embedded != nil,
		"dry_run", cfg.Global.DryRun, "max_tier", cfg.Global.MaxTier.String(), "storage", cfg.Storage.Path)

	var runErr error
loop:
	for {
		select {
		case <-hup:
			_ = reload()
		case err := <-errc:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				runErr = err
			}
			break loop
		case <-ctx.Done():
			break loop
		}
	}
	ready.Store(false)
	logger.Info("shutting_down")
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdown)
	cancelRun()
	wg.Wait()
	return errors.Join(runErr, err)
}

func cfgFunc(h *healer.Healer) func() *config.Config { return h.Config }

// checkAuditChain verifies the audit log once at start, after Open has cut
// off a record torn by a crash (appends after that keep the chain), against
// the head stored in the database and with the key when there is one. The
// log may hold records past the head: their state changes had not committed
// when the healer stopped. It returns nil when the log matches, or what
// does not.
func checkAuditChain(ctx context.Context, st *store.Store, dir string, key []byte, logger *slog.Logger) error {
	seq, hash, stored, err := st.AuditHead(ctx)
	if err != nil {
		logger.Error("audit_chain_broken", "path", dir, "err", err)
		return err
	}
	// A log without keyed records may be keyed from now on: the stored
	// head vouches for what it holds.
	o := audit.VerifyOptions{Key: key, AcceptUnkeyed: true}
	if stored {
		o.Anchor = &audit.Anchor{Seq: seq, Hash: hash}
	}
	rep, err := audit.VerifyWith(dir, o)
	if err != nil {
		if stored {
			err = fmt.Errorf("the audit log does not match the head stored in the database (seq %d): %w", seq, err)
		}
		logger.Error("audit_chain_broken", "path", dir, "stored_head", stored, "head_seq", seq, "err", err)
		return err
	}
	if !stored && rep.Records > 0 {
		logger.Warn("audit_head_missing", "path", dir, "records", rep.Records, "note", "no head stored yet (a new or migrated database): the log was checked alone; the head is stored from now on")
	}
	logger.Info("audit_chain_verified", "path", dir, "records", rep.Records, "head_seq", seq, "past_head", rep.PastAnchor, "keyed", rep.Keyed)
	return nil
}

// prune applies the retention periods every hour (and once at start).
func prune(ctx context.Context, cfg func() *config.Config, st *store.Store, alog *audit.Log, logger *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		c := cfg()
		ret := c.Storage.Retention
		if a, r, err := st.Prune(ctx, store.Retention{Alerts: time.Duration(ret.Alerts), Runs: time.Duration(ret.Runs)}); err != nil {
			logger.Error("prune_failed", "what", "store", "err", err)
		} else if a+r > 0 {
			logger.Info("pruned", "alerts", a, "runs", r)
		}
		if dirs, err := action.PruneQuarantine(c.Actions.QuarantineDir, time.Now().Add(-time.Duration(ret.Quarantine))); err != nil {
			logger.Error("prune_failed", "what", "quarantine", "err", err)
		} else if len(dirs) > 0 {
			logger.Info("pruned", "quarantine_runs", len(dirs))
		}
		if n, err := alog.Prune(ctx, time.Now().Add(-time.Duration(c.Audit.Retention))); err != nil {
			logger.Error("prune_failed", "what", "audit", "err", err)
		} else if n > 0 {
			logger.Info("pruned", "audit_files", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// expirer is an action whose effects end on their own schedule (block_ip
// on iptables, which has no timeouts of its own).
type expirer interface {
	ExpireBlocks(ctx context.Context) ([]string, error)
}

// expireBlocks lifts expired blocks every minute.
func expireBlocks(ctx context.Context, reg *action.Registry, logger *slog.Logger) {
	a, ok := reg.Get("block_ip")
	if !ok {
		return
	}
	e, ok := a.(expirer)
	if !ok {
		return
	}
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if lifted, err := e.ExpireBlocks(ctx); err != nil {
				logger.Error("expire_blocks_failed", "err", err)
			} else if len(lifted) > 0 {
				logger.Info("blocks_expired", "addresses", lifted)
			}
		}
	}
}

// webConfigFile is the --web.config.file flag's value, "" for none.
func webConfigFile(wf *web.FlagConfig) string {
	if wf == nil || wf.WebConfigFile == nil {
		return ""
	}
	return *wf.WebConfigFile
}

// checkAuth refuses to serve without authentication anywhere but on
// loopback: the webhook starts actions and the API approves them. A web
// configuration counts only when it makes every request prove something
// (basic auth users, or required and verified client certificates); TLS
// alone, or an empty file, does not.
func checkAuth(cfg *config.Config, wc *listener.WebConfig, wf *web.FlagConfig) error {
	if wf == nil || wf.WebListenAddresses == nil {
		return nil
	}
	auth, err := wc.Current()
	if err != nil {
		return err
	}
	tokens := cfg.Webhook.BearerTokenFile != "" && cfg.API.BearerTokenFile != ""
	what := "webhook.bearer_token_file and api.bearer_token_file are not both set, and no --web.config.file requires basic auth or client certificates"
	if wc.Path() != "" {
		what = fmt.Sprintf("webhook.bearer_token_file and api.bearer_token_file are not both set, and --web.config.file %s authenticates %s (it needs basic_auth_users, or client_auth_type: RequireAndVerifyClientCert with a client CA)", wc.Path(), auth)
	}
	return listener.CheckAddresses(*wf.WebListenAddresses, tokens || auth.Authenticates(), what)
}

// openStandalone opens the embedded Prometheus: the exporter's collectors
// and the healer's own metrics as its targets, the shipped rules (or those
// of o.RulesDir), alerts to sink.
func openStandalone(ctx context.Context, o Options, cfg *config.Config, self prometheus.Gatherer, sink standalone.Sink) (*standalone.Prometheus, error) {
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
	scraper := collector.NewScraper(o.Logger, 10*time.Second, collector.BuildInfo{
		Version: version.Version, Revision: version.GetRevision(), Branch: version.Branch,
		GoVersion: runtime.Version(), GoOS: runtime.GOOS, GoArch: runtime.GOARCH,
	}, entries)
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
			{Job: "deus-healer", Instance: host, Scrape: func(_ context.Context, w io.Writer) error {
				mfs, err := self.Gather()
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
			}},
		},
		Rules:  rulesFS,
		Sink:   sink,
		Logger: o.Logger.With("component", "standalone"),
	})
}

// needsRestart refuses a reload that changes what is built once at start:
// the actions (their roots and allow-lists), the Prometheus and
// Alertmanager clients, concurrency, storage and the audit log. Taking the
// new runbooks while silently keeping the old actions would run one thing
// while the file says another.
func needsRestart(old, cur *config.Config) error {
	var changed []string
	for _, c := range []struct {
		name string
		a, b any
	}{
		{"actions", old.Actions, cur.Actions},
		{"prometheus", old.Prometheus, cur.Prometheus},
		{"alertmanager", old.Alertmanager, cur.Alertmanager},
		{"global.concurrency", old.Global.Concurrency, cur.Global.Concurrency},
		{"storage", old.Storage, cur.Storage},
		{"audit", old.Audit, cur.Audit},
	} {
		if !reflect.DeepEqual(c.a, c.b) {
			changed = append(changed, c.name)
		}
	}
	if len(changed) > 0 {
		return fmt.Errorf("changing %s needs a restart; the running configuration is kept", strings.Join(changed, ", "))
	}
	return nil
}
