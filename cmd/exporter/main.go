// Command exporter serves a host's vitals under node_exporter's names, and
// what node_exporter lacks (top processes, sockets, authentication failures,
// file integrity, service states) under deus_*.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/deus-ex-machina/deus/internal/collector"
	"github.com/deus-ex-machina/deus/internal/exporter"
	"github.com/deus-ex-machina/deus/internal/listener"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	app := kingpin.New("exporter", "Host vitals in node_exporter's names, and what node_exporter lacks, for Prometheus.")
	app.Version(version.Print("deus_exporter"))
	app.HelpFlag.Short('h')

	o := exporter.DefaultOptions()
	var (
		webFlags    = kingpinflag.AddFlags(app, "127.0.0.1:9110")
		metricsPath = app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
		maxRequests = app.Flag("web.max-requests", "Maximum number of parallel scrape requests. 0 disables the limit.").Default("40").Int()
		timeout     = app.Flag("collector.timeout", "Deadline of every collector in a scrape; a shorter X-Prometheus-Scrape-Timeout-Seconds wins.").Default("5s").Duration()
		logConfig   = &promslog.Config{}
	)
	app.Flag("state.directory", "Where the exporter keeps the auth log position and the file integrity baseline.").Default(o.StateDir).StringVar(&o.StateDir)
	parsed := exporter.AddFlags(app, &o, "")
	flag.AddFlags(app, logConfig)

	if _, err := app.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "exporter: %v\n", err)
		return 2
	}
	parsed()
	logger := promslog.New(logConfig)
	// Every listener authenticates or keeps to loopback: what the exporter
	// reports (processes, listening ports, failed logins, changed files)
	// tells an intruder where to look.
	webConfig, err := listener.NewWebConfig(*webFlags.WebConfigFile)
	if err != nil {
		logger.Error("invalid_flags", "err", err)
		return 2
	}
	auth, _ := webConfig.Current()
	const what = "--web.config.file does not require basic auth (basic_auth_users) or client certificates (client_auth_type: RequireAndVerifyClientCert)"
	systemd := webFlags.WebSystemdSocket != nil && *webFlags.WebSystemdSocket
	if err := errors.Join(listener.CheckSystemdSocket(systemd, auth.Authenticates(), what),
		listener.CheckAddresses(*webFlags.WebListenAddresses, auth.Authenticates(), what)); err != nil {
		logger.Error("invalid_flags", "err", err)
		return 2
	}
	loopback, _ := listener.NewHosts(nil)

	entries, err := exporter.Collectors(o)
	if err != nil {
		logger.Error("invalid_flags", "err", err)
		return 2
	}
	scraper := collector.NewScraper(logger, *timeout, collector.BuildInfo{
		Version: version.Version, Revision: version.GetRevision(), Branch: version.Branch,
		GoVersion: runtime.Version(), GoOS: runtime.GOOS, GoArch: runtime.GOARCH,
	}, entries)
	logger.Info("starting_exporter", "version", version.Version, "collectors", scraper.Names())

	mux := http.NewServeMux()
	mux.Handle(*metricsPath, exporter.NewHandler(logger, scraper, *timeout, *maxRequests))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("Healthy\n"))
	})
	if *metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "Deus Ex Machina exporter",
			Description: "Host vitals in node_exporter's names, and what node_exporter lacks",
			Version:     version.Info(),
			Links:       []web.LandingLinks{{Address: *metricsPath, Text: "Metrics"}, {Address: "/-/healthy", Text: "Health"}},
		})
		if err != nil {
			logger.Error("landing_page_failed", "err", err)
			return 1
		}
		mux.Handle("/", landing)
	}
	srv := &http.Server{
		Handler:           listener.Unauthenticated(webConfig, loopback, mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      *timeout + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- web.ListenAndServe(srv, webFlags, logger) }()
	select {
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("server_failed", "err", err)
			return 1
		}
		return 0
	case <-ctx.Done():
	}
	logger.Info("shutting_down")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		logger.Error("shutdown_failed", "err", err)
		return 1
	}
	return 0
}
