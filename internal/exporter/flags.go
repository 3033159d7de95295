package exporter

import (
	"fmt"

	"github.com/alecthomas/kingpin/v2"
)

// Flagger is where flags are added: a kingpin application (the exporter)
// or a command (healer serve, whose standalone mode runs the same
// collectors).
type Flagger interface {
	Flag(name, help string) *kingpin.FlagClause
}

// AddFlags adds the collectors' flags to app, with o's values as their
// defaults, and returns what to call once the flags are parsed; prefix
// starts every help text ("Standalone mode: " for the healer). The exporter
// and the healer share them, so both take the same --collector.* and
// --path.* flags.
func AddFlags(app Flagger, o *Options, prefix string) (parsed func()) {
	flag := func(name, help string) *kingpin.FlagClause { return app.Flag(name, prefix+help) }
	flag("path.procfs", "procfs mountpoint.").Default(o.Paths.Proc).StringVar(&o.Paths.Proc)
	flag("path.sysfs", "sysfs mountpoint.").Default(o.Paths.Sys).StringVar(&o.Paths.Sys)
	flag("path.rootfs", "rootfs mountpoint.").Default(o.Paths.Root).StringVar(&o.Paths.Root)
	enabled := map[string]*bool{}
	for _, k := range Known {
		help := fmt.Sprintf("Enable the %s collector: %s (default: %s).", k.Name, k.Help, map[bool]string{true: "enabled", false: "disabled"}[k.Default])
		enabled[k.Name] = flag("collector."+k.Name, help).Default(fmt.Sprint(o.Enabled[k.Name])).Bool()
	}
	flag("collector.filesystem.mount-points-exclude", "Regexp of mount points to leave out.").Default(o.FilesystemMountPointsExclude).StringVar(&o.FilesystemMountPointsExclude)
	flag("collector.filesystem.fs-types-exclude", "Regexp of file system types to leave out.").Default(o.FilesystemFSTypesExclude).StringVar(&o.FilesystemFSTypesExclude)
	flag("collector.filesystem.mount-timeout", "How long statfs may take before a mount is reported as failed (device_error) and skipped until it answers.").Default(o.FilesystemMountTimeout.String()).DurationVar(&o.FilesystemMountTimeout)
	flag("collector.diskstats.device-exclude", "Regexp of disk devices to leave out.").Default(o.DiskstatsDeviceExclude).StringVar(&o.DiskstatsDeviceExclude)
	flag("collector.diskstats.device-include", "Regexp of disk devices to report; others are left out.").StringVar(&o.DiskstatsDeviceInclude)
	flag("collector.netdev.device-exclude", "Regexp of network devices to leave out.").StringVar(&o.NetdevDeviceExclude)
	flag("collector.netdev.device-include", "Regexp of network devices to report; others are left out.").StringVar(&o.NetdevDeviceInclude)
	flag("collector.processes.top", "Number of process groups reported by CPU and by memory.").Default(fmt.Sprint(o.ProcessesTopN)).IntVar(&o.ProcessesTopN)
	flag("collector.sockets.max-listening", "Most listening-socket series reported; the rest are counted in deus_socket_listening_dropped.").Default(fmt.Sprint(o.SocketsMaxListening)).IntVar(&o.SocketsMaxListening)
	// Repeatable flags: their defaults apply only when none is given.
	authlog, integrity := o.AuthlogFiles, o.IntegrityFiles
	o.AuthlogFiles, o.IntegrityFiles = nil, nil
	flag("collector.authlog.file", "Auth log to tail; repeatable, the first that exists is read.").Default(authlog...).StringsVar(&o.AuthlogFiles)
	flag("collector.integrity.path", "File to watch for changes; repeatable.").Default(integrity...).StringsVar(&o.IntegrityFiles)
	flag("collector.integrity.max-size", "Files larger than this are compared by stat only, not hashed.").Default(fmt.Sprint(o.IntegrityMaxSize)).Int64Var(&o.IntegrityMaxSize)
	flag("collector.services.name", "Service to watch; repeatable.").StringsVar(&o.Services)
	flag("collector.services.backend", "How services are checked: systemd (over D-Bus), process (a process whose name is the service's), or auto (systemd where it is the init system).").Default(o.ServicesBackend).EnumVar(&o.ServicesBackend, "auto", "systemd", "process")
	flag("collector.services.dbus-address", "D-Bus address of systemd's bus for the systemd backend; empty is the system bus.").StringVar(&o.SystemdAddress)
	return func() {
		for name, on := range enabled {
			o.Enabled[name] = *on
		}
	}
}
