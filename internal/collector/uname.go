package collector

import (
	"context"
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

// Time writes node_time_seconds and node_time_zone_offset_seconds, so that
// clock skew between hosts can be alerted on.
type Time struct {
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
	return nil
}
