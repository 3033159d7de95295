package collector

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/godbus/dbus/v5"
)

// SystemdBooted reports whether the host runs systemd as its init, the
// check of sd_booted(3).
func SystemdBooted(p Paths) bool {
	_, err := os.Stat(p.rootPath("/run/systemd/system"))
	return err == nil
}

// SystemdChecker asks systemd over D-Bus whether units are active. A name
// without a unit suffix is taken as NAME.service. A unit systemd has not
// loaded is down.
type SystemdChecker struct {
	// Address is the bus to connect to; empty means the system bus.
	Address string

	mu   sync.Mutex
	conn *dbus.Conn
}

const (
	systemdDest    = "org.freedesktop.systemd1"
	systemdPath    = dbus.ObjectPath("/org/freedesktop/systemd1")
	systemdManager = "org.freedesktop.systemd1.Manager"
	systemdUnit    = "org.freedesktop.systemd1.Unit"
	errNoSuchUnit  = "org.freedesktop.systemd1.NoSuchUnit"
)

// Up implements ServiceChecker.
func (s *SystemdChecker) Up(ctx context.Context, names []string) (map[string]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		conn, err := s.connect()
		if err != nil {
			return nil, fmt.Errorf("connect to systemd over D-Bus: %w", err)
		}
		s.conn = conn
	}
	up := make(map[string]bool, len(names))
	for _, name := range names {
		active, err := s.active(ctx, unitName(name))
		if err != nil {
			// The bus may have gone (dbus restarted): connect afresh next time.
			s.conn.Close()
			s.conn = nil
			return nil, fmt.Errorf("unit %s: %w", unitName(name), err)
		}
		up[name] = active
	}
	return up, nil
}

func (s *SystemdChecker) connect() (*dbus.Conn, error) {
	if s.Address == "" {
		return dbus.ConnectSystemBus()
	}
	return dbus.Connect(s.Address)
}

func (s *SystemdChecker) active(ctx context.Context, unit string) (bool, error) {
	var path dbus.ObjectPath
	err := s.conn.Object(systemdDest, systemdPath).CallWithContext(ctx, systemdManager+".GetUnit", 0, unit).Store(&path)
	var dbusErr dbus.Error
	if errors.As(err, &dbusErr) && dbusErr.Name == errNoSuchUnit {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var state dbus.Variant
	err = s.conn.Object(systemdDest, path).CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, systemdUnit, "ActiveState").Store(&state)
	if err != nil {
		return false, err
	}
	v, ok := state.Value().(string)
	if !ok {
		return false, fmt.Errorf("ActiveState is %s, not a string", state.Signature())
	}
	// "reloading" is a running service re-reading its configuration.
	return v == "active" || v == "reloading", nil
}

// unitName makes a service name a systemd unit name.
func unitName(name string) string {
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		switch name[i:] {
		case ".service", ".socket", ".target", ".timer", ".mount", ".path", ".scope", ".slice", ".swap", ".device", ".automount":
			return name
		}
	}
	return name + ".service"
}
