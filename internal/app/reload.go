package app

import (
	"log/slog"
	"sync"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/deus-ex-machina/deus/internal/healer"
	"github.com/deus-ex-machina/deus/internal/listener"
	dweb "github.com/deus-ex-machina/deus/internal/web"
)

// reloader re-reads the configuration file and applies what may change
// while the healer runs: the runbooks and global settings (through the
// healer), the bearer tokens and the allowed host names. SIGHUP, by way of
// Run's reload channel, and POST /-/reload both come here, one at a time.
type reloader struct {
	file      string
	webFlags  *web.FlagConfig
	webConfig *listener.WebConfig
	tokens    *dweb.Tokens
	access    *dweb.Access
	healer    *healer.Healer
	logger    *slog.Logger

	mu sync.Mutex
}

// reload takes the file's configuration, or returns why not and keeps the
// running one: the file does not load, it would serve beyond loopback
// without authentication, it changes what needs a restart, or a token
// file cannot be read.
func (r *reloader) reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg, err := LoadConfig(r.file)
	if err != nil {
		return err
	}
	if err := checkAuth(cfg, r.webConfig, r.webFlags); err != nil {
		return err
	}
	if err := needsRestart(r.healer.Config(), cfg); err != nil {
		return err
	}
	if err := r.tokens.Load(cfg.Webhook.BearerTokenFile, cfg.API.BearerTokenFile); err != nil {
		return err
	}
	if err := r.access.SetHosts(cfg.API.AllowedHosts); err != nil {
		return err
	}
	r.healer.SetConfig(cfg)
	r.logger.Info("configuration_reloaded", "file", r.file, "runbooks", len(cfg.Runbooks))
	return nil
}

// reloadFromAPI is POST /-/reload: the error goes back to the client, and
// to the log for whoever runs the healer.
func (r *reloader) reloadFromAPI() error {
	err := r.reload()
	if err != nil {
		r.logger.Error("reload_failed", "err", err)
	}
	return err
}
