// Package exporter assembles the collectors into an HTTP exporter: which
// collectors run with which options, and the /metrics handler.
package exporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/deus-ex-machina/deus/internal/collector"
)

// Kind is a collector the exporter knows: its name (the --collector.NAME
// flag), whether it runs by default, what it reports, and how it is built
// from the options.
type Kind struct {
	Name    string
	Default bool
	Help    string
	build   func(o *Options, b *builder) collector.Collector
}

// Known lists every collector, vitals first in node_exporter's names; each
// entry carries its constructor, so the list and what can be built cannot
// disagree.
var Known = []Kind{
	{"cpu", true, "CPU seconds by mode (node_cpu_seconds_total).", func(o *Options, _ *builder) collector.Collector {
		return &collector.CPU{Paths: o.Paths}
	}},
	{"diskstats", true, "Disk I/O statistics (node_disk_*).", func(o *Options, b *builder) collector.Collector {
		return &collector.Diskstats{
			Paths:         o.Paths,
			DeviceExclude: b.re("collector.diskstats.device-exclude", o.DiskstatsDeviceExclude),
			DeviceInclude: b.re("collector.diskstats.device-include", o.DiskstatsDeviceInclude),
		}
	}},
	{"filesystem", true, "File system sizes and usage (node_filesystem_*).", func(o *Options, b *builder) collector.Collector {
		return &collector.Filesystem{
			Paths:              o.Paths,
			MountPointsExclude: b.re("collector.filesystem.mount-points-exclude", o.FilesystemMountPointsExclude),
			FSTypesExclude:     b.re("collector.filesystem.fs-types-exclude", o.FilesystemFSTypesExclude),
			MountTimeout:       o.FilesystemMountTimeout,
			StatFS:             o.StatFS,
		}
	}},
	{"loadavg", true, "Load averages (node_load*).", func(o *Options, _ *builder) collector.Collector {
		return &collector.Loadavg{Paths: o.Paths}
	}},
	{"meminfo", true, "Memory statistics (node_memory_*).", func(o *Options, _ *builder) collector.Collector {
		return &collector.Meminfo{Paths: o.Paths}
	}},
	{"netdev", true, "Network device statistics (node_network_*).", func(o *Options, b *builder) collector.Collector {
		return &collector.Netdev{
			Paths:         o.Paths,
			DeviceExclude: b.re("collector.netdev.device-exclude", o.NetdevDeviceExclude),
			DeviceInclude: b.re("collector.netdev.device-include", o.NetdevDeviceInclude),
		}
	}},
	{"pressure", true, "Pressure stall information (node_pressure_*).", func(o *Options, _ *builder) collector.Collector {
		return &collector.Pressure{Paths: o.Paths}
	}},
	{"stat", true, "Boot time, context switches, forks, interrupts, running and blocked processes.", func(o *Options, _ *builder) collector.Collector {
		return &collector.Stat{Paths: o.Paths}
	}},
	{"time", true, "System time and time zone (node_time_*).", func(o *Options, _ *builder) collector.Collector {
		return &collector.Time{Paths: o.Paths, Now: o.Now}
	}},
	{"uname", true, "Kernel and host identity (node_uname_info).", func(o *Options, _ *builder) collector.Collector {
		return &collector.Uname{Uname: o.Uname}
	}},
	{"processes", true, "Top process groups by CPU and memory, process counts by state (deus_process*).", func(o *Options, b *builder) collector.Collector {
		if o.ProcessesTopN < 1 {
			b.errs = append(b.errs, fmt.Errorf("--collector.processes.top: must be at least 1, got %d", o.ProcessesTopN))
		}
		return &collector.Processes{Paths: o.Paths, TopN: o.ProcessesTopN, PageSize: o.PageSize}
	}},
	{"sockets", true, "Sockets by state, listening ports, inbound connections per remote (deus_socket*, deus_tcp_*).", func(o *Options, _ *builder) collector.Collector {
		return &collector.Sockets{Paths: o.Paths, MaxListening: o.SocketsMaxListening}
	}},
	{"authlog", true, "Authentication failures from the auth log (deus_auth_failures_total).", func(o *Options, _ *builder) collector.Collector {
		return &collector.Authlog{Paths: o.Paths, Files: o.AuthlogFiles, StateFile: filepath.Join(o.StateDir, "authlog.json")}
	}},
	{"integrity", true, "Changes of watched files against a kept baseline (deus_file_*).", func(o *Options, _ *builder) collector.Collector {
		return &collector.Integrity{Paths: o.Paths, Files: o.IntegrityFiles, MaxSize: o.IntegrityMaxSize, StateFile: filepath.Join(o.StateDir, "integrity.json"), Now: o.Now}
	}},
	{"services", true, "Whether watched services are up (deus_service_up).", func(o *Options, b *builder) collector.Collector {
		var checker collector.ServiceChecker = collector.ProcessChecker{Paths: o.Paths}
		switch o.ServicesBackend {
		case "systemd":
			checker = &collector.SystemdChecker{Address: o.SystemdAddress}
		case "auto":
			if collector.SystemdBooted(o.Paths) {
				checker = &collector.SystemdChecker{Address: o.SystemdAddress}
			}
		case "process":
		default:
			b.errs = append(b.errs, fmt.Errorf("--collector.services.backend: %q is not one of auto, systemd, process", o.ServicesBackend))
		}
		return &collector.Services{Names: o.Services, Checker: checker}
	}},
}

