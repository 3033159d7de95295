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
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
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
	"github.com/deus-ex-machina/deus/internal/app"
	"github.com/deus-ex-machina/deus/internal/audit"
	"github.com/deus-ex-machina/deus/internal/exporter"
	"github.com/deus-ex-machina/deus/internal/install"
	"github.com/deus-ex-machina/deus/internal/store"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	a := kingpin.New("healer", "Receives Alertmanager's webhooks and heals what its runbooks allow, with guards, approvals, rollback and a tamper-evident audit log.")
	a.Version(version.Print("deus_healer"))
	a.HelpFlag.Short('h')
	a.UsageWriter(stderr)
	a.ErrorWriter(stderr)
	a.Terminate(nil)

	serve := a.Command("serve", "Run the healer server (the default).").Default()
	configFile := serve.Flag("config.file", "Healer configuration file; without one the defaults apply (dry-run off, no runbooks).").String()
	webFlags := kingpinflag.AddFlags(serve, "127.0.0.1:9111")
	retention := serve.Flag("storage.tsdb.retention.time", "Standalone mode (no prometheus.url): how long the embedded TSDB keeps samples.").Default("15d").String()
	scrapeInterval := serve.Flag("standalone.scrape-interval", "Standalone mode: how often this host's vitals are collected and the rules evaluated.").Default("15s").Duration()
	rulesDir := serve.Flag("rules.dir", "Standalone mode: a directory of *.rules.yml to evaluate instead of the shipped rules.").String()
	eo := exporter.DefaultOptions()
	eo.StateDir = ""
	parsedCollectors := exporter.AddFlags(serve, &eo, "Standalone mode: ")
	logConfig := &promslog.Config{}
	flag.AddFlags(a, logConfig)

	check := a.Command("check-config", "Check a configuration file and exit non-zero naming every problem.")
	checkFile := check.Arg("file", "Configuration file.").Required().String()

	actions := a.Command("actions", "List the actions with their tiers and parameters.")
	actionsFile := actions.Flag("config.file", "Configuration file, for the site's commands.").String()

	url := a.Flag("healer.url", "The running healer's URL, for commands that go through its API.").Default("http://127.0.0.1:9111").String()
	tokenFile := a.Flag("api.token-file", "File with the API bearer token (api.bearer_token_file of the server).").String()
	by := a.Flag("by", "Who is deciding, for the audit log.").Default(os.Getenv("USER")).String()

	runCmd := a.Command("run", "Run one action by hand, through the server's guards and audit.")
	runAction := runCmd.Arg("action", "Action name (see `healer actions`).").Required().String()
	runParams := runCmd.Flag("param", "Parameter as name=value; repeatable.").Short('p').StringMap()
	runDry := runCmd.Flag("dry-run", "Say what would be done; change nothing.").Bool()

	approve := a.Command("approve", "Approve a run waiting for approval.")
	approveID := approve.Arg("run", "Run ID.").Required().String()
	deny := a.Command("deny", "Deny a run waiting for approval.")
	denyID := deny.Arg("run", "Run ID.").Required().String()
	rollback := a.Command("rollback", "Undo what a run changed.")
	rollbackID := rollback.Arg("run", "Run ID.").Required().String()

	installCmd := a.Command("install", "Set this host up: directories, /etc/deus/healer.yml, token files, systemd units and binaries; only what differs, so it can run again.")
	installDry := installCmd.Flag("dry-run", "Print what would change; change nothing.").Bool()
	installRoot := installCmd.Flag("root", "Install under this directory instead of /.").Default("/").String()
	installExporter := installCmd.Flag("exporter", "The exporter binary to install as /usr/local/bin/deus-exporter (default: exporter beside this binary, if there).").String()

	auditCmd := a.Command("audit", "Audit log commands.")
	verify := auditCmd.Command("verify", "Verify the whole hash chain, against its head and with its key when given; exit 0 when it checks out, 1 naming the first bad record or mismatch, 2 when it could not be checked.")
	var vf verifyFlags
	verify.Arg("dir", "Audit log directory.").Default("data/audit").StringVar(&vf.dir)
	verify.Flag("head.seq", "The chain's head as kept elsewhere: the log must hold the record with this seq (it may go on after it). With --head.hash.").Uint64Var(&vf.headSeq)
	verify.Flag("head.hash", "The hash of the head's record.").StringVar(&vf.headHash)
	verify.Flag("storage.path", "Read the head from the healer's database in this directory (storage.path), read-only; the healer may be running.").StringVar(&vf.storage)
	verify.Flag("key.file", "The key of a keyed chain (audit.key_file): every keyed record's MAC is checked. Without it a keyed log fails, as its MACs cannot be checked.").StringVar(&vf.keyFile)
	headCmd := auditCmd.Command("head", "Print the chain's head stored in the healer's database, as flags for audit verify, to keep a copy off this host.")
	headStorage := headCmd.Flag("storage.path", "The healer's storage.path.").Default("data").String()
	acceptCmd := auditCmd.Command("accept", "With the healer stopped, store the log's last record as the chain's head, after a mismatch was looked into: the healer acts again from its next start.")
	acceptDir := acceptCmd.Arg("dir", "Audit log directory.").Default("data/audit").String()
	acceptStorage := acceptCmd.Flag("storage.path", "The healer's storage.path.").Default("data").String()
	acceptKey := acceptCmd.Flag("key.file", "The key of a keyed chain (audit.key_file).").String()

	cmd, err := a.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "healer: %v\n", err)
		return 2
	}
	if cmd == "" { // --help or --version
		return 0
	}
	logConfig.Writer = stderr
	logger := promslog.New(logConfig)
	ctx := context.Background()
	api := &apiClient{url: strings.TrimSuffix(*url, "/"), tokenFile: *tokenFile, by: *by}

	switch cmd {
	case serve.FullCommand():
		parsedCollectors()
		ret, err := model.ParseDuration(*retention)
		if err != nil {
			fmt.Fprintf(stderr, "healer: --storage.tsdb.retention.time: %v\n", err)
			return 2
		}
		if err := serveSignalled(ctx, app.Options{
			ConfigFile: *configFile, WebFlags: webFlags, Logger: logger,
			Retention: time.Duration(ret), ScrapeInterval: *scrapeInterval, RulesDir: *rulesDir, Exporter: eo,
		}); err != nil {
			logger.Error("healer_failed", "err", err)
			return 1
		}
		return 0
	case check.FullCommand():
		c, err := app.LoadConfig(*checkFile)
		if err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: OK, %d runbooks\n", *checkFile, len(c.Runbooks))
		return 0
	case actions.FullCommand():
		c, err := app.LoadConfig(*actionsFile)
		if err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			return 1
		}
		reg, err := app.Actions(c, nil, nil)
		if err != nil {
			fmt.Fprintf(stderr, "actions: %v\n", err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ACTION\tTIER\tREVERSIBLE\tPARAMETERS")
		for _, s := range reg.Specs() {
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
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", s.Name, s.Tier, s.Reversible, strings.Join(ps, " "))
		}
		tw.Flush()
		return 0
	case runCmd.FullCommand():
		return api.do(stdout, stderr, http.MethodPost, "/api/v1/actions/"+*runAction+"/run",
			map[string]any{"params": *runParams, "dry_run": *runDry, "by": *by})
	case approve.FullCommand():
		return api.do(stdout, stderr, http.MethodPost, "/api/v1/runs/"+*approveID+"/approve", map[string]string{"by": *by})
	case deny.FullCommand():
		return api.do(stdout, stderr, http.MethodPost, "/api/v1/runs/"+*denyID+"/deny", map[string]string{"by": *by})
	case rollback.FullCommand():
		return api.do(stdout, stderr, http.MethodPost, "/api/v1/runs/"+*rollbackID+"/rollback", map[string]string{"by": *by})
	case installCmd.FullCommand():
		self, err := os.Executable()
		if err != nil {
			fmt.Fprintf(stderr, "healer install: %v\n", err)
			return 1
		}
		exp := *installExporter
		if exp == "" {
			if p := filepath.Join(filepath.Dir(self), "exporter"); fileExists(p) {
				exp = p
			}
		}
		changes, err := install.Plan(install.Options{Root: *installRoot, Files: deploy.Files, Healer: self, Exporter: exp})
		if err != nil {
			fmt.Fprintf(stderr, "healer install: %v\n", err)
			return 1
		}
		for _, c := range changes {
			prefix := ""
			if *installDry {
				prefix = "would "
			}
			fmt.Fprintln(stdout, prefix+c.String())
		}
		if *installDry {
			return 0
		}
		if err := install.Apply(changes); err != nil {
			fmt.Fprintf(stderr, "healer install: %v\n", err)
			return 1
		}
		fmt.Fprint(stdout, install.Summary(changes))
		return 0
	case verify.FullCommand():
		return auditVerify(ctx, vf, stdout, stderr)
	case headCmd.FullCommand():
		seq, hash, ok, err := store.ReadAuditHead(ctx, *headStorage)
		if err != nil {
			fmt.Fprintf(stderr, "audit head: %v\n", err)
			return 2
		}
		if !ok {
			fmt.Fprintf(stderr, "audit head: no head is stored in %s\n", *headStorage)
			return 1
		}
		fmt.Fprintf(stdout, "--head.seq=%d --head.hash=%s\n", seq, hash)
		return 0
	case acceptCmd.FullCommand():
		return auditAccept(ctx, *acceptDir, *acceptStorage, *acceptKey, stdout, stderr)
	}
	return 2
}

