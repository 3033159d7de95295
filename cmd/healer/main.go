// Command healer receives Alertmanager's webhooks and heals what its
// runbooks say it may, with guards, approvals, rollback and an audit log.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/deus-ex-machina/deus/deploy"
	"github.com/deus-ex-machina/deus/internal/action"
	"github.com/deus-ex-machina/deus/internal/app"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/exporter"
	"github.com/deus-ex-machina/deus/internal/healer"
	"github.com/deus-ex-machina/deus/internal/install"
	"github.com/deus-ex-machina/deus/internal/store"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args and runs the subcommand they name, returning its exit
// code: 2 when args do not parse.
func run(args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr}
	a := kingpin.New("healer", "Receives Alertmanager's webhooks and heals what its runbooks allow, with guards, approvals, rollback and a tamper-evident audit log.")
	a.Version(version.Print("deus_healer"))
	a.HelpFlag.Short('h')
	a.UsageWriter(stderr)
	a.ErrorWriter(stderr)
	// --help, --help-long and --version print and end the command line:
	// kingpin would go on to the default command (serve).
	terminated := -1
	a.Terminate(func(code int) { terminated = code })
	commands := c.commands(a)

	cmd, err := a.Parse(args)
	if terminated >= 0 {
		return terminated
	}
	if err != nil {
		fmt.Fprintf(stderr, "healer: %v\n", err)
		return 2
	}
	if cmd == "" {
		return 0
	}
	runCmd, ok := commands[cmd]
	if !ok {
		return 2
	}
	return runCmd(context.Background())
}

// cli is what every subcommand shares: where it writes, and the flags
// given before it.
type cli struct {
	stdout, stderr io.Writer
	logConfig      promslog.Config
	// The running healer, for the commands that go through its API.
	url, tokenFile, by string
}

// commands registers every subcommand with its flags, in the order of
// the help, and returns what runs each, by its full name.
func (c *cli) commands(a *kingpin.Application) map[string]func(context.Context) int {
	commands := map[string]func(context.Context) int{}
	add := func(cmd *kingpin.CmdClause, run func(context.Context) int) { commands[cmd.FullCommand()] = run }
	add(c.serveCommand(a))
	flag.AddFlags(a, &c.logConfig)
	add(c.checkConfigCommand(a))
	add(c.actionsCommand(a))
	a.Flag("healer.url", "The running healer's URL, for commands that go through its API.").Default("http://127.0.0.1:9111").StringVar(&c.url)
	a.Flag("api.token-file", "File with the API bearer token (api.bearer_token_file of the server).").StringVar(&c.tokenFile)
	a.Flag("by", "Who is deciding, for the audit log.").Default(os.Getenv("USER")).StringVar(&c.by)
	add(c.runCommand(a))
	add(c.decideCommand(a, "approve", "Approve a run waiting for approval."))
	add(c.decideCommand(a, "deny", "Deny a run waiting for approval."))
	add(c.decideCommand(a, "rollback", "Undo what a run changed."))
	add(c.scheduleCommand(a))
	add(c.forecastCommand(a))
	add(c.analyzeCommand(a))
	add(c.incidentsCommand(a))
	add(c.assessCommand(a))
	add(c.installCommand(a))
	auditCmd := a.Command("audit", "Audit log commands.")
	add(c.auditVerifyCommand(auditCmd))
	add(c.auditHeadCommand(auditCmd))
	add(c.auditAcceptCommand(auditCmd))
	return commands
}

// serveFlags are the flags of serve.
type serveFlags struct {
	o          app.Options
	retention  string
	collectors func() // applies the --collector.* flags once parsed
}

