package collector

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// UnameInfo is what uname(2) reports.
type UnameInfo struct {
	SysName, Release, Version, Machine, NodeName, DomainName string
}

// SystemUname calls uname(2).
func SystemUname() (UnameInfo, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return UnameInfo{}, err
	}
	return UnameInfo{
		SysName:    unix.ByteSliceToString(u.Sysname[:]),
		Release:    unix.ByteSliceToString(u.Release[:]),
		Version:    unix.ByteSliceToString(u.Version[:]),
		Machine:    unix.ByteSliceToString(u.Machine[:]),
		NodeName:   unix.ByteSliceToString(u.Nodename[:]),
		DomainName: unix.ByteSliceToString(u.Domainname[:]),
	}, nil
}

// Uname writes node_uname_info.
type Uname struct {
	// Uname defaults to SystemUname; tests replace it.
	Uname func() (UnameInfo, error)
}

// Update implements Collector.
func (c *Uname) Update(_ context.Context, w *Writer) error {
	f := c.Uname
	if f == nil {
		f = SystemUname
	}
	u, err := f()
	if err != nil {
		return err
	}
	w.Family("node_uname_info", Gauge, "Labeled system information as provided by the uname system call.")
	w.Sample("node_uname_info", 1, "domainname", u.DomainName, "machine", u.Machine, "nodename", u.NodeName,
		"release", u.Release, "sysname", u.SysName, "version", u.Version)
	return nil
}

// Time writes node_time_seconds, node_time_zone_offset_seconds and the
// clock sources of /sys, so that clock skew between hosts can be alerted on.
type Time struct {
	Paths Paths
	// Now defaults to time.Now; tests replace it.
	Now func() time.Time
}

// Update implements Collector.
func (c *Time) Update(_ context.Context, w *Writer) error {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	t := now()
	w.Single("node_time_seconds", Gauge, "System time in seconds since epoch (1970).", float64(t.UnixNano())/1e9)
	zone, offset := t.Zone()
	w.Family("node_time_zone_offset_seconds", Gauge, "System time zone offset in seconds.")
	w.Sample("node_time_zone_offset_seconds", float64(offset), "time_zone", zone)
	return c.clocksources(w)
}

// clocksources writes node_time_clocksource_{available,current}_info from
// /sys/devices/system/clocksource/clocksourceN.
func (c *Time) clocksources(w *Writer) error {
	dirs, err := filepath.Glob(c.Paths.sys("devices", "system", "clocksource", "clocksource[0-9]*"))
	if err != nil || len(dirs) == 0 {
		return nil // no sysfs here; the time itself was written
	}
	type source struct{ device, available, current string }
	var sources []source
	for _, d := range dirs {
		available, err1 := readSmall(filepath.Join(d, "available_clocksource"))
		current, err2 := readSmall(filepath.Join(d, "current_clocksource"))
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		sources = append(sources, source{strings.TrimPrefix(filepath.Base(d), "clocksource"), available, current})
	}
	w.Family("node_time_clocksource_available_info", Gauge, "Available clocksources read from '/sys/devices/system/clocksource'.")
	for _, s := range sources {
		for name := range strings.FieldsSeq(s.available) {
			w.Sample("node_time_clocksource_available_info", 1, "clocksource", name, "device", s.device)
		}
	}
	w.Family("node_time_clocksource_current_info", Gauge, "Current clocksource read from '/sys/devices/system/clocksource'.")
	for _, s := range sources {
		w.Sample("node_time_clocksource_current_info", 1, "clocksource", s.current, "device", s.device)
	}
	return nil
}
