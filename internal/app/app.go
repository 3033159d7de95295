// Package app owns the healer server's lifecycle: New builds the actions
// from the configuration, opens the store and the audit log and wires the
// pipeline to the HTTP surface; Run runs it, reloading when asked and
// pruning by retention, until its context is done; Close closes what New
// opened, in order. Signals are the command's business: it cancels Run's
// context and asks for reloads on Run's channel.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/exporter"
	"github.com/deus-ex-machina/deus/internal/healer"
	"github.com/deus-ex-machina/deus/internal/standalone"
	"github.com/deus-ex-machina/deus/internal/store"
)

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

// App is the healer server, built and not yet running (New), running
// (Run) or closed (Close).
type App struct {
	logger   *slog.Logger
	webFlags *web.FlagConfig

	actions *action.Registry
	audit   *audit.Log
	store   *store.Store
	chain   *chain
	// tsdb is the embedded Prometheus; nil unless standalone.
	tsdb     *standalone.Prometheus
	healer   *healer.Healer
	reloader *reloader
	server   *http.Server
	ready    atomic.Bool
}

// New loads the configuration and builds the server: it opens the audit
// log, the store and, without a Prometheus to ask, the embedded one, and
// checks the audit chain against the head stored in the database. When it
// fails, what it had opened is closed again.
func New(ctx context.Context, o Options) (*App, error) {
	cfg, err := LoadConfig(o.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("load configuration: %w", err)
	}
	a := &App{logger: o.Logger, webFlags: o.WebFlags}
	if err := a.build(ctx, o, cfg); err != nil {
		if cerr := a.Close(); cerr != nil {
			a.logger.Error("close_failed", "err", cerr)
		}
		return nil, err
	}
	return a, nil
}

// Run runs the healer, the pruner, the block expirer, the embedded
// Prometheus and the HTTP server until ctx is done or one of them fails,
// then shuts the server down and waits for the others. Each request on
// reload, a channel with room for the answer, is answered with what
// reloading the configuration returned; a nil reload asks for none. Run
// is called once, and Close after it returned.
func (a *App) Run(ctx context.Context, reload <-chan chan error) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	a.start(runCtx, &wg, errc)
	go func() { errc <- web.ListenAndServe(a.server, a.webFlags, a.logger) }()
	a.ready.Store(true)
	a.logStarted()

	runErr := a.serve(ctx, reload, errc)
	a.ready.Store(false)
	a.logger.Info("shutting_down")
	shutdown, cancelShutdown := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelShutdown()
	err := a.server.Shutdown(shutdown)
	cancel()
	wg.Wait()
	return errors.Join(runErr, err)
}

// start starts what runs beside the HTTP server, each until ctx is done;
// those that can fail report on errc.
func (a *App) start(ctx context.Context, wg *sync.WaitGroup, errc chan<- error) {
	wg.Go(func() { errc <- a.healer.Run(ctx) })
	wg.Go(func() { prune(ctx, a.healer.Config, a.store, a.audit, a.logger) })
	wg.Go(func() { expireBlocks(ctx, a.actions, a.logger) })
	if a.tsdb != nil {
		wg.Go(func() {
			if err := a.tsdb.Run(ctx); err != nil {
				errc <- err
			}
		})
	}
}

// serve answers reload requests until ctx is done or something stops,
// and returns what failed, if anything did.
func (a *App) serve(ctx context.Context, reload <-chan chan error, errc <-chan error) error {
	for {
		select {
		case answer, ok := <-reload:
			if !ok {
				reload = nil // closed: no more requests
				continue
			}
			answer <- a.reloader.reload()
		case err := <-errc:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

func (a *App) logStarted() {
	cfg := a.healer.Config()
	a.logger.Info("healer_started", "version", version.Version, "go", runtime.Version(), "runbooks", len(cfg.Runbooks),
		"standalone", a.tsdb != nil,
		"dry_run", cfg.Global.DryRun, "max_tier", cfg.Global.MaxTier.String(), "storage", cfg.Storage.Path)
}

// Close closes the store, the audit log and the embedded Prometheus's
// TSDB, in this order, and returns every error.
func (a *App) Close() error {
	var errs []error
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	if a.audit != nil {
		if err := a.audit.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close audit log: %w", err))
		}
	}
	if a.tsdb != nil {
		if err := a.tsdb.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close tsdb: %w", err))
		}
	}
	return errors.Join(errs...)
}
