package action

import (
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"
)

// BuiltinOptions configure the built-in actions.
type BuiltinOptions struct {
	// TempRoots are the folders clean_temp_files may clean.
	TempRoots []string
	// QuarantineDir keeps what clean_temp_files moved away; required
	// with TempRoots.
	QuarantineDir string
	// LogRoots are the folders rotate_log may rotate files in.
	LogRoots []string
	// BackupDir keeps rotate_log's backups; "" means next to each log.
	BackupDir string
	// ServiceBackend is restart_service's: ServiceAuto (""),
	// ServiceSystemd, ServiceSystemctl or ServiceProcess.
	ServiceBackend string
	// Services are restarted by the process backend.
	Services []ProcessService
	// NeverKill adds command names kill_process refuses to
	// DefaultNeverKill.
	NeverKill []string
	// NeverBlock lists addresses and prefixes block_ip refuses.
	NeverBlock []string
	// Peers returns the addresses the healer's API and webhook clients
	// came from recently, which block_ip refuses; nil means none.
	Peers func() []netip.Addr
	// Firewall is block_ip's backend: FirewallAuto (""),
	// FirewallNftables or FirewallIptables.
	Firewall string
	// HTTPAllow lists the URL prefixes http_request may call.
	HTTPAllow []string
	// HTTPClient is http_request's client; nil means one with a 30s
	// timeout.
	HTTPClient *http.Client
	// Commands are the site's run_command actions.
	Commands []CommandConfig
	// Runner runs every command; nil means &Exec{}.
	Runner Runner
	// ProcRoot is where /proc is mounted; "" means /proc.
	ProcRoot string
	// Logger receives the actions' logs, with an action attribute; nil
	// discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// CommandConfig defines a run_command action (see NewCommand).
type CommandConfig struct {
	Spec Spec
	Argv []string
}

// Builtins returns the built-in actions (restart_service,
// clean_temp_files, rotate_log, vacuum_journal, kill_process, block_ip,
// http_request) and the configured commands, or every configuration
// problem, joined.
func Builtins(o BuiltinOptions) ([]Action, error) {
	if o.Runner == nil {
		o.Runner = &Exec{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := func(name string) *slog.Logger { return o.Logger.With("action", name) }
	var (
		actions []Action
		errs    []error
	)
	add := func(a Action, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		actions = append(actions, a)
	}
	add(NewRestartService(RestartOptions{Backend: o.ServiceBackend, Runner: o.Runner, Services: o.Services, ProcRoot: o.ProcRoot, Logger: log("restart_service")}))
	add(NewCleanTempFiles(o.TempRoots, o.QuarantineDir, o.Now, log("clean_temp_files")))
	add(NewRotateLog(o.LogRoots, o.BackupDir, log("rotate_log")))
	add(NewVacuumJournal(o.Runner))
	add(NewKillProcess(KillOptions{ProcRoot: o.ProcRoot, NeverKill: o.NeverKill, Logger: log("kill_process")}))
	add(NewBlockIP(BlockOptions{Backend: o.Firewall, Runner: o.Runner, NeverBlock: o.NeverBlock, Peers: o.Peers, ProcRoot: o.ProcRoot, Now: o.Now, Logger: log("block_ip")}))
	add(NewHTTPRequest(o.HTTPClient, o.HTTPAllow))
	for _, c := range o.Commands {
		add(NewCommand(c.Spec, c.Argv, o.Runner))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return actions, nil
}