// serveSignalled runs the healer server until SIGINT or SIGTERM, reloading its
// configuration on SIGHUP.
func serveSignalled(ctx context.Context, o app.Options) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx) // ends reloadOnHangup when serveSignalled returns
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan chan error)
	go reloadOnHangup(ctx, hup, reload, o.Logger)
	return serveApp(ctx, o, reload)
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
	var o audit.VerifyOptions
	headFrom := ""
	switch {
	case f.storage != "" && (f.headHash != "" || f.headSeq != 0):
		return fail(2, "give the head either with --storage.path or with --head.seq and --head.hash")
	case f.storage != "":
		seq, hash, ok, err := store.ReadAuditHead(ctx, f.storage)
		if err != nil {
			return fail(2, "read the head: %v", err)
		}
		if !ok {
			return fail(1, "no head is stored in %s: records cut from the end of the log could not be told", f.storage)
		}
		o.Anchor, headFrom = &audit.Anchor{Seq: seq, Hash: hash}, "the database in "+f.storage
	case f.headHash != "":
		o.Anchor, headFrom = &audit.Anchor{Seq: f.headSeq, Hash: f.headHash}, "--head.seq and --head.hash"
	case f.headSeq != 0:
		return fail(2, "--head.seq needs --head.hash")
	}
	if f.keyFile != "" {
		key, err := audit.ReadKeyFile(f.keyFile)
		if err != nil {
			return fail(2, "%v", err)
		}
		o.Key = key
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
	fmt.Fprintf(stdout, "audit verify %s: OK: %d records in %d files, seq %d to %d, last hash %s\n",
		f.dir, rep.Records, rep.Files, rep.FirstSeq, rep.LastSeq, rep.LastHash)
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
	return 0
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

type apiClient struct {
	url, tokenFile, by string
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