// builder gathers every problem of the options while collectors are built.
type builder struct{ errs []error }

func (b *builder) re(flag, expr string) *regexp.Regexp {
	if expr == "" {
		return nil
	}
	r, err := regexp.Compile(expr)
	if err != nil {
		b.errs = append(b.errs, fmt.Errorf("--%s: %w", flag, err))
	}
	return r
}

// Options configure the collectors.
type Options struct {
	Paths    collector.Paths
	Enabled  map[string]bool
	StateDir string

	FilesystemMountPointsExclude string
	FilesystemFSTypesExclude     string
	FilesystemMountTimeout       time.Duration
	DiskstatsDeviceExclude       string
	DiskstatsDeviceInclude       string
	NetdevDeviceExclude          string
	NetdevDeviceInclude          string
	ProcessesTopN                int
	SocketsMaxListening          int
	AuthlogFiles                 []string
	IntegrityFiles               []string
	IntegrityMaxSize             int64
	Services                     []string
	ServicesBackend              string // auto, systemd or process
	SystemdAddress               string // D-Bus address; empty is the system bus

	// Hooks for tests; nil means the real thing.
	Now      func() time.Time
	StatFS   func(path string) (collector.FSStat, error)
	Uname    func() (collector.UnameInfo, error)
	PageSize int
}

// DefaultOptions are the defaults of the exporter's flags.
func DefaultOptions() Options {
	en := map[string]bool{}
	for _, k := range Known {
		en[k.Name] = k.Default
	}
	return Options{
		Paths:                        collector.DefaultPaths(),
		Enabled:                      en,
		StateDir:                     "/var/lib/deus-exporter",
		FilesystemMountPointsExclude: collector.DefaultMountPointsExclude,
		FilesystemFSTypesExclude:     collector.DefaultFSTypesExclude,
		FilesystemMountTimeout:       2 * time.Second,
		DiskstatsDeviceExclude:       collector.DefaultDiskstatsDeviceExclude,
		ProcessesTopN:                10,
		SocketsMaxListening:          200,
		AuthlogFiles:                 collector.DefaultAuthLogs,
		IntegrityFiles:               collector.DefaultIntegrityPaths,
		IntegrityMaxSize:             16 << 20,
		ServicesBackend:              "auto",
	}
}

// Collectors builds the enabled collectors, in the order of Known, and
// reports every problem of their options at once.
func Collectors(o Options) ([]collector.Entry, error) {
	b := &builder{}
	var entries []collector.Entry
	for _, k := range Known {
		if !o.Enabled[k.Name] {
			continue
		}
		entries = append(entries, collector.Entry{Name: k.Name, Collector: k.build(&o, b)})
	}
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	return entries, nil
}

// Handler serves /metrics.
type Handler struct {
	logger      *slog.Logger
	scraper     *collector.Scraper
	timeout     time.Duration
	inflight    chan struct{}
	gzipWriters sync.Pool
}

// NewHandler returns the /metrics handler. timeout bounds a scrape (a
// shorter X-Prometheus-Scrape-Timeout-Seconds wins); maxRequests bounds
// concurrent scrapes, beyond which it answers 503.
func NewHandler(logger *slog.Logger, s *collector.Scraper, timeout time.Duration, maxRequests int) *Handler {
	h := &Handler{logger: logger, scraper: s, timeout: timeout}
	if maxRequests > 0 {
		h.inflight = make(chan struct{}, maxRequests)
	}
	h.gzipWriters.New = func() any {
		zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
		return zw
	}
	return h
}

// scrapeMargin is left of Prometheus' scrape timeout for writing the answer.
const scrapeMargin = 250 * time.Millisecond

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.inflight != nil {
		select {
		case h.inflight <- struct{}{}:
			defer func() { <-h.inflight }()
		default:
			http.Error(w, "too many concurrent scrapes", http.StatusServiceUnavailable)
			return
		}
	}
	ctx := r.Context()
	if v := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil && secs > 0 {
			d := time.Duration(secs*float64(time.Second)) - scrapeMargin
			d = max(d, scrapeMargin)
			if d < h.timeout {
				var cancel func()
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	var out io.Writer = w
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Vary", "Accept-Encoding")
		zw := h.gzipWriters.Get().(*gzip.Writer)
		zw.Reset(w)
		defer func() {
			if err := zw.Close(); err != nil {
				h.logger.Debug("gzip_close_failed", "err", err)
			}
			h.gzipWriters.Put(zw)
		}()
		out = zw
	}
	if err := h.scraper.Scrape(ctx, out); err != nil {
		h.logger.Debug("write_metrics_failed", "err", err)
	}
}

func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