func (c *cli) serveCommand(a *kingpin.Application) (*kingpin.CmdClause, func(context.Context) int) {
	cmd := a.Command("serve", "Run the healer server (the default).").Default()
	f := &serveFlags{}
	cmd.Flag("config.file", "Healer configuration file; without one the defaults apply (dry-run off, no runbooks).").StringVar(&f.o.ConfigFile)
	f.o.WebFlags = kingpinflag.AddFlags(cmd, "127.0.0.1:9111")
	cmd.Flag("storage.tsdb.retention.time", "Standalone mode (no prometheus.url): how long the embedded TSDB keeps samples.").Default("15d").StringVar(&f.retention)
	cmd.Flag("standalone.scrape-interval", "Standalone mode: how often this host's vitals are collected and the rules evaluated.").Default("15s").DurationVar(&f.o.ScrapeInterval)
	cmd.Flag("rules.dir", "Standalone mode: a directory of *.rules.yml to evaluate instead of the shipped rules.").StringVar(&f.o.RulesDir)
	f.o.Exporter = exporter.DefaultOptions()
	f.o.Exporter.StateDir = ""
	f.collectors = exporter.AddFlags(cmd, &f.o.Exporter, "Standalone mode: ")
	return cmd, func(ctx context.Context) int { return c.serve(ctx, f) }
}

// serve runs the healer server until SIGINT or SIGTERM, reloading its
// configuration on SIGHUP.
func (c *cli) serve(ctx context.Context, f *serveFlags) int {
	f.collectors()
	ret, err := model.ParseDuration(f.retention)
	if err != nil {
		fmt.Fprintf(c.stderr, "healer: --storage.tsdb.retention.time: %v\n", err)
		return 2
	}
	f.o.Retention = time.Duration(ret)
	c.logConfig.Writer = c.stderr
	f.o.Logger = promslog.New(&c.logConfig)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx) // ends reloadOnHangup when serve returns
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan chan error)
	go reloadOnHangup(ctx, hup, reload, f.o.Logger)

	if err := serveApp(ctx, f.o, reload); err != nil {
		f.o.Logger.Error("healer_failed", "err", err)
		return 1
	}
	return 0
}

// serveApp builds the server, runs it until ctx is done and closes it.
// What fails to close is logged: the server has stopped by then.
func serveApp(ctx context.Context, o app.Options, reload <-chan chan error) error {
	a, err := app.New(ctx, o)
	if err != nil {
		return err
	}
	err = a.Run(ctx, reload)
	if cerr := a.Close(); cerr != nil {
		o.Logger.Error("close_failed", "err", cerr)
	}
	return err
}

// reloadOnHangup asks for a reload on each signal on hup until ctx is
// done, and logs the reloads that fail.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, reload chan<- chan error, logger *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		answer := make(chan error, 1)
		select {
		case <-ctx.Done():
			return
		case reload <- answer:
		}
		if err := <-answer; err != nil {
			logger.Error("reload_failed", "err", err)
		}
	}
}

func (c *cli) checkConfigCommand(a *kingpin.Application) (*kingpin.CmdClause, func(context.Context) int) {
	cmd := a.Command("check-config", "Check a configuration file and exit non-zero naming every problem.")
	file := cmd.Arg("file", "Configuration file.").Required().String()
	return cmd, func(context.Context) int { return c.checkConfig(*file) }
}

// checkConfig loads file and says whether it is valid.
func (c *cli) checkConfig(file string) int {
	cfg, err := app.LoadConfig(file)
	if err != nil {
		fmt.Fprintf(c.stderr, "%v\n", err)
		return 1
	}
	fmt.Fprintf(c.stdout, "%s: OK, %d runbooks\n", file, len(cfg.Runbooks))
	return 0
}

func (c *cli) actionsCommand(a *kingpin.Application) (*kingpin.CmdClause, func(context.Context) int) {
	cmd := a.Command("actions", "List the actions with their tiers and parameters.")
	file := cmd.Flag("config.file", "Configuration file, for the site's commands.").String()
	return cmd, func(context.Context) int { return c.listActions(*file) }
}

