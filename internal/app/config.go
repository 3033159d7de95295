package app

import (
	_ "embed" // the built-in configuration
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/config"
	"github.com/deus-ex-machina/deus/internal/healer"
	"github.com/deus-ex-machina/deus/internal/listener"
)

// Actions builds the registry of every action cfg makes available: the
// built-ins, the site's commands and the Alertmanager actions.
func Actions(cfg *config.Config, am healer.Alertmanager, logger *slog.Logger) (*action.Registry, error) {
	return actions(cfg, am, nil, logger)
}

// actions is Actions with the set of the healer's recent clients, which
// block_ip refuses (nil for none).
func actions(cfg *config.Config, am healer.Alertmanager, peers *action.Peers, logger *slog.Logger) (*action.Registry, error) {
	o := action.BuiltinOptions{
		Peers:          peers.List,
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
// alone, or an empty file, does not. Sockets passed by systemd
// (--web.systemd-socket) may be bound anywhere, so they need authentication
// whatever their address. Basic auth users and a bearer token exclude each
// other (see basicAuthWithTokens).
func checkAuth(cfg *config.Config, wc *listener.WebConfig, wf *web.FlagConfig) error {
	if wf == nil {
		return nil
	}
	auth, err := wc.Current()
	if err != nil {
		return err
	}
	if err := basicAuthWithTokens(cfg, wc, auth); err != nil {
		return err
	}
	tokens := cfg.Webhook.BearerTokenFile != "" && cfg.API.BearerTokenFile != ""
	what := "webhook.bearer_token_file and api.bearer_token_file are not both set, and no --web.config.file requires basic auth or client certificates"
	if wc.Path() != "" {
		what = fmt.Sprintf("webhook.bearer_token_file and api.bearer_token_file are not both set, and --web.config.file %s authenticates %s (it needs basic_auth_users, or client_auth_type: RequireAndVerifyClientCert with a client CA)", wc.Path(), auth)
	}
	systemd := wf.WebSystemdSocket != nil && *wf.WebSystemdSocket
	if err := listener.CheckSystemdSocket(systemd, tokens || auth.Authenticates(), what); err != nil {
		return err
	}
	if wf.WebListenAddresses == nil {
		return nil
	}
	return listener.CheckAddresses(*wf.WebListenAddresses, tokens || auth.Authenticates(), what)
}

// basicAuthWithTokens refuses basic auth users beside a bearer token: both
// are sent in the one Authorization header, so no request could carry the
// password exporter-toolkit checks and the token the handler checks.
func basicAuthWithTokens(cfg *config.Config, wc *listener.WebConfig, auth listener.Auth) error {
	if !auth.BasicAuth {
		return nil
	}
	var set []string
	if cfg.Webhook.BearerTokenFile != "" {
		set = append(set, "webhook.bearer_token_file")
	}
	if cfg.API.BearerTokenFile != "" {
		set = append(set, "api.bearer_token_file")
	}
	if len(set) == 0 {
		return nil
	}
	return fmt.Errorf("--web.config.file %s has basic_auth_users and %s is set: both need the one Authorization header, so no request could pass both; use one or the other (Alertmanager sends basic auth with http_config.basic_auth)", wc.Path(), strings.Join(set, " and "))
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
		{"brain.model", old.Brain.Model, cur.Brain.Model},
		{"brain.mask", old.Brain.Mask, cur.Brain.Mask},
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
