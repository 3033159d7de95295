// Command healer receives Alertmanager's webhooks and heals what its
// runbooks say it may, with guards, approvals, rollback and an audit log.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
	verify := auditCmd.Command("verify", "Verify the whole hash chain; exit 1 naming the first bad record.")
	verifyDir := verify.Arg("dir", "Audit log directory.").Default("data/audit").String()

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
		if err := app.Serve(ctx, app.Options{
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
		rep, err := audit.Verify(*verifyDir)
		if err != nil {
			fmt.Fprintf(stderr, "audit verify %s: %v\n", *verifyDir, err)
			return 1
		}
		fmt.Fprintf(stdout, "audit verify %s: OK, %+v\n", *verifyDir, rep)
		return 0
	}
	return 2
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