// listActions prints a table of the actions the configuration at file
// makes available.
func (c *cli) listActions(file string) int {
	cfg, err := app.LoadConfig(file)
	if err != nil {
		fmt.Fprintf(c.stderr, "%v\n", err)
		return 1
	}
	reg, err := app.Actions(cfg, nil, nil)
	if err != nil {
		fmt.Fprintf(c.stderr, "actions: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tTIER\tREVERSIBLE\tPARAMETERS")
	for _, s := range reg.Specs() {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", s.Name, s.Tier, s.Reversible, paramsOf(s))
	}
	tw.Flush()
	return 0
}

// paramsOf describes an action's parameters: name:type, ! when required,
// =default and {the|allowed|values}.
func paramsOf(s action.Spec) string {
	var ps []string
	for _, p := range s.Params {
		d := p.Name + ":" + string(p.Type)
		if p.Required {
			d += "!"
		}
		if p.Default != "" {
			d += "=" + p.Default
		}
		if len(p.Enum) > 0 {
			d += "{" + strings.Join(p.Enum, "|") + "}"
		}
		ps = append(ps, d)
	}
	return strings.Join(ps, " ")
}

func (c *cli) runCommand(a *kingpin.Application) (*kingpin.CmdClause, func(context.Context) int) {
	cmd := a.Command("run", "Run one action by hand, through the server's guards and audit.")
	name := cmd.Arg("action", "Action name (see `healer actions`).").Required().String()
	params := cmd.Flag("param", "Parameter as name=value; repeatable.").Short('p').StringMap()
	dry := cmd.Flag("dry-run", "Say what would be done; change nothing.").Bool()
	return cmd, func(context.Context) int {
		return c.api().do(c.stdout, c.stderr, http.MethodPost, "/api/v1/actions/"+*name+"/run",
			map[string]any{"params": *params, "dry_run": *dry, "by": c.by})
	}
}

// decideCommand is approve, deny or rollback: the decision, named by the
// command, on a run, through the API.
func (c *cli) decideCommand(a *kingpin.Application, decision, help string) (*kingpin.CmdClause, func(context.Context) int) {
	cmd := a.Command(decision, help)
	id := cmd.Arg("run", "Run ID.").Required().String()
	return cmd, func(context.Context) int {
		return c.api().do(c.stdout, c.stderr, http.MethodPost, "/api/v1/runs/"+*id+"/"+decision, map[string]string{"by": c.by})
	}
}

func (c *cli) scheduleCommand(a *kingpin.Application) (*kingpin.CmdClause, func(context.Context) int) {
	cmd := a.Command("schedule", "Show the maintenance windows of the coming week (the quietest hours by the load signal) and why each was chosen.")
	output := cmd.Flag("output", "text or json.").Default("text").Enum("text", "json")
	return cmd, func(context.Context) int { return c.view("/api/v1/schedule", *output, printSchedule) }
}

// view gets path from the running healer's API and writes its data as JSON
// (output json) or as print writes it.
func (c *cli) view(path, output string, print func(stdout, stderr io.Writer, data []byte) int) int {
	if output == "json" {
		return c.api().do(c.stdout, c.stderr, http.MethodGet, path, nil)
	}
	var buf bytes.Buffer
	if code := c.api().do(&buf, c.stderr, http.MethodGet, path, nil); code != 0 {
		return code
	}
	return print(c.stdout, c.stderr, buf.Bytes())
}

func (c *cli) forecastCommand(a *kingpin.Application) (*kingpin.CmdClause, func(context.Context) int) {
	cmd := a.Command("forecast", "Forecast every series of a PromQL expression or metric, by the method that did best on its own past, with an interval and when a threshold is crossed.")
	expr := cmd.Arg("expr", "PromQL expression or metric name.").Required().String()
	instance := cmd.Flag("instance", "Only the series of this instance.").String()
	horizon := cmd.Flag("horizon", "How far ahead.").Default("24h").String()
	threshold := cmd.Flag("threshold", "A value whose crossing is forecast (e.g. 0 for free bytes).").String()
	direction := cmd.Flag("direction", "Which way the threshold is crossed.").Default("below").Enum("below", "above")
	output := cmd.Flag("output", "text or json.").Default("text").Enum("text", "json")
	return cmd, func(context.Context) int {
		q := url.Values{"expr": {*expr}, "horizon": {*horizon}}
		if *instance != "" {
			q.Set("instance", *instance)
		}
		if *threshold != "" {
			q.Set("threshold", *threshold)
			q.Set("direction", *direction)
		}
		return c.view("/api/v1/forecast?"+q.Encode(), *output, printForecasts)
	}
}

// printForecasts writes each series' forecast as a line of a table and a
// chart: the last day, then the forecast, each column one point.
func printForecasts(stdout, stderr io.Writer, b []byte) int {
	var fs []healer.SeriesForecast
	if err := json.Unmarshal(b, &fs); err != nil {
		fmt.Fprintf(stderr, "healer: forecast: %v\n", err)
		return 1
	}
	if len(fs) == 0 {
		fmt.Fprintln(stdout, "no series")
		return 0
	}
	for _, f := range fs {
		fmt.Fprintf(stdout, "%s\n", labelsText(f.Labels))
		if f.Error != "" {
			fmt.Fprintf(stdout, "  not forecast: %s\n", f.Error)
			continue
		}
		fmt.Fprintf(stdout, "  in %s (%s): %.4g, %.0f%% interval [%.4g, %.4g], by %s\n", time.Duration(f.HorizonSeconds*float64(time.Second)),
			f.At.UTC().Format("2006-01-02 15:04 UTC"), f.Point, 100*f.Level, f.Lower, f.Upper, f.Method)
		fmt.Fprintf(stdout, "  why: %s\n", f.Why)
		if c := f.Crossing; c != nil {
			fmt.Fprintf(stdout, "  %s %.4g: %s\n", c.Direction, c.Value, crossingText(c))
		}
		fmt.Fprintf(stdout, "  %s\n", chart(f.History, f.Path))
	}
	return 0
}

func labelsText(ls map[string]string) string {
	keys := make([]string, 0, len(ls))
	for k := range ls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, ls[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func crossingText(c *healer.Crossing) string {
	switch {
	case c.Now:
		return "already crossed"
	case c.At.IsZero() && c.Earliest.IsZero():
		return "not within the horizon"
	}
	s := "at " + c.At.UTC().Format("2006-01-02 15:04 UTC")
	if c.At.IsZero() {
		s = "not by the point forecast"
	}
	if !c.Earliest.IsZero() {
		s += ", at the earliest " + c.Earliest.UTC().Format("2006-01-02 15:04")
	}
	if !c.Latest.IsZero() {
		s += ", at the latest " + c.Latest.UTC().Format("2006-01-02 15:04")
	}
	return s
}

// chart draws history then forecast as bars on one scale; the forecast's
// band follows in brackets.
func chart(history, path []healer.PathPoint) string {
	bars := []rune("▁▂▃▄▅▆▇█")
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range append(append([]healer.PathPoint{}, history...), path...) {
		lo, hi = min(lo, p.Lower, p.Point), max(hi, p.Upper, p.Point)
	}
	bar := func(v float64) rune {
		if hi <= lo {
			return bars[0]
		}
		return bars[min(len(bars)-1, int((v-lo)/(hi-lo)*float64(len(bars))))]
	}
	var b strings.Builder
	for _, p := range history {
		b.WriteRune(bar(p.Point))
	}
	b.WriteString(" | ")
	for _, p := range path {
		b.WriteRune(bar(p.Point))
	}
	if n := len(path); n > 0 {
		fmt.Fprintf(&b, "  band [%.4g, %.4g]", path[n-1].Lower, path[n-1].Upper)
	}
	return b.String()
}

// printSchedule writes a schedule as the human reads it.
func printSchedule(stdout, stderr io.Writer, b []byte) int {
	var s struct {
		Signal, History, Unknown string
		Blackouts, Runbooks      []string
		Windows                  []struct {
			Start, End time.Time
			Load       float64
			Why        string
		}
	}
	if err := json.Unmarshal(b, &s); err != nil {
		fmt.Fprintf(stderr, "healer: schedule: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Maintenance windows for the coming week, by %s over the last %s:\n", s.Signal, s.History)
	if s.Unknown != "" {
		fmt.Fprintf(stdout, "  none known: %s\n", s.Unknown)
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	for _, w := range s.Windows {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", w.Start.UTC().Format("Mon 2006-01-02 15:04"), w.End.UTC().Format("15:04 UTC"), w.Why)
	}
	tw.Flush()
	if len(s.Blackouts) > 0 {
		fmt.Fprintf(stdout, "Never in: %s\n", strings.Join(s.Blackouts, "; "))
	}
	waiting := strings.Join(s.Runbooks, ", ")
	if waiting == "" {
		waiting = "none (mark a runbook maintenance: true)"
	}
	fmt.Fprintf(stdout, "Runbooks that wait for a window: %s\n", waiting)
	return 0
}

// installFlags are the flags of install.
type installFlags struct {
	dry            bool
	root, exporter string
}

func (c *cli) installCommand(a *kingpin.Application) (*kingpin.CmdClause, func(context.Context) int) {
	cmd := a.Command("install", "Set this host up: directories, /etc/deus/healer.yml, token files, systemd units and binaries; only what differs, so it can run again.")
	var f installFlags
	cmd.Flag("dry-run", "Print what would change; change nothing.").BoolVar(&f.dry)
	cmd.Flag("root", "Install under this directory instead of /.").Default("/").StringVar(&f.root)
	cmd.Flag("exporter", "The exporter binary to install as /usr/local/bin/deus-exporter (default: exporter beside this binary, if there).").StringVar(&f.exporter)
	return cmd, func(context.Context) int { return c.install(f) }
}

// install plans the changes that set this host up, prints them, and
// applies them unless it is a dry run.
func (c *cli) install(f installFlags) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(c.stderr, "healer install: %v\n", err)
		return 1
	}
	exp := f.exporter
	if exp == "" {
		if p := filepath.Join(filepath.Dir(self), "exporter"); fileExists(p) {
			exp = p
		}
	}
	changes, err := install.Plan(install.Options{Root: f.root, Files: deploy.Files, Healer: self, Exporter: exp})
	if err != nil {
		fmt.Fprintf(c.stderr, "healer install: %v\n", err)
		return 1
	}
	prefix := ""
	if f.dry {
		prefix = "would "
	}
	for _, ch := range changes {
		fmt.Fprintln(c.stdout, prefix+ch.String())
	}
	if f.dry {
		return 0
	}
	if err := install.Apply(changes); err != nil {
		fmt.Fprintf(c.stderr, "healer install: %v\n", err)
		return 1
	}
	fmt.Fprint(c.stdout, install.Summary(changes))
	return 0
}

func (c *cli) auditVerifyCommand(auditCmd *kingpin.CmdClause) (*kingpin.CmdClause, func(context.Context) int) {
	cmd := auditCmd.Command("verify", "Verify the whole hash chain, against its head and with its key when given; exit 0 when it checks out, 1 naming the first bad record or mismatch, 2 when it could not be checked.")
	var f verifyFlags
	cmd.Arg("dir", "Audit log directory.").Default("data/audit").StringVar(&f.dir)
	cmd.Flag("head.seq", "The chain's head as kept elsewhere: the log must hold the record with this seq (it may go on after it). With --head.hash.").Uint64Var(&f.headSeq)
	cmd.Flag("head.hash", "The hash of the head's record.").StringVar(&f.headHash)
	cmd.Flag("storage.path", "Read the head from the healer's database in this directory (storage.path), read-only; the healer may be running.").StringVar(&f.storage)
	cmd.Flag("key.file", "The key of a keyed chain (audit.key_file): every keyed record's MAC is checked. Without it a keyed log fails, as its MACs cannot be checked.").StringVar(&f.keyFile)
	return cmd, func(ctx context.Context) int { return auditVerify(ctx, f, c.stdout, c.stderr) }
}

func (c *cli) auditHeadCommand(auditCmd *kingpin.CmdClause) (*kingpin.CmdClause, func(context.Context) int) {
	cmd := auditCmd.Command("head", "Print the chain's head stored in the healer's database, as flags for audit verify, to keep a copy off this host.")
	storage := cmd.Flag("storage.path", "The healer's storage.path.").Default("data").String()
	return cmd, func(ctx context.Context) int { return c.auditHead(ctx, *storage) }
}

// auditHead prints the head stored in the database in storage as flags
// for audit verify: exit 1 when none is stored, 2 when it cannot be read.
func (c *cli) auditHead(ctx context.Context, storage string) int {
	seq, hash, ok, err := store.ReadAuditHead(ctx, storage)
	if err != nil {
		fmt.Fprintf(c.stderr, "audit head: %v\n", err)
		return 2
	}
	if !ok {
		fmt.Fprintf(c.stderr, "audit head: no head is stored in %s\n", storage)
		return 1
	}
	fmt.Fprintf(c.stdout, "--head.seq=%d --head.hash=%s\n", seq, hash)
	return 0
}

func (c *cli) auditAcceptCommand(auditCmd *kingpin.CmdClause) (*kingpin.CmdClause, func(context.Context) int) {
	cmd := auditCmd.Command("accept", "With the healer stopped, store the log's last record as the chain's head, after a mismatch was looked into: the healer acts again from its next start.")
	dir := cmd.Arg("dir", "Audit log directory.").Default("data/audit").String()
	storage := cmd.Flag("storage.path", "The healer's storage.path.").Default("data").String()
	key := cmd.Flag("key.file", "The key of a keyed chain (audit.key_file).").String()
	return cmd, func(ctx context.Context) int { return auditAccept(ctx, *dir, *storage, *key, c.stdout, c.stderr) }
}

// api is the client of the running healer's API the flags name.
func (c *cli) api() *apiClient {
	return &apiClient{url: strings.TrimSuffix(c.url, "/"), tokenFile: c.tokenFile}
}

// verifyFlags are the flags of audit verify.
type verifyFlags struct {
	dir, headHash, storage, keyFile string
	headSeq                         uint64
}

// auditVerify runs audit verify: exit 0 when the log checks out, 1 when it
// does not (a bad record, a head it does not hold, keyed records without
// the key, a database with no head), 2 when it could not be checked.
func auditVerify(ctx context.Context, f verifyFlags, stdout, stderr io.Writer) int {
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintf(stderr, "audit verify %s: "+format+"\n", append([]any{f.dir}, args...)...)
		return code
	}
	o, headFrom, code, err := verifyOptions(ctx, f)
	if err != nil {
		return fail(code, "%v", err)
	}
	rep, err := audit.VerifyWith(f.dir, o)
	var verr *audit.VerifyError
	if errors.As(err, &verr) {
		if verr.Problem == audit.ProblemKeyNeeded {
			return fail(1, "%v; give --key.file to check them", err)
		}
		return fail(1, "%v", err)
	}
	if err != nil {
		return fail(2, "%v", err)
	}
	printVerified(stdout, f.dir, o, headFrom, rep)
	return 0
}

// verifyOptions are the head and key audit verify checks against, and
// where the head came from; or why they cannot be had, with the exit code
// that says so.
func verifyOptions(ctx context.Context, f verifyFlags) (o audit.VerifyOptions, headFrom string, code int, err error) {
	switch {
	case f.storage != "" && (f.headHash != "" || f.headSeq != 0):
		return o, "", 2, errors.New("give the head either with --storage.path or with --head.seq and --head.hash")
	case f.storage != "":
		seq, hash, ok, err := store.ReadAuditHead(ctx, f.storage)
		if err != nil {
			return o, "", 2, fmt.Errorf("read the head: %w", err)
		}
		if !ok {
			return o, "", 1, fmt.Errorf("no head is stored in %s: records cut from the end of the log could not be told", f.storage)
		}
		o.Anchor, headFrom = &audit.Anchor{Seq: seq, Hash: hash}, "the database in "+f.storage
	case f.headHash != "":
		o.Anchor, headFrom = &audit.Anchor{Seq: f.headSeq, Hash: f.headHash}, "--head.seq and --head.hash"
	case f.headSeq != 0:
		return o, "", 2, errors.New("--head.seq needs --head.hash")
	}
	if f.keyFile != "" {
		key, err := audit.ReadKeyFile(f.keyFile)
		if err != nil {
			return o, "", 2, err
		}
		o.Key = key
	}
	return o, headFrom, 0, nil
}

// printVerified says what audit verify checked of the log in dir.
func printVerified(stdout io.Writer, dir string, o audit.VerifyOptions, headFrom string, rep audit.Report) {
	fmt.Fprintf(stdout, "audit verify %s: OK: %d records in %d files, seq %d to %d, last hash %s\n",
		dir, rep.Records, rep.Files, rep.FirstSeq, rep.LastSeq, rep.LastHash)
	switch {
	case o.Anchor != nil:
		fmt.Fprintf(stdout, "  head: seq %d with hash %s (from %s) is in the log; %d records after it\n", o.Anchor.Seq, o.Anchor.Hash, headFrom, rep.PastAnchor)
	default:
		fmt.Fprintln(stdout, "  head: none given: records cut from the end of the log cannot be told (--storage.path, or --head.seq and --head.hash)")
	}
	switch {
	case rep.Keyed > 0:
		fmt.Fprintf(stdout, "  key: %d keyed records (%s), every MAC checked; %d unkeyed records before them\n", rep.Keyed, audit.AlgHMAC, rep.Records-rep.Keyed)
	case o.Key != nil:
		fmt.Fprintln(stdout, "  key: given, and the log has no records")
	default:
		fmt.Fprintln(stdout, "  key: none: an unkeyed chain, which anyone can recompute")
	}
	if rep.Recovered+rep.Pruned > 0 {
		fmt.Fprintf(stdout, "  %d crashes recovered, %d files pruned\n", rep.Recovered, rep.Pruned)
	}
}

// auditAccept runs audit accept: it verifies the log alone (with its key),
// holding its lock so that the healer cannot be running, and stores its
// last record as the head.
func auditAccept(ctx context.Context, dir, storage, keyFile string, stdout, stderr io.Writer) int {
	var key []byte
	if keyFile != "" {
		k, err := audit.ReadKeyFile(keyFile)
		if err != nil {
			fmt.Fprintf(stderr, "audit accept: %v\n", err)
			return 2
		}
		key = k
	}
	l, err := audit.Open(dir, audit.Options{Key: key})
	if err != nil {
		fmt.Fprintf(stderr, "audit accept %s: %v (is the healer running?)\n", dir, err)
		return 2
	}
	defer func() { _ = l.Close() }() // nothing was appended but what Open recovered, already fsync'd
	if _, err := audit.VerifyWith(dir, audit.VerifyOptions{Key: key, AcceptUnkeyed: true}); err != nil {
		fmt.Fprintf(stderr, "audit accept %s: the log itself does not verify, so it cannot be the reference: %v\n", dir, err)
		return 1
	}
	// What was stored before, to print; a database too old or missing to
	// hold a head had none.
	oldSeq, oldHash, had, err := store.ReadAuditHead(ctx, storage)
	had = had && err == nil
	seq, hash := l.Head()
	if err := store.SetAuditHead(ctx, storage, seq, hash); err != nil {
		fmt.Fprintf(stderr, "audit accept: %v\n", err)
		return 2
	}
	if had {
		fmt.Fprintf(stdout, "audit accept %s: head was seq %d hash %s\n", dir, oldSeq, oldHash)
	}
	fmt.Fprintf(stdout, "audit accept %s: head is now seq %d hash %s\n", dir, seq, hash)
	return 0
}

// apiClient calls the running healer's API.
type apiClient struct {
	url, tokenFile string
}

func (c *apiClient) do(stdout, stderr io.Writer, method, path string, body any) int {
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(context.Background(), 11*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, bytes.NewReader(b))
	if err != nil {
		fmt.Fprintf(stderr, "healer: %v\n", err)
		return 2
	}
	req.Header.Set("Content-Type", "application/json")
	if c.tokenFile != "" {
		tok, err := os.ReadFile(c.tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "healer: %v\n", err)
			return 2
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "healer: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	var v struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		fmt.Fprintf(stderr, "healer: %s: %s\n", resp.Status, bytes.TrimSpace(out))
		return 1
	}
	if v.Status != "success" {
		fmt.Fprintf(stderr, "healer: %s: %s\n", resp.Status, v.Error)
		return 1
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, v.Data, "", "  "); err != nil {
		pretty.Write(v.Data)
	}
	fmt.Fprintln(stdout, pretty.String())
	return 0
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
